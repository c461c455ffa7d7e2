"""The commands that read results rather than measure: ``compare`` (and its ``--live`` A/B), ``report``,
``table``, ``verify`` and ``best``, registered on the one Typer app of :mod:`.app` (imported at its end,
so that ``mnistbench --help`` lists them after the measuring commands)."""

from __future__ import annotations

from pathlib import Path

import typer

from ...models.errors import MnistBenchError, UsageError
from ..measure.defaults import LIVE_MAX_S, LIVE_MIN_S, LIVE_ROUNDS, LIVE_SESSIONS
from . import options as o
from .app import app, guarded


@app.command()
def compare(
    base: o.Base, new: o.New, fail_on: o.FailOn = None, noise: o.Noise = None,
    fail_on_inconclusive: o.FailOnInconclusive = False, drift_correction: o.DriftCorrection = False,
    fmt: o.Format = "rich", live: o.Live = False, batch_sizes: o.LiveBatchSizes = "1,32", rounds: o.LiveRounds = LIVE_ROUNDS,
    min_s: o.LiveMinS = LIVE_MIN_S, sessions: o.LiveSessions = LIVE_SESSIONS, max_s: o.LiveMaxS = LIVE_MAX_S,
    threads: o.LiveThreads = "auto", out_path: o.LiveOut = None, profile: o.LiveProfile = None,
    seed: o.Seed = 0, dataset: o.Dataset = "mnist", data_dir: o.DataDir = None, artifacts_dir: o.ArtifactsDir = None,
) -> None:
    """Compare results, or two models live. Per configuration: p50, p99, throughput and accuracy
    side by side, the typical block p50's ratio and 95% interval from interleaved blocks, widened by the
    machine's movement between the runs (the host's noise profile or the reference network's move), and a
    verdict: faster, slower, no change or inconclusive. --live measures both now, stage by stage, until a
    sequential test decides or --max-s is spent.
    Exit 0; 1 when --fail-on is crossed or a cell cannot be judged; 2 for unusable input.

    Example: mnistbench compare results/base.csv results/new.csv --fail-on 'p50:+5%,accuracy:-0.1pp' --format markdown

    Example: mnistbench compare --live lenet5:fp32 lenet5:int8 --batch-sizes 1,32 --profile quick
    """
    from ..api import comparison as api
    from . import screen as console  # the light half: comparing two CSVs imports no torch
    if not live:
        _refuse_live_only(batch_sizes=batch_sizes, rounds=rounds, min_s=min_s, sessions=sessions, max_s=max_s,
                          threads=threads, out=out_path, profile=profile, seed=seed, dataset=dataset,
                          data_dir=data_dir, artifacts_dir=artifacts_dir)
    load_inputs = not live and _load_inputs(base, new)
    _refuse_idle_flags(fail_on, fail_on_inconclusive, drift_correction, live, load_inputs)
    if load_inputs:
        from .load_command import compare_load
        return compare_load(base, new, fail_on, noise, fmt, fail_on_inconclusive)
    results = _comparisons(base, new, fail_on, noise, fmt, live, batch_sizes, (rounds, min_s, sessions, max_s), threads, out_path,
                           drift_correction, dict(profile=profile, seed=seed, dataset=dataset, data_dir=data_dir,
                                artifacts_dir=artifacts_dir))
    console.show_changes(results, fmt)
    gate = api.gate(results, fail_on, fail_on_inconclusive)
    if gate.rules:
        console.show_gate(gate)
        if not gate.passed:
            raise typer.Exit(1)


@guarded(exit_code=2, interrupted="interrupted")
def _load_inputs(base: str, new: list[str]) -> bool:
    """Whether the inputs are load CSVs (all of them; a mix is refused: exit 2)."""
    from ..load.compare import split_selector
    from ..load.rows import is_load_csv
    kinds = {is_load_csv(split_selector(p)[0]) for p in (base, *new)}
    if len(kinds) > 1:
        raise UsageError("compare takes two `run` results or two `load` results, not one of each")
    return kinds == {True}


@guarded(exit_code=2, interrupted="interrupted")
def _refuse_idle_flags(fail_on, fail_on_inconclusive: bool, drift_correction: bool, live: bool, load: bool) -> None:
    """Flags that would do nothing here, refused in one line (exit 2): ``--fail-on-inconclusive``
    without a gate, ``--drift-correction`` where no reference network moved between two runs."""
    from ..measure.inputs import only_with

    only_with(fail_on is not None, "--fail-on", " (it makes an inconclusive cell fail the gate)",
              fail_on_inconclusive=(fail_on_inconclusive, False))
    only_with(not live, "two result files", " of `run`: under --live both sides are measured in one process, so the "
              "machine's drift falls on both alike", drift_correction=(drift_correction, False))
    only_with(not load, "`run` results", " (load rows carry no reference network; their intervals already hold the "
              "between-run spread)", drift_correction=(drift_correction, False))


_LIVE_DEFAULTS = dict(batch_sizes="1,32", rounds=LIVE_ROUNDS, min_s=LIVE_MIN_S, sessions=LIVE_SESSIONS, max_s=LIVE_MAX_S,
                      threads="auto", out=None, profile=None, seed=0, dataset="mnist", data_dir=None,
                      artifacts_dir=None)


@guarded(exit_code=2, interrupted="interrupted")
def _refuse_live_only(**given) -> None:
    """Options that choose what ``--live`` measures, given without ``--live``: one line, exit 2."""
    from ..measure.inputs import only_with

    only_with(False, "--live", " (they choose what --live measures); comparing result files takes none of them",
              **{k: (v, _LIVE_DEFAULTS[k]) for k, v in given.items()})


@guarded(exit_code=2, interrupted="interrupted")  # unusable input, whatever its kind: the gate's contract
def _comparisons(base, new, fail_on, noise, fmt, live, batch_sizes, live_timing, threads, out_path, drift, where):
    from ..api import comparison as api
    from ..measure import inputs
    from . import screen as console
    inputs.check_format(fmt)
    noise = api.parse_noise(noise)
    api.gate([], fail_on)  # the rules parse before any work
    if not live:
        return [api.compare(base, path, noise=noise, drift_correction=drift) for path in new]
    if len(new) != 1:
        raise UsageError("--live compares two models: give BASE and one NEW")
    from ..analysis.live import live_timing as live_stage_timing  # heavy: the live A/B measures
    from ..measure.config import Axes  # heavy
    axes = Axes(threads=tuple(inputs.parse_threads(threads)),
                         batch_sizes=tuple(inputs.parse_batch_sizes(batch_sizes)))
    rounds, min_s, sessions, max_s = live_timing
    with console.counted("live") as bar:
        return [api.compare_live(base, new[0], axes=axes, timing=live_stage_timing(rounds, min_s), noise=noise,
                                 sessions=sessions, max_s=max_s,
                                 out_path=out_path, progress=lambda d, n, tot: bar(d, None, None), **where)]


@app.command()
@guarded
def report(results: o.ReportResults, out_dir: o.ReportDir = Path("report"), slo_ms: o.SloMs = 10.0) -> None:
    """Figures (latency and throughput against batch size, accuracy against latency with the Pareto
    front, per-model bars) and one self-contained HTML file with the tables.

    Example: mnistbench report results/ --out-dir results/report --slo-ms 5
    """
    from .. import api
    from . import screen as console
    path = api.report(results, out_dir=out_dir, slo_ms=slo_ms)
    console.out.print(f"report: {path} (+ latency.png, throughput.png, pareto.png, models.png)")


@app.command()
@guarded
def table(csv_paths: o.TableCsvs, fmt: o.Format = "rich") -> None:
    """Summarise a results CSV by model (test metric, latency, throughput per batch size), or
    reproduction CSVs as the paper reproduction table.

    Example: mnistbench table results/20261121T101500Z-mnist-quick-cpu.csv --format markdown
    """
    from .. import api
    from ..measure import inputs
    from . import console  # heavy
    inputs.check_format(fmt)
    console.show_table(api.table(csv_paths), fmt)


@app.command()
@guarded
def verify(path: o.VerifyPath, repair: o.Repair = False, drop_unsampled: o.DropUnsampled = False) -> None:
    """Check results: complete rows, each measured row's samples present and matching, identities
    consistent, no configuration measured twice, no temporary files. Exit 1 when a problem remains.

    Example: mnistbench verify results/ ; mnistbench verify results/run.csv --repair
    """
    from .. import api
    from . import console  # heavy
    bad = console.show_verify(api.verify(path, repair=repair, drop_unsampled=drop_unsampled))
    if bad:
        raise MnistBenchError(f"{bad} results file(s) have problems (see above)")


@app.command()
@guarded
def best(results: o.BestResults, max_accuracy_drop: o.MaxAccuracyDrop = "0.2pp",
         max_mse_increase: o.MaxMseIncrease = 0.01,
         fmt: o.Format = "rich") -> None:
    """The fastest configuration (runtime, provider, variant or precision, threads) per model and batch
    size whose accuracy is within a budget of ONNX Runtime fp32, its speedup over ONNX Runtime fp32
    with default settings, and the configurations tied with it.

    Example: mnistbench best results/cross-runtime/ --max-accuracy-drop 0.2pp --format markdown
    """
    from .. import api
    from ..measure import inputs
    from . import console  # heavy
    inputs.check_format(fmt)
    drop = inputs.accuracy_points(max_accuracy_drop)
    verdicts = api.best(results, max_accuracy_drop=drop, max_mse_increase=max_mse_increase)
    console.show_best(verdicts, drop, max_mse_increase, fmt)
