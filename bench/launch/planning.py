"""What one benchmark run measures and where it writes: from a typed :class:`RunRequest` to rows.

The path of ``--batch-sizes`` (README, "Layout"): ``cli.run`` -> :func:`parse_axes` (through
:func:`inputs.parse_batch_sizes`, text to ``list[int]``) -> :class:`runner.Axes` ``.batch_sizes`` in a
:class:`RunRequest` -> ``console.benchmark`` -> ``api.run`` -> :func:`execute` -> :func:`runner.run_matrix`
(one cell per batch size) -> :func:`timing.measure_block`.

:func:`execute` plans the targets (registered models resolved to their ONNX files, or foreign ONNX
files inspected), picks the results CSV (new, resumed or a repeat's), holds the writer lock, runs the
matrix and writes the ``.system.json`` beside the CSV. It prints nothing: notes go to ``note``,
progress to ``progress``; :mod:`bench.console` shows the outcome.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from ...models.data import load_dataset
from ...models.errors import MnistBenchError, ProviderUnavailableError, UsageError
from ...models.preprocess import PREPROCESS_CHOICES, preprocess
from ...models.registry import select
from ..measure import inputs, noiseprofile
from ..measure.config import RunRequest
from ..measure.pipeline import (
    NULL_MODEL,
    REFERENCE_MODEL,
    Artifacts,
    artifacts_root,
    eval_inputs,
    newest_profile,
    null_model,
    onnx_for,
    profiles_with,
    reference_model,
    torch_builder,
)
from ..measure.records import BenchmarkRecord, CsvAppender, read_csv, writer_lock
from ..measure.runner import PRECISIONS, Axes, RunProgress, Target, resume_keys, run_matrix
from ..measure.system import gemm_peaks, hygiene, write_system_json
from ..runtimes.base import get_runtime
from ..runtimes.foreign import ForeignModel, foreign_inputs, inspect
from ..runtimes.runtime import IO_MODES, GpuOptions, SessionConfig, set_call_timeout, validate_config

Note = Callable[[str], None]


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr)


@dataclass
class RunOutcome:
    """What :func:`execute` did: the rows (the whole file when resumed), the files, the cells resumed."""

    rows: list[BenchmarkRecord]
    csv_path: Path
    system_path: Path | None = None
    resumed: int | None = None  # cells already in the file (--resume), else None
    measured: int = 0
    repeats: int = 1
    notes: list[str] = field(default_factory=list)


def parse_io_modes(io_mode: str, cuda_graph: bool, providers: list[str]) -> list[str]:
    """``--io-mode`` text (+ ``--cuda-graph``) as io modes. Raises UsageError for modes the providers lack."""
    modes = [m.strip() for m in io_mode.split(",") if m.strip()]
    if not modes and not cuda_graph:
        raise UsageError(f"--io-mode {io_mode!r} names no io mode; choose from: {', '.join(IO_MODES)}")
    if cuda_graph and "cuda" not in providers:
        raise UsageError("--cuda-graph needs --provider cuda (it captures the CUDA EP's calls as one graph)")
    if cuda_graph:
        modes.append("device-graph")
    modes = list(dict.fromkeys(modes)) or ["end-to-end"]
    for m in modes:
        if m not in IO_MODES:
            raise UsageError(f"unknown io mode {m!r}; choose from: {', '.join(IO_MODES)}")
    if modes != ["end-to-end"] and not set(providers) & {"cuda", "tensorrt"}:
        raise UsageError(f"--io-mode {','.join(modes)} needs --provider cuda or tensorrt; on cpu the host memory is "
                         "the device, so only end-to-end applies")
    if "device-graph" in modes and "cuda" not in providers:
        raise UsageError("--cuda-graph needs --provider cuda")
    return modes


def parse_axes(provider: list[str], runtime: list[str], batch_sizes: str, threads: str, spinning: str,
               io_mode: str = "end-to-end", cuda_graph: bool = False, gpu: GpuOptions = GpuOptions()) -> Axes:
    """The axes of ``run`` from its option texts (see :mod:`bench.inputs`). Raises UsageError."""
    provs, runtimes = inputs.parse_providers(provider), inputs.parse_runtimes(runtime)
    modes = parse_io_modes(io_mode, cuda_graph, provs)
    validate_config(SessionConfig("cpu", gpu=gpu))
    inputs.only_with(bool({"cuda", "tensorrt"} & set(provs)), "--provider cuda or tensorrt",
                     " (they set the GPU session; --provider cpu has none)", device_id=(gpu.device_id, 0),
                     cudnn_algo=(gpu.cudnn_conv_algo_search, "exhaustive"), tf32=(gpu.tf32, False))
    return Axes(tuple(runtimes), tuple(provs), tuple(inputs.parse_threads(threads)),
                tuple(inputs.parse_spinning(spinning)), tuple(inputs.parse_batch_sizes(batch_sizes)), tuple(modes), gpu)


def check_request(req: RunRequest) -> None:
    """Refuse counts out of range, before any work (the request checks itself). Raises UsageError."""
    RunRequest.__post_init__(req)


def default_profile(artifacts_dir: Path | None, dataset: str, seed: int, pattern: str, what: str,
                    note: Note = _stderr) -> str:
    """The profile whose ``pattern`` artifacts were written last (said in one line when several exist).

    Raises:
        UsageError: no profile has such artifacts (the message says what to run first).
    """
    root = artifacts_root(artifacts_dir)
    found = profiles_with(root, dataset, seed, pattern)
    chosen = newest_profile(root, dataset, seed, pattern)
    if len(found) > 1:
        note(f"profile {chosen}: the newest of {', '.join(found)} with {what} (--profile to choose)")
    return chosen


def check_runtime_providers(runtimes: list[str], provs: list[str], note: Note = _stderr) -> list[str]:
    """Prove every requested (runtime, provider) usable before any work or any file; returns the
    providers to run. TensorRT that is not usable here is skipped with a one-line reason when other
    providers remain; any other unusable provider is an error.

    Raises:
        ProviderUnavailableError, UsageError: a provider that cannot run here.
    """
    keep = []
    rts = [get_runtime(r) for r in runtimes]
    for p in provs:
        serving = [r for r in rts if r.serves(p)]
        if not serving:
            raise UsageError(rts[0].unserved(p))
        try:
            for r in serving:
                r.check(p)
        except ProviderUnavailableError as exc:
            if p == "tensorrt" and len(provs) > 1:
                note(f"tensorrt skipped: {exc}")
                continue
            raise
        keep.append(p)
    return keep


def usable_providers(axes: Axes, note: Note = _stderr) -> Axes:
    """``axes`` with the providers that :func:`check_runtime_providers` keeps."""
    keep = check_runtime_providers(list(axes.runtimes), list(axes.providers), note)
    return dataclasses.replace(axes, providers=tuple(keep))


def _foreign_models(req: RunRequest) -> list[ForeignModel]:
    if req.onnx and (req.names or any(get_runtime(r).needs_checkpoint for r in req.axes.runtimes)):
        raise UsageError("--onnx benchmarks the given files alone: name no registered models and no torch runtime")
    if req.onnx and req.preprocess not in PREPROCESS_CHOICES:
        raise UsageError(f"unknown preprocess {req.preprocess!r}; choose one of: {', '.join(PREPROCESS_CHOICES)}")
    return [inspect(Path(p), req.layout) for p in req.onnx]


def _results_path(req: RunRequest, foreign: bool) -> Path:
    if req.resume or req.repeat_index is not None:
        return req.out_path
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    tag = "foreign" if foreign else req.profile
    path = req.out_path or Path(req.results_dir) / f"{stamp}-{req.dataset}-{tag}-{'-'.join(req.axes.providers)}.csv"
    inputs.check_csv_name(path, ", or add --resume to complete it")
    return path


def _check_repeat_child(req: RunRequest) -> None:
    """A request with ``repeat_index`` is one repeat of a ``run --repeat`` whose parent holds the CSV's
    writer lock; refused (UsageError) otherwise: alone it would append cells the file already has."""
    why = ("--repeat-index is set by `run --repeat` for its repeats, each appending to the CSV the parent "
           "run holds; use --repeat N (or --resume --out to complete a run)")
    if req.out_path is None:
        raise UsageError(why)
    try:
        with writer_lock(Path(req.out_path)):
            pass
    except UsageError:
        return  # the parent run holds it: this is its repeat
    raise UsageError(why)


def execute(req: RunRequest, progress: RunProgress | None = None, note: Note = _stderr,
            run_repeats: Callable[[Path, RunRequest], RunOutcome] | None = None) -> RunOutcome:
    """Benchmark ``req``: every input checked before any work, then the rows written to the results CSV.

    Returns:
        the :class:`RunOutcome` (rows in the order measured; the whole file when resumed).

    Raises:
        UsageError: unusable input (names, files, options, an existing --out); ProviderUnavailableError;
        KeyboardInterrupt (finished rows kept). Failed cells are error rows, not exceptions.
    """
    set_call_timeout(req.call_timeout)  # every ONNX Runtime call of this process (None: the default)
    foreign = _foreign_models(req)
    specs = [] if foreign else select(list(req.names) if req.names else None)
    if req.resume and (req.out_path is None or not req.out_path.is_file()):
        raise UsageError("--resume needs --out naming the results CSV of the interrupted run")
    if req.resume and req.repeat > 1:
        raise UsageError("--resume completes one run; it cannot be combined with --repeat")
    if req.repeat_index is not None:
        _check_repeat_child(req)
    if req.pin_cpus is not None:
        inputs.parse_cpu_list(req.pin_cpus)  # before the dataset loads and the models are read ('' is refused)
    req = dataclasses.replace(req, axes=usable_providers(req.axes, note))
    arts = Artifacts(artifacts_root(req.artifacts_dir), req.dataset, req.profile, req.seed)
    found = [(s, v, *onnx_for(s, arts, "fp32" if v in PRECISIONS else v, req.allow_stale))
             for s in specs for v in req.variants]
    csv_path = _results_path(req, bool(foreign))  # the name checked, nothing made yet
    data = load_dataset(req.dataset, req.data_dir)  # read and verified before the results folder is made
    sink = CsvAppender(csv_path)  # the results folder is creatable and writable, before any work
    if req.repeat_index is not None:
        return _run_locked(csv_path, req, specs, found, foreign, arts, progress, note, data)
    with writer_lock(csv_path):  # one writer per results file, for the whole run (repeats included)
        sink.check_appendable()
        if req.repeat > 1:
            return run_repeats(csv_path, req)
        return _run_locked(csv_path, req, specs, found, foreign, arts, progress, note, data)


def build_targets(req: RunRequest, specs, found, foreign: list[ForeignModel], arts: Artifacts, data,
                  note: Note = _stderr) -> list[Target]:
    """The run's targets: the reference network first, the null model, then each model x variant
    (or each foreign file), with its evaluation inputs (float32 (n, ...) images, int64 (n,) labels)."""
    targets = []
    for s, variant, path, meta in found:
        x, y = eval_inputs(s, data)
        targets.append(Target(s.name, path, s.task, x, y, torch_builder(s, arts), s.flops, req.dataset,
                              meta.get("profile", req.profile), meta.get("seed", str(req.seed)),
                              meta.get("checkpoint_sha256", ""), variant=variant))
    for fm in foreign:
        if fm.fixed_batch is not None:
            note(f"{fm.path.name}: fixed batch size {fm.fixed_batch}; it is run at that batch size only")
        targets.append(Target(fm.path.stem, fm.path, "classify", foreign_inputs(data.test_images, fm, req.preprocess),
                              data.test_labels.astype("int64"), None, None, req.dataset, "foreign", "",
                              fixed_batch=fm.fixed_batch, variant="foreign"))
    x_unit = eval_inputs(specs[0], data)[0] if specs else preprocess(data.test_images, "unit")
    if req.null:
        targets.insert(0, Target(NULL_MODEL, null_model(arts.root), "null", x_unit, x_unit[:0], torch.nn.Identity, 0,
                                 req.dataset))
    if req.reference:
        targets.insert(0, Target(REFERENCE_MODEL, reference_model(arts.root), "reference", x_unit, x_unit[:0], None,
                                 None, req.dataset))
    return targets


def _run_locked(csv_path: Path, req: RunRequest, specs, found, foreign, arts: Artifacts,
                progress: RunProgress | None, note: Note, data) -> RunOutcome:
    targets = build_targets(req, specs, found, foreign, arts, data, note)
    done: set[str] = resume_keys(read_csv(csv_path), targets, csv_path) if req.resume else set()
    pinned = inputs.pin_cpus(req.pin_cpus)
    peak = gemm_peaks(req.axes.providers)
    before = hygiene()
    rows = run_matrix(targets, req.axes, csv_path, timing=req.timing, peak_gflops=peak,
                      repeat=req.repeat_index or 0, shuffle_seed=req.shuffle_seed, done=done, score=req.score,
                      max_live=req.max_live, pinned_cpus=pinned, auto_cache=arts.root / "threads-auto.json",
                      progress=progress)
    if req.repeat_index is not None:
        return RunOutcome(rows, csv_path)
    system_path = csv_path.with_suffix(".system.json")
    write_system_json(system_path, {"results_csv": csv_path.name, "command": req.command or " ".join(sys.argv),
                                    "gemm_peak_gflops": peak["cpu"], "gemm_peak_gflops_cuda": peak.get("cuda"),
                                    "pinned_cpus": pinned, "machine_before": before, "machine_after": hygiene(),
                                    "noise_profile": noiseprofile.load()})
    measured = len([r for r in rows if r.task != "reference"])
    if req.resume:
        rows = read_csv(csv_path)
    return RunOutcome(rows, csv_path, system_path, len(done) if req.resume else None, measured)


def check_failures(rows: list[BenchmarkRecord]) -> None:
    """Raise MnistBenchError (exit 1) naming the first failed cell when any row is an error row."""
    failed = [r for r in rows if r.status != "ok"]
    if failed:
        raise MnistBenchError(f"{len(failed)} of {len(rows)} cells failed and were recorded as error rows; "
                              f"first: {failed[0].model}/{failed[0].runtime}/{failed[0].provider}: {failed[0].error}")


def resolve_targets(req: RunRequest, note: Note = _stderr) -> list[Target]:
    """The targets ``req`` names, checked as :func:`execute` checks them (names, files, providers,
    stale exports) and built with their evaluation inputs, for a command that serves them another
    way (``mnistbench load``): the null model first when ``req.null``, no reference network.

    Raises:
        UsageError, ProviderUnavailableError: as :func:`execute`.
    """
    foreign = _foreign_models(req)
    specs = [] if foreign else select(list(req.names) if req.names else None)
    usable_providers(req.axes, note)
    arts = Artifacts(artifacts_root(req.artifacts_dir), req.dataset, req.profile, req.seed)
    found = [(s, v, *onnx_for(s, arts, "fp32" if v in PRECISIONS else v, req.allow_stale))
             for s in specs for v in req.variants]
    data = load_dataset(req.dataset, req.data_dir)
    return build_targets(dataclasses.replace(req, reference=False), specs, found, foreign, arts, data, note)
