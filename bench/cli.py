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

from mnistbench.bench.timing import MIN_ITERS, MIN_S, WARMUP_ITERS, WARMUP_S
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
    from mnistbench.bench.pipeline import Artifacts, artifacts_root, train_model
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
    data = _load_data(dataset, data_dir)
    arts = Artifacts(artifacts_root(artifacts_dir), dataset, profile, seed)
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
    profile: _profile_opt("paper") = "paper",
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
    _do_export(models, profile, seed, dataset, data_dir, artifacts_dir, int8, fp16, fp16_io)


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


def _parse_batch_sizes(text: str) -> list[int]:
    return _parse_ints(text, "batch size", 1, "--batch-sizes 1,8,32")


def _parse_threads(text: str) -> list[int]:
    from mnistbench.bench.runner import AUTO

    parts = [p.strip() for p in text.split(",")]
    nums = ",".join(p for p in parts if p.lower() != "auto")
    vals = ([AUTO] if any(p.lower() == "auto" for p in parts) else []) + (
        _parse_ints(nums, "thread count", 0, "--threads auto,1,2") if nums else [])
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
    from mnistbench.bench.runtime import IO_MODES, GpuOptions, SessionConfig, validate_config

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
    from mnistbench.bench.pipeline import (NULL_MODEL, Artifacts, artifacts_root, null_model, onnx_for, eval_inputs,
                                           torch_builder)
    from mnistbench.bench.records import CsvAppender
    from mnistbench.bench.report import cv_warning, results_table
    from mnistbench.bench.runner import PRECISIONS, Target, run_matrix
    from mnistbench.bench.system import gemm_peaks, write_system_json
    from mnistbench.models.preprocess import preprocess
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
    found = [(s, v, *onnx_for(s, arts, "fp32" if v in PRECISIONS else v)) for s in specs for v in variants]
    done: set[tuple] = set()
    if o["resume"]:
        from mnistbench.bench.records import read_csv
        from mnistbench.bench.runner import cell_key

        csv_path = o["out_path"]
        done = {cell_key(r) for r in read_csv(csv_path) if r.status == "ok"}
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
    CsvAppender(csv_path)  # the results folder is creatable and writable, before any work
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
    if o["null"]:
        import torch

        x = eval_inputs(specs[0], data)[0] if specs else preprocess(data.test_images, "unit")
        targets.insert(0, Target(NULL_MODEL, null_model(arts.root), "null", x, x[:0], torch.nn.Identity, 0, dataset))
    peak = gemm_peaks(axes.providers)
    with _progress() as bar:
        task = bar.add_task("run", total=None)
        rows = run_matrix(targets, axes, csv_path, timing=o["timing"], peak_gflops=peak,
                          repeat=o["repeat_index"] or 0, shuffle_seed=o["shuffle_seed"], done=done,
                          score=o.get("score", True),
                          progress=lambda d, n, tot: bar.update(task, description=d, completed=n, total=tot))
    if o["repeat_index"] is not None:
        return rows
    system_path = csv_path.with_suffix(".system.json")
    write_system_json(system_path, {"results_csv": csv_path.name, "command": " ".join(sys.argv),
                                    "gemm_peak_gflops": peak["cpu"], "gemm_peak_gflops_cuda": peak.get("cuda")})
    if o["resume"]:
        from mnistbench.bench.records import read_csv

        out.print(f"resumed: {len(done)} cells were already in {csv_path.name}, {len(rows)} measured now")
        rows = read_csv(csv_path)
    out.print(results_table(rows))
    if len({r.variant for r in rows if r.model != NULL_MODEL}) > 1:
        from mnistbench.bench.report import variant_table

        out.print(variant_table(rows))
    warn = cv_warning(rows)
    if warn:
        err.print(warn, markup=False, highlight=False)
    out.print(f"{len(rows)} rows -> {csv_path}  (system: {system_path.name}, raw samples: {csv_path.stem}.samples.npz)")
    failed = [r for r in rows if r.status != "ok"]
    if failed:
        raise MnistBenchError(f"{len(failed)} of {len(rows)} cells failed and were recorded as error rows; "
                              f"first: {failed[0].model}/{failed[0].runtime}/{failed[0].provider}: {failed[0].error}")
    return rows


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
            "--min-s", str(t.min_s), "--out", str(csv_path), "--null" if o["null"] else "--no-null",
            "--score" if o.get("score", True) else "--no-score", "--variant", o.get("variant", "fp32"),
            "--precision", o.get("precision", "fp32"),
            "--io-mode", ",".join(o["axes"].io_modes), "--cudnn-algo", o["axes"].gpu.cudnn_conv_algo_search,
            "--tf32" if o["axes"].gpu.tf32 else "--no-tf32", "--device-id", str(o["axes"].gpu.device_id)]
    for flag, key in (("--data-dir", "data_dir"), ("--artifacts-dir", "artifacts_dir")):
        if o[key] is not None:
            base += [flag, str(o[key])]
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
    models: Models = None,
    provider: Annotated[list[str], typer.Option(
        "--provider", help="Execution provider(s): cpu, cuda, tensorrt (repeat or comma-separate).")] = ["cpu"],
    runtime: Annotated[list[str], typer.Option(
        "--runtime", help="onnxruntime, torch (PyTorch eager, the baseline), torch.compile and/or openvino "
        "(pip install -e \".[openvino]\"); comma-separate.")] = ["onnxruntime"],
    batch_sizes: Annotated[str, typer.Option("--batch-sizes", help="Comma-separated batch sizes.")] = "1,8,32,128,512",
    profile: _profile_opt("paper") = "paper",
    seed: Seed = 0,
    dataset: Dataset = "mnist",
    warmup_iters: Annotated[int, typer.Option(help="Untimed warm-up calls per cell (at least).")] = WARMUP_ITERS,
    warmup_s: Annotated[float, typer.Option(help="Warm-up seconds per cell (at least).")] = WARMUP_S,
    min_iters: Annotated[int, typer.Option(help="Timed calls per cell (at least).")] = MIN_ITERS,
    min_s: Annotated[float, typer.Option(help="Timed seconds per cell (at least).")] = MIN_S,
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

    _do_run(_run_options(
        names=models, provider=provider, runtime=runtime, batch_sizes=batch_sizes, profile=profile, seed=seed,
        dataset=dataset, timing=TimingConfig(warmup_iters, warmup_s, min_iters, min_s), threads=threads,
        spinning=spinning, null=null, repeat=repeat, shuffle_seed=shuffle_seed, repeat_index=repeat_index,
        resume=resume, score=score, variant=variant, precision=precision, onnx=onnx, layout=layout,
        preprocess=preprocess, results_dir=results_dir, out_path=out_path, io_mode=io_mode, cuda_graph=cuda_graph, cudnn_algo=cudnn_algo,
        tf32=tf32, device_id=device_id, data_dir=data_dir, artifacts_dir=artifacts_dir))


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
    data_dir: DataDir = None,
    artifacts_dir: ArtifactsDir = None,
) -> None:
    """Train each model with its paper's recipe over several seeds and compare with the paper's claim.

    Writes one CSV row per finished run (so an interrupted reproduction keeps its runs), then a
    markdown table beside it: claim, mean ± sd, min–max, verdict. On a CPU, fan-resnet runs a stated
    reduced budget unless --full-on-cpu.

    Example: mnistbench reproduce --seeds 3 ; mnistbench reproduce zhu-mlp zhu-cnn --seeds 10 --resume --out X.csv
    """
    from mnistbench.bench import reproduce as rp
    from mnistbench.bench.pipeline import artifacts_root
    from mnistbench.bench.system import git_commit, write_system_json
    from mnistbench.models.registry import select
    from mnistbench.models.train import resolve_device

    specs = select(models)
    dev = resolve_device(device)
    runs = rp.plan(specs, seeds, profile, dev, reduce_on_cpu, ae_study)
    if resume:
        if out_path is None:
            raise UsageError("--resume needs --out: the runs CSV to complete")
        old = rp.read_runs(out_path)
        other = {(r["dataset"], r["profile"]) for r in old if r["experiment"] == "paper" and not r["reduced"]}
        if other and (dataset, profile) not in other:
            raise UsageError(f"{out_path} holds {sorted(other)[0][0]}/{sorted(other)[0][1]} runs; "
                             f"it cannot be completed with --dataset {dataset} --profile {profile}")
        have = {rp.run_key(r) for r in old}
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
                                        "device": str(dev)})
    err.print(f"{len(runs)} runs to train -> {csv_path}")
    commit = git_commit()
    with _progress() as bar:
        task = bar.add_task("reproduce", total=None)

        def on_start(run, i, n):
            label = f"[{i + 1}/{n}] {run.model}{' ' + run.scale if run.scale else ''} seed {run.seed}"

            def cb(step, total, stage):
                bar.update(task, completed=step, total=total, description=f"{label} [{stage}]")

            return cb

        def on_done(row):
            metric = float(row["final"])
            shown = f"{metric:.2%}" if row["metric"] == "accuracy" else f"MSE {metric:.4f}"
            bar.console.print(f"  {row['model']} {row['scale']} seed {row['seed']}: {shown} in {row['wall_s']} s")

        rp.run_all(runs, data, device, sink, artifacts_root(artifacts_dir), on_start, on_done, commit)
    rows = rp.read_runs(csv_path) if csv_path.exists() else []
    if not rows:
        raise UsageError("nothing was trained")
    md = csv_path.with_suffix(".md")
    rp.write_markdown(md, rows, [csv_path.name])
    print(rp.markdown(rows))
    out.print(f"runs: {csv_path}  table: {md}")


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
    base: Annotated[Path, typer.Argument(help="Baseline results: a CSV from `run`, or a folder of them.")],
    new: Annotated[list[Path], typer.Argument(help="One or more results to compare against the baseline.")],
    fail_on: Annotated[Optional[str], typer.Option(
        "--fail-on", help="Gate: exit 1 when a significant change crosses a rule, e.g. 'p50:+5%,accuracy:-0.1pp'.")] = None,
    min_effect: Annotated[float, typer.Option(
        help="Smallest p50 change (fraction) called real; smaller significant changes are noise.")] = 0.05,
    fmt: Annotated[str, typer.Option("--format", help="rich or markdown.")] = "rich",
) -> None:
    """Compare results: p50, p99, throughput and accuracy side by side, with a Mann-Whitney U test on
    the raw samples and a minimum effect size. Exit 0, 1 when --fail-on is crossed, 2 for unusable input.

    Example: mnistbench compare results/base.csv results/new.csv --fail-on 'p50:+5%,accuracy:-0.1pp' --format markdown
    """
    try:
        _compare(base, new, fail_on, min_effect, fmt)
    except MnistBenchError as exc:
        print(f"mnistbench: error: {exc}", file=sys.stderr)
        raise typer.Exit(2) from None  # unusable input, whatever its kind: the gate's contract


def _compare(base: Path, new: list[Path], fail_on: str | None, min_effect: float, fmt: str) -> None:
    from mnistbench.bench import compare as cmp
    from mnistbench.bench.report import compare_markdown, compare_table

    if fmt not in ("rich", "markdown"):
        raise UsageError(f"unknown format {fmt!r}; choose rich or markdown")
    if not 0 <= min_effect < 1:
        raise UsageError(f"--min-effect is a fraction in [0, 1), got {min_effect}")
    rules = cmp.parse_rules(fail_on) if fail_on else []
    b = cmp.load(base)
    failed = []
    for path in new:
        n = cmp.load(path)
        changes, only_base, only_new = cmp.compare(b, n, min_effect)
        title = f"{base} -> {path}"
        lines = [f"system differs: {d}" for d in cmp.system_differences(b, n)]
        if max((r.repeat for r in b.rows), default=0) == 0 or max((r.repeat for r in n.rows), default=0) == 0:
            lines.append("a side has a single repeat: a burst of load on a shared machine can pass for a change "
                         "(A/A here: 2 of 20 single runs flagged); run both sides with --repeat 3")
        lines += [f"only in base: {'/'.join(map(str, k))}" for k in only_base]
        lines += [f"only in new: {'/'.join(map(str, k))}" for k in only_new]
        if fmt == "markdown":
            print("\n".join(f"> {ln}" for ln in lines) + ("\n\n" if lines else "") + compare_markdown(changes, title))
        else:
            for ln in lines:
                err.print(f"warning: {ln}", markup=False, highlight=False)
            out.print(compare_table(changes, title))
        failed += cmp.gate(changes, rules)
    if rules:
        if failed:
            for c, r in failed:
                print(f"gate: {'/'.join(map(str, c.key[:5]))} crosses {r} (p50 ratio {c.p50_ratio:.3f}, "
                      f"accuracy {c.acc_delta_pp:+.2f} pp, {c.verdict})", file=sys.stderr)
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
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
