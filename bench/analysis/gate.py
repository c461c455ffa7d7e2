"""The ``--fail-on`` gate of ``compare``: rules such as ``p50:+5%,accuracy:-0.1pp`` (:func:`parse_rules`)
and the changes that cross them (:func:`gate`). A latency or throughput rule fails only on a verdict
in its direction, so a change the intervals cannot resolve never fails (nor passes) a build on its
point estimate alone."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ...models.errors import UsageError

if TYPE_CHECKING:
    from .compare import Change

_RULE = re.compile(r"^\s*(p50|p99|throughput|accuracy)\s*:\s*([+-])\s*(\d+(?:\.\d+)?)\s*(%|pp)\s*$")


@dataclass(frozen=True)
class Rule:
    """A gate rule such as ``p50:+5%``: fail when the metric moves that far in that direction."""

    metric: str
    sign: int
    amount: float
    unit: str

    def crossed(self, c: Change) -> bool:
        """Whether ``c`` fails this rule. Latency and throughput rules fail only on a verdict in the
        rule's direction (``slower`` for ``p50:+``, ``p99:+`` and ``throughput:-``; ``faster`` for the
        others) whose point ratio moved at least ``amount`` percent that way; accuracy rules on the
        change in percentage points."""
        if self.metric == "accuracy":
            if math.isnan(c.acc_delta_pp):
                return False
            return self.sign * c.acc_delta_pp >= self.amount
        wants = "slower" if (self.sign > 0) == (self.metric != "throughput") else "faster"
        if c.verdict != wants:
            return False
        p99 = c.new_p99_ms / c.base_p99_ms if c.base_p99_ms > 0 else math.nan
        ratio = {"p50": c.ratio, "p99": p99 / c.ref_ratio if c.normalised else p99,
                 "throughput": c.ips_ratio}[self.metric]
        return not math.isnan(ratio) and self.sign * (ratio - 1) * 100 >= self.amount

    def __str__(self) -> str:
        return f"{self.metric}:{'+' if self.sign > 0 else '-'}{self.amount:g}{self.unit}"


def parse_rules(text: str) -> list[Rule]:
    """``"p50:+5%,accuracy:-0.1pp,throughput:-5%"`` -> rules.

    Raises:
        UsageError: a rule not of the form METRIC:(+|-)NUMBER(%|pp), accuracy not in pp, or the others not in %.
    """
    if not text.strip(" ,"):
        raise UsageError("--fail-on has no rule: give at least one, e.g. p50:+5%,accuracy:-0.1pp")
    rules = []
    for part in text.split(","):
        m = _RULE.match(part)
        if not m:
            raise UsageError(f"--fail-on rule {part.strip()!r} is not METRIC:+N% or METRIC:-Npp "
                             "(metrics: p50, p99, throughput, accuracy), e.g. p50:+5%,accuracy:-0.1pp")
        metric, sign, amount, unit = m.groups()
        if (metric == "accuracy") != (unit == "pp"):
            raise UsageError(f"--fail-on {part.strip()!r}: accuracy is given in pp, latency and throughput in %")
        rules.append(Rule(metric, 1 if sign == "+" else -1, float(amount), unit))
    return rules


def gate(changes: list[Change], rules: list[Rule]) -> list[tuple[Change, Rule]]:
    """The (change, rule) pairs that fail the gate."""
    return [(c, r) for c in changes for r in rules if r.crossed(c)]
