"""``mnistbench load``: latency under load with MLPerf LoadGen (registered on the app of :mod:`.app`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..measure.defaults import RUNS_DIR
from . import options as o
from .app import app, guarded

Scenario = Annotated[str, typer.Option(
    "--scenario", help="MLPerf scenario: single-stream (next query when the last is answered; p90), multi-stream "
    "(8 samples a query; p99), server (Poisson arrivals at --target-qps; VALID when the percentile meets the bound), "
    "offline (every sample at once; samples/s).")]
LoadRuntime = Annotated[list[str], typer.Option("--runtime", help="onnxruntime, openvino, torch or torch.compile "
                                                "(comma-separate for several).")]
LoadProvider = Annotated[str, typer.Option("--provider", help="Execution provider: cpu, cuda or tensorrt.")]
LoadThreads = Annotated[int, typer.Option("--threads", help="Intra-op threads of each worker's session (0: the "
                                          "runtime's own choice).")]
Workers = Annotated[int, typer.Option("--workers", help="Sessions serving at once, one thread each.")]
MaxBatch = Annotated[int, typer.Option("--max-batch", help="Dynamic batching: the largest batch a worker forms "
                                       "from queued samples (1: one at a time).")]
QueueDelay = Annotated[float, typer.Option("--max-queue-delay-ms", help="Dynamic batching: how long the oldest "
                                           "queued sample waits for a batch to fill (Triton's semantics; 0: no wait).")]
TargetQps = Annotated[Optional[float], typer.Option("--target-qps", help="Server: the Poisson arrival rate, "
                                                    "queries per second.")]
QpsRange = Annotated[Optional[str], typer.Option("--qps-range", help="Server: a rate sweep, a:b:step or a comma "
                                                 "list (the latency-throughput curve).")]
FindPeak = Annotated[bool, typer.Option("--find-peak", help="Server: the highest rate LoadGen calls VALID under "
                                        "the bound (a bisection over LoadGen runs).")]
Interleave = Annotated[bool, typer.Option("--interleave", help="--find-peak: every cell's sessions open at once, "
                                          "their searches taking turns a test at a time (A/B of files of one run).")]
Bound = Annotated[float, typer.Option("--latency-bound-ms", help="Server: the latency bound, ms.")]
Percentile = Annotated[float, typer.Option("--latency-percentile", help="Server: the percentile held to the "
                                           "bound (MLPerf: 99).")]
MinDuration = Annotated[float, typer.Option("--min-duration-s", help="Each LoadGen test's minimum duration, s "
                                            "(MLPerf submissions: 600).")]
MinQueries = Annotated[int, typer.Option("--min-query-count", help="Each LoadGen test's minimum query count.")]
LoadRepeat = Annotated[int, typer.Option("--repeat", help="Repeat every cell N times (fresh sessions, shuffled "
                                         "order): figures get 95% intervals.")]
Accuracy = Annotated[bool, typer.Option("--accuracy/--no-accuracy", help="Also run LoadGen's accuracy mode "
                                        "(every test image once) and score its answers.")]
LoadNull = Annotated[bool, typer.Option("--null/--no-null", help="Also serve the null model: the harness's own "
                                        "floor at this scenario.")]
LoadgenSeed = Annotated[int, typer.Option("--loadgen-seed", help="Seed of LoadGen's schedule and sample order "
                                          "(repeat r uses seed + r).")]
LoadOut = Annotated[Optional[Path], typer.Option("--out", help="Exact load CSV path (must not exist, unless "
                                                 "--resume).")]


@app.command()
@guarded
def load(
    models: o.Models = None, scenario: Scenario = "server", variant: o.Variant = "fp32",
    precision: o.Precision = "fp32", runtime: LoadRuntime = ["onnxruntime"], provider: LoadProvider = "cpu",
    threads: LoadThreads = 1, workers: Workers = 1, max_batch: MaxBatch = 1, max_queue_delay_ms: QueueDelay = 0.0,
    target_qps: TargetQps = None, qps_range: QpsRange = None, find_peak: FindPeak = False,
    latency_bound_ms: Bound = 5.0, latency_percentile: Percentile = 99.0, min_duration_s: MinDuration = 10.0,
    min_query_count: MinQueries = 1024, repeat: LoadRepeat = 1, accuracy: Accuracy = False, null: LoadNull = True,
    loadgen_seed: LoadgenSeed = 0, profile: o.RunProfile = None, seed: o.Seed = 0, dataset: o.Dataset = "mnist",
    onnx: o.Onnx = None, layout: o.Layout = "auto", preprocess: o.Preprocess = "unit",
    results_dir: o.ResultsDir = RUNS_DIR, out_path: LoadOut = None, resume: o.Resume = False,
    allow_stale: o.AllowStale = False, data_dir: o.DataDir = None, artifacts_dir: o.ArtifactsDir = None,
    interleave: Interleave = False,
) -> None:
    """Serve models to MLPerf LoadGen: latency under load, the highest rate that meets a latency bound.

    A pool of --workers sessions with a dynamic batcher (--max-batch, --max-queue-delay-ms) answers
    LoadGen's queries from the real test set; LoadGen times each query from its scheduled arrival
    and says VALID or INVALID. Rows go to a load CSV beside LoadGen's logs; `compare` judges two of
    them (peak_qps, p99).

    Example: mnistbench load lenet5 --scenario server --find-peak --latency-bound-ms 5 --max-batch 16 --max-queue-delay-ms 1 --repeat 3

    Example: mnistbench load lenet5 --scenario offline --max-batch 128 --accuracy
    """
    from ..load.config import LoadRequest, parse_qps_range
    from ..measure import inputs
    points = parse_qps_range(qps_range) if qps_range is not None else ()
    runtimes = [r.strip() for item in runtime for r in item.split(",") if r.strip()]
    from ..api.load import load as api_load
    from ..launch import planning  # heavy
    from . import console
    variants = tuple(inputs.row_variants(variant, precision, runtimes))
    inputs.check_onnx_only(onnx, layout, preprocess)
    inputs.check_stale_needs_models(models, onnx, allow_stale)
    LoadRequest(tuple(models) if models else None, variants, tuple(runtimes), provider.strip(), threads,  # the options
                scenario, workers, max_batch, max_queue_delay_ms, target_qps, points, find_peak,  # first, then the
                latency_bound_ms, latency_percentile, min_duration_s, min_query_count, repeat, accuracy,  # files
                null, loadgen_seed, profile or "", seed, dataset, tuple(onnx or ()), layout, preprocess,
                results_dir, out_path, resume, allow_stale, data_dir, artifacts_dir, interleave=interleave)
    inputs.check_profile_given(profile)
    profile = profile or ("foreign" if onnx else planning.default_profile(artifacts_dir, dataset, seed, "*.onnx",
                                                                          "exports", console.say))
    req = LoadRequest(tuple(models) if models else None, variants, tuple(runtimes), provider.strip(), threads,
                      scenario, workers, max_batch, max_queue_delay_ms, target_qps, points, find_peak,
                      latency_bound_ms, latency_percentile, min_duration_s, min_query_count, repeat, accuracy, null,
                      loadgen_seed, profile, seed, dataset, tuple(onnx or ()), layout, preprocess, results_dir,
                      out_path, resume, allow_stale, data_dir, artifacts_dir, interleave=interleave)
    try:
        out = api_load(req, progress=lambda s: console.err.print(s, markup=False, highlight=False))
    except KeyboardInterrupt:
        # a LoadGen test thread may still run (LoadGen cannot be stopped; the SUT now answers at once):
        # end here, within a second, rather than wait for its minimum duration. Rows written are whole.
        import os
        import sys
        print("mnistbench: interrupted; finished results were kept", file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    show_load(out.rows, console.out)
    console.say(f"wrote {out.csv_path} ({len(out.rows)} rows), {out.system_path}")
    failed = [r for r in out.rows if r.status != "ok"]
    if failed:  # as `run`: the rows are kept, the exit says that some cells could not be measured
        from ...models.errors import MnistBenchError
        raise MnistBenchError(f"{len(failed)} of {len(out.rows)} rows are error rows; first: {failed[0].model}:"
                              f"{failed[0].variant} on {failed[0].runtime}: {failed[0].error}")


def show_load(rows, out) -> None:
    """The load rows as one rich table: per row its kind, the rate, LoadGen's verdict and latencies."""
    from rich.table import Table

    t = Table(title="mnistbench load (LoadGen)", show_lines=False)
    for col in ("model", "variant", "runtime", "scenario", "batching", "rep", "kind", "QPS / samples/s", "p50 ms",
                "p99 ms", "queue p50 ms", "verdict"):
        t.add_column(col, justify="right" if col not in ("model", "variant", "runtime", "scenario", "kind", "verdict")
                     else "left")
    for r in rows:
        rate = r.peak_qps if r.kind == "peak" else r.samples_per_s
        batching = f"{r.max_batch}/{r.max_queue_delay_ms:g}ms" if r.max_batch > 1 else "off"
        verdict = r.error if r.status != "ok" else (f"top-1 {r.accuracy_top1:.4f}" if r.kind == "accuracy"
                                                     else r.valid + (f": {r.invalid_reason}" if r.invalid_reason else ""))
        t.add_row(r.model, r.variant, r.runtime, r.scenario, batching, str(r.repeat), r.kind, f"{rate:,.1f}",
                  f"{r.latency_p50_ms:.3f}", f"{r.latency_p99_ms:.3f}", f"{r.queue_p50_ms:.3f}", verdict)
    out.print(t)


def compare_load(base: str, new: list[str], fail_on: str | None, noise: str | None, fmt: str,
                 fail_on_inconclusive: bool) -> None:
    """``compare`` of load CSVs (``FILE`` or ``FILE#MODEL``): the table, then the gate (exit 1 when a
    rule is crossed; 2 for unusable input)."""
    from . import screen

    changes, rules = _load_changes(base, new, fail_on, noise, fmt)
    _show_load_changes(changes, fmt, screen.out)
    if rules:
        failed = [(c, r) for c, r in _gate(changes, rules)]
        undecided = [c for c in changes if c.verdict == "inconclusive" and c.metric in {r.metric for r in rules}]
        for c, r in failed:
            screen.out.print(f"gate: FAIL {r}: {c.label()} {c.metric} {c.ratio:.3f} [{c.low:.3f}, {c.high:.3f}]",
                             markup=False, highlight=False)
        if fail_on_inconclusive:
            for c in undecided:
                screen.out.print(f"gate: FAIL inconclusive: {c.label()} {c.metric}", markup=False, highlight=False)
        if failed or (fail_on_inconclusive and undecided):
            raise typer.Exit(1)
        screen.out.print(f"gate: pass ({', '.join(map(str, rules))}; {len(changes)} changes judged)", markup=False,
                         highlight=False)


@guarded(exit_code=2, interrupted="interrupted")
def _load_changes(base, new, fail_on, noise, fmt):
    from ...models.errors import UsageError
    from ..load import compare as lc
    from ..measure import inputs
    inputs.check_format(fmt)
    rules = lc.parse_rules(fail_on) if fail_on is not None else []
    noise_v = None
    if noise is not None and noise.strip().lower() != "auto":
        try:
            noise_v = float(noise)
        except ValueError:
            raise UsageError(f"--noise takes auto or a fraction, got {noise!r}") from None
        if not 0 <= noise_v < 1:
            raise UsageError(f"--noise is a fraction in [0, 1), got {noise}")
    changes = []
    for n in new:
        ch, only_b, only_n, source = lc.compare(base, n, noise_v)
        if not ch:
            raise UsageError(f"{base} and {n} share no configuration to compare (only in base: {len(only_b)}, "
                             f"only in new: {len(only_n)})")
        changes += ch
    return changes, rules


def _gate(changes, rules):
    from ..load.compare import gate
    return gate(changes, rules)


def _show_load_changes(changes, fmt: str, out) -> None:
    head = ["configuration", "metric", "base", "new", "n", "ratio [95% CI]", "verdict"]
    body = [[c.label(), c.metric, f"{c.base:,.3f}", f"{c.new:,.3f}", f"{c.n_base}/{c.n_new}",
             f"{c.ratio:.3f} [{c.low:.3f}, {c.high:.3f}]", c.verdict] for c in changes]
    if fmt == "markdown":
        out.print("| " + " | ".join(head) + " |", markup=False, highlight=False)
        out.print("|" + "---|" * len(head), markup=False, highlight=False)
        for row in body:
            out.print("| " + " | ".join(row) + " |", markup=False, highlight=False)
    else:
        from rich.table import Table
        t = Table(title="compare (load)")
        for h in head:
            t.add_column(h)
        for row in body:
            t.add_row(*row)
        out.print(t)
    unpaired = [c for c in changes if not c.paired]
    if any(c.paired for c in changes):
        out.print("intervals of two models of one run: paired by repeat (t over the repeats' ln ratios; each "
                  "repeat's round shares the host's drift)", markup=False, highlight=False)
    if unpaired:
        sig = {c.between_sigma for c in unpaired}
        out.print(f"intervals: Welch t over repeats, widened by a between-run spread of "
                  f"{', '.join(f'{s:.1%}' for s in sorted(sig))} (sd of ln ratio; 0 within one run)",
                  markup=False, highlight=False)
