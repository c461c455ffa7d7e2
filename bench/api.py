"""The Python API of mnistbench: train, export, benchmark, compare and reproduce from a notebook,
a test or a CI script. The ``mnistbench`` command line is a thin layer over these functions.

Every function checks its input before any work and raises the project's errors
(:mod:`mnistbench.models.errors`): :class:`UsageError` for unusable input (exit 2 on the command line),
:class:`MnistBenchError` subclasses for other expected failures. Nothing here prints to stdout;
one-line notes (which profile was chosen, a provider skipped) go to ``note`` (default: stderr).

Configuration is typed, reusing the library's own dataclasses:

- :class:`Axes` (from :mod:`bench.runner`): runtimes, execution providers, intra-op threads
  (:data:`AUTO` = per-cell probe), spinning, batch sizes (images per call), io modes, :class:`GpuOptions`;
- :class:`TimingConfig` (from :mod:`bench.timing`): warm-up calls/seconds, timed calls/seconds per
  cell, interleaved rounds;
- :class:`RunRequest` (from :mod:`bench.planning`): everything else a benchmark run takes.

Example (quick profile, two models, CPU EP)::

    from mnistbench import api
    api.train(["lenet5"], profile="smoke", device="cpu")
    api.export(["lenet5"], profile="smoke")
    df = api.benchmark(["lenet5"], profile="smoke", axes=api.Axes(batch_sizes=(1, 32)),
                       timing=api.TimingConfig(min_s=0.2, rounds=4), out_path="results/a.csv")
    print(df[["model", "batch_size", "latency_p50_ms", "throughput_ips"]])
    ns = api.samples(df, df.iloc[0]).ns          # int64 latencies of the first row's timed calls
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd

from ..models.data import load_dataset
from ..models.errors import MnistBenchError, UsageError
from ..models.registry import select
from ..models.train import AMP_MODES, ProgressFn, resolve_device
from .analysis import compare as cmp
from .analysis.live import (
    LIVE_MAX_S,
    LIVE_SESSIONS,
    check_max_s,
    check_sessions,
    live_compare,
    live_target,
    live_timing,
)
from .launch.planning import Note, RunOutcome, RunRequest, _stderr, check_failures, default_profile, execute
from .launch.repeats import run_repeats
from .measure import inputs, noiseprofile
from .measure import samples as samples_io
from .measure.defaults import RUNS_DIR
from .measure.pipeline import (
    Artifacts,
    artifacts_root,
    export_fp16,
    export_int8,
    export_model,
    load_trained,
    newest_profile,
    prepare_training,
    train_model,
)
from .measure.records import COLUMNS, BenchmarkRecord
from .measure.runner import AUTO, Axes, RunProgress
from .measure.samples import CellSamples
from .measure.system import git_commit, write_system_json
from .measure.timing import TimingConfig
from .runtimes.runtime import GpuOptions
from .training import reproduce as rp

__all__ = ["AUTO", "Axes", "CellSamples", "Comparison", "Gate", "GpuOptions", "RunRequest", "TimingConfig",
           "benchmark", "compare", "compare_live", "export", "frame", "gate", "reproduce", "samples", "train"]

# A model's training callback: called with the model name, returns its (step, total, stage) callback.
TrainProgress = Callable[[str], ProgressFn]


def train(models: list[str] | None = None, *, profile: str = "paper", device: str = "auto", seed: int = 0,
          dataset: str = "mnist", data_dir: Path | None = None, artifacts_dir: Path | None = None,
          amp: str = "off", channels_last: bool = False, progress: TrainProgress | None = None) -> list[dict]:
    """Train registered models with a profile's recipe and save their checkpoints.

    Args:
        models: names or wildcard patterns (None: every registered model).
        profile: ``paper``, ``quick`` or ``smoke``. device: ``auto``, ``cpu`` or ``cuda``.
        amp: ``off`` or ``bf16`` (torch.autocast). channels_last: train in channels-last format.
        progress: called with each model's name before it trains; returns its step callback.

    Returns:
        one metadata dict per model (test metric, epochs, wall seconds, checkpoint path).

    Raises:
        UsageError: unknown model, profile, device or amp mode; StorageError: the artifacts
        folder is not writable or lacks room for every checkpoint (checked before any training).

    Example: ``api.train(["lenet5"], profile="smoke", device="cpu")``
    """
    specs = select(models)
    for s in specs:
        s.recipe_for(profile)  # validates the profile name before any work
    resolve_device(device)
    if amp not in AMP_MODES:
        raise UsageError(f"unknown --amp {amp!r}; choose one of: {', '.join(AMP_MODES)}")
    arts = Artifacts(artifacts_root(artifacts_dir), dataset, profile, seed)
    prepare_training(specs, arts)  # writable, with room for every checkpoint, before any training
    data = load_dataset(dataset, data_dir)
    return [train_model(s, data, arts, device, progress(s.name) if progress else None, amp, channels_last)
            for s in specs]


def export(models: list[str] | None = None, *, profile: str | None = None, seed: int = 0, dataset: str = "mnist",
           int8: bool = False, fp16: bool = False, fp16_io: bool = False, data_dir: Path | None = None,
           artifacts_dir: Path | None = None, progress: Callable[[str, int, int], None] | None = None,
           note: Note = _stderr) -> list[dict]:
    """Export trained checkpoints to ONNX (dynamic batch) with parity against PyTorch, and variants.

    Args:
        profile: None picks the profile whose checkpoints were written last (said through ``note``).
        int8, fp16, fp16_io: also write those variants (``int8``: static QDQ, calibrated on 1,000
            training images; ``fp16-io``: float16 inputs and outputs).
        progress: ``(description, models done, models)``.

    Returns:
        one report per model (path, parity figures; ``report["int8"]`` etc. for the variants).

    Raises:
        UsageError: unknown model; CheckpointError: a checkpoint missing or damaged (checked for
        every model before any work); ExportError: parity below 100% top-1 or above 1e-4.

    Example: ``api.export(["lenet5"], profile="smoke", int8=True)``
    """
    profile = profile or default_profile(artifacts_dir, dataset, seed, "*.safetensors", "checkpoints", note)
    specs = select(models)
    arts = Artifacts(artifacts_root(artifacts_dir), dataset, profile, seed)
    for s in specs:  # every checkpoint present, intact and fitting its model before any work
        load_trained(s, arts)
    data = load_dataset(dataset, data_dir)
    tell = progress or (lambda *a: None)
    reports = []
    for i, s in enumerate(specs):
        tell(f"export {s.name}", i, len(specs))
        reports.append(export_model(s, data, arts))
        for flag, name, fn in ((int8, "int8", lambda: export_int8(s, data, arts)),
                               (fp16, "fp16", lambda: export_fp16(s, data, arts)),
                               (fp16_io, "fp16-io", lambda: export_fp16(s, data, arts, io_float16=True))):
            if flag:
                tell(f"{name} {s.name}", i, len(specs))
                reports[-1][name] = fn()
    tell("export", len(specs), len(specs))
    return reports


def frame(rows: list[BenchmarkRecord], csv_path: Path | None = None) -> pd.DataFrame:
    """Rows as a DataFrame with the results CSV's columns (:data:`records.COLUMNS`), one row per
    cell; ``df.attrs["csv_path"]`` names the CSV, whose raw samples :func:`samples` reads."""
    df = pd.DataFrame([dataclasses.asdict(r) for r in rows], columns=COLUMNS)
    df.attrs["csv_path"] = str(csv_path) if csv_path else None
    return df


def benchmark(models: list[str] | None = None, *, axes: Axes = Axes(), timing: TimingConfig = TimingConfig(),
              profile: str | None = None, progress: RunProgress | None = None, note: Note = _stderr,
              **options) -> pd.DataFrame:
    """Benchmark exported models (or foreign ONNX files): accuracy on the full test set, latency and
    throughput per batch size, every cell written to a results CSV as it finishes.

    Args:
        models: registered names or patterns (None: every model; leave None with ``onnx=[...]``).
        axes: the swept axes (batch sizes are images per call; threads :data:`AUTO`, 0 or a count).
        timing: warm-up and timed-loop bounds per cell (calls and seconds) and interleaved rounds.
        profile: artifacts profile (None: the one whose ONNX files were written last; ``foreign``
            with ``onnx``).
        progress: ``(description, cells done, cells)``. note: one-line notes.
        options: any other :class:`RunRequest` field: ``variants``, ``onnx``, ``out_path`` (a new
            ``.csv``), ``results_dir``, ``resume``, ``repeat``, ``null``, ``reference``, ``score``, ...

    Returns:
        the rows of the results CSV as a DataFrame (:func:`frame`; reference-network rows included,
        ``task == "reference"``); latencies in ms, throughput in images/s. ``df.attrs["csv_path"]``.

    Raises:
        UsageError: unusable input (names, options, an existing ``out_path``, a missing artifact);
        ProviderUnavailableError; MnistBenchError when cells failed (they are error rows in the CSV).

    Example: ``api.benchmark(onnx=["m.onnx"], axes=api.Axes(batch_sizes=(1,)), out_path="r.csv")``
    """
    if "out_path" in options and options["out_path"] is not None:
        options["out_path"] = Path(options["out_path"])
    options["onnx"] = tuple(Path(p) for p in options.get("onnx", ()))
    if profile is None:
        profile = "foreign" if options["onnx"] else default_profile(
            options.get("artifacts_dir"), options.get("dataset", "mnist"), options.get("seed", 0), "*.onnx",
            "exports", note)
    unknown = set(options) - {f.name for f in dataclasses.fields(RunRequest)}
    if unknown:
        raise UsageError(f"benchmark() takes no option {sorted(unknown)[0]!r}")
    req = RunRequest(names=tuple(models) if models else None, axes=axes, timing=timing, profile=profile, **options)
    outcome = run(req, progress, note)
    check_failures(outcome.rows)
    return frame(outcome.rows, outcome.csv_path)  # resumed or repeated: the whole file


def run(req: RunRequest, progress: RunProgress | None = None, note: Note = _stderr) -> RunOutcome:
    """Execute a :class:`RunRequest` (repeats in fresh processes); the rows and files it wrote.

    Raises: as :func:`benchmark`, except that failed cells are returned as error rows."""
    return execute(req, progress, note, run_repeats=lambda path, r: run_repeats(path, r, note))


def samples(results: pd.DataFrame | str | Path, cell: str | pd.Series) -> CellSamples:
    """The raw samples of one cell: ``.ns`` int64 (n,) per-call latencies in ns, ``.blocks()``.

    Args:
        results: a DataFrame from :func:`benchmark`, or the results CSV's path.
        cell: a row of that DataFrame, or its ``cell_id``.

    Raises:
        UsageError: no samples for that cell (the samples folder or file is missing, or damaged).

    Example: ``api.samples(df, df.iloc[0]).ns.mean() / 1e6`` (mean latency, ms)
    """
    csv_path = Path(results.attrs["csv_path"]) if isinstance(results, pd.DataFrame) else Path(results)
    cell_id = cell["cell_id"] if isinstance(cell, pd.Series) else str(cell)
    path = samples_io.folder_for(csv_path) / f"{cell_id}.npz"
    if path.is_file():
        return samples_io.read_cell(path)
    found = samples_io.load(csv_path).get(cell_id)
    if found is None:
        raise UsageError(f"no raw samples for cell {cell_id} beside {csv_path}")
    return found


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
    rules = cmp.parse_rules(fail_on) if fail_on else []
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
    return Comparison(f"{base} -> {new}", changes, lines)


def compare_live(a: str, b: str, *, axes: Axes = Axes(threads=(AUTO,), batch_sizes=(1, 32)),
                 timing: TimingConfig | None = None, noise: float | None = None,
                 sessions: int = LIVE_SESSIONS, max_s: float = LIVE_MAX_S,
                 out_path: Path | None = None, profile: str | None = None, seed: int = 0, dataset: str = "mnist",
                 data_dir: Path | None = None, artifacts_dir: Path | None = None,
                 progress: RunProgress | None = None) -> Comparison:
    """Measure models ``a`` and ``b`` now, in this process, stage after stage, until a sequential test
    decides or ``max_s`` seconds are spent (:mod:`bench.live`, :mod:`bench.sequential`).

    Args:
        a, b: an ``.onnx`` path or ``MODEL[:VARIANT]``. axes: one thread count (``auto`` by
            default, as `run`), the batch sizes.
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
    check_noise(noise)
    noise = cmp.LIVE_NOISE if noise is None else noise
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


@dataclass
class Reproduction:
    """A reproduction's runs CSV, its markdown table, and its rows (dicts of :data:`reproduce.RUN_FIELDS`)."""

    csv_path: Path
    md_path: Path
    rows: list[dict]

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows)


def reproduce(models: list[str] | None = None, *, seeds: int = 3, profile: str = "paper", device: str = "auto",
              dataset: str = "mnist", ae_study: bool = True, reduce_on_cpu: bool = True, out_path: Path | None = None,
              resume: bool = False, results_dir: Path = RUNS_DIR / "reproduce",
              data_dir: Path | None = None, artifacts_dir: Path | None = None, cluster=None, max_retries: int = 2,
              cpus_per_run: float = 2.0, on_plan: Callable[[int, Path], None] | None = None,
              on_start: Callable[[rp.PlannedRun, int, int], ProgressFn | None] | None = None,
              on_done: Callable[[dict], None] | None = None) -> Reproduction:
    """Train each model with its paper's recipe over seeds 0..seeds-1 and tabulate against the claim.

    Args:
        cluster: a :class:`ray_executor.RayCluster` (entered) to run each training as a Ray task.
        out_path: the runs CSV (default ``results_dir/<UTC stamp>-<dataset>-<profile>.csv``);
            with ``resume``, the CSV to complete (error rows are trained again).
        on_plan: ``(runs to train, csv path)``; on_start/on_done: per run (see :func:`reproduce.run_all`).

    Returns:
        a :class:`Reproduction`; its markdown table is written beside the CSV.

    Raises:
        UsageError: unknown models or profile, seeds < 1, retries < 0, cpus_per_run <= 0, a CSV of
        another dataset/profile to resume, nothing trained. Failed runs are error rows
        (see :func:`reproduce_failures`).

    Example: ``api.reproduce(["zhu-mlp"], seeds=2, profile="smoke", device="cpu")``
    """
    specs = check_reproduce(models, max_retries, cpus_per_run)
    if cluster is not None:
        cluster.check_cpus_per_run(cpus_per_run)
    dev = cluster.device(device) if cluster is not None else resolve_device(device)
    runs = rp.plan(specs, seeds, profile, dev, reduce_on_cpu, ae_study)
    if resume:
        runs = _runs_missing(runs, out_path, dataset, profile)
        csv_path = out_path
    else:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        csv_path = inputs.new_csv(out_path or results_dir / f"{stamp}-{dataset}-{profile}.csv",
                                  ", or add --resume to complete it")
    data = load_dataset(dataset, data_dir)
    sink = rp.runs_csv(csv_path)
    system_path = csv_path.with_suffix(".system.json")
    if not system_path.exists():
        write_system_json(system_path, {"command": "reproduce", "dataset": dataset, "profile": profile,
                                        "device": str(dev), "executor": "ray" if cluster else "local"})
    if on_plan:
        on_plan(len(runs), csv_path)
    if cluster is None:
        rp.run_all(runs, data, dev.type, sink, artifacts_root(artifacts_dir), on_start, on_done, git_commit())
    else:
        cluster.reproduce(runs, data, dev, sink, artifacts_root(artifacts_dir), max_retries=max_retries,
                          cpus_per_run=cpus_per_run, on_done=on_done, commit=git_commit())
    rows = rp.read_runs(csv_path) if csv_path.exists() else []
    if not rows:
        raise UsageError("nothing was trained")
    md = csv_path.with_suffix(".md")
    rp.write_markdown(md, rows, [csv_path.name])
    return Reproduction(csv_path, md, rows)


def check_reproduce(models: list[str] | None, max_retries: int, cpus_per_run: float) -> list:
    """The specs of ``models``, the Ray options checked. Raises UsageError."""
    inputs.at_least(max_retries, 0, "--max-retries")
    if cpus_per_run <= 0:
        raise UsageError(f"--cpus-per-run must be positive, got {cpus_per_run}")
    return select(models)


def _runs_missing(runs: list[rp.PlannedRun], out_path: Path | None, dataset: str, profile: str) -> list:
    if out_path is None:
        raise UsageError("--resume needs --out: the runs CSV to complete")
    old = rp.read_runs(out_path)
    other = {(r["dataset"], r["profile"]) for r in old if r["experiment"] == "paper" and not r["reduced"]}
    if other and (dataset, profile) not in other:
        raise UsageError(f"{out_path} holds {sorted(other)[0][0]}/{sorted(other)[0][1]} runs; "
                         f"it cannot be completed with --dataset {dataset} --profile {profile}")
    have = {rp.run_key(r) for r in old if rp.is_ok(r)}  # error rows are trained again
    return [r for r in runs if r.key not in have]


def reproduce_failures(rows: list[dict]) -> None:
    """Raise MnistBenchError (exit 1) when runs failed and no later run of the same key succeeded."""
    finished = {rp.run_key(r) for r in rows if rp.is_ok(r)}
    failed = {rp.run_key(r): r for r in rows if not rp.is_ok(r) and rp.run_key(r) not in finished}
    if failed:
        first = next(iter(failed.values()))
        raise MnistBenchError(f"{len(failed)} run(s) failed and were recorded as error rows (--resume trains them "
                              f"again); first: {first['model']} seed {first['seed']}: {first['error']}")
