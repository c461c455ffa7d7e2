"""What the command line prints: rich tables and progress bars. Tables go to stdout (``out``),
progress bars, notes and warnings to stderr (``err``). Nothing here measures or decides exit codes
beyond what it is handed; :mod:`bench.cli` calls the library, then these functions.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from rich.console import Console
from rich.table import Table

from .. import api
from ..analysis import best as best_mod
from ..analysis.diagnostics import MachineFigures
from ..analysis.doctor import (
    DefaultsCheck,
    Overhead,
    SweepPoint,
    recommend,
)
from ..analysis.report import (
    export_table,
    nonfinite_warning,
    repeat_spread_table,
    results_markdown,
    results_table,
    stability_warning,
    training_table,
    variant_export_table,
    variant_markdown,
    variant_table,
)
from ..api import Reproduction, ResultsTable
from ..launch.planning import RunOutcome, RunRequest, check_failures
from ..measure.pipeline import NULL_MODEL, Artifacts, artifacts_root
from ..training import reproduce as rp
from ..training import speedrun as sr
from .screen import _LazyProgress, counted, err, out, progress, say, show_changes, show_gate

RE_EXPORTED = (counted, err, out, say, show_changes, show_gate)  # the light half, reachable as console.<name>


@contextlib.contextmanager
def training_bars(profile: str) -> Iterator:
    """A :data:`api.TrainProgress`: one bar per model, ``train NAME [stage]``, shown when training starts."""
    bar = _LazyProgress()

    def start(name: str):
        task = bar().add_task(f"train {name} ({profile})", total=None)
        return lambda step, total, stage: bar().update(task, completed=step, total=total,
                                                       description=f"train {name} [{stage}]")

    try:
        yield start
    finally:
        bar.stop()


def train(names, profile, device, seed, dataset, data_dir, artifacts_dir, amp="off", channels_last=False) -> None:
    """:func:`api.train` with a bar per model, then the training table."""
    with training_bars(profile) as bars:
        metas = api.train(names, profile=profile, device=device, seed=seed, dataset=dataset, data_dir=data_dir,
                          artifacts_dir=artifacts_dir, amp=amp, channels_last=channels_last, progress=bars)
    folder = Artifacts(artifacts_root(artifacts_dir), dataset, profile, seed).dir
    out.print(training_table(metas, f"Trained ({dataset}, profile {profile}, seed {seed}) -> {folder}"))


def export(names, profile, seed, dataset, data_dir, artifacts_dir, int8=False, fp16=False, fp16_io=False) -> None:
    """:func:`api.export` with a bar, then the parity table (and the variants' table)."""
    with counted("export") as bar:
        reports = api.export(names, profile=profile, seed=seed, dataset=dataset, int8=int8, fp16=fp16,
                             fp16_io=fp16_io, data_dir=data_dir, artifacts_dir=artifacts_dir, progress=bar, note=say)
    out.print(export_table(reports))
    if (vt := variant_export_table(reports)) is not None:
        out.print(vt)


def benchmark(req: RunRequest) -> None:
    """:func:`api.run` with a bar, then its summary (not in a repeat's child process).

    Raises:
        MnistBenchError: cells failed (they are error rows in the CSV).
    """
    with counted("run") as bar:
        outcome = api.run(req, progress=bar, note=say)
    if req.repeat_index is None:
        show_run(outcome)
        check_failures(outcome.rows)


def check_defaults(models: list[str] | None, rounds: int, out_path: Path | None) -> None:
    """``doctor --check-defaults``: :func:`api.check_defaults` with a bar, then its table."""
    with counted("defaults check", api.check_defaults_cells(models, rounds, out_path)) as bar:
        results = api.check_defaults(models, rounds=rounds, out_path=out_path, progress=bar)
    out.print(defaults_table(results))
    if out_path is not None:
        out.print(f"figures: {out_path}")


def show_run(o: RunOutcome) -> None:
    """The summary of a run (or of its repeats), its stability warning and where its files went."""
    rows = o.rows
    if o.repeats > 1:
        out.print(results_table([r for r in rows if r.repeat == 0], "Benchmark summary (repeat 1)"))
        out.print(repeat_spread_table(rows))
        out.print(f"{len(rows)} rows -> {o.csv_path}")
        return
    if o.resumed is not None:
        out.print(f"resumed: {o.resumed} cells were already in {o.csv_path.name}, {o.measured} measured now")
    shown = [r for r in rows if r.task != "reference"]
    out.print(results_table(shown))
    if len({r.variant for r in shown if r.model != NULL_MODEL}) > 1:
        out.print(variant_table(shown))
    if warn := stability_warning(rows):
        say(warn)
    if nonfinite := nonfinite_warning(rows):
        say(nonfinite)
    out.print(f"{len(rows)} rows -> {o.csv_path}  (system: {o.system_path.name}, raw samples: {o.csv_path.stem}"
              ".samples/)")


def defaults_table(results: list[DefaultsCheck]) -> Table:
    """The defaults-check figures as a rich table, with the summary in its caption."""
    labels = list(results[0].median_ips)
    t = Table(title=f"Default session options against the threads x spinning sweep (median img/s of "
                    f"{results[0].rounds} interleaved blocks; random weights)", title_justify="left",
              caption="choice = the sweep configuration with the default's settings / best; A/A = the default's own "
                      "session / that identical configuration (measurement spread)", caption_justify="left")
    for col in ("model", "batch", "auto chose", *labels, "best", "default / best", "choice / best", "A/A"):
        t.add_column(col, justify="left" if col in ("model", "best") else "right")
    for r in results:
        t.add_row(r.model, str(r.batch_size), f"{r.default_threads} thr", *(f"{r.median_ips[k]:,.0f}" for k in labels),
                  r.best, ("[red]" if r.ratio < 0.95 else "") + f"{r.ratio:.3f}",
                  ("[red]" if r.choice_ratio < 0.95 else "") + f"{r.choice_ratio:.3f}", f"{r.aa_ratio:.3f}")
    t.caption += "\n" + _defaults_summary(results)
    return t


def _defaults_summary(results: list[DefaultsCheck]) -> str:
    n = len(results)
    worst, worst_choice = min(results, key=lambda r: r.ratio), min(results, key=lambda r: r.choice_ratio)
    aa = [r.aa_ratio for r in results]
    return (f"{sum(r.ratio >= 0.95 for r in results)} of {n} cells have the default's session at >= 95% of the "
            f"best (worst {worst.ratio:.1%}, {worst.model} batch {worst.batch_size}); the default's settings are "
            f"at >= 95% in {sum(r.choice_ratio >= 0.95 for r in results)} of {n} (worst {worst_choice.choice_ratio:.1%},"
            f" {worst_choice.model} batch {worst_choice.batch_size}); identical sessions measured "
            f"{min(aa):.3f}-{max(aa):.3f} of each other")


def show_machine(m: MachineFigures) -> None:
    """doctor's first lines: the host, the providers table, GEMM peaks, the null-model floor."""
    s = m.system
    out.print(f"{s['cpu_model']}: {s['cpu_physical_cores']} physical / {s['cpu_logical_cores']} "
              f"logical cores, {s['memory_total_gib']} GiB; ONNX Runtime {s['onnxruntime']}, torch {s['torch']}")
    prov = Table(title="Execution providers (proven by creating a session)", title_justify="left")
    prov.add_column("provider")
    prov.add_column("status")
    for name, status in m.providers.items():
        prov.add_row(name, "[green]usable[/]" if status == "usable" else status)
    out.print(prov)
    out.print(f"GEMM probe (fp32, torch.mm 1024x1024): {m.gemm_gflops:.0f} GFLOP/s")
    if m.gpu_gemm:
        out.print(f"GPU GEMM probe (fp32, TF32 off, torch.mm 4096x4096 on {m.gpu_gemm[0]}): "
                  f"{m.gpu_gemm[1]:.0f} GFLOP/s")
    out.print(f"null-model floor (ONNX Identity, batch 1, CPU EP, defaults): p50 {m.null_floor_us:.1f} µs")


def show_overhead(oh: Overhead) -> None:
    out.print(f"harness overhead (lenet5, batch 1, CPU EP, {oh.blocks} alternating blocks): mnistbench p50 "
              f"{oh.harness_p50_us:.2f} µs vs bare session.run loop {oh.bare_p50_us:.2f} µs, ratio {oh.ratio:.3f}")


def show_sweep(points: list[SweepPoint]) -> None:
    """The threads x spinning sweep table and the recommended settings."""
    t = Table(title="ONNX Runtime CPU EP: throughput by threads and spinning (img/s; * = best)", title_justify="left")
    for col in ("model", "batch", "threads", "spinning", "p50", "img/s", "of best"):
        t.add_column(col, justify="left" if col in ("model", "spinning") else "right")
    best: dict = {}
    for p in points:
        best[(p.model, p.batch_size)] = max(best.get((p.model, p.batch_size), 0), p.throughput_ips)
    for p in points:
        frac = p.throughput_ips / best[(p.model, p.batch_size)]
        t.add_row(p.model, str(p.batch_size), str(p.threads), "on" if p.spinning else "off", f"{p.p50_ms:.3f} ms",
                  f"{p.throughput_ips:,.0f}", f"{frac:.0%}" + (" *" if frac == 1 else ""))
    out.print(t)
    (th, sp), worst = recommend(points)
    out.print(f"recommended: --threads {th} --spinning {'on' if sp else 'off'} "
              f"(at least {worst:.0%} of the best throughput in every cell swept)")


def show_speedrun(title: str, results: list[sr.SpeedrunResult], summ: sr.SpeedrunSummary, target: float) -> None:
    """Per-seed table, the summary over seeds against ``target``, and what the clock covers."""
    t = Table(title=title, title_justify="left")
    for col in ("seed", "train s", "steps", "test accuracy", "eval s"):
        t.add_column(col, justify="right")
    for r in results:
        t.add_row(str(r.seed), f"{r.train_s:.2f}", str(r.steps), f"{r.accuracy:.2%}", f"{r.eval_s:.2f}")
    out.print(t)
    verdict = "reached" if summ.reached else "NOT reached"
    out.print(f"{summ.n} seeds: train {summ.train_s_mean:.2f} ± {summ.train_s_sd:.2f} s (min {summ.train_s_min:.2f}, "
              f"max {summ.train_s_max:.2f}); accuracy {summ.acc_mean:.2%} ± {summ.acc_sd:.2%} "
              f"(min {summ.acc_min:.2%}, max {summ.acc_max:.2%}); target {target:.2%} {verdict} on the mean "
              f"({summ.seeds_reaching} of {summ.n} seeds at or above it)")
    out.print("clock: model construction to the last optimiser step; excluded: data loading and preprocessing, "
              f"one untimed {sr.WARMUP_STEPS}-step warm-up, test evaluation")


@contextlib.contextmanager
def reproduce_bars() -> Iterator[dict]:
    """Callbacks of :func:`api.reproduce` (``on_plan``, ``on_start``, ``on_done``) drawing one bar."""
    state: dict = {}

    def on_plan(n: int, csv_path: Path, ray: bool = False) -> None:
        err.print(f"{n} runs to train -> {csv_path}" + (" (Ray tasks)" if ray else ""))
        state["bar"] = progress()
        state["bar"].start()
        state["task"] = state["bar"].add_task(f"reproduce: {n} Ray tasks" if ray else "reproduce",
                                              total=n if ray else None)

    def on_start(run, i, n):
        label = f"[{i + 1}/{n}] {run.model}{' ' + run.scale if run.scale else ''} seed {run.seed}"
        return lambda step, total, stage: state["bar"].update(state["task"], completed=step, total=total,
                                                              description=f"{label} [{stage}]")

    def on_done(row: dict, ray: bool = False) -> None:
        _print_run(state["bar"].console, row)
        if ray:
            state["bar"].advance(state["task"])

    try:
        yield {"on_plan": on_plan, "on_start": on_start, "on_done": on_done}
    finally:
        if "bar" in state:
            state["bar"].stop()


def _print_run(console: Console, row: dict) -> None:
    if not rp.is_ok(row):
        console.print(f"  {row['model']} {row['scale']} seed {row['seed']}: error: {row['error']}",
                      markup=False, highlight=False)
        return
    metric = float(row["final"])
    shown = f"{metric:.2%}" if row["metric"] == "accuracy" else f"MSE {metric:.4f}"
    console.print(f"  {row['model']} {row['scale']} seed {row['seed']}: {shown} in {row['wall_s']} s")


def show_reproduction(r: Reproduction) -> None:
    print(rp.markdown(r.rows))
    out.print(f"runs: {r.csv_path}  table: {r.md_path}")


def show_table(t: ResultsTable, fmt: str) -> None:
    """``table``: what :func:`api.table` read, as a results summary by model (with the variants
    table when several variants ran), the reproduction table, or the defaults check."""
    if t.kind == "defaults":
        return out.print(defaults_table(t.rows))
    if t.kind == "reproduction":
        return print(t.markdown)
    several = len({r.variant for r in t.rows if r.status == "ok"}) > 1
    if fmt == "markdown":
        print(results_markdown(t.rows))
        if several:
            print("\n" + variant_markdown(t.rows))
    else:
        out.print(results_table(t.rows, t.title))
        if several:
            out.print(variant_table(t.rows))


def show_verify(reports) -> int:
    """Each verified file: repairs on stdout, problems on stderr, ``ok`` otherwise; returns files with problems."""
    bad = 0
    for rep in reports:
        for line in rep.repaired:
            out.print(f"{rep.path}: repaired: {line}", markup=False, highlight=False)
        remaining = [p for p in rep.problems if not rep.repaired or "partial" not in p]
        for line in remaining:
            say(f"{rep.path}: {line}")
        bad += bool(remaining)
        if not remaining:
            note = "".join(f"; {n}" for n in getattr(rep, "notes", []))
            out.print(f"{rep.path}: ok ({rep.rows} rows{note})", markup=False, highlight=False)
    return bad


def show_best(verdicts, drop: float, max_mse_increase: float, fmt: str) -> None:
    from ..load import best as load_best

    runs = [v for v in verdicts if not isinstance(v, load_best.LoadBest)]
    loads = [v for v in verdicts if isinstance(v, load_best.LoadBest)]
    for vs, mod, note in ((runs, best_mod, lambda: best_mod.footnote(runs, drop, max_mse_increase)),
                          (loads, load_best, lambda: load_best.footnote(drop))):
        if not vs:
            continue
        if fmt == "markdown":
            print(mod.markdown(vs) + "\n\n" + note())
        else:
            out.print(mod.table(vs))
            out.print(note(), markup=False, highlight=False)
