"""Live A/B: two models measured in one process, in stages, until a sequential test decides.

The comparison runs in *stages*. Each stage opens ``sessions`` fresh sessions of each side (default
:data:`LIVE_SESSIONS`), warms them up and measures them with :func:`bench.runner.run_matrix` in
``rounds`` rounds, each round one block of every session of both sides in a random order, on the
same input images; then they are closed. A stage gives one value per batch size: the log of the
ratio of the two sides' geometric means of their sessions' typical block p50
(:attr:`bench.metrics.BlockSet.typical_ms`).

Why stages of fresh sessions: on this project's 2-vCPU VMs two sessions of the *same* ONNX file
differ by up to ~2% for their whole life (lenet5 batch 1, results/calibration/, session 5), and
the host's own speed moves by tens of percent within seconds (a GEMM loop: 112-156 GFLOP/s in
consecutive half-second windows). Measuring one set of sessions for longer averages neither away;
new sessions at new moments do. The stage values are independent replicates, so their spread holds
every source of variation, and the interval narrows as 1/sqrt(stages).

After each stage the sequential test (:mod:`bench.sequential`) looks, at scheduled stage counts (the
first after 6 stages), with
repeated confidence intervals whose overall false-alarm rate stays at 5% however many looks are
made; it stops when the verdict is ``slower``, ``faster`` or ``no change`` (the interval within the
noise band, :data:`bench.compare.LIVE_NOISE`), or when ``max_s`` seconds are spent, whichever comes
first. The result says how many stages and seconds it took.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ...models.data import Dataset
from ...models.errors import UsageError
from ...models.registry import get_spec
from ..measure import samples as samples_io
from ..measure.defaults import LIVE_MAX_S, LIVE_MIN_S, LIVE_ROUNDS, LIVE_SESSIONS, LIVE_WARMUP_S
from ..measure.pipeline import Artifacts, eval_inputs, onnx_for, torch_builder
from ..measure.runner import AUTO, Axes, Target, auto_threads_fixed, run_matrix
from ..measure.timing import TimingConfig
from ..runtimes.foreign import foreign_inputs, inspect
from .compare import LIVE_NOISE, Change, ResultSet, block_set, judge, key
from .sequential import SequentialTest


def live_timing(rounds: int = LIVE_ROUNDS, min_s: float = LIVE_MIN_S) -> TimingConfig:
    """The timing of one stage: ``rounds`` rounds and ``min_s`` timed seconds a side, shared by the
    side's sessions, with :data:`LIVE_WARMUP_S` of warm-up per session."""
    return TimingConfig(warmup_s=LIVE_WARMUP_S, min_s=min_s, rounds=rounds)


@dataclass(frozen=True)
class LiveResult:
    """The A/B comparison: one :class:`bench.compare.Change` per batch size (base = A, new = B)."""

    a: str
    b: str
    changes: list[Change]
    csv: Path
    stages: dict = None  # per batch size: (stages measured, seconds until decided or stopped)


def live_target(spec_text: str, data: Dataset, arts: Artifacts, preprocess: str = "unit") -> Target:
    """A side of a live comparison: a path to an ``.onnx`` file, or ``MODEL[:VARIANT]`` of a registered
    model whose export exists in ``arts``.

    Raises:
        UsageError: unknown model or variant, missing export, or an ONNX file that is not an MNIST classifier.
    """
    if spec_text.endswith(".onnx") or Path(spec_text).is_file():
        fm = inspect(Path(spec_text))
        return Target(fm.path.stem, fm.path, "classify", foreign_inputs(data.test_images, fm, preprocess),
                      data.test_labels.astype("int64"), None, None, arts.dataset, "foreign", "",
                      fixed_batch=fm.fixed_batch, variant="foreign")
    name, _, variant = spec_text.partition(":")
    spec = get_spec(name)
    path, meta = onnx_for(spec, arts, variant or "fp32")
    x, y = eval_inputs(spec, data)
    return Target(spec.name, path, spec.task, x, y, torch_builder(spec, arts), spec.flops, arts.dataset,
                  meta.get("profile", arts.profile), meta.get("seed", str(arts.seed)), meta.get("checkpoint_sha256", ""),
                  variant=variant or "fp32")


def check_sessions(sessions: int) -> None:
    """Raises UsageError unless 1 <= ``sessions`` <= 64 (sessions per side of a live comparison)."""
    if not 1 <= sessions <= 64:
        raise UsageError(f"--sessions must be between 1 and 64, got {sessions}")


def check_max_s(max_s: float) -> None:
    """Raises UsageError unless ``max_s`` is finite and between 1 s and one day."""
    if not (math.isfinite(max_s) and 1 <= max_s <= 86400):
        raise UsageError(f"--max-s must be between 1 and 86400 seconds, got {max_s}")


def live_compare(a: Target, b: Target, axes: Axes, out_csv: Path, timing: TimingConfig | None = None,
                 noise: float = LIVE_NOISE, progress=None, sessions: int = LIVE_SESSIONS,
                 max_s: float = LIVE_MAX_S, stages: int | None = None) -> LiveResult:
    """Measure ``a`` and ``b`` interleaved in this process, stage after stage, and judge b / a per
    batch size with the sequential test (module docstring).

    ``timing`` is one stage's (default :func:`live_timing`): ``min_s`` timed seconds a side per batch
    size, shared by the side's ``sessions`` sessions, each running ``timing.rounds`` blocks. Stages
    go on until every batch size is decided or ``max_s`` seconds (wall time, session set-up
    included) are spent; ``stages`` instead runs exactly that many and judges once at the end (the
    calibration's long runs). The rows (one per session, named ``<name>#<stage>.<k>``) and samples
    are written to ``out_csv`` (a new file) like any run's. Sides with the same name and variant are
    renamed ``A:<name>`` and ``B:<name>``. A threads value of ``auto`` becomes the count that
    ``auto`` always picks on this host when it has a single candidate (1 on a 2-CPU host,
    :func:`bench.runner.thread_candidates`), else 0, so that both sides run alike. Each
    :class:`bench.compare.Change` has the pooled p50/p99/throughput of each side and, as ratio,
    interval and verdict, the sequential test's at its last look (``noise``: the no-change band).

    Raises:
        UsageError: the two sides accept no common batch size, ``sessions`` outside 1..64, a bad
            ``max_s``, or a side that could not be measured.
    """
    check_sessions(sessions)
    check_max_s(max_s)
    timing = timing or live_timing()
    a, b, axes = _sides(a, b, axes)
    per_session = replace(timing, min_s=timing.min_s / sessions)
    run = _LiveRun(a, b, out_csv, noise)
    pending = tuple(axes.batch_sizes)
    t0 = time.perf_counter()
    while pending:
        run.stage += 1
        rows = run_matrix(run.stage_targets(sessions), replace(axes, batch_sizes=pending), out_csv,
                          timing=per_session, score=False, progress=progress)
        pending = run.judge_stage(rows, time.perf_counter() - t0, max_s, stages)
    changes, when = run.changes()
    return LiveResult(a.name, b.name, changes, out_csv, when)


def _sides(a: Target, b: Target, axes: Axes) -> tuple[Target, Target, Axes]:
    """The two sides as measured: renamed ``A:``/``B:`` when they have the same name and variant, and
    threads ``auto`` fixed to one count for both; raises UsageError when no batch size fits both."""
    if (a.name, a.variant) == (b.name, b.variant):
        a, b = replace(a, name=f"A:{a.name}"), replace(b, name=f"B:{b.name}")
    if AUTO in axes.threads:  # a per-cell probe could give the two sides different thread counts
        axes = replace(axes, threads=tuple(dict.fromkeys((auto_threads_fixed() or 0) if t == AUTO else t for t in axes.threads)))
    if a.fixed_batch and b.fixed_batch and a.fixed_batch != b.fixed_batch:
        raise UsageError(f"{a.name} runs only at batch {a.fixed_batch} and {b.name} only at {b.fixed_batch}")
    return a, b, axes


class _LiveRun:
    """The state of one live A/B between stages: which session belongs to which side, the sequential
    test of each cell (batch size), when each was decided, and every row and sample measured."""

    def __init__(self, a: Target, b: Target, out_csv: Path, noise: float) -> None:
        self.a, self.b, self.out_csv, self.noise = a, b, out_csv, noise
        self.stage = 0
        self.side_of: dict[str, str] = {}
        self.tests: dict[tuple, SequentialTest] = {}
        self.spent: dict[tuple, float] = {}
        self.rows: list = []
        self.samples: dict = {}  # each stage's samples, read once

    def stage_targets(self, sessions: int) -> list[Target]:
        """This stage's fresh sessions, ``<name>#<stage>.<k>``: built alternately, the side that leads
        alternating by stage, so that an effect of the order in which sessions are created (memory
        placement) falls on both sides alike over the stages."""
        targets = []
        for k in range(sessions):
            for side, t in ((("a", self.a), ("b", self.b)) if (self.stage + k) % 2 else (("b", self.b), ("a", self.a))):
                name = f"{t.name}#{self.stage}.{k + 1}"
                self.side_of[name] = side
                targets.append(replace(t, name=name))
        return targets

    def judge_stage(self, rows: list, elapsed: float, max_s: float, stages: int | None) -> tuple[int, ...]:
        """Add a stage's rows to each cell's sequential test and look; the batch sizes still undecided.

        Raises:
            UsageError: a session could not be measured.
        """
        errors = [r for r in rows if r.status != "ok"]
        if errors:
            raise UsageError(f"{errors[0].model} could not be measured: {errors[0].error}")
        self.rows += rows
        folder = samples_io.folder_for(self.out_csv)
        stage_samples = {r.cell_id: samples_io.read_cell(folder / f"{r.cell_id}.npz") for r in rows}
        self.samples.update(stage_samples)
        rs = ResultSet("live", rows, stage_samples, [])
        by_cell: dict[tuple, dict[str, list]] = {}
        for r in rows:
            by_cell.setdefault(key(r)[2:], {"a": [], "b": []})[self.side_of[r.model]].append(block_set([r], rs.samples)[0])
        out_of_time = stages is None and elapsed >= max_s
        for cell, v in by_cell.items():
            test = self.tests.setdefault(cell, SequentialTest(self.noise))
            test.add(stage_log_ratio(v["a"], v["b"]))
            if stages is None:
                test.look(final=out_of_time)
            elif self.stage >= stages:
                test.look(final=True)
            if test.decided or out_of_time or (stages is not None and self.stage >= stages):
                self.spent.setdefault(cell, elapsed)
        # batch sizes still undecided (one that no target accepts got no cell: it is dropped, never waited for)
        return tuple(dict.fromkeys(c[2] for c in by_cell if c not in self.spent))

    def changes(self) -> tuple[list[Change], dict]:
        """Per cell, the pooled figures of each side with the sequential test's ratio, interval and
        verdict at its last look; and per batch size (stages, seconds) to that verdict."""
        rs = ResultSet("live", self.rows, self.samples, [])
        cells: dict[tuple, dict[str, list]] = {}
        for r in self.rows:
            cells.setdefault(key(r)[2:], {"a": [], "b": []})[self.side_of[r.model]].append(r)
        changes, when = [], {}
        for cell, sides in cells.items():
            ra, rb = sides["a"], sides["b"]
            k = (f"{self.a.name} -> {self.b.name}", f"{ra[0].variant} -> {rb[0].variant}", *cell)
            test = self.tests[cell]
            pooled = judge(k, ra, rb, rs, rs, self.noise, refs=None, interval=False)  # the sequential test gives it
            changes.append(replace(pooled, ratio=test.ratio, ratio_low=test.low, ratio_high=test.high,
                                   raw_low=test.low, raw_high=test.high, verdict=test.verdict))
            when[cell[2]] = (test.n, self.spent[cell])
        return changes, when


def stage_log_ratio(base: list, new: list) -> float:
    """One stage's ln(new / base) from its sessions' :class:`bench.metrics.BlockSet` s: for each round,
    the mean ln(block median) of the new side's blocks minus the base side's in that round; then the
    median over rounds. Pairing by round cancels the host's movement at the scale of a round (the
    blocks of one round are measured within about half a second): on this 2-vCPU VM, blocks of one
    side in one round spread by ~6% (sd), and this estimate's spread between stages was 1.9% against
    3.4% for the ratio of the sessions' typical block p50s (lenet5 batch 32, 39 A/A stages, as-is).
    NaN when no round has blocks of both sides."""
    rounds: dict[int, dict[str, list[float]]] = {}
    for side, sets in (("a", base), ("b", new)):
        for bs in sets:
            if bs is None:
                continue
            for rd, m in zip(bs.rounds, bs.med_ms):
                if m > 0:
                    rounds.setdefault(int(rd), {"a": [], "b": []})[side].append(math.log(m))
    diffs = [np.mean(v["b"]) - np.mean(v["a"]) for v in rounds.values() if v["a"] and v["b"]]
    return float(np.median(diffs)) if diffs else math.nan
