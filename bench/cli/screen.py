"""The light half of the printing: the consoles, progress bars, and the rendering of comparisons and
of the ``--fail-on`` gate. rich and the comparison types only (no torch, no ONNX Runtime), so that
``mnistbench compare`` of two CSVs starts fast; :mod:`.console` renders everything else.
"""

from __future__ import annotations

import contextlib
import math
import sys
from collections.abc import Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..analysis.compare import KEY
from ..analysis.report import compare_markdown, compare_table
from ..api.comparison import Comparison, Gate

# Piped output (logs, CI) gets room for the tables instead of rich's 80-column default.
out = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 160)


def say(msg: str) -> None:
    """One plain line on stderr (no rich markup or highlighting)."""
    err.print(msg, markup=False, highlight=False)


def progress() -> Progress:
    """A progress bar on stderr: description, bar, done/total, elapsed."""
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=err, transient=False)


class _LazyProgress:
    """A progress bar on stderr that appears at its first use, so that input refused before any work
    prints its one error line alone."""

    def __init__(self) -> None:
        self.bar: Progress | None = None

    def __call__(self) -> Progress:
        if self.bar is None:
            self.bar = progress()
            self.bar.start()
        return self.bar

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()


@contextlib.contextmanager
def counted(label: str, total: int | None = None, lazy: bool = True) -> Iterator:
    """A bar for ``(description, done, total)`` callbacks (``None`` leaves a figure as it is), shown
    at the first callback (``lazy``) or at once."""
    bar, task = _LazyProgress(), []

    def cb(d, n, tot):
        if not task:
            task.append(bar().add_task(label, total=total))
        bar().update(task[0], description=d, completed=n, total=tot)

    try:
        if not lazy:
            task.append(bar().add_task(label, total=total))
        yield cb
    finally:
        bar.stop()


def show_changes(results: list[Comparison], fmt: str) -> None:
    """Each comparison as a table (warnings on stderr) or as markdown (warnings quoted)."""
    for r in results:
        if fmt == "markdown":
            print("\n".join(f"> {ln}" for ln in r.lines) + ("\n\n" if r.lines else "")
                  + compare_markdown(r.changes, r.title))
        else:
            for ln in r.lines:
                say(f"warning: {ln}")
            out.print(compare_table(r.changes, r.title))


def _key(c) -> str:
    return "/".join(map(str, c.key[:5])) + (f" @ {c.key[-1]}" if len(c.key) > len(KEY) else "")


def show_gate(g: Gate) -> None:
    """The gate's findings on stderr, one line each, then ``gate: passed`` when it passed."""
    for c, r in g.failed:
        acc = "" if math.isnan(c.acc_delta_pp) else f"accuracy {c.acc_delta_pp:+.2f} pp, "
        print(f"gate: {_key(c)} crosses {r} (ratio {c.ratio:.3f} [{c.ratio_low:.3f}, {c.ratio_high:.3f}], "
              f"{acc}{c.verdict})", file=sys.stderr)
    if g.unjudged:
        print(f"gate: {len(g.unjudged)} cells cannot be judged (no raw samples, or fewer than 3 blocks), e.g. "
              f"{_key(g.unjudged[0])}: the gate does not pass what it could not judge", file=sys.stderr)
    if g.inconclusive:
        hint = "raise --max-s to keep measuring" if g.live else "measure more or use --live"
        print(f"gate: {len(g.inconclusive)} cells inconclusive (interval too wide to decide; {hint}), "
              f"e.g. {_key(g.inconclusive[0])}", file=sys.stderr)
    if g.passed:
        print(f"gate: passed ({', '.join(map(str, g.rules))})", file=sys.stderr)
