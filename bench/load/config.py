"""The options of ``mnistbench load`` as one typed, validated request (:class:`LoadRequest`), and
the parsing of ``--qps-range``.

Every option is checked when the request is made, before any model is read or any LoadGen test
starts: a bad value is one :class:`UsageError` line (exit 2 on the command line).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import psutil

from ...models.errors import UsageError
from ..measure.defaults import RUNS_DIR
from ..measure.inputs import IMAGE_BYTES
from .loadgen import SCENARIOS

MAX_POINTS = 100  # rate points one sweep may have
MAX_WORKERS = 64
MAX_THREADS = 256


def _finite_positive(value: float, option: str) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise UsageError(f"{option} must be a finite number above 0, got {value}")


def parse_qps_range(text: str) -> tuple[float, ...]:
    """``--qps-range``: ``a:b:step`` (from a to b inclusive, every step QPS) or a comma list
    (``500,1000,2000``) -> the rates, ascending, each finite and > 0.

    Raises:
        UsageError: not numbers, a range that is empty (b < a, step <= 0), or more than
            :data:`MAX_POINTS` points.
    """
    text = text.strip()
    try:
        if ":" in text:
            parts = [float(p) for p in text.split(":")]
            if len(parts) != 3:
                raise ValueError
            a, b, step = parts
            for v, what in ((a, "start"), (b, "end"), (step, "step")):
                _finite_positive(v, f"--qps-range {what}")
            if b < a:
                raise UsageError(f"--qps-range {text!r} is empty (end below start)")
            n = int(math.floor((b - a) / step + 1e-9)) + 1
            if n > MAX_POINTS:
                raise UsageError(f"--qps-range {text!r} has {n:,} points; at most {MAX_POINTS}")
            points = [a + i * step for i in range(n)]
        else:
            points = [float(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise UsageError(f"--qps-range takes a:b:step or a comma list of rates, e.g. 500:4000:500; got {text!r}") \
            from None
    if not points:
        raise UsageError("--qps-range is empty")
    if len(points) > MAX_POINTS:
        raise UsageError(f"--qps-range has {len(points):,} points; at most {MAX_POINTS}")
    for q in points:
        _finite_positive(q, "--qps-range rate")
    return tuple(sorted(set(points)))


@dataclass(frozen=True)
class LoadRequest:
    """Everything one ``mnistbench load`` needs.

    Attributes:
        names: registered models or patterns (None: every model); empty with ``onnx``.
        variants, runtimes, provider, threads: as ``run`` (one provider, one thread count a worker;
            threads 0: the runtime's own choice).
        scenario: ``single-stream``, ``multi-stream``, ``server`` or ``offline`` (MLPerf's four).
        workers: sessions serving at once (one thread each). max_batch: the largest batch the
            dynamic batcher forms; max_queue_delay_ms: how long the oldest sample waits for it to fill.
        target_qps / qps_points / find_peak: Server only, exactly one: a rate, a sweep of rates, or
            the search for the highest VALID rate.
        latency_bound_ms, latency_percentile: Server's bound (LoadGen's target latency and percentile).
        min_duration_s, min_query_count: each LoadGen test's minimum (MLPerf submissions: 600 s).
        repeat: whole repeats, each with fresh sessions and its own shuffled order.
        accuracy: also run LoadGen's accuracy mode (every test image once) per model, first repeat.
        null: also serve the null model (the harness's floor) through the same path.
        seed: LoadGen's schedule/sample seeds (repeat ``r`` uses ``seed + r``).
        profile, artifacts_seed, dataset, onnx, layout, preprocess, data_dir, artifacts_dir, allow_stale:
            which files, as ``run``.
        out_path: the load CSV (None: ``results_dir/<UTC stamp>-load-<scenario>.csv``); resume: complete it.
        command: the command line recorded in the system JSON.
        interleave: ``--find-peak`` only: in each repeat, open every cell's sessions at once and let
            their peak searches take turns a LoadGen test at a time, so that the host's drift within a
            round falls on every cell alike (for A/B comparisons of files of one run).

    Raises:
        UsageError: any value out of range (the message names the option).
    """

    names: tuple[str, ...] | None = None
    variants: tuple[str, ...] = ("fp32",)
    runtimes: tuple[str, ...] = ("onnxruntime",)
    provider: str = "cpu"
    threads: int = 1
    scenario: str = "server"
    workers: int = 1
    max_batch: int = 1
    max_queue_delay_ms: float = 0.0
    target_qps: float | None = None
    qps_points: tuple[float, ...] = ()
    find_peak: bool = False
    latency_bound_ms: float = 5.0
    latency_percentile: float = 99.0
    min_duration_s: float = 10.0
    min_query_count: int = 1024
    repeat: int = 1
    accuracy: bool = False
    null: bool = True
    seed: int = 0
    profile: str = "quick"
    artifacts_seed: int = 0
    dataset: str = "mnist"
    onnx: tuple[Path, ...] = ()
    layout: str = "auto"
    preprocess: str = "unit"
    results_dir: Path = RUNS_DIR
    out_path: Path | None = None
    resume: bool = False
    allow_stale: bool = False
    data_dir: Path | None = None
    artifacts_dir: Path | None = None
    command: str = ""
    interleave: bool = False

    def __post_init__(self) -> None:
        if self.scenario not in SCENARIOS:
            raise UsageError(f"--scenario must be one of {', '.join(SCENARIOS)}, got {self.scenario!r}")
        self._check_counts()
        self._check_server()
        _finite_positive(self.min_duration_s, "--min-duration-s")
        if self.min_duration_s > 86400:
            raise UsageError(f"--min-duration-s {self.min_duration_s:g} is over a day")
        if not 1 <= self.min_query_count <= 10**9:
            raise UsageError(f"--min-query-count must be 1 to 10^9, got {self.min_query_count}")
        if self.resume and self.out_path is None:
            raise UsageError("--resume needs --out naming the load CSV of the interrupted run")
        top = 2**64 - self.repeat  # LoadGen's seeds are uint64 and repeat r uses seed + r
        if not 0 <= self.seed < top:
            raise UsageError(f"--loadgen-seed must be 0 to {top - 1:,} (LoadGen takes 64-bit unsigned seeds; repeat r "
                             f"uses seed + r), got {self.seed:,}")

    def _check_counts(self) -> None:
        if not 1 <= self.workers <= MAX_WORKERS:
            raise UsageError(f"--workers must be 1 to {MAX_WORKERS}, got {self.workers}")
        if not 0 <= self.threads <= MAX_THREADS:
            raise UsageError(f"--threads must be 0 (the runtime's choice) to {MAX_THREADS}, got {self.threads}")
        if not 1 <= self.repeat <= 1000:
            raise UsageError(f"--repeat must be 1 to 1000, got {self.repeat}")
        if self.max_batch < 1:
            raise UsageError(f"--max-batch must be at least 1, got {self.max_batch}")
        free = psutil.virtual_memory().available
        need = self.max_batch * IMAGE_BYTES * self.workers * 4  # input, and about as much again per worker in flight
        if need > free:
            raise UsageError(f"--max-batch {self.max_batch:,} with {self.workers} worker(s) needs about "
                             f"{need / 2**30:,.1f} GiB; this host has {free / 2**30:.1f} GiB free")
        if not (math.isfinite(self.max_queue_delay_ms) and 0 <= self.max_queue_delay_ms <= 60_000):
            raise UsageError(f"--max-queue-delay-ms must be 0 to 60000, got {self.max_queue_delay_ms}")
        if not self.runtimes or not all(r.strip() for r in self.runtimes):
            raise UsageError("--runtime is empty")
        if not self.variants or not all(v.strip() for v in self.variants):
            raise UsageError("--variants is empty")

    def _check_server(self) -> None:
        asked = [n for n, on in (("--target-qps", self.target_qps is not None), ("--qps-range", bool(self.qps_points)),
                                 ("--find-peak", self.find_peak)) if on]
        if self.scenario != "server":
            if asked:
                raise UsageError(f"{asked[0]} is for --scenario server, not {self.scenario}")
        elif len(asked) != 1:
            raise UsageError("--scenario server needs exactly one of --target-qps, --qps-range or --find-peak"
                             + (f" (got {', '.join(asked)})" if asked else ""))
        if self.target_qps is not None:
            _finite_positive(self.target_qps, "--target-qps")
        for q in self.qps_points:
            _finite_positive(q, "--qps-range rate")
        if self.interleave and not self.find_peak:
            raise UsageError("--interleave lets peak searches take turns; give it with --scenario server --find-peak")
        _finite_positive(self.latency_bound_ms, "--latency-bound-ms")
        if not (math.isfinite(self.latency_percentile) and 0 < self.latency_percentile < 100):
            raise UsageError(f"--latency-percentile must be above 0 and below 100, got {self.latency_percentile}")
