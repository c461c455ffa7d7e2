"""`mnistbench doctor`: what this machine can really run, and how to run it well.

- Execution providers are proven by creating a session, not by asking what is installed.
- The GEMM probe gives the practical fp32 peak that rows' ``peak_fraction`` refers to.
- The null model (an ONNX Identity) gives the overhead floor every row carries.
- A threads x spinning sweep on two reference networks with random weights
  (lenet5, small; fan-resnet, conv-heavy) shows which session options are best
  here; timing does not depend on the weights' values.
"""

from __future__ import annotations

import itertools
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psutil

from ...models.errors import MnistBenchError
from ..measure.metrics import LatencyStats, throughput_ips
from ..measure.timing import TimingConfig, measure
from ..runtimes.runtime import PROVIDERS, OrtRuntime, SessionConfig, check_provider

SWEEP_MODELS = ("lenet5", "fan-resnet")
SWEEP_BATCHES = (1, 128)


@dataclass(frozen=True)
class SweepPoint:
    model: str
    batch_size: int
    threads: int
    spinning: bool
    p50_ms: float
    throughput_ips: float


def provider_status() -> dict[str, str]:
    """``{provider: "usable" or the reason it is not}`` for every ONNX Runtime provider mnistbench knows."""
    status = {}
    for name in PROVIDERS:
        try:
            check_provider(name)
            status[name] = "usable"
        except MnistBenchError as exc:
            status[name] = str(exc)
    return status


def thread_choices() -> list[int]:
    """1, the physical core count and the logical core count (deduplicated)."""
    return sorted({1, psutil.cpu_count(logical=False) or 1, psutil.cpu_count(logical=True) or 1})


def sweep(timing: TimingConfig, folder: Path | None = None) -> list[SweepPoint]:
    """Threads x spinning on the CPU EP for :data:`SWEEP_MODELS` at :data:`SWEEP_BATCHES`."""
    from ...exporters.onnx import export_onnx
    from ...models.registry import get_spec

    points = []
    with tempfile.TemporaryDirectory(prefix="mnistbench-doctor-") as tmp:
        root = Path(folder or tmp)
        rng = np.random.default_rng(0)
        for name in SWEEP_MODELS:
            spec = get_spec(name)
            path = root / f"{name}.onnx"
            export_onnx(spec.build().eval(), spec, path, {"note": "random weights, for timing only"})
            for b, th, sp in itertools.product(SWEEP_BATCHES, thread_choices(), (True, False)):
                rt = OrtRuntime(path, SessionConfig("cpu", th, sp))
                x = rng.random((b, 1, 28, 28), dtype=np.float32)
                s = measure(lambda: rt.run(x), timing)
                st = LatencyStats.from_samples(s.ns)
                points.append(SweepPoint(name, b, th, sp, st.p50_ms, throughput_ips(b, st.n, s.wall_s)))
    return points


def null_floor_us(timing: TimingConfig, folder: Path) -> float:
    """p50 in microseconds of the null model at batch 1, CPU EP, default session options."""
    from ..measure.pipeline import null_model

    rt = OrtRuntime(null_model(folder), SessionConfig("cpu"))
    x = np.zeros((1, 1, 28, 28), np.float32)
    return LatencyStats.from_samples(measure(lambda: rt.run(x), timing).ns).p50_ms * 1e3


def recommend(points: list[SweepPoint]) -> tuple[tuple[int, bool], float]:
    """The (threads, spinning) whose worst ratio to the best throughput, over every
    model and batch size swept, is highest; and that worst ratio."""
    best = {}
    for p in points:
        key = (p.model, p.batch_size)
        best[key] = max(best.get(key, 0.0), p.throughput_ips)
    configs = {(p.threads, p.spinning) for p in points}
    scored = {c: min(p.throughput_ips / best[(p.model, p.batch_size)] for p in points if (p.threads, p.spinning) == c)
              for c in configs}
    choice = max(scored, key=scored.get)
    return choice, scored[choice]


@dataclass(frozen=True)
class Overhead:
    """mnistbench's timing path against a bare ``session.run`` loop, same session, same input.

    Attributes:
        harness_p50_us: median of the per-block p50s through :func:`measure` and :class:`OrtRuntime`.
        bare_p50_us: the same for a bare loop timing ``session.run`` with ``perf_counter_ns``.
        ratio: harness / bare (1.0 = no overhead).
        blocks: alternating blocks of each, so drift affects both alike.
    """

    harness_p50_us: float
    bare_p50_us: float
    ratio: float
    blocks: int


def harness_overhead(path: Path, batch_size: int = 1, blocks: int = 10, block_s: float = 0.3) -> Overhead:
    """Measure the harness overhead on ``path`` (CPU EP, default options) in alternating blocks."""
    import time

    rt = OrtRuntime(path, SessionConfig("cpu"))
    sess, name = rt.session, rt.input_name
    x = np.random.default_rng(0).random((batch_size, 1, 28, 28), dtype=np.float32)
    cfg = TimingConfig(warmup_iters=20, warmup_s=0.1, min_iters=50, min_s=block_s)
    harness, bare = [], []
    for _ in range(blocks):
        harness.append(float(np.median(measure(lambda: rt.run(x), cfg).ns)))
        feeds = {name: x}
        for _ in range(20):
            sess.run(None, feeds)
        ns, end = [], time.perf_counter() + block_s
        while len(ns) < 50 or time.perf_counter() < end:
            t0 = time.perf_counter_ns()
            sess.run(None, feeds)
            ns.append(time.perf_counter_ns() - t0)
        bare.append(float(np.median(ns)))
    h, b = float(np.median(harness)) / 1e3, float(np.median(bare)) / 1e3
    return Overhead(h, b, h / b, blocks)


@dataclass(frozen=True)
class DefaultsCheck:
    """The default session options against a threads x spinning sweep for one model and batch size,
    measured in interleaved blocks in one process.

    Attributes:
        model, batch_size: the cell.
        default_threads: the intra-op thread count ``--threads auto`` chose (its probe ran first,
            exactly as in ``mnistbench run``).
        median_ips: configuration label -> median over rounds of each block's throughput (images/s).
            ``default`` is the session ``run`` builds with no options; the others are
            ``t<threads>/spin-<on|off>``.
        best: the sweep configuration with the highest median.
        ratio: ``median_ips["default"] / median_ips[best]``: the default's own session against the best.
        rounds: blocks per configuration.

    Derived (properties): ``chosen``, the sweep configuration with the default's settings
    (``t<default_threads>/spin-on``: ONNX Runtime's ``session.intra_op.allow_spinning`` defaults
    to 1); ``choice_ratio`` = ``median_ips[chosen] / median_ips[best]``, how good the settings the
    default picks are; ``aa_ratio`` = ``median_ips["default"] / median_ips[chosen]``, two sessions
    with identical settings, i.e. the measurement's own spread (1.0 on a quiet machine).
    """

    model: str
    batch_size: int
    default_threads: int
    median_ips: dict
    best: str
    ratio: float
    rounds: int

    @property
    def chosen(self) -> str:
        return f"t{self.default_threads}/spin-on"

    @property
    def choice_ratio(self) -> float:
        return self.median_ips[self.chosen] / self.median_ips[self.best]

    @property
    def aa_ratio(self) -> float:
        return self.median_ips["default"] / self.median_ips[self.chosen]


DEFAULTS_CSV_HEAD = ("model", "batch_size", "default_threads")


def read_defaults_csv(path: Path) -> list[DefaultsCheck]:
    """The rows of a ``doctor --check-defaults --out`` CSV.

    Raises:
        UsageError: unreadable, or not such a CSV.
    """
    import csv

    from ...models.errors import UsageError

    try:
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None
    try:
        return [DefaultsCheck(r["model"], int(r["batch_size"]), int(r["default_threads"]),
                              {k.removeprefix("ips_"): float(v) for k, v in r.items() if k.startswith("ips_")},
                              r["best"], float(r["ratio"]), int(r["rounds"])) for r in rows]
    except (KeyError, ValueError):
        raise UsageError(f"{path} is not a `doctor --check-defaults` CSV") from None


def check_defaults(path: Path, model: str, batch_size: int, rounds: int = 15, block_s: float = 0.2,
                   seed: int = 0) -> DefaultsCheck:
    """Compare the default session options with every threads x spinning configuration on ``path``.

    Each round runs one block of every configuration in a freshly shuffled order; a block is
    timed calls for at least ``block_s`` seconds and 5 calls. A burst of load from other processes
    hits whichever blocks it overlaps, so it spreads over the configurations instead of landing
    on one whole cell, which is how separate cells measured identical settings up to 2x apart on
    this shared 2-core host. Between blocks a 5 ms pause lets the previous session's spinning
    threads go idle. Inputs are uniform random float32 (N, 1, 28, 28); timing does not depend on
    their values.
    """
    import random
    import time

    from ..measure.runner import autotune_threads

    x = np.random.default_rng(seed).random((batch_size, 1, 28, 28), dtype=np.float32)
    auto = autotune_threads(path, "cpu", None, x)
    sessions = {"default": OrtRuntime(path, SessionConfig("cpu", auto, None))}
    for th, sp in itertools.product(thread_choices(), (True, False)):
        sessions[f"t{th}/spin-{'on' if sp else 'off'}"] = OrtRuntime(path, SessionConfig("cpu", th, sp))
    for rt in sessions.values():
        for _ in range(10):
            rt.run(x)
    ips: dict[str, list[float]] = {k: [] for k in sessions}
    order = list(sessions)
    rng = random.Random(seed)
    for _ in range(rounds):
        rng.shuffle(order)
        for k in order:
            rt = sessions[k]
            time.sleep(0.005)
            n, t0 = 0, time.perf_counter()
            while n < 5 or time.perf_counter() - t0 < block_s:
                rt.run(x)
                n += 1
            ips[k].append(n * batch_size / (time.perf_counter() - t0))
    med = {k: float(np.median(v)) for k, v in ips.items()}
    best = max((k for k in med if k != "default"), key=med.get)
    return DefaultsCheck(model, batch_size, auto, med, best, med["default"] / med[best], rounds)
