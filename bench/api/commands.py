"""The other commands as API functions: ``speedrun``, ``best``, ``report``, ``verify``, ``table`` and
``doctor`` (the machine check, the defaults check, the calibration study). Each returns what the
command line prints; nothing here prints. Heavy modules are imported by the function that needs them,
so that importing the API stays cheap for the commands that do not measure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ...models.errors import UsageError


@dataclass
class Speedrun:
    """A time-to-accuracy run: ``results`` (one :class:`speedrun.SpeedrunResult` per seed: train
    seconds, test accuracy), their ``summary`` against the target, the CSV written, and ``header``
    (the line that says what the clock covers)."""

    results: list
    summary: Any
    csv_path: Path
    header: str
    title: str


def speedrun(model: str = "speed-cnn", *, seeds: int = 5, target: float = 0.99, epochs: int | None = None,
             profile: str = "paper", device: str = "auto", dataset: str = "mnist", out_path: Path | None = None,
             amp: str = "off", channels_last: bool = False, data_dir: Path | None = None,
             on_start: Callable[[str], None] | None = None, on_result: Callable | None = None) -> Speedrun:
    """Train ``model`` once per seed 0..seeds-1, timing each run from model construction to the last
    optimiser step (data loading, one untimed 10-step warm-up and the test evaluation excluded).

    Args:
        target: the test accuracy (fraction) the summary counts runs against. out_path: a new ``.csv``
            (default ``runs/speedrun/<UTC stamp>-<dataset>-<model>-<device>.csv``).
        on_start: called once with the header line. on_result: called with each seed's result.

    Returns:
        a :class:`Speedrun`; the CSV and its ``.system.json`` are written.

    Raises:
        UsageError: an unknown model or device, a target outside (0, 1], an unusable ``out_path``.

    Example: ``api.speedrun("speed-cnn", seeds=2, profile="quick", device="cpu")``
    """
    from ..training import speedrun as sr  # torch

    sr.check_options(seeds, epochs, amp)  # before the data is read
    spec, dev, csv_path, data, load_s = sr.prepare(model, target, device, dataset, out_path, data_dir, profile)
    header = sr.header(spec, dev, profile, load_s)
    if on_start:
        on_start(header)
    results = sr.speedrun(spec, data, seeds, device, epochs, profile, amp=amp, channels_last=channels_last,
                          on_result=on_result)
    summary = sr.summarize(results, target)
    sr.write_csv(csv_path, spec, dataset, dev, profile, epochs, amp, channels_last, target, results, load_s)
    return Speedrun(results, summary, csv_path, header,
                    f"speedrun {spec.name} ({dataset}, {dev.type}): train seconds and test accuracy per seed")


def best(results: list[Path], *, max_accuracy_drop: str | float = "0.2pp", max_mse_increase: float = 0.01) -> list:
    """The fastest configuration per model and batch size within an accuracy budget of ONNX Runtime fp32
    (:func:`analysis.best.best_configs`), from results CSVs or folders of them; for load CSVs, the
    best configuration under load per model and scenario (:func:`load.best.best_load`).

    Args:
        max_accuracy_drop: percentage points of top-1 (``"0.2pp"`` or a number of points).
        max_mse_increase: relative MSE increase allowed for reconstruction models (0.01 = 1%).

    Returns:
        one :class:`analysis.best.BestConfig` per (model, batch size) of the run CSVs, then one
        :class:`load.best.LoadBest` per (model, scenario, Server bound) of the load CSVs.

    Raises:
        UsageError: unreadable results, a bad budget, no measured rows of a scored model.
    """
    from ..analysis import best as best_mod  # numpy, scipy
    from ..load.best import best_load
    from ..load.rows import is_load_csv, read_load_csv
    from ..measure import inputs

    drop = inputs.accuracy_points(max_accuracy_drop) if isinstance(max_accuracy_drop, str) else float(max_accuracy_drop)
    if not (math.isfinite(max_mse_increase) and 0 <= max_mse_increase <= 100):
        raise UsageError(f"--max-mse-increase is a fraction of the fp32 MSE, 0 to 100, got {max_mse_increase}")
    if not (math.isfinite(drop) and 0 <= drop <= 100):
        raise UsageError(f"--max-accuracy-drop is 0 to 100 percentage points, got {drop}")
    csvs = best_mod.csv_files([Path(p) for p in results])
    loads = [c for c in csvs if is_load_csv(c)]
    runs = [c for c in csvs if c not in loads]
    verdicts: list = []
    if runs:
        rows, samples = best_mod.load(runs)
        verdicts += best_mod.best_configs(rows, drop, max_mse_increase, samples)
    if loads:
        verdicts += best_load([r for c in loads for r in read_load_csv(c)], drop)
    if not verdicts:
        raise UsageError("no measured rows of a scored model in the results given")
    return verdicts


def report(results: list[Path], *, out_dir: Path = Path("report"), slo_ms: float = 10.0) -> Path:
    """Figures (latency and throughput against batch size, accuracy against batch-1 p50 with the Pareto
    front, best throughput per model) and one self-contained HTML report, into ``out_dir``.

    Args:
        slo_ms: the latency objective (ms, p99) of the report's "best under the SLO" table.

    Returns:
        the path of ``report.html`` (``latency.png``, ``throughput.png``, ``pareto.png`` and
        ``models.png`` beside it; ``load-curve.png`` and the load sections when load CSVs are among
        the results: :mod:`bench.load.report`).

    Raises:
        UsageError: ``slo_ms`` not positive and finite, ``out_dir`` not a folder that can be made,
            unreadable results.
    """
    from ..analysis import best as best_mod  # numpy
    from ..analysis.htmlreport import load_rows, write_report  # matplotlib
    from ..load import report as load_report
    from ..load.rows import is_load_csv, read_load_csv

    if not (slo_ms > 0 and math.isfinite(slo_ms)):
        raise UsageError(f"--slo-ms must be a finite number of ms above 0, got {slo_ms}")
    from ..measure.inputs import check_folder_path

    check_folder_path(Path(out_dir), f"--out-dir {out_dir}")
    paths = [Path(p) for p in results]
    csvs = best_mod.csv_files(paths)
    load_csvs = [c for c in csvs if is_load_csv(c)]
    run_csvs = [c for c in csvs if c not in load_csvs]
    load_rows_ = [r for c in load_csvs for r in read_load_csv(c) if r.status == "ok"]
    sources = [str(p) for p in paths]
    if not run_csvs:
        if not load_rows_:
            raise UsageError("no measured rows in the results given")
        return load_report.write_page(load_rows_, Path(out_dir), sources)
    samples = best_mod.load_samples(run_csvs)
    extra = load_report.sections(load_rows_, Path(out_dir)) if load_rows_ else None
    return write_report(load_rows(run_csvs), Path(out_dir), slo_ms, sources, samples, extra)


def verify(path: Path, *, repair: bool = False, drop_unsampled: bool = False) -> list:
    """Check results files: whole rows, samples present and matching, identities consistent, nothing
    measured twice, no temporary files; ``repair`` cuts a torn last line and removes stale temporary
    files (with ``drop_unsampled``, also rows whose samples are gone). Load CSVs (``mnistbench load``)
    are checked against their timings and LoadGen logs (:mod:`bench.load.verify`).

    Returns:
        one :class:`analysis.verify.Report` per CSV (``problems``, ``repaired``, ``notes``).

    Raises:
        UsageError: ``drop_unsampled`` without ``repair``; a path that is not a results CSV or folder.
    """
    from ..analysis.verify import verify_path
    from ..load.rows import is_load_csv
    from ..load.verify import verify_load

    path = Path(path)
    if drop_unsampled and not repair:
        return verify_path(path, repair, drop_unsampled)  # its one-line refusal
    if path.is_file() and is_load_csv(path):
        return [verify_load(path, repair)]
    if path.is_dir():
        loads = [c for c in sorted(path.glob("*.csv")) if is_load_csv(c)]
        runs = [] if loads and not _has_run_csv(path) else verify_path(path, repair, drop_unsampled)
        return sorted(runs + [verify_load(c, repair) for c in loads], key=lambda r: str(r.path))
    return verify_path(path, repair, drop_unsampled)


def _has_run_csv(folder: Path) -> bool:
    from ..analysis.verify import _head

    return any(_head(c).startswith("run_id,") for c in folder.glob("*.csv"))


@dataclass
class ResultsTable:
    """What ``table`` shows: ``kind`` ``results`` (``rows``: :class:`records.BenchmarkRecord`),
    ``reproduction`` (``markdown``: the reproduction table) or ``defaults`` (``rows``: the defaults
    check); ``title`` names the file."""

    kind: str
    rows: list = field(default_factory=list)
    markdown: str = ""
    title: str = ""


def table(csv_paths: list[Path]) -> ResultsTable:
    """Read what ``table`` summarises: one results CSV, reproduction CSVs (merged), or a defaults check.

    Raises:
        UsageError: several results CSVs, a CSV without rows, unreadable or foreign CSVs.
    """
    from ..analysis.doctor import DEFAULTS_CSV_HEAD, read_defaults_csv
    from ..measure.records import read_csv
    from ..training import reproduce as rp

    paths = [Path(p) for p in csv_paths]
    head = _first_line(paths[0])
    if head.startswith(",".join(DEFAULTS_CSV_HEAD)):
        return ResultsTable("defaults", read_defaults_csv(paths[0]), title=paths[0].name)
    if head.startswith("experiment,"):
        return ResultsTable("reproduction", markdown=rp.markdown([r for p in paths for r in rp.read_runs(p)],
                                                                 [p.name for p in paths]))
    if len(paths) > 1:
        raise UsageError("give one results CSV (several are merged only for reproduction CSVs)")
    rows = read_csv(paths[0])
    if not rows:
        raise UsageError(f"{paths[0]} has no rows")
    return ResultsTable("results", rows, title=f"{paths[0].name}: {len(rows)} rows")


def _first_line(path: Path) -> str:
    """The header line, or "" when unreadable (then the results reader says why in one line)."""
    try:
        with open(path, newline="") as fh:
            return fh.readline()
    except (OSError, UnicodeDecodeError):
        return ""


@dataclass
class Doctor:
    """What ``doctor`` measured: ``machine`` (system, providers proven by sessions, GEMM peaks in
    GFLOP/s, the null-model floor in µs), ``overhead`` (the harness against a bare loop) and the
    threads x spinning ``sweep`` points (empty without ``sweep``)."""

    machine: Any
    overhead: Any
    sweep: list


def doctor(*, sweep: bool = True, min_s: float = 0.5, artifacts_dir: Path | None = None) -> Doctor:
    """Check what this machine can run: providers, GEMM peak, null-model floor, harness overhead, and
    (``sweep``) the threads x spinning sweep of ONNX Runtime on lenet5 and fan-resnet (random weights).

    Args:
        min_s: timed seconds of each probe. sweep: also run :func:`doctor_sweep` (the command line
            calls it on its own, under its progress line).

    Raises:
        UsageError: ``min_s`` out of range.
    """
    from ..analysis import diagnostics

    machine = diagnostics.machine_figures(diagnostics.doctor_timing(min_s), artifacts_dir)
    overhead = diagnostics.harness_overhead()
    return Doctor(machine, overhead, doctor_sweep(min_s) if sweep else [])


def doctor_sweep(min_s: float = 0.5) -> list:
    """``doctor``'s threads x spinning sweep alone (:func:`analysis.doctor.sweep`): ONNX Runtime on
    lenet5 and fan-resnet (random weights) at each sweep batch size; one point per configuration.

    Raises:
        UsageError: ``min_s`` out of range.
    """
    from ..analysis import diagnostics
    from ..analysis import doctor as doc

    return doc.sweep(diagnostics.doctor_timing(min_s))


def check_defaults(models: list[str] | None = None, *, rounds: int = 15, out_path: Path | None = None,
                   progress: Callable[[str, int, int], None] | None = None) -> list:
    """``doctor --check-defaults``: each model (random weights) at each sweep batch size, the default
    session options against every threads x spinning configuration, ``rounds`` interleaved blocks each;
    the figures written to ``out_path`` (a ``.csv``, with its ``.system.json``) when given.

    Raises:
        UsageError: rounds below 3, an ``out_path`` that is not a ``.csv``, unknown models.
    """
    from ..analysis import diagnostics

    specs = diagnostics.check_defaults_request(models, rounds, out_path)
    results = diagnostics.check_defaults(specs, rounds, progress)
    if out_path is not None:
        diagnostics.write_defaults_csv(Path(out_path), results)
    return results


def check_defaults_cells(models: list[str] | None, rounds: int, out_path: Path | None) -> int:
    """The number of measurements :func:`check_defaults` makes (for a progress bar), its options checked.

    Raises:
        UsageError: as :func:`check_defaults`.
    """
    from ..analysis import diagnostics
    from ..analysis.doctor import SWEEP_BATCHES

    return len(diagnostics.check_defaults_request(models, rounds, out_path)) * len(SWEEP_BATCHES)


def calibrate(*, trials: int = 20, out_dir: Path, profile: str | None = None, data_dir: Path | None = None,
              artifacts_dir: Path | None = None, progress: Callable[[str], None] = lambda s: None,
              modes: tuple[str, ...] = ("separate", "live"), condition: str = "as-is", noise_seed: int = 0,
              configs: str = "lenet5:32", levels: str | None = None, command: str = "") -> str:
    """``doctor --calibrate``: the calibration study of ``compare`` (:mod:`analysis.calibrate`) under a
    neighbour-noise ``condition`` (``quiet``, ``as-is``, ``busy``, ``bursty``; seeded by ``noise_seed``),
    separate runs each in a fresh process (:func:`launch.process.run_in_fresh_process`) and live A/Bs.

    Args:
        configs: ``MODEL:BATCH,...``. levels: planted changes in percent, comma-separated (None: the
            study's defaults). command: the command line recorded in the study's ``system.json``.

    Returns:
        the study's summary (markdown), also written to ``out_dir/summary.md``.

    Raises:
        UsageError: trials below 1, unknown modes or condition, a bad configs or levels list, missing
            artifacts, a separate run that failed.
    """
    from ..analysis import diagnostics
    from ..launch.process import run_in_fresh_process

    def launch(req, env):
        r = run_in_fresh_process(req, env=env, quiet=True)
        return r.exit_code, r.error

    return diagnostics.calibration(trials, Path(out_dir), profile, data_dir, artifacts_dir, progress, modes,
                                   condition, noise_seed, configs, command, levels, launch=launch)
