"""Compare: the API of ``mnistbench compare`` (results against results, :func:`compare`; two models
live, :func:`compare_live`) and of its ``--fail-on`` gate (:func:`gate`).

Comparing two results files needs neither torch nor ONNX Runtime: the live A/B, which does, imports
its measurement when called.
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from ...models.errors import UsageError
from ..analysis import compare as cmp
from ..measure import noiseprofile
from ..measure.defaults import LIVE_MAX_S, LIVE_SESSIONS

if TYPE_CHECKING:
    from ..measure.runner import Axes, RunProgress
    from ..measure.timing import TimingConfig


@dataclass
class Comparison:
    """One comparison: ``title``, the :class:`compare.Change` per configuration, and warnings."""

    title: str
    changes: list[cmp.Change]
    lines: list[str]
    live: bool = False

    def frame(self) -> pd.DataFrame:
        """The changes as a DataFrame (one row per configuration; ``ratio*``: new / base p50)."""
        return pd.DataFrame([dataclasses.asdict(c) for c in self.changes])


@dataclass
class Gate:
    """The ``--fail-on`` gate over comparisons: ``failed`` (change, rule) pairs, cells that could not
    be judged, inconclusive cells; ``passed`` is False when any of these fails the gate."""

    rules: list[cmp.Rule]
    failed: list[tuple[cmp.Change, cmp.Rule]]
    unjudged: list[cmp.Change]
    inconclusive: list[cmp.Change]
    fail_on_inconclusive: bool = False
    live: bool = False  # every comparison was a live A/B (its cure for inconclusive is a longer budget)

    @property
    def passed(self) -> bool:
        return not (self.failed or self.unjudged or (self.inconclusive and self.fail_on_inconclusive))


def gate(comparisons: list[Comparison], fail_on: str | None, fail_on_inconclusive: bool = False) -> Gate:
    """Apply ``fail_on`` rules (e.g. ``"p50:+5%,accuracy:-0.1pp"``) to every change.

    Raises: UsageError for malformed rules."""
    rules = cmp.parse_rules(fail_on) if fail_on is not None else []
    changes = [c for r in comparisons for c in r.changes]
    return Gate(rules, cmp.gate(changes, rules), [c for c in changes if c.verdict == "n/a"],
                [c for c in changes if c.verdict == "inconclusive"], fail_on_inconclusive,
                bool(comparisons) and all(r.live for r in comparisons))


def check_noise(noise: float | None) -> None:
    """Raise UsageError unless ``noise`` is None (``auto``) or a fraction in [0, 1)."""
    if noise is not None and not (isinstance(noise, (int, float)) and 0 <= noise < 1):
        raise UsageError(f"--noise is auto or a fraction in [0, 1), got {noise}")


def parse_noise(text: str | None) -> float | None:
    """``--noise``: ``auto`` (None: the default threshold, and the between-run spread from the noise
    profile) or a fraction in [0, 1).

    Raises:
        UsageError: anything else.
    """
    if text is None or text.strip().lower() == "auto":
        return None
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"--noise is auto or a fraction in [0, 1), got {text!r}") from None
    check_noise(value if math.isfinite(value) else -1.0)
    return value


def compare(base: str | Path, new: str | Path, *, noise: float | None = None,
            drift_correction: bool = cmp.DRIFT_CORRECTION, sigma: float | None = None) -> Comparison:
    """Compare two results (CSV files or folders of them), configuration by configuration.

    Args:
        noise: a change whose 95% interval lies within +-noise (fraction of p50) is "no change"
            (None, ``auto``: :data:`compare.NOISE`).
        drift_correction: judge each ratio divided by the reference network's ratio when that moved
            (default off: :data:`compare.DRIFT_CORRECTION` says why).
        sigma: the between-run spread (sd of ln ratio) to widen every interval by, at least (None:
            the noise profile recorded in the runs' system JSONs, else this host's stored one, else
            :data:`noiseprofile.DEFAULT_SIGMA`; :func:`noiseprofile.sigma_of`). The reference
            network's movement between the two runs widens it further when larger.

    Returns:
        a :class:`Comparison`; pass it to :func:`gate` for a pass/fail.

    Raises:
        UsageError: unreadable or empty results, a bad ``noise`` or ``sigma``.

    Example: ``g = api.gate([api.compare("a.csv", "b.csv")], "p50:+5%"); g.passed``
    """
    check_noise(noise)
    if sigma is not None and not (math.isfinite(sigma) and 0 <= sigma <= 1):
        raise UsageError(f"the between-run spread is a fraction in [0, 1], got {sigma}")
    b, n = cmp.load(Path(base)), cmp.load(Path(new))
    source = "given"
    if sigma is None:
        sigma, source = noiseprofile.sigma_of(b.systems + n.systems)
    changes, only_base, only_new = cmp.compare(b, n, cmp.NOISE if noise is None else noise, drift_correction, sigma)
    lines = _compare_lines(b, n, changes, only_base, only_new, drift_correction, sigma, source)
    return Comparison(f"{base} -> {new}", changes, lines)


def _compare_lines(b: cmp.ResultSet, n: cmp.ResultSet, changes: list[cmp.Change], only_base: list, only_new: list,
                   drift_correction: bool, sigma: float, source: str) -> list[str]:
    """The warnings of a comparison: systems that differ, the noise profile and reference network
    used, cells inconclusive only because the machine moved, thread counts that differ, weak sides,
    configurations on one side only."""
    lines = [f"system differs: {d}" for d in cmp.system_differences(b, n)]
    if source == "no noise profile" and any("noise profile" in c.reason for c in changes):
        lines.append(f"no noise profile for this host: intervals include a between-run spread of +-{sigma:.0%} "
                     "(1 sd, the default); `mnistbench doctor --calibrate` measures this host's own")
    if (not b.references or not n.references) and drift_correction:
        lines.append("a side has no reference rows (run --no-reference, or schema 4): machine drift "
                     "between the runs cannot be corrected")
    elif not b.references or not n.references:
        lines.append("a side has no reference rows (run --no-reference, or schema 4): the machine's movement "
                     "between the runs is known only from the noise profile")
    moved = [c for c in changes if not drift_correction and (c.ref_low > 1 + cmp.NOISE or c.ref_high < 1 - cmp.NOISE)]
    if moved:
        lines.append(f"the reference network moved by {moved[0].ref_ratio:.3f}x between the runs at "
                     f"batch {moved[0].key[4]} ({len(moved)} cells share such a move): the machine changed "
                     "speed; the intervals include that movement")
    because = [c for c in changes if c.reason]
    if because:
        lines.append(f"{len(because)} cell{'s are' if len(because) > 1 else ' is'} inconclusive only because of the "
                     f"machine's movement between the runs, e.g. {'/'.join(map(str, because[0].key[:5]))}: "
                     f"{because[0].reason}")
    differ = [c for c in changes if c.threads_used[0] != c.threads_used[1]]
    if differ:
        lines.append(f"{len(differ)} cells ran with other thread counts on the two sides (threads auto "
                     f"chose {' vs '.join(differ[0].threads_used)} for "
                     f"{'/'.join(map(str, differ[0].key[:5]))}): their ratios include that choice; "
                     "pin --threads to compare like with like")
    if any(c.weak for c in changes):
        lines.append("a side has no interleaved blocks (schema 4 and older): its intervals come from "
                     "contiguous slices of one loop, and the verdict is weaker")
    lines += [f"only in base: {'/'.join(map(str, k))}" for k in only_base]
    lines += [f"only in new: {'/'.join(map(str, k))}" for k in only_new]
    return lines


def compare_live(a: str, b: str, *, axes: Axes | None = None,
                 timing: TimingConfig | None = None, noise: float | None = None,
                 sessions: int = LIVE_SESSIONS, max_s: float = LIVE_MAX_S,
                 out_path: Path | None = None, profile: str | None = None, seed: int = 0, dataset: str = "mnist",
                 data_dir: Path | None = None, artifacts_dir: Path | None = None,
                 progress: RunProgress | None = None) -> Comparison:
    """Measure models ``a`` and ``b`` now, in this process, stage after stage, until a sequential test
    decides or ``max_s`` seconds are spent (:mod:`bench.live`, :mod:`bench.sequential`).

    Args:
        a, b: an ``.onnx`` path or ``MODEL[:VARIANT]``. axes: one thread count and the batch sizes
            (None: ``Axes(threads=(AUTO,), batch_sizes=(1, 32))``, threads ``auto`` as `run`).
        timing: one stage's (default :func:`live.live_timing`): ``rounds`` rounds (one block of every
            session each) and ``min_s`` timed seconds a side per batch size, shared by the side's
            ``sessions`` fresh sessions.
        noise: the no-change band (None: :data:`compare.LIVE_NOISE`). max_s: the time budget in
            seconds (wall time). out_path: keep rows and samples (a new ``.csv``).

    Returns:
        a :class:`Comparison` whose lines say, per batch size, how many stages and seconds the
        verdict took.

    Raises:
        UsageError: several thread counts, unknown models, missing artifacts, an existing out_path,
            ``sessions`` outside 1..64, ``max_s`` outside 1..86400.

    Example: ``api.compare_live("lenet5:fp32", "lenet5:int8", profile="quick")``
    """
    # torch and ONNX Runtime: only the live A/B measures, so `compare` of two CSVs starts without them
    from ...models.data import load_dataset
    from ..analysis.live import check_max_s, check_sessions, live_compare, live_target, live_timing
    from ..measure import inputs
    from ..measure.pipeline import Artifacts, artifacts_root, newest_profile
    from ..measure.runner import AUTO, Axes

    check_noise(noise)
    noise = cmp.LIVE_NOISE if noise is None else noise
    axes = axes or Axes(threads=(AUTO,), batch_sizes=(1, 32))
    if len(axes.threads) != 1:
        raise UsageError("--live takes one --threads value")
    check_sessions(sessions)  # before the dataset loads
    check_max_s(max_s)
    timing = timing or live_timing()
    root = artifacts_root(artifacts_dir)
    arts = Artifacts(root, dataset, profile or newest_profile(root, dataset, seed), seed)
    data = load_dataset(dataset, data_dir)
    ta, tb = live_target(a, data, arts), live_target(b, data, arts)
    csv_path = (inputs.new_csv(Path(out_path)) if out_path
                else Path(tempfile.mkdtemp(prefix="mnistbench-live-")) / "live.csv")
    res = live_compare(ta, tb, axes, csv_path, timing, noise, progress=progress, sessions=sessions, max_s=max_s)
    lines = []
    for c in res.changes:
        n, sec = res.stages[c.key[4]]
        decided = c.verdict in ("slower", "faster", "no change")
        lines.append(f"batch {c.key[4]}: {'decided' if decided else 'undecided'} after {n} stages, {sec:.0f} s"
                     + ("" if decided else f" (--max-s {max_s:g}: raise it to keep measuring)"))
    return Comparison(f"live: {a} -> {b} ({sessions} fresh session{'s' * (sessions > 1)} a side x {timing.rounds} "
                      f"rounds a stage, sequential 95% intervals, no-change band +-{noise:.0%})",
                      res.changes, lines + [f"rows and samples: {csv_path}"], live=True)
