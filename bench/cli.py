"""The ``mnistbench`` command line: thin Typer commands over the library.

Every command makes its calls into the library inside one error boundary:
an expected failure (:class:`MnistBenchError`) becomes one line on stderr and
its exit code (2 for unusable input, 1 otherwise), never a traceback.
Progress bars go to stderr, tables to stdout.
"""

from __future__ import annotations

import functools
import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from mnistbench.models.errors import MnistBenchError, UsageError

app = typer.Typer(
    name="mnistbench",
    help="Reproduce published MNIST papers in PyTorch, export them to ONNX, and benchmark them on "
         "ONNX Runtime execution providers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
# Piped output (logs, CI) gets room for the tables instead of rich's 80-column default.
out = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 160)

DataDir = Annotated[Optional[Path], typer.Option(
    "--data-dir", help="Folder with the IDX files (else $MNISTBENCH_DATA, else the user cache; downloads if absent).")]
ArtifactsDir = Annotated[Optional[Path], typer.Option(
    "--artifacts-dir", help="Where checkpoints and ONNX files go (else $MNISTBENCH_ARTIFACTS, else ./artifacts).")]
Dataset = Annotated[str, typer.Option("--dataset", help="mnist or fashion-mnist.")]
Seed = Annotated[int, typer.Option("--seed", help="Training seed (also selects which checkpoint to export/run).")]
Device = Annotated[str, typer.Option("--device", help="Training device: auto, cpu or cuda.")]
Models = Annotated[Optional[list[str]], typer.Argument(
    help="Model names or wildcard patterns (e.g. 'zhu-*'); none means every registered model.", show_default=False)]


def _profile_opt(default: str):
    return Annotated[str, typer.Option("--profile", help=f"paper, quick or smoke (default {default}).")]


def guarded(fn):
    """Run a command inside the error boundary."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except MnistBenchError as exc:
            print(f"mnistbench: error: {exc}", file=sys.stderr)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            print("mnistbench: interrupted; finished results were kept", file=sys.stderr)
            raise typer.Exit(130) from None

    return wrapper


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=err, transient=False)


def _parse_batch_sizes(text: str) -> list[int]:
    sizes = []
    for part in text.split(","):
        part = part.strip()
        try:
            b = int(part)
        except ValueError:
            raise UsageError(f"batch size {part!r} is not a whole number (use e.g. --batch-sizes 1,8,32)") from None
        if b < 1:
            raise UsageError(f"batch size must be at least 1, got {b}")
        sizes.append(b)
    return sorted(set(sizes))


def _parse_providers(values: list[str]) -> list[str]:
    from mnistbench.bench.runtime import provider_name

    provs = [p.strip().lower() for v in values for p in v.split(",") if p.strip()]
    for p in provs:
        provider_name(p)
    return list(dict.fromkeys(provs))


def _load_data(dataset: str, data_dir: Path | None):
    from mnistbench.models.data import load_dataset

    return load_dataset(dataset, data_dir)


def _do_train(names, profile, device, seed, dataset, data_dir, artifacts_dir) -> list[dict]:
    from mnistbench.bench.pipeline import Artifacts, artifacts_root, train_model
    from mnistbench.bench.report import training_table
    from mnistbench.models.registry import select
    from mnistbench.models.train import resolve_device

    specs = select(names)
    for s in specs:
        s.recipe_for(profile)  # validates the profile name before any work
    resolve_device(device)
    data = _load_data(dataset, data_dir)
    arts = Artifacts(artifacts_root(artifacts_dir), dataset, profile, seed)
    metas = []
    with _progress() as bar:
        for s in specs:
            task = bar.add_task(f"train {s.name} ({profile})", total=None)

            def cb(step, total, stage, task=task, name=s.name):
                bar.update(task, completed=step, total=total, description=f"train {name} [{stage}]")

            metas.append(train_model(s, data, arts, device, cb))
    out.print(training_table(metas, f"Trained ({dataset}, profile {profile}, seed {seed}) -> {arts.dir}"))
    return metas


@app.command("list")
@guarded
def list_cmd() -> None:
    """List the registered models: paper, reported figure, parameters, FLOPs.

    Example: mnistbench list
    """
    from mnistbench.bench.report import models_table
    from mnistbench.models.registry import select

    out.print(models_table(select(None)))


@app.command()
@guarded
def train(
    models: Annotated[list[str], typer.Argument(help="Model names or wildcard patterns.")],
    profile: _profile_opt("paper") = "paper",
    device: Device = "auto",
    seed: Seed = 0,
    dataset: Dataset = "mnist",
    data_dir: DataDir = None,
    artifacts_dir: ArtifactsDir = None,
) -> None:
    """Train the named models with a profile's recipe and save checkpoints.

    Example: mnistbench train lenet5 zhu-mlp --profile quick
    """
    _do_train(models, profile, device, seed, dataset, data_dir, artifacts_dir)


@app.command("train-all")
@guarded
def train_all(
    profile: _profile_opt("paper") = "paper",
    device: Device = "auto",
    seed: Seed = 0,
    dataset: Dataset = "mnist",
    data_dir: DataDir = None,
    artifacts_dir: ArtifactsDir = None,
) -> None:
    """Train every registered model with its paper's recipe (or a reduced profile).

    Example: mnistbench train-all --profile quick --device cpu
    """
    _do_train(None, profile, device, seed, dataset, data_dir, artifacts_dir)


def _do_export(names, profile, seed, dataset, data_dir, artifacts_dir) -> list[dict]:
    from mnistbench.bench.pipeline import Artifacts, artifacts_root, export_model, require_checkpoint
    from mnistbench.bench.report import export_table
    from mnistbench.models.registry import select

    specs = select(names)
    arts = Artifacts(artifacts_root(artifacts_dir), dataset, profile, seed)
    for s in specs:
        require_checkpoint(s, arts)
    data = _load_data(dataset, data_dir)
    reports = []
    with _progress() as bar:
        task = bar.add_task("export", total=len(specs))
        for s in specs:
            bar.update(task, description=f"export {s.name}")
            reports.append(export_model(s, data, arts))
            bar.advance(task)
    out.print(export_table(reports))
    return reports


@app.command()
@guarded
def export(
    models: Models = None,
    profile: _profile_opt("paper") = "paper",
    seed: Seed = 0,
    dataset: Dataset = "mnist",
    data_dir: DataDir = None,
    artifacts_dir: ArtifactsDir = None,
) -> None:
    """Export trained checkpoints to ONNX (dynamic batch) and prove parity with PyTorch.

    Export fails unless top-1 agreement on 1,000 real test images is 100% and the
    largest logit difference is within 1e-4.

    Example: mnistbench export --profile quick
    """
    _do_export(models, profile, seed, dataset, data_dir, artifacts_dir)


def _do_run(names, providers, batch_sizes, profile, seed, dataset, data_dir, artifacts_dir, results_dir, out_path,
            timing, session_threads, spinning):
    from mnistbench.bench.pipeline import Artifacts, artifacts_root, onnx_for, test_inputs
    from mnistbench.bench.report import results_table
    from mnistbench.bench.runner import Target, run_matrix
    from mnistbench.bench.runtime import SessionConfig, check_provider
    from mnistbench.bench.system import write_system_json
    from mnistbench.models.registry import select

    provs = _parse_providers(providers)
    sizes = _parse_batch_sizes(batch_sizes)
    specs = select(names)
    for p in provs:  # prove every provider really works before any work or any file
        check_provider(p)
    arts = Artifacts(artifacts_root(artifacts_dir), dataset, profile, seed)
    found = [(s, *onnx_for(s, arts)) for s in specs]
    data = _load_data(dataset, data_dir)
    targets = []
    for s, path, meta in found:
        x, y = test_inputs(s, data)
        targets.append(Target(s.name, path, s.task, x, y, dataset, meta.get("profile", profile),
                              meta.get("seed", str(seed))))
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    csv_path = out_path or Path(results_dir) / f"{stamp}-{dataset}-{profile}-{'-'.join(provs)}.csv"
    if csv_path.suffix != ".csv":
        raise UsageError(f"--out must name a .csv file, got {csv_path}")
    if csv_path.exists():
        raise UsageError(f"{csv_path} exists; choose another --out (results are never overwritten)")
    sess = SessionConfig("cpu", session_threads, spinning)
    total = len(targets) * len(provs) * len(sizes)
    with _progress() as bar:
        task = bar.add_task("run", total=total)
        rows = run_matrix(targets, provs, sizes, csv_path, timing=timing, session=sess,
                          progress=lambda d, n: bar.update(task, description=d, completed=n))
    system_path = csv_path.with_suffix(".system.json")
    write_system_json(system_path, {"results_csv": csv_path.name, "command": " ".join(sys.argv)})
    out.print(results_table(rows))
    out.print(f"{len(rows)} rows -> {csv_path}  (system: {system_path.name})")
    return rows


@app.command()
@guarded
def run(
    models: Models = None,
    provider: Annotated[list[str], typer.Option(
        "--provider", help="Execution provider(s): cpu, cuda, tensorrt (repeat or comma-separate).")] = ["cpu"],
    batch_sizes: Annotated[str, typer.Option("--batch-sizes", help="Comma-separated batch sizes.")] = "1,8,32,128,512",
    profile: _profile_opt("paper") = "paper",
    seed: Seed = 0,
    dataset: Dataset = "mnist",
    warmup_iters: Annotated[int, typer.Option(help="Untimed warm-up calls per cell (at least).")] = 5,
    warmup_s: Annotated[float, typer.Option(help="Warm-up seconds per cell (at least).")] = 0.2,
    min_iters: Annotated[int, typer.Option(help="Timed calls per cell (at least).")] = 20,
    min_s: Annotated[float, typer.Option(help="Timed seconds per cell (at least).")] = 1.0,
    threads: Annotated[int, typer.Option(help="ONNX Runtime intra-op threads; 0 lets it choose.")] = 0,
    spinning: Annotated[Optional[bool], typer.Option(
        "--spinning/--no-spinning", help="Intra-op thread spinning; unset keeps ONNX Runtime's default.")] = None,
    results_dir: Annotated[Path, typer.Option(help="Folder for the results CSV and system JSON.")] = Path("results"),
    out_path: Annotated[Optional[Path], typer.Option("--out", help="Exact CSV path (must not exist).")] = None,
    data_dir: DataDir = None,
    artifacts_dir: ArtifactsDir = None,
) -> None:
    """Benchmark exported models: accuracy on the full test set, latency and throughput per batch size.

    Each cell confirms from the session itself that the requested execution
    provider is the one in use; a provider that is not really usable is an
    error before any row is written.

    Example: mnistbench run --provider cpu --batch-sizes 1,32,512 --profile quick
    """
    from mnistbench.bench.timing import TimingConfig

    _do_run(models, provider, batch_sizes, profile, seed, dataset, data_dir, artifacts_dir, results_dir, out_path,
            TimingConfig(warmup_iters, warmup_s, min_iters, min_s), threads, spinning)


@app.command("all")
@guarded
def all_cmd(
    models: Models = None,
    profile: _profile_opt("quick") = "quick",
    provider: Annotated[list[str], typer.Option("--provider", help="Execution provider(s) for the run step.")] = ["cpu"],
    batch_sizes: Annotated[str, typer.Option("--batch-sizes", help="Comma-separated batch sizes.")] = "1,8,32,128,512",
    device: Device = "auto",
    seed: Seed = 0,
    dataset: Dataset = "mnist",
    results_dir: Annotated[Path, typer.Option(help="Folder for the results CSV and system JSON.")] = Path("results"),
    data_dir: DataDir = None,
    artifacts_dir: ArtifactsDir = None,
) -> None:
    """Train every model, export each to ONNX with parity, and benchmark them: the main job.

    Defaults to the quick profile (all nine models in under ten minutes of
    training on 2 CPU cores); --profile paper runs the papers' recipes.

    Example: mnistbench all --profile quick --provider cpu
    """
    from mnistbench.models.registry import select

    select(models)  # unknown names fail here, before any work
    from mnistbench.bench.runtime import check_provider
    from mnistbench.bench.timing import TimingConfig

    provs = _parse_providers(provider)
    _parse_batch_sizes(batch_sizes)
    for p in provs:
        check_provider(p)
    t0 = time.perf_counter()
    _do_train(models, profile, device, seed, dataset, data_dir, artifacts_dir)
    t1 = time.perf_counter()
    _do_export(models, profile, seed, dataset, data_dir, artifacts_dir)
    t2 = time.perf_counter()
    _do_run(models, provs, batch_sizes, profile, seed, dataset, data_dir, artifacts_dir, results_dir, None,
            TimingConfig(), 0, None)
    t3 = time.perf_counter()
    out.print(f"wall time: train {t1 - t0:.0f} s, export {t2 - t1:.0f} s, run {t3 - t2:.0f} s, total {t3 - t0:.0f} s")


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
