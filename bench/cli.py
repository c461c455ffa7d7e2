"""The ``mnistbench`` command line: thin Typer commands over the library.

Every command makes its calls into the library inside one error boundary:
an expected failure (:class:`MnistBenchError`) becomes one line on stderr and
its exit code (2 for unusable input, 1 otherwise), never a traceback.
Progress bars go to stderr, tables to stdout.
"""

from __future__ import annotations

import ctypes
import functools
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Annotated, Optional


def _interrupted_while_starting(signum, frame):
    """Ctrl-C while the command line still imports (typer, rich, numpy: up to a second on a loaded
    machine): one line and exit 130, as during a command. :func:`main` puts Python's handler back."""
    print("mnistbench: interrupted", file=sys.stderr)
    raise SystemExit(130)


if (__name__ == "__main__" or Path(sys.argv[0]).name == "mnistbench") and \
        signal.getsignal(signal.SIGINT) is signal.default_int_handler:
    signal.signal(signal.SIGINT, _interrupted_while_starting)

import typer  # noqa: E402  (after the Ctrl-C handler above)
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from mnistbench.bench.timing import MIN_ITERS, MIN_S, ROUNDS, WARMUP_ITERS, WARMUP_S
from mnistbench.models.errors import MnistBenchError, UsageError

# Session defaults of `run` and `all` (see README, "Threads and spinning"): threads chosen per
# cell by a short probe of 1 against one per physical core; spinning left at ONNX Runtime's default.
DEFAULT_THREADS = "auto"
DEFAULT_SPINNING = "default"
VARIANTS = ("fp32", "int8", "fp16", "fp16-io")  # fp16-io: fp16 with float16 inputs and outputs

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
Executor = Annotated[str, typer.Option(
    "--executor", help="local (in this process) or ray (tasks on a Ray cluster; needs the [ray] extra).")]
RayAddress = Annotated[Optional[str], typer.Option(
    "--address", help="--executor ray: the cluster to join (ray start --head prints it; 'auto' finds a local one); "
                      "none starts a local 2-CPU cluster for this command.")]
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


def _parse_providers(values: list[str]) -> list[str]:
    from mnistbench.bench.runtime import provider_name

    provs = [p.strip().lower() for v in values for p in v.split(",") if p.strip()]
    for p in provs:
        provider_name(p)
    return list(dict.fromkeys(provs))


def _load_data(dataset: str, data_dir: Path | None):
    from mnistbench.models.data import load_dataset

    return load_dataset(dataset, data_dir)


Amp = Annotated[str, typer.Option("--amp", help="Mixed precision for training: off or bf16 (torch.autocast; "
                                  "for GPUs).")]
ChannelsLast = Annotated[bool, typer.Option("--channels-last", help="Train in channels-last memory format "
                                            "(faster convolutions on GPUs).")]


def _do_train(names, profile, device, seed, dataset, data_dir, artifacts_dir, amp="off",
              channels_last=False) -> list[dict]:
    from mnistbench.bench.pipeline import Artifacts, artifacts_root, prepare_training, train_model
    from mnistbench.bench.report import training_table
    from mnistbench.models.registry import select
    from mnistbench.models.train import resolve_device

    specs = select(names)
    from mnistbench.models.train import AMP_MODES

    for s in specs:
        s.recipe_for(profile)  # validates the profile name before any work
    resolve_device(device)
    if amp not in AMP_MODES:
        raise UsageError(f"unknown --amp {amp!r}; choose one of: {', '.join(AMP_MODES)}")
    arts = Artifacts(artifacts_root(artifacts_dir), dataset, profile, seed)
    prepare_training(specs, arts)  # writable, with room for every checkpoint, before any training
    data = _load_data(dataset, data_dir)
    metas = []
    with _progress() as bar:
        for s in specs:
            task = bar.add_task(f"train {s.name} ({profile})", total=None)

            def cb(step, total, stage, task=task, name=s.name):
                bar.update(task, completed=step, total=total, description=f"train {name} [{stage}]")

            metas.append(train_model(s, data, arts, device, cb, amp, channels_last))
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
    amp: Amp = "off",
    channels_last: ChannelsLast = False,
) -> None:
    """Train the named models with a profile's recipe and save checkpoints.

    Example: mnistbench train lenet5 zhu-mlp --profile quick
    """
    _do_train(models, profile, device, seed, dataset, data_dir, artifacts_dir, amp, channels_last)


@app.command("train-all")
@guarded
def train_all(
    profile: _profile_opt("paper") = "paper",
    device: Device = "auto",
    seed: Seed = 0,
    dataset: Dataset = "mnist",
    data_dir: DataDir = None,
    artifacts_dir: ArtifactsDir = None,
    amp: Amp = "off",
    channels_last: ChannelsLast = False,
) -> None:
    """Train every registered model with its paper's recipe (or a reduced profile).

    On a GPU (--device cuda) the whole dataset stays resident on the device; add --amp bf16
    --channels-last for speed. Example: mnistbench train-all --profile quick --device cpu
    """
    _do_train(None, profile, device, seed, dataset, data_dir, artifacts_dir, amp, channels_last)


def _do_export(names, profile, seed, dataset, data_dir, artifacts_dir, int8: bool = False,
               fp16: bool = False, fp16_io: bool = False) -> list[dict]:
    from mnistbench.bench.pipeline import (Artifacts, artifacts_root, export_fp16, export_int8, export_model,
                                           load_trained)
    from mnistbench.bench.report import export_table, variant_export_table
    from mnistbench.models.registry import select

    specs = select(names)
    arts = Artifacts(artifacts_root(artifacts_dir), dataset, profile, seed)
    for s in specs:  # every checkpoint present, intact and fitting its model before any work
        load_trained(s, arts)
    data = _load_data(dataset, data_dir)
    reports = []
    with _progress() as bar:
        task = bar.add_task("export", total=len(specs))
        for s in specs:
            bar.update(task, description=f"export {s.name}")
            reports.append(export_model(s, data, arts))
            if int8:
                bar.update(task, description=f"int8 {s.name}")
                reports[-1]["int8"] = export_int8(s, data, arts)
            if fp16:
                bar.update(task, description=f"fp16 {s.name}")
                reports[-1]["fp16"] = export_fp16(s, data, arts)
            if fp16_io:
                bar.update(task, description=f"fp16-io {s.name}")
                reports[-1]["fp16-io"] = export_fp16(s, data, arts, io_float16=True)
            bar.advance(task)
    out.print(export_table(reports))
    if (vt := variant_export_table(reports)) is not None:
        out.print(vt)
    return reports


@app.command()
@guarded
def export(
    models: Models = None,
    profile: Annotated[Optional[str], typer.Option("--profile", help="paper, quick or smoke (default: the profile "
                                                   "whose checkpoints were written last).")] = None,
    seed: Seed = 0,
    dataset: Dataset = "mnist",
    int8: Annotated[bool, typer.Option("--int8", help="Also write the int8 QDQ variant (static quantization, "
                                       "calibrated on 1,000 training images).")] = False,
    fp16: Annotated[bool, typer.Option("--fp16", help="Also write the fp16 variant (ONNX Runtime's float16 "
                                       "converter; float32 inputs and outputs kept).")] = False,
    fp16_io: Annotated[bool, typer.Option("--fp16-io", help="Also write the fp16-io variant: fp16 with float16 "
                                          "inputs and outputs (callers feed float16).")] = False,
    data_dir: DataDir = None,
    artifacts_dir: ArtifactsDir = None,
) -> None:
    """Export trained checkpoints to ONNX (dynamic batch) and prove parity with PyTorch.

    Export fails unless top-1 agreement on 1,000 real test images is 100% and the
    largest logit difference is within 1e-4.

    Example: mnistbench export --profile quick --int8
    """
    profile = profile or _newest_profile(artifacts_dir, dataset, seed, "*.safetensors", "checkpoints")
    _do_export(models, profile, seed, dataset, data_dir, artifacts_dir, int8, fp16, fp16_io)


def _newest_profile(artifacts_dir: Path | None, dataset: str, seed: int, pattern: str, what: str) -> str:
    """The profile whose ``pattern`` artifacts were written last (said in one line when several exist)."""
    from mnistbench.bench.pipeline import artifacts_root, newest_profile, profiles_with

    root = artifacts_root(artifacts_dir)
    found = profiles_with(root, dataset, seed, pattern)
    chosen = newest_profile(root, dataset, seed, pattern)
    if len(found) > 1:
        err.print(f"profile {chosen}: the newest of {', '.join(found)} with {what} (--profile to choose)",
                  markup=False, highlight=False)
    return chosen


def _parse_ints(text: str, what: str, minimum: int, example: str) -> list[int]:
    vals = []
    for part in text.split(","):
        part = part.strip()
        try:
            v = int(part)
        except ValueError:
            raise UsageError(f"{what} {part!r} is not a whole number (use e.g. {example})") from None
        if v < minimum:
            raise UsageError(f"{what} must be at least {minimum}, got {v}")
        vals.append(v)
    return sorted(set(vals))


# A call's input is float32 (b, 1, 28, 28): 3,136 bytes an image. A batch whose input alone would take
# more than a quarter of free host memory (it is copied for the call, its outputs and the session's
# arena grow with it) is refused before any session is built.
IMAGE_BYTES = 4 * 28 * 28
MAX_THREADS_PER_CORE = 4  # more intra-op threads than this per logical core only oversubscribes


def _parse_batch_sizes(text: str) -> list[int]:
    import psutil

    sizes = _parse_ints(text, "batch size", 1, "--batch-sizes 1,8,32")
    free = psutil.virtual_memory().available
    for b in sizes:
        if b * IMAGE_BYTES > free / 4:
            raise UsageError(f"batch size {b:,} needs {b * IMAGE_BYTES / 2**30:,.1f} GiB for its input alone; "
                             f"this host has {free / 2**30:.1f} GiB free (largest batch allowed here: "
                             f"{int(free / 4 / IMAGE_BYTES):,})")
    return sizes


def _parse_threads(text: str) -> list[int]:
    from mnistbench.bench.runner import AUTO

    parts = [p.strip() for p in text.split(",")]
    nums = ",".join(p for p in parts if p.lower() != "auto")
    vals = ([AUTO] if any(p.lower() == "auto" for p in parts) else []) + (
        _parse_ints(nums, "thread count", 0, "--threads auto,1,2") if nums else [])
    import os

    most = MAX_THREADS_PER_CORE * (os.cpu_count() or 1)
    if max(vals, default=0) > most:
        raise UsageError(f"thread count {max(vals)} is more than {MAX_THREADS_PER_CORE} per logical core "
                         f"({os.cpu_count()} here): at most {most}")
    return vals


def _parse_spinning(text: str) -> list[bool | None]:
    table = {"default": None, "on": True, "off": False}
    vals = []
    for part in text.split(","):
        key = part.strip().lower()
        if key not in table:
            raise UsageError(f"--spinning takes default, on or off (comma-separated), not {part.strip()!r}")
        vals.append(table[key])
    return list(dict.fromkeys(vals))


def _parse_runtimes(values: list[str]) -> list[str]:
    from mnistbench.bench.runner import RUNTIMES

    rts = [r.strip().lower() for v in values for r in v.split(",") if r.strip()]
    for r in rts:
        if r not in RUNTIMES:
            raise UsageError(f"unknown runtime {r!r}; choose one of: {', '.join(RUNTIMES)}")
    return list(dict.fromkeys(rts))


def _row_variants(variant: str, precision: str, runtimes: list[str]) -> list[str]:
    """The row variants of ``run``: the ONNX files of ``--variant`` (fp32, int8, fp16, fp16-io) and the
    precisions of ``--precision`` other than fp32 (bf16: the fp32 file run at bf16 by the runtimes
    that take a precision). fp32 rows are kept only when fp32 is in both lists.

    Raises:
        UsageError: an unknown variant or precision; a precision that none of ``runtimes`` runs.
    """
    from mnistbench.bench.runner import PRECISIONS, RUNTIME_VARIANTS

    files = [v.strip() for v in variant.split(",") if v.strip()]
    precs = [p.strip().lower() for p in precision.split(",") if p.strip()]
    for v in files:
        if v not in VARIANTS:
            raise UsageError(f"unknown variant {v!r}; choose from {', '.join(VARIANTS)}")
    for p in precs:
        if p not in PRECISIONS:
            raise UsageError(f"unknown precision {p!r}; choose from {', '.join(PRECISIONS)}")
        if p != "fp32" and not any(p in RUNTIME_VARIANTS[r] for r in runtimes):
            raise UsageError(f"precision {p} needs --runtime openvino, torch or torch.compile "
                             f"(ONNX Runtime runs fp32; its int8 is --variant int8)")
    out = [v for v in files if v != "fp32" or "fp32" in precs] + [p for p in precs if p != "fp32"]
    if not out:
        raise UsageError("--variant and --precision leave nothing to run (fp32 rows need fp32 in both)")
    return list(dict.fromkeys(out))


def _check_runtime_providers(runtimes: list[str], provs: list[str]) -> list[str]:
    """Prove every requested (runtime, provider) usable before any work or any file; returns the
    providers to run. TensorRT that is not usable here is skipped with a one-line reason when other
    providers remain; any other unusable provider is an error."""
    from mnistbench.bench.runtime import check_provider
    from mnistbench.models.errors import ProviderUnavailableError

    keep = []
    for p in provs:
        if "onnxruntime" in runtimes:
            try:
                check_provider(p)
            except ProviderUnavailableError as exc:
                if p == "tensorrt" and len(provs) > 1:
                    err.print(f"tensorrt skipped: {exc}")
                    continue
                raise
        if "openvino" in runtimes:
            from mnistbench.bench.openvino_runtime import check_openvino  # optional extra

            if p == "cpu":
                check_openvino()
            elif runtimes == ["openvino"]:
                raise UsageError(f"the openvino runtime runs on cpu here, not {p!r}")
        if any(r.startswith("torch") for r in runtimes):
            if p not in ("cpu", "cuda") and "onnxruntime" not in runtimes:
                raise UsageError(f"the torch runtime runs on cpu or cuda, not {p!r}")
            import torch

            if p == "cuda" and not torch.cuda.is_available():
                raise ProviderUnavailableError("torch runtime on cuda: torch sees no CUDA device on this host")
        keep.append(p)
    return keep


def _run_options(**kw) -> dict:
    """Validate and parse the options of `run` (shared by `run` and `all`)."""
    from mnistbench.bench.runner import Axes

    if kw["repeat"] < 1:
        raise UsageError(f"--repeat must be at least 1, got {kw['repeat']}")
    if kw.get("max_live", 64) < 1:
        raise UsageError(f"--max-live-sessions must be at least 1, got {kw['max_live']}")
    from mnistbench.bench.runtime import IO_MODES, GpuOptions, SessionConfig, set_call_timeout, validate_config

    set_call_timeout(kw.get("call_timeout"))  # every ONNX Runtime call of this process (None: the default)

    provs, runtimes = _parse_providers(kw["provider"]), _parse_runtimes(kw["runtime"])
    modes = [m.strip() for m in kw.get("io_mode", "end-to-end").split(",") if m.strip()]
    if kw.get("cuda_graph"):
        modes.append("device-graph")
    modes = list(dict.fromkeys(modes)) or ["end-to-end"]
    for m in modes:
        if m not in IO_MODES:
            raise UsageError(f"unknown io mode {m!r}; choose from: {', '.join(IO_MODES)}")
    if modes != ["end-to-end"] and not set(provs) & {"cuda", "tensorrt"}:
        raise UsageError(f"--io-mode {','.join(modes)} needs --provider cuda or tensorrt; on cpu the host memory is "
                         "the device, so only end-to-end applies")
    if "device-graph" in modes and "cuda" not in provs:
        raise UsageError("--cuda-graph needs --provider cuda")
    gpu = GpuOptions(kw.get("device_id", 0), kw.get("cudnn_algo", "exhaustive"), kw.get("tf32", False))
    validate_config(SessionConfig("cpu", gpu=gpu))
    kw["axes"] = Axes(tuple(runtimes), tuple(provs), tuple(_parse_threads(kw["threads"])),
                      tuple(_parse_spinning(kw["spinning"])), tuple(_parse_batch_sizes(kw["batch_sizes"])),
                      tuple(modes), gpu)
    return kw


def _do_run(o: dict) -> list:
    """Benchmark with the options parsed by :func:`_run_options`."""
    from mnistbench.bench.pipeline import Artifacts, artifacts_root, onnx_for
    from mnistbench.bench.records import CsvAppender, writer_lock
    from mnistbench.bench.runner import PRECISIONS
    from mnistbench.models.registry import select

    axes = o["axes"]
    foreign = [Path(p) for p in o.get("onnx") or []]
    if foreign and (o["names"] or any(r.startswith("torch") for r in axes.runtimes)):
        raise UsageError("--onnx benchmarks the given files alone: name no registered models and no torch runtime")
    if foreign:
        from mnistbench.bench.foreign import inspect
        from mnistbench.models.preprocess import PREPROCESS_CHOICES

        if o["preprocess"] not in PREPROCESS_CHOICES:
            raise UsageError(f"unknown preprocess {o['preprocess']!r}; choose one of: {', '.join(PREPROCESS_CHOICES)}")
        foreign = [inspect(p, o["layout"]) for p in foreign]
    specs = [] if foreign else select(o["names"])
    if o["resume"] and (o["out_path"] is None or not o["out_path"].is_file()):
        raise UsageError("--resume needs --out naming the results CSV of the interrupted run")
    if o["resume"] and o["repeat"] > 1:
        raise UsageError("--resume completes one run; it cannot be combined with --repeat")
    import dataclasses

    keep = _check_runtime_providers(list(axes.runtimes), list(axes.providers))
    if keep != list(axes.providers):
        axes = o["axes"] = dataclasses.replace(axes, providers=tuple(keep))
    dataset, profile, seed = o["dataset"], o["profile"], o["seed"]
    arts = Artifacts(artifacts_root(o["artifacts_dir"]), dataset, profile, seed)
    variants = _row_variants(o.get("variant", "fp32"), o.get("precision", "fp32"), list(axes.runtimes))
    found = [(s, v, *onnx_for(s, arts, "fp32" if v in PRECISIONS else v, o.get("allow_stale", False)))
             for s in specs for v in variants]
    if o["resume"]:
        csv_path = o["out_path"]
    elif o["repeat_index"] is None:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        tag = "foreign" if foreign else profile
        csv_path = o["out_path"] or Path(o["results_dir"]) / f"{stamp}-{dataset}-{tag}-{'-'.join(axes.providers)}.csv"
        if csv_path.suffix != ".csv":
            raise UsageError(f"--out must name a .csv file, got {csv_path}")
        if csv_path.exists():
            raise UsageError(f"{csv_path} exists; choose another --out, or add --resume to complete it")
    else:
        csv_path = o["out_path"]
    sink = CsvAppender(csv_path)  # the results folder is creatable and writable, before any work
    if o["repeat_index"] is None:
        with writer_lock(csv_path):  # one writer per results file, for the whole run (repeats included)
            sink.check_appendable()
            return _run_locked(csv_path, o, specs, found, foreign, arts, axes)
    return _run_locked(csv_path, o, specs, found, foreign, arts, axes)


def _run_locked(csv_path: Path, o: dict, specs, found, foreign, arts, axes) -> list:
    from mnistbench.bench.pipeline import (NULL_MODEL, REFERENCE_MODEL, eval_inputs, null_model, reference_model,
                                           torch_builder)
    from mnistbench.bench.records import read_csv
    from mnistbench.bench.report import nonfinite_warning, results_table, stability_warning
    from mnistbench.bench.runner import Target, resume_keys, run_matrix
    from mnistbench.bench.system import gemm_peaks, hygiene, write_system_json
    from mnistbench.models.preprocess import preprocess

    dataset, profile, seed = o["dataset"], o["profile"], o["seed"]
    if o["repeat"] > 1:
        return _run_repeats(csv_path, o)
    data = _load_data(dataset, o["data_dir"])
    targets = []
    for s, variant, path, meta in found:
        x, y = eval_inputs(s, data)
        targets.append(Target(s.name, path, s.task, x, y, torch_builder(s, arts), s.flops, dataset,
                              meta.get("profile", profile), meta.get("seed", str(seed)), meta.get("checkpoint_sha256", ""),
                              variant=variant))
    for fm in foreign:
        from mnistbench.bench.foreign import foreign_inputs

        if fm.fixed_batch is not None:
            err.print(f"{fm.path.name}: fixed batch size {fm.fixed_batch}; it is run at that batch size only",
                      markup=False, highlight=False)
        targets.append(Target(fm.path.stem, fm.path, "classify", foreign_inputs(data.test_images, fm, o["preprocess"]),
                              data.test_labels.astype("int64"), None, None, dataset, "foreign", "",
                              fixed_batch=fm.fixed_batch, variant="foreign"))
    x_unit = eval_inputs(specs[0], data)[0] if specs else preprocess(data.test_images, "unit")
    if o["null"]:
        import torch

        targets.insert(0, Target(NULL_MODEL, null_model(arts.root), "null", x_unit, x_unit[:0], torch.nn.Identity, 0,
                                 dataset))
    if o.get("reference", True):
        targets.insert(0, Target(REFERENCE_MODEL, reference_model(arts.root), "reference", x_unit, x_unit[:0], None,
                                 None, dataset))
    done: set[str] = set()
    if o["resume"]:
        done = resume_keys(read_csv(csv_path), targets, csv_path)
    pinned = _pin_cpus(o.get("pin_cpus"))
    peak = gemm_peaks(axes.providers)
    before = hygiene()
    with _progress() as bar:
        task = bar.add_task("run", total=None)
        rows = run_matrix(targets, axes, csv_path, timing=o["timing"], peak_gflops=peak,
                          repeat=o["repeat_index"] or 0, shuffle_seed=o["shuffle_seed"], done=done,
                          score=o.get("score", True), max_live=o.get("max_live", 64), pinned_cpus=pinned,
                          auto_cache=arts.root / "threads-auto.json",
                          progress=lambda d, n, tot: bar.update(task, description=d, completed=n, total=tot))
    if o["repeat_index"] is not None:
        return rows
    system_path = csv_path.with_suffix(".system.json")
    write_system_json(system_path, {"results_csv": csv_path.name, "command": " ".join(sys.argv),
                                    "gemm_peak_gflops": peak["cpu"], "gemm_peak_gflops_cuda": peak.get("cuda"),
                                    "pinned_cpus": pinned, "machine_before": before, "machine_after": hygiene()})
    if o["resume"]:
        out.print(f"resumed: {len(done)} cells were already in {csv_path.name}, "
                  f"{len([r for r in rows if r.task != 'reference'])} measured now")
        rows = read_csv(csv_path)
    shown = [r for r in rows if r.task != "reference"]
    out.print(results_table(shown))
    if len({r.variant for r in shown if r.model != NULL_MODEL}) > 1:
        from mnistbench.bench.report import variant_table

        out.print(variant_table(shown))
    warn = stability_warning(rows)
    if warn:
        err.print(warn, markup=False, highlight=False)
    if nonfinite := nonfinite_warning(rows):
        err.print(nonfinite, markup=False, highlight=False)
    out.print(f"{len(rows)} rows -> {csv_path}  (system: {system_path.name}, raw samples: {csv_path.stem}.samples/)")
    failed = [r for r in rows if r.status != "ok"]
    if failed:
        raise MnistBenchError(f"{len(failed)} of {len(rows)} cells failed and were recorded as error rows; "
                              f"first: {failed[0].model}/{failed[0].runtime}/{failed[0].provider}: {failed[0].error}")
    return rows


def _pin_cpus(text: str | None) -> str:
    """Pin this process to the CPUs in ``text`` (``0,2-3``); returns the affinity as a list, '' when not asked.

    Raises:
        UsageError: a malformed list, or CPUs this process may not run on.
    """
    if not text:
        return ""
    import os

    cpus: set[int] = set()
    try:
        for part in text.split(","):
            lo, _, hi = part.strip().partition("-")
            cpus.update(range(int(lo), int(hi or lo) + 1))
    except ValueError:
        raise UsageError(f"--pin-cpus takes a list such as 0,2-3, got {text!r}") from None
    allowed = os.sched_getaffinity(0)
    if not cpus or not cpus <= allowed:
        raise UsageError(f"--pin-cpus {text}: this process may run on CPUs {sorted(allowed)} only")
    os.sched_setaffinity(0, cpus)
    return ",".join(map(str, sorted(cpus)))


def _run_repeats(csv_path: Path, o: dict) -> list:
    """Run the whole matrix ``repeat`` times, each in a fresh process and in shuffled order."""
    import subprocess

    from mnistbench.bench.records import read_csv
    from mnistbench.bench.report import repeat_spread_table, results_table
    from mnistbench.bench.system import gemm_peaks, write_system_json

    t = o["timing"]
    base = [sys.executable, "-m", "mnistbench.bench.cli", "run", *(o["names"] or []),
            "--provider", ",".join(o["provider"]), "--runtime", ",".join(o["runtime"]),
            "--batch-sizes", o["batch_sizes"], "--threads", o["threads"], "--spinning", o["spinning"],
            "--profile", o["profile"], "--seed", str(o["seed"]), "--dataset", o["dataset"],
            "--warmup-iters", str(t.warmup_iters), "--warmup-s", str(t.warmup_s), "--min-iters", str(t.min_iters),
            "--min-s", str(t.min_s), "--rounds", str(t.rounds), "--max-live-sessions", str(o.get("max_live", 64)),
            "--out", str(csv_path), "--null" if o["null"] else "--no-null",
            "--reference" if o.get("reference", True) else "--no-reference",
            "--score" if o.get("score", True) else "--no-score", "--variant", o.get("variant", "fp32"),
            "--precision", o.get("precision", "fp32"),
            "--io-mode", ",".join(o["axes"].io_modes), "--cudnn-algo", o["axes"].gpu.cudnn_conv_algo_search,
            "--tf32" if o["axes"].gpu.tf32 else "--no-tf32", "--device-id", str(o["axes"].gpu.device_id),
            *(["--allow-stale"] if o.get("allow_stale") else []),
            *(["--call-timeout", str(o["call_timeout"])] if o.get("call_timeout") is not None else [])]
    for flag, key in (("--data-dir", "data_dir"), ("--artifacts-dir", "artifacts_dir")):
        if o[key] is not None:
            base += [flag, str(o[key])]
    if o.get("pin_cpus"):
        base += ["--pin-cpus", o["pin_cpus"]]
    for i in range(o["repeat"]):
        err.print(f"repeat {i + 1}/{o['repeat']} (fresh process, shuffle seed {i})")
        child = subprocess.run([*base, "--repeat-index", str(i), "--shuffle-seed", str(i)])
        if child.returncode != 0:
            raise MnistBenchError(f"repeat {i + 1} failed (exit {child.returncode}); rows so far are in {csv_path}")
    rows = read_csv(csv_path)
    peak = gemm_peaks(o["axes"].providers)
    write_system_json(csv_path.with_suffix(".system.json"), {
        "results_csv": csv_path.name, "command": " ".join(sys.argv), "gemm_peak_gflops": peak["cpu"],
        "gemm_peak_gflops_cuda": peak.get("cuda")})
    out.print(results_table([r for r in rows if r.repeat == 0], "Benchmark summary (repeat 1)"))
    out.print(repeat_spread_table(rows))
    out.print(f"{len(rows)} rows -> {csv_path}")
    return rows


@app.command()
@guarded
def run(
    ctx: typer.Context,
    models: Models = None,
    provider: Annotated[list[str], typer.Option(
        "--provider", help="Execution provider(s): cpu, cuda, tensorrt (repeat or comma-separate).")] = ["cpu"],
    runtime: Annotated[list[str], typer.Option(
        "--runtime", help="onnxruntime, torch (PyTorch eager, the baseline), torch.compile and/or openvino "
        "(pip install -e \".[openvino]\"); comma-separate.")] = ["onnxruntime"],
    batch_sizes: Annotated[str, typer.Option("--batch-sizes", help="Comma-separated batch sizes.")] = "1,8,32,128,512",
    profile: Annotated[Optional[str], typer.Option("--profile", help="paper, quick or smoke (default: the profile "
                                                   "whose ONNX exports were written last).")] = None,
    seed: Seed = 0,
    dataset: Dataset = "mnist",
    warmup_iters: Annotated[int, typer.Option(help="Untimed warm-up calls per cell (at least).")] = WARMUP_ITERS,
    warmup_s: Annotated[float, typer.Option(help="Warm-up seconds per cell (at least).")] = WARMUP_S,
    min_iters: Annotated[int, typer.Option(help="Timed calls per cell (at least).")] = MIN_ITERS,
    min_s: Annotated[float, typer.Option(help="Timed seconds per cell (at least).")] = MIN_S,
    rounds: Annotated[int, typer.Option(
        help="Interleaved rounds: each visits every cell once, in a fresh random order, for one block of "
             "min-s/rounds seconds; a cell's confidence intervals come from its blocks.")] = ROUNDS,
    max_live_sessions: Annotated[int, typer.Option(
        "--max-live-sessions", help="Sessions kept alive and interleaved at once; a larger matrix is measured in "
        "groups of this size (recorded per row).")] = 64,
    pin_cpus: Annotated[Optional[str], typer.Option(
        "--pin-cpus", help="Run the benchmark process on these CPUs only, e.g. 0,1 or 2-3 (affinity; no root "
        "needed).")] = None,
    reference: Annotated[bool, typer.Option(
        "--reference/--no-reference", help="Measure the fixed reference network in every group, so `compare` "
        "can correct for drift of the machine between runs.")] = True,
    threads: Annotated[str, typer.Option(
        help="Intra-op threads, comma-separated to sweep: auto (per cell, the faster of 1 and one per physical "
             "core in a short probe), 0 (the runtime's own choice) or a number.")] = DEFAULT_THREADS,
    spinning: Annotated[str, typer.Option(
        help="ONNX Runtime intra-op spinning: default, on, off (comma-separated to sweep).")] = DEFAULT_SPINNING,
    null: Annotated[bool, typer.Option("--null/--no-null", help="Also measure the null model (overhead floor).")] = True,
    score: Annotated[bool, typer.Option("--score/--no-score", help="Score the full test set (accuracy, agreement); "
                                        "--no-score for timing-only sweeps.")] = True,
    repeat: Annotated[int, typer.Option(help="Run the whole matrix N times, each in a fresh process, shuffled.")] = 1,
    shuffle_seed: Annotated[Optional[int], typer.Option(help="Shuffle the cell order with this seed.")] = None,
    repeat_index: Annotated[Optional[int], typer.Option(hidden=True)] = None,
    resume: Annotated[bool, typer.Option(
        "--resume", help="Complete an interrupted run: measure only the cells missing from --out.")] = False,
    variant: Annotated[str, typer.Option(
        help="Model variants, comma-separated: fp32, int8, fp16, fp16-io (export them with --int8 / --fp16 / "
             "--fp16-io).")] = "fp32",
    precision: Annotated[str, typer.Option(
        help="Inference precisions of the fp32 file, comma-separated: fp32, bf16 (OpenVINO's precision hint, "
             "PyTorch's bf16 autocast; rows get variant bf16; ONNX Runtime runs fp32 only).")] = "fp32",
    onnx: Annotated[Optional[list[Path]], typer.Option(
        "--onnx", help="Benchmark this MNIST classifier instead of registered models (repeatable).")] = None,
    layout: Annotated[str, typer.Option(help="Input layout of --onnx models: auto, nchw, nhwc, flat, hw.")] = "auto",
    preprocess: Annotated[str, typer.Option(
        help="Input scaling of --onnx models: unit [0,1], mnist-norm, signed [-1,1], raw 0-255.")] = "unit",
    results_dir: Annotated[Path, typer.Option(help="Folder for the results CSV and system JSON.")] = Path("results"),
    out_path: Annotated[Optional[Path], typer.Option(
        "--out", help="Exact CSV path (must not exist, unless --resume).")] = None,
    io_mode: Annotated[str, typer.Option(
        "--io-mode", help="GPU rows, comma-separated: end-to-end (host arrays in and out) and/or device (IO binding, "
        "data resident on the GPU, transfers excluded).")] = "end-to-end",
    cuda_graph: Annotated[bool, typer.Option(
        "--cuda-graph", help="Also run device mode as one captured CUDA graph per batch size (CUDA EP).")] = False,
    cudnn_algo: Annotated[str, typer.Option(
        "--cudnn-algo", help="cuDNN convolution algorithm search: exhaustive (ONNX Runtime's default), heuristic, "
        "default. Its cost falls in each cell's warm-up.")] = "exhaustive",
    tf32: Annotated[bool, typer.Option("--tf32/--no-tf32", help="Allow TF32 math for fp32 on CUDA (off: fp32 "
                                       "parity with PyTorch).")] = False,
    device_id: Annotated[int, typer.Option("--device-id", help="CUDA device ordinal.")] = 0,
    executor: Executor = "local",
    nodes: Annotated[str, typer.Option("--nodes", help="--executor ray: the nodes to benchmark on, one at a time "
                                       "each: all, a count, or label=KEY=VALUE.")] = "all",
    address: RayAddress = None,
    allow_stale: Annotated[bool, typer.Option(
        "--allow-stale", help="Benchmark exported files even when they do not come from the current checkpoint "
        "(retrained since, or another network saved under the model's name).")] = False,
    call_timeout: Annotated[Optional[float], typer.Option(
        "--call-timeout", help="Seconds one ONNX Runtime call may take before it is ended and its cell recorded "
        "as an error row (0: no limit; default 60).", show_default=False)] = None,
    data_dir: DataDir = None,
    artifacts_dir: ArtifactsDir = None,
) -> None:
    """Benchmark exported models: accuracy on the full test set, latency and throughput per batch size.

    Each cell confirms from the session itself that the requested execution
    provider is the one in use; a provider that is not really usable is an
    error before any row is written.

    Example: mnistbench run --provider cpu --batch-sizes 1,32,512 --profile quick --runtime onnxruntime,torch
    """
    from mnistbench.bench.timing import TimingConfig

    _check_executor(executor)
    if profile is None:
        profile = "foreign" if onnx else _newest_profile(artifacts_dir, dataset, seed, "*.onnx", "exports")
    opts = _run_options(
        names=models, provider=provider, runtime=runtime, batch_sizes=batch_sizes, profile=profile, seed=seed,
        dataset=dataset, timing=TimingConfig(warmup_iters, warmup_s, min_iters, min_s, rounds), threads=threads,
        spinning=spinning, null=null, repeat=repeat, max_live=max_live_sessions, pin_cpus=pin_cpus,
        reference=reference, shuffle_seed=shuffle_seed, repeat_index=repeat_index,
        resume=resume, score=score, variant=variant, precision=precision, onnx=onnx, layout=layout, preprocess=preprocess,
        results_dir=results_dir, out_path=out_path, io_mode=io_mode, cuda_graph=cuda_graph, cudnn_algo=cudnn_algo,
        tf32=tf32, device_id=device_id, data_dir=data_dir, artifacts_dir=artifacts_dir, allow_stale=allow_stale,
        call_timeout=call_timeout)
    if executor == "ray":
        _run_on_ray(ctx, nodes, address, results_dir, out_path, resume)
    else:
        _do_run(opts)


def _check_executor(executor: str) -> None:
    if executor not in ("local", "ray"):
        raise UsageError(f"unknown executor {executor!r}; choose local or ray")


def _run_on_ray(ctx: typer.Context, nodes: str, address: str | None, results_dir: Path, out_path: Path | None,
                resume: bool) -> None:
    """`run --executor ray`: the same command on each selected node, files gathered here."""
    from mnistbench.bench import ray_executor as rx

    if out_path is not None or resume:
        raise UsageError("--executor ray writes <results-dir>/<run-id>/<host>.csv; --out and --resume are for one host")
    args = rx.run_args(ctx)
    with rx.RayCluster(address) as cluster:
        chosen = cluster.select_nodes(nodes)
        err.print(f"benchmarking on {len(chosen)} node(s), one at a time each: "
                  + ", ".join(n["NodeManagerHostname"] for n in chosen))
        folder, results = cluster.run_on_nodes(
            chosen, args, results_dir, on_done=lambda r: err.print(f"  {r.key}: exit {r.returncode}"))
    rx.manifest(folder, args, results)
    out.print(rx.describe(results, folder), markup=False, highlight=False)
    out.print(f"merged report: mnistbench report {folder}", markup=False, highlight=False)
    rx.check_failures(results)


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
    from mnistbench.bench.timing import TimingConfig
    from mnistbench.models.registry import select

    select(models)  # unknown names fail here, before any work
    opts = _run_options(
        names=models, provider=provider, runtime=["onnxruntime"], batch_sizes=batch_sizes, profile=profile,
        seed=seed, dataset=dataset, timing=TimingConfig(), threads=DEFAULT_THREADS, spinning=DEFAULT_SPINNING,
        null=True, repeat=1, shuffle_seed=None, repeat_index=None, resume=False, results_dir=results_dir, out_path=None,
        data_dir=data_dir, artifacts_dir=artifacts_dir)
    import dataclasses

    keep = _check_runtime_providers(["onnxruntime"], list(opts["axes"].providers))
    opts["axes"] = dataclasses.replace(opts["axes"], providers=tuple(keep))
    t0 = time.perf_counter()
    _do_train(models, profile, device, seed, dataset, data_dir, artifacts_dir)
    t1 = time.perf_counter()
    _do_export(models, profile, seed, dataset, data_dir, artifacts_dir)
    t2 = time.perf_counter()
    _do_run(opts)
    t3 = time.perf_counter()
    out.print(f"wall time: train {t1 - t0:.0f} s, export {t2 - t1:.0f} s, run {t3 - t2:.0f} s, total {t3 - t0:.0f} s")


def _new_csv(path: Path, hint: str = "") -> Path:
    """``path`` checked as a new CSV to write: a ``.csv`` name, not there yet, its folder created.

    Raises:
        UsageError: another suffix, an existing file, or a folder that cannot be created.
    """
    if path.suffix != ".csv":
        raise UsageError(f"--out must name a .csv file, got {path}")
    if path.exists():
        raise UsageError(f"{path} exists; choose another --out{hint}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create {path.parent}: {exc.strerror}") from None
    return path


@app.command()
@guarded
def reproduce(
    models: Models = None,
    seeds: Annotated[int, typer.Option("--seeds", help="Runs per model, seeds 0..N-1 (the papers' 'mean of 10 "
                                       "runs' needs 10).")] = 3,
    profile: _profile_opt("paper") = "paper",
    device: Device = "auto",
    dataset: Dataset = "mnist",
    ae_study: Annotated[bool, typer.Option("--ae-study/--no-ae-study", help="Also train both autoencoders at the "
                                           "same settings on [0,1] and [-1,1] inputs.")] = True,
    reduce_on_cpu: Annotated[bool, typer.Option("--reduce-on-cpu/--full-on-cpu", help="On a CPU, run recipes "
                                                "marked infeasible there (fan-resnet's 30 epochs) with their quick "
                                                "recipe, labelled reduced.")] = True,
    out_path: Annotated[Optional[Path], typer.Option("--out", help="Runs CSV to write (default "
                                                     "results/reproduce/<UTC stamp>-<dataset>-<profile>.csv).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Complete the --out CSV: train only the runs it lacks "
                                         "(more seeds or models may be added), then rewrite its table.")] = False,
    results_dir: Annotated[Path, typer.Option(help="Folder for the runs CSV, its table and system JSON.")] =
        Path("results") / "reproduce",
    executor: Executor = "local",
    address: RayAddress = None,
    max_retries: Annotated[int, typer.Option("--max-retries", help="--executor ray: retries of a run whose worker "
                                             "died (crash, out of memory); then it is an error row.")] = 2,
    cpus_per_run: Annotated[float, typer.Option("--cpus-per-run", help="--executor ray: CPUs each run holds (its "
                                                "torch threads).")] = 2.0,
    data_dir: DataDir = None,
    artifacts_dir: ArtifactsDir = None,
) -> None:
    """Train each model with its paper's recipe over several seeds and compare with the paper's claim.

    Writes one CSV row per finished run (so an interrupted reproduction keeps its runs), then a
    markdown table beside it: claim, mean ± sd, min–max, verdict. On a CPU, fan-resnet runs a stated
    reduced budget unless --full-on-cpu.

    Example: mnistbench reproduce --seeds 3 ; mnistbench reproduce zhu-mlp zhu-cnn --seeds 10 --resume --out X.csv
    """
    from mnistbench.models.registry import select
    from mnistbench.models.train import resolve_device

    _check_executor(executor)
    if max_retries < 0:
        raise UsageError(f"--max-retries must be at least 0, got {max_retries}")
    if cpus_per_run <= 0:
        raise UsageError(f"--cpus-per-run must be positive, got {cpus_per_run}")
    specs = select(models)
    if executor == "ray":
        from mnistbench.bench.ray_executor import RayCluster

        with RayCluster(address) as cluster:
            cluster.check_cpus_per_run(cpus_per_run)
            _reproduce(specs, seeds, profile, cluster.device(device), dataset, ae_study, reduce_on_cpu, out_path,
                       resume, results_dir, data_dir, artifacts_dir, cluster, max_retries, cpus_per_run)
    else:
        _reproduce(specs, seeds, profile, resolve_device(device), dataset, ae_study, reduce_on_cpu, out_path,
                   resume, results_dir, data_dir, artifacts_dir)


def _reproduce(specs, seeds, profile, dev, dataset, ae_study, reduce_on_cpu, out_path, resume, results_dir,
               data_dir, artifacts_dir, cluster=None, max_retries=0, cpus_per_run=1.0) -> None:
    from mnistbench.bench import reproduce as rp
    from mnistbench.bench.pipeline import artifacts_root
    from mnistbench.bench.system import git_commit, write_system_json

    runs = rp.plan(specs, seeds, profile, dev, reduce_on_cpu, ae_study)
    if resume:
        if out_path is None:
            raise UsageError("--resume needs --out: the runs CSV to complete")
        old = rp.read_runs(out_path)
        other = {(r["dataset"], r["profile"]) for r in old if r["experiment"] == "paper" and not r["reduced"]}
        if other and (dataset, profile) not in other:
            raise UsageError(f"{out_path} holds {sorted(other)[0][0]}/{sorted(other)[0][1]} runs; "
                             f"it cannot be completed with --dataset {dataset} --profile {profile}")
        have = {rp.run_key(r) for r in old if rp.is_ok(r)}  # error rows are trained again
        runs = [r for r in runs if r.key not in have]
        csv_path = out_path
    else:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        csv_path = _new_csv(out_path or results_dir / f"{stamp}-{dataset}-{profile}.csv", ", or add --resume to complete it")
    data = _load_data(dataset, data_dir)
    sink = rp.runs_csv(csv_path)
    system_path = csv_path.with_suffix(".system.json")
    if not system_path.exists():
        write_system_json(system_path, {"command": "reproduce", "dataset": dataset, "profile": profile,
                                        "device": str(dev), "executor": "ray" if cluster else "local"})
    err.print(f"{len(runs)} runs to train -> {csv_path}" + (" (Ray tasks)" if cluster else ""))
    commit = git_commit()
    with _progress() as bar:
        task = bar.add_task("reproduce", total=None)

        def on_start(run, i, n):
            label = f"[{i + 1}/{n}] {run.model}{' ' + run.scale if run.scale else ''} seed {run.seed}"

            def cb(step, total, stage):
                bar.update(task, completed=step, total=total, description=f"{label} [{stage}]")

            return cb

        def on_done(row):
            if not rp.is_ok(row):
                bar.console.print(f"  {row['model']} {row['scale']} seed {row['seed']}: error: {row['error']}",
                                  markup=False, highlight=False)
                return
            metric = float(row["final"])
            shown = f"{metric:.2%}" if row["metric"] == "accuracy" else f"MSE {metric:.4f}"
            bar.console.print(f"  {row['model']} {row['scale']} seed {row['seed']}: {shown} in {row['wall_s']} s")

        if cluster is None:
            rp.run_all(runs, data, dev.type, sink, artifacts_root(artifacts_dir), on_start, on_done, commit)
        else:
            bar.update(task, total=len(runs), description=f"reproduce: {len(runs)} Ray tasks")

            def on_done_ray(row):
                on_done(row)
                bar.advance(task)

            cluster.reproduce(runs, data, dev, sink, artifacts_root(artifacts_dir), max_retries=max_retries,
                              cpus_per_run=cpus_per_run, on_done=on_done_ray, commit=commit)
    rows = rp.read_runs(csv_path) if csv_path.exists() else []
    if not rows:
        raise UsageError("nothing was trained")
    md = csv_path.with_suffix(".md")
    rp.write_markdown(md, rows, [csv_path.name])
    print(rp.markdown(rows))
    out.print(f"runs: {csv_path}  table: {md}")
    finished = {rp.run_key(r) for r in rows if rp.is_ok(r)}
    failed = {rp.run_key(r): r for r in rows if not rp.is_ok(r) and rp.run_key(r) not in finished}
    if failed:
        first = next(iter(failed.values()))
        raise MnistBenchError(f"{len(failed)} run(s) failed and were recorded as error rows (--resume trains them "
                              f"again); first: {first['model']} seed {first['seed']}: {first['error']}")


@app.command()
@guarded
def speedrun(
    model: Annotated[str, typer.Argument(help="A registered classifier (default speed-cnn, the model designed "
                                         "for it).")] = "speed-cnn",
    seeds: Annotated[int, typer.Option("--seeds", help="Runs, seeds 0..N-1.")] = 5,
    target: Annotated[float, typer.Option("--target", help="Test accuracy to reach (fraction), judged on the "
                                          "mean over seeds.")] = 0.99,
    epochs: Annotated[Optional[int], typer.Option("--epochs", help="Override the recipe's epoch count.")] = None,
    profile: _profile_opt("paper") = "paper",
    device: Device = "auto",
    dataset: Dataset = "mnist",
    out_path: Annotated[Optional[Path], typer.Option("--out", help="CSV to write (default results/speedrun/"
                                                     "<UTC stamp>-<dataset>-<model>-<device>.csv).")] = None,
    amp: Amp = "off",
    channels_last: ChannelsLast = False,
    data_dir: DataDir = None,
) -> None:
    """Time-to-accuracy: train a model once per seed and report training wall time and test accuracy.

    The clock covers model construction through the last optimiser step. Excluded, and said in
    the output: data loading and preprocessing, one untimed 10-step warm-up per process, and the
    test evaluation.

    Example: mnistbench speedrun speed-cnn --seeds 5 --target 0.99
    """
    import csv
    import io

    from rich.table import Table

    from mnistbench.bench import speedrun as sr
    from mnistbench.bench.system import write_system_json
    from mnistbench.models.checkpoint import atomic_write_bytes
    from mnistbench.models.registry import get_spec
    from mnistbench.models.train import resolve_device

    spec = get_spec(model)
    if not 0 < target <= 1:
        raise UsageError(f"--target is a fraction in (0, 1], got {target}")
    dev = resolve_device(device)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    csv_path = _new_csv(out_path or Path("results") / "speedrun" / f"{stamp}-{dataset}-{spec.name}-{dev.type}.csv")
    t_load = time.perf_counter()
    data = _load_data(dataset, data_dir)
    load_s = time.perf_counter() - t_load
    import torch

    err.print(f"{spec.name} on {dev.type} ({torch.get_num_threads()} torch threads): "
              f"{spec.recipe_for(profile).describe()}; data loaded in {load_s:.1f} s (not timed)")
    results = sr.speedrun(spec, data, seeds, device, epochs, profile,
                          on_result=lambda r: err.print(f"  seed {r.seed}: {r.accuracy:.2%} in {r.train_s:.2f} s"),
                          amp=amp, channels_last=channels_last)
    summ = sr.summarize(results, target)
    t = Table(title=f"speedrun {spec.name} ({dataset}, {dev.type}): train seconds and test accuracy per seed",
              title_justify="left")
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
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["model", "dataset", "device", "torch_threads", "recipe", "amp", "channels_last", "seed", "train_s",
                "steps", "accuracy", "eval_s", "target"])
    recipe = spec.recipe_for(profile) if epochs is None else None
    desc = recipe.describe() if recipe else f"{spec.recipe_for(profile).describe()} (epochs overridden: {epochs})"
    for r in results:
        w.writerow([spec.name, dataset, dev.type, torch.get_num_threads(), desc, amp, channels_last, r.seed,
                    f"{r.train_s:.4f}", r.steps,
                    f"{r.accuracy:.6f}", f"{r.eval_s:.3f}", target])
    atomic_write_bytes(csv_path, buf.getvalue().encode())
    write_system_json(csv_path.with_suffix(".system.json"), {"command": "speedrun", "device": str(dev),
                                                             "data_load_s": round(load_s, 2)})
    out.print(f"runs: {csv_path}")


def _calibrate(trials: int, folder: Path, profile: str | None, data_dir: Path | None, artifacts_dir: Path | None):
    from mnistbench.bench import calibrate as cal
    from mnistbench.bench.pipeline import Artifacts, artifacts_root, newest_profile, onnx_for
    from mnistbench.models.preprocess import preprocess
    from mnistbench.models.registry import get_spec

    if trials < 1:
        raise UsageError(f"--trials must be at least 1, got {trials}")
    root = artifacts_root(artifacts_dir)
    arts = Artifacts(root, "mnist", profile or newest_profile(root), 0)
    configs = [cal.Config(n, onnx_for(get_spec(n), arts)[0], b) for n, b in (("lenet5", 1), ("lenet5", 32),
                                                                           ("rich-cnn", 32))]
    x = preprocess(_load_data("mnist", data_dir).test_images[:512], "mnist-norm")
    cal.study(configs, x, folder, trials, data_dir, progress=lambda m: err.print(m, markup=False, highlight=False))
    out.print((folder / "summary.md").read_text(), markup=False, highlight=False)


def _check_defaults(models: list[str] | None, rounds: int, out_path: Path | None) -> None:
    import csv
    import io
    import tempfile


    from mnistbench.bench import doctor as doc
    from mnistbench.bench.system import write_system_json
    from mnistbench.exporters.onnx import export_onnx
    from mnistbench.models.checkpoint import atomic_write_bytes
    from mnistbench.models.registry import select

    if rounds < 3:
        raise UsageError(f"--rounds must be at least 3, got {rounds}")
    if out_path is not None and out_path.suffix != ".csv":
        raise UsageError(f"--out must name a .csv file, got {out_path}")
    specs = select(models)
    results = []
    with tempfile.TemporaryDirectory(prefix="mnistbench-defaults-") as tmp, _progress() as bar:
        task = bar.add_task("defaults check", total=len(specs) * len(doc.SWEEP_BATCHES))
        for s in specs:
            path = Path(tmp) / f"{s.name}.onnx"
            export_onnx(s.build().eval(), s, path, {"note": "random weights, for timing only"})
            for b in doc.SWEEP_BATCHES:
                bar.update(task, description=f"defaults check {s.name} batch {b}")
                results.append(doc.check_defaults(path, s.name, b, rounds))
                bar.advance(task)
    out.print(_defaults_table(results))
    if out_path is not None:
        buf = io.StringIO()
        w = csv.writer(buf)
        labels = list(results[0].median_ips)
        w.writerow(["model", "batch_size", "default_threads", *[f"ips_{k}" for k in labels], "best", "ratio", "rounds"])
        for r in results:
            w.writerow([r.model, r.batch_size, r.default_threads, *(f"{r.median_ips[k]:.1f}" for k in labels),
                        r.best, f"{r.ratio:.4f}", r.rounds])
        out_path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(out_path, buf.getvalue().encode())
        write_system_json(out_path.with_suffix(".system.json"), {"command": "doctor --check-defaults"})
        out.print(f"figures: {out_path}")


def _defaults_table(results):
    """The defaults-check figures as a rich table, with the summary in its caption."""
    from rich.table import Table

    labels = list(results[0].median_ips)
    rounds = results[0].rounds
    t = Table(title=f"Default session options against the threads x spinning sweep (median img/s of {rounds} "
                    "interleaved blocks; random weights)", title_justify="left",
              caption="choice = the sweep configuration with the default's settings / best; A/A = the default's own "
                      "session / that identical configuration (measurement spread)", caption_justify="left")
    for col in ("model", "batch", "auto chose", *labels, "best", "default / best", "choice / best", "A/A"):
        t.add_column(col, justify="left" if col in ("model", "best") else "right")
    for r in results:
        t.add_row(r.model, str(r.batch_size), f"{r.default_threads} thr", *(f"{r.median_ips[k]:,.0f}" for k in labels),
                  r.best, ("[red]" if r.ratio < 0.95 else "") + f"{r.ratio:.3f}",
                  ("[red]" if r.choice_ratio < 0.95 else "") + f"{r.choice_ratio:.3f}", f"{r.aa_ratio:.3f}")
    n = len(results)
    worst, worst_choice = min(results, key=lambda r: r.ratio), min(results, key=lambda r: r.choice_ratio)
    aa = [r.aa_ratio for r in results]
    t.caption += (f"\n{sum(r.ratio >= 0.95 for r in results)} of {n} cells have the default's session at >= 95% of the "
                  f"best (worst {worst.ratio:.1%}, {worst.model} batch {worst.batch_size}); the default's settings are "
                  f"at >= 95% in {sum(r.choice_ratio >= 0.95 for r in results)} of {n} (worst {worst_choice.choice_ratio:.1%},"
                  f" {worst_choice.model} batch {worst_choice.batch_size}); identical sessions measured "
                  f"{min(aa):.3f}-{max(aa):.3f} of each other")
    return t


@app.command()
@guarded
def doctor(
    sweep: Annotated[bool, typer.Option("--sweep/--no-sweep", help="Run the threads x spinning sweep.")] = True,
    min_s: Annotated[float, typer.Option(help="Timed seconds per sweep cell (at least).")] = 0.5,
    check_defaults: Annotated[bool, typer.Option(
        "--check-defaults", help="Instead: measure the default session options against every threads x spinning "
        "configuration for each model at batch 1 and 128, in interleaved blocks in one process.")] = False,
    models: Annotated[Optional[list[str]], typer.Option("--model", help="Models for --check-defaults (repeatable; "
                                                        "default every registered model).")] = None,
    rounds: Annotated[int, typer.Option(help="--check-defaults: blocks per configuration.")] = 15,
    out_path: Annotated[Optional[Path], typer.Option("--out", help="--check-defaults: also write the figures to "
                                                     "this CSV (with a .system.json beside it).")] = None,
    calibrate: Annotated[bool, typer.Option(
        "--calibrate", help="Instead: the calibration study of `compare` (planted 0-20% slowdowns of lenet5 at "
        "batch 1 and 32 and rich-cnn at batch 32, separate runs and --live, --trials times each).")] = False,
    trials: Annotated[int, typer.Option(help="--calibrate: repetitions of each comparison.")] = 20,
    calibration_dir: Annotated[Path, typer.Option(help="--calibrate: output folder.")] = Path("results/calibration"),
    profile: Annotated[Optional[str], typer.Option("--profile", help="--calibrate: artifacts profile (default: the "
                                                   "newest that exists).")] = None,
    data_dir: DataDir = None,
    artifacts_dir: ArtifactsDir = None,
) -> None:
    """Check what this machine can really run: providers (by creating sessions), the GEMM peak,
    the null-model overhead floor, and the best thread settings for ONNX Runtime on this CPU.

    Example: mnistbench doctor ; mnistbench doctor --check-defaults --out results/defaults.csv
    """
    import tempfile

    if check_defaults:
        _check_defaults(models, rounds, out_path)
        return
    if calibrate:
        _calibrate(trials, calibration_dir, profile, data_dir, artifacts_dir)
        return

    from rich.table import Table

    from mnistbench.bench import doctor as doc
    from mnistbench.bench.pipeline import artifacts_root
    from mnistbench.bench.system import describe_system, gemm_peak_gflops
    from mnistbench.bench.timing import TimingConfig

    sysinfo = describe_system()
    out.print(f"{sysinfo['cpu_model']}: {sysinfo['cpu_physical_cores']} physical / {sysinfo['cpu_logical_cores']} "
              f"logical cores, {sysinfo['memory_total_gib']} GiB; ONNX Runtime {sysinfo['onnxruntime']}, "
              f"torch {sysinfo['torch']}")
    prov = Table(title="Execution providers (proven by creating a session)", title_justify="left")
    prov.add_column("provider")
    prov.add_column("status")
    for name, status in doc.provider_status().items():
        prov.add_row(name, "[green]usable[/]" if status == "usable" else status)
    out.print(prov)
    timing = TimingConfig(warmup_iters=5, warmup_s=0.1, min_iters=20, min_s=min_s)
    root = artifacts_root(artifacts_dir)
    out.print(f"GEMM probe (fp32, torch.mm 1024x1024): {gemm_peak_gflops():.0f} GFLOP/s")
    import torch

    if torch.cuda.is_available():
        out.print(f"GPU GEMM probe (fp32, TF32 off, torch.mm 4096x4096 on {torch.cuda.get_device_name()}): "
                  f"{gemm_peak_gflops(device='cuda'):.0f} GFLOP/s")
    out.print(f"null-model floor (ONNX Identity, batch 1, CPU EP, defaults): p50 {doc.null_floor_us(timing, root):.1f} µs")
    with tempfile.TemporaryDirectory(prefix="mnistbench-doctor-") as tmp:
        from mnistbench.exporters.onnx import export_onnx
        from mnistbench.models.registry import get_spec

        spec = get_spec("lenet5")
        export_onnx(spec.build().eval(), spec, Path(tmp) / "lenet5.onnx", {"note": "random weights, for timing only"})
        oh = doc.harness_overhead(Path(tmp) / "lenet5.onnx")
    out.print(f"harness overhead (lenet5, batch 1, CPU EP, {oh.blocks} alternating blocks): mnistbench p50 "
              f"{oh.harness_p50_us:.2f} µs vs bare session.run loop {oh.bare_p50_us:.2f} µs, ratio {oh.ratio:.3f}")
    if not sweep:
        return
    with _progress() as bar:
        bar.add_task("threads x spinning sweep (lenet5, fan-resnet; random weights)", total=None)
        points = doc.sweep(timing)
    t = Table(title="ONNX Runtime CPU EP: throughput by threads and spinning (img/s; * = best)", title_justify="left")
    for col in ("model", "batch", "threads", "spinning", "p50", "img/s", "of best"):
        t.add_column(col, justify="left" if col in ("model", "spinning") else "right")
    best = {}
    for p in points:
        best[(p.model, p.batch_size)] = max(best.get((p.model, p.batch_size), 0), p.throughput_ips)
    for p in points:
        frac = p.throughput_ips / best[(p.model, p.batch_size)]
        t.add_row(p.model, str(p.batch_size), str(p.threads), "on" if p.spinning else "off", f"{p.p50_ms:.3f} ms",
                  f"{p.throughput_ips:,.0f}", f"{frac:.0%}" + (" *" if frac == 1 else ""))
    out.print(t)
    (th, sp), worst = doc.recommend(points)
    out.print(f"recommended: --threads {th} --spinning {'on' if sp else 'off'} "
              f"(at least {worst:.0%} of the best throughput in every cell swept)")


@app.command()
def compare(
    base: Annotated[str, typer.Argument(help="Baseline results: a CSV from `run` or a folder of them; with --live, "
                                        "a model: an .onnx path or MODEL[:VARIANT].")],
    new: Annotated[list[str], typer.Argument(help="Results to compare against the baseline; with --live, one model.")],
    fail_on: Annotated[Optional[str], typer.Option(
        "--fail-on", help="Gate: exit 1 when a change judged slower/faster crosses a rule, e.g. "
        "'p50:+5%,throughput:-5%,accuracy:-0.1pp'.")] = None,
    noise: Annotated[Optional[float], typer.Option(
        help="Noise threshold (fraction of p50): a change whose 95% interval lies within +-noise is 'no change' "
        "(default 0.02 between runs, 0.01 with --live).")] = None,
    fail_on_inconclusive: Annotated[bool, typer.Option(
        "--fail-on-inconclusive", help="Also fail the gate when a cell is inconclusive (interval too wide).")] = False,
    fmt: Annotated[str, typer.Option("--format", help="rich or markdown.")] = "rich",
    live: Annotated[bool, typer.Option("--live", help="Measure BASE and NEW now, in this process, blocks "
                                       "alternating: the most sensitive comparison on a shared machine.")] = False,
    batch_sizes: Annotated[str, typer.Option("--batch-sizes", help="--live: batch sizes.")] = "1,32",
    rounds: Annotated[int, typer.Option(help="--live: blocks per side and batch size.")] = 20,
    min_s: Annotated[float, typer.Option(help="--live: timed seconds per side and batch size.")] = 2.0,
    threads: Annotated[str, typer.Option(help="--live: intra-op threads (one value; 0 = the runtime's choice).")] = "0",
    out_path: Annotated[Optional[Path], typer.Option("--out", help="--live: keep the rows and samples here.")] = None,
    profile: Annotated[Optional[str], typer.Option("--profile", help="--live: artifacts profile of MODEL "
                                                   "(default: the newest that exists).")] = None,
    seed: Seed = 0,
    dataset: Dataset = "mnist",
    data_dir: DataDir = None,
    artifacts_dir: ArtifactsDir = None,
) -> None:
    """Compare results, or two models live. Per configuration: p50, p99, throughput and accuracy
    side by side, the typical block p50's ratio and 95% interval from interleaved blocks (corrected for machine drift
    by the reference network when it moved), and a verdict: faster, slower, no change or inconclusive.
    Exit 0; 1 when --fail-on is crossed or a cell cannot be judged; 2 for unusable input.

    Example: mnistbench compare results/base.csv results/new.csv --fail-on 'p50:+5%,accuracy:-0.1pp' --format markdown

    Example: mnistbench compare --live lenet5:fp32 lenet5:int8 --batch-sizes 1,32 --profile quick
    """
    try:
        if fmt not in ("rich", "markdown"):
            raise UsageError(f"unknown format {fmt!r}; choose rich or markdown")
        if noise is not None and not 0 <= noise < 1:
            raise UsageError(f"--noise is a fraction in [0, 1), got {noise}")
        from mnistbench.bench import compare as cmp

        rules = cmp.parse_rules(fail_on) if fail_on else []
        if live:
            if len(new) != 1:
                raise UsageError("--live compares two models: give BASE and one NEW")
            results = [_live(base, new[0], batch_sizes, rounds, min_s, threads, out_path, profile, seed, dataset,
                             data_dir, artifacts_dir, cmp.LIVE_NOISE if noise is None else noise)]
        else:
            b = cmp.load(Path(base))
            results = []
            for path in new:
                n = cmp.load(Path(path))
                changes, only_base, only_new = cmp.compare(b, n, cmp.NOISE if noise is None else noise)
                lines = [f"system differs: {d}" for d in cmp.system_differences(b, n)]
                if not b.references or not n.references:
                    lines.append("a side has no reference rows (run --no-reference, or schema 4): machine drift "
                                 "between the runs cannot be corrected")
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
                results.append((f"{base} -> {path}", changes, lines))
    except MnistBenchError as exc:
        print(f"mnistbench: error: {exc}", file=sys.stderr)
        raise typer.Exit(2) from None  # unusable input, whatever its kind: the gate's contract
    except KeyboardInterrupt:
        print("mnistbench: interrupted", file=sys.stderr)
        raise typer.Exit(130) from None
    _print_changes(results, fmt, rules, fail_on_inconclusive)


def _live(a: str, b: str, batch_sizes, rounds, min_s, threads, out_path, profile, seed, dataset, data_dir,
          artifacts_dir, noise) -> tuple:
    import tempfile

    from mnistbench.bench.live import live_compare, live_target
    from mnistbench.bench.pipeline import Artifacts, artifacts_root, newest_profile
    from mnistbench.bench.runner import Axes
    from mnistbench.bench.timing import TimingConfig

    th = _parse_threads(threads)
    if len(th) != 1:
        raise UsageError("--live takes one --threads value")
    axes = Axes(threads=tuple(th), batch_sizes=tuple(_parse_batch_sizes(batch_sizes)))
    timing = TimingConfig(min_s=min_s, rounds=rounds)
    root = artifacts_root(artifacts_dir)
    arts = Artifacts(root, dataset, profile or newest_profile(root, dataset, seed), seed)
    data = _load_data(dataset, data_dir)
    ta, tb = live_target(a, data, arts), live_target(b, data, arts)
    csv_path = _new_csv(out_path) if out_path else Path(tempfile.mkdtemp(prefix="mnistbench-live-")) / "live.csv"
    with _progress() as bar:
        task = bar.add_task("live", total=None)
        res = live_compare(ta, tb, axes, csv_path, timing, noise,
                           progress=lambda d, n, tot: bar.update(task, description=d))
    return (f"live: {a} -> {b} ({rounds} paired blocks a side per batch size, noise +-{noise:.0%})", res.changes,
            [f"rows and samples: {csv_path}"])


def _print_changes(results: list[tuple], fmt: str, rules: list, fail_on_inconclusive: bool) -> None:
    """Print each comparison, then apply the gate (exit 1 when it fails)."""
    from mnistbench.bench import compare as cmp
    from mnistbench.bench.report import compare_markdown, compare_table

    failed, unjudged, inconclusive = [], [], []
    for title, changes, lines in results:
        if fmt == "markdown":
            print("\n".join(f"> {ln}" for ln in lines) + ("\n\n" if lines else "") + compare_markdown(changes, title))
        else:
            for ln in lines:
                err.print(f"warning: {ln}", markup=False, highlight=False)
            out.print(compare_table(changes, title))
        failed += cmp.gate(changes, rules)
        unjudged += [c for c in changes if c.verdict == "n/a"]
        inconclusive += [c for c in changes if c.verdict == "inconclusive"]
    if not rules:
        return
    for c, r in failed:
        print(f"gate: {'/'.join(map(str, c.key[:5]))} crosses {r} (ratio {c.ratio:.3f} "
              f"[{c.ratio_low:.3f}, {c.ratio_high:.3f}], accuracy {c.acc_delta_pp:+.2f} pp, {c.verdict})",
              file=sys.stderr)
    if unjudged:
        print(f"gate: {len(unjudged)} cells cannot be judged (no raw samples, or fewer than 3 blocks), e.g. "
              f"{'/'.join(map(str, unjudged[0].key[:5]))}: the gate does not pass what it could not judge",
              file=sys.stderr)
    if inconclusive:
        print(f"gate: {len(inconclusive)} cells inconclusive (interval too wide to decide; measure more or use "
              f"--live), e.g. {'/'.join(map(str, inconclusive[0].key[:5]))}", file=sys.stderr)
    if failed or unjudged or (inconclusive and fail_on_inconclusive):
        raise typer.Exit(1)
    print(f"gate: passed ({', '.join(map(str, rules))})", file=sys.stderr)


@app.command()
@guarded
def report(
    results: Annotated[list[Path], typer.Argument(help="Results CSVs or folders (several hosts are merged).")],
    out_dir: Annotated[Path, typer.Option("--out-dir", help="Folder for the PNGs and report.html.")] = Path("report"),
    slo_ms: Annotated[float, typer.Option(help="p99 latency budget for the best-batch-size table (ms).")] = 10.0,
) -> None:
    """Figures (latency and throughput against batch size, accuracy against latency with the Pareto
    front, per-model bars) and one self-contained HTML file with the tables.

    Example: mnistbench report results/ --out-dir results/report --slo-ms 5
    """
    from mnistbench.bench.htmlreport import load_rows, write_report

    if slo_ms <= 0:
        raise UsageError(f"--slo-ms must be positive, got {slo_ms}")
    from mnistbench.bench.best import csv_files, load_samples

    rows = load_rows(results)
    path = write_report(rows, out_dir, slo_ms, [str(p) for p in results], load_samples(csv_files(results)))
    out.print(f"report: {path} (+ latency.png, throughput.png, pareto.png, models.png)")


@app.command()
@guarded
def table(
    csv_paths: Annotated[list[Path], typer.Argument(help="A results CSV written by `mnistbench run`, or reproduction "
                                                    "CSVs written by `mnistbench reproduce` (several merge).")],
    fmt: Annotated[str, typer.Option("--format", help="rich or markdown.")] = "rich",
) -> None:
    """Summarise a results CSV by model (test metric, latency, throughput per batch size), or
    reproduction CSVs as the paper reproduction table.

    Example: mnistbench table results/20261121T101500Z-mnist-quick-cpu.csv --format markdown
    """
    from mnistbench.bench.records import read_csv
    from mnistbench.bench.report import results_markdown, results_table, variant_markdown, variant_table

    if fmt not in ("rich", "markdown"):
        raise UsageError(f"unknown format {fmt!r}; choose rich or markdown")
    from mnistbench.bench.doctor import DEFAULTS_CSV_HEAD, read_defaults_csv

    head = _first_line(csv_paths[0])
    if head.startswith(",".join(DEFAULTS_CSV_HEAD)):
        out.print(_defaults_table(read_defaults_csv(csv_paths[0])))
        return
    if head.startswith("experiment,"):
        from mnistbench.bench import reproduce as rp

        rows = [r for p in csv_paths for r in rp.read_runs(p)]
        print(rp.markdown(rows, [p.name for p in csv_paths]))
        return
    if len(csv_paths) > 1:
        raise UsageError("give one results CSV (several are merged only for reproduction CSVs)")
    csv_path = csv_paths[0]
    rows = read_csv(csv_path)
    if not rows:
        raise UsageError(f"{csv_path} has no rows")
    several = len({r.variant for r in rows if r.status == "ok"}) > 1
    if fmt == "markdown":
        print(results_markdown(rows))
        if several:
            print("\n" + variant_markdown(rows))
    else:
        out.print(results_table(rows, f"{csv_path.name}: {len(rows)} rows"))
        if several:
            out.print(variant_table(rows))


@app.command()
@guarded
def verify(
    path: Annotated[Path, typer.Argument(help="A results CSV, or a folder of them.")],
    repair: Annotated[bool, typer.Option("--repair", help="Drop a partial last row and leftover temporary "
                                         "files (the CSV is rewritten atomically).")] = False,
    drop_unsampled: Annotated[bool, typer.Option("--drop-unsampled", help="With --repair: also drop measured rows "
                                                 "whose samples file is missing.")] = False,
) -> None:
    """Check results: complete rows, each measured row's samples present and matching, identities
    consistent, no configuration measured twice, no temporary files. Exit 1 when a problem remains.

    Example: mnistbench verify results/ ; mnistbench verify results/run.csv --repair
    """
    from mnistbench.bench.verify import verify_path

    bad = 0
    for rep in verify_path(path, repair, drop_unsampled):
        for line in rep.repaired:
            out.print(f"{rep.path}: repaired: {line}", markup=False, highlight=False)
        remaining = [p for p in rep.problems if not rep.repaired or "partial" not in p]
        for line in remaining:
            err.print(f"{rep.path}: {line}", markup=False, highlight=False)
        bad += bool(remaining)
        if not remaining:
            out.print(f"{rep.path}: ok ({rep.rows} rows)", markup=False, highlight=False)
    if bad:
        raise MnistBenchError(f"{bad} results file(s) have problems (see above)")


@app.command()
@guarded
def best(
    results: Annotated[list[Path], typer.Argument(help="Results CSVs or folders (raw samples beside them are used "
                                                  "for confidence intervals when the rows carry none).")],
    max_accuracy_drop: Annotated[str, typer.Option(
        "--max-accuracy-drop", help="Accuracy budget against ONNX Runtime fp32, percentage points (0.2 or 0.2pp).")]
        = "0.2pp",
    max_mse_increase: Annotated[float, typer.Option(
        "--max-mse-increase", help="MSE budget of reconstruction models against ONNX Runtime fp32, a fraction.")]
        = 0.01,
    fmt: Annotated[str, typer.Option("--format", help="rich or markdown.")] = "rich",
) -> None:
    """The fastest configuration (runtime, provider, variant or precision, threads) per model and batch
    size whose accuracy is within a budget of ONNX Runtime fp32, its speedup over ONNX Runtime fp32
    with default settings, and the configurations tied with it.

    Example: mnistbench best results/cross-runtime/ --max-accuracy-drop 0.2pp --format markdown
    """
    from mnistbench.bench import best as best_mod

    if fmt not in ("rich", "markdown"):
        raise UsageError(f"unknown format {fmt!r}; choose rich or markdown")
    try:
        drop = float(max_accuracy_drop.strip().lower().removesuffix("pp"))
    except ValueError:
        raise UsageError(f"--max-accuracy-drop takes percentage points such as 0.2pp, not {max_accuracy_drop!r}") \
            from None
    rows, samples = best_mod.load(results)
    verdicts = best_mod.best_configs(rows, drop, max_mse_increase, samples)
    if not verdicts:
        raise UsageError("no measured rows of a scored model in the results given")
    note = best_mod.footnote(verdicts, drop, max_mse_increase)
    if fmt == "markdown":
        print(best_mod.markdown(verdicts) + "\n\n" + note)
    else:
        out.print(best_mod.table(verdicts))
        out.print(note, markup=False, highlight=False)


def _first_line(path: Path) -> str:
    try:
        with open(path, newline="") as fh:
            return fh.readline()
    except (OSError, UnicodeDecodeError):
        return ""


def main() -> None:
    """Console-script entry point. A Ctrl-C outside a command's error boundary exits 130 with one
    line; once the command has returned, a Ctrl-C during interpreter shutdown changes nothing."""
    if signal.getsignal(signal.SIGINT) is _interrupted_while_starting:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        app()
        code = 0
    except SystemExit as exc:
        code = exc.code
        if isinstance(getattr(exc.__context__, "__cause__", None), KeyboardInterrupt):
            print("mnistbench: interrupted", file=sys.stderr)  # Typer ends a Ctrl-C while parsing with a silent 130
    except KeyboardInterrupt:
        print("mnistbench: interrupted", file=sys.stderr)
        code = 130
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.implementation.name == "cpython":
        # Where Ctrl-C lands while a C extension runs Python code through PyRun_* (the ONNX exporter
        # does), CPython notes "KeyboardInterrupt went unhandled" even though the command handled it,
        # and would end `python -m` by SIGINT (status -2) instead of `code`; any PyRun_* call clears it.
        ctypes.pythonapi.PyRun_SimpleString(b"pass")
    sys.exit(code)


if __name__ == "__main__":
    main()
