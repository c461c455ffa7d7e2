"""The ``mnistbench`` command line: thin Typer commands over the library.

Each command parses its options (declared in :mod:`bench.options`, checked by :mod:`bench.inputs`),
calls one function of :mod:`bench.api` (or of the module named for the job) and prints with
:mod:`bench.console`. Every command runs inside one error boundary: an expected failure
(:class:`MnistBenchError`) becomes one line on stderr and its exit code (2 for unusable input,
1 otherwise), never a traceback. Progress bars go to stderr, tables to stdout.
"""

from __future__ import annotations

import contextlib
import functools
import shlex
import signal
import sys
import time
from pathlib import Path


def _interrupted_while_starting(signum, frame):
    """Ctrl-C while the command line still imports (typer, rich, numpy: up to a second on a loaded
    machine): one line and exit 130, as during a command. :func:`main` puts Python's handler back."""
    print("mnistbench: interrupted", file=sys.stderr)
    raise SystemExit(130)


if (Path(sys.argv[0]).name == "mnistbench" or Path(sys.argv[0]).resolve() == Path(__file__).with_name("__main__.py")) \
        and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
    signal.signal(signal.SIGINT, _interrupted_while_starting)

import typer  # noqa: E402  (after the Ctrl-C handler above)

from . import options as o  # noqa: E402  (the option declarations, named like their flags)
from ..measure.defaults import (RUNS_DIR, DEFAULT_SPINNING, DEFAULT_THREADS, FAST, MIN_ITERS, MIN_S, ROUNDS, WARMUP_ITERS, WARMUP_S)  # noqa: E402
from .entrypoint import note_interrupt_reported, run_app  # noqa: E402
from ...models.errors import MnistBenchError  # noqa: E402

# Each command imports the library it calls inside its body ("# heavy" below): the library pulls in
# torch and ONNX Runtime (seconds), which `mnistbench --help` and option errors never need.

app = typer.Typer(
    name="mnistbench",
    help="Reproduce published MNIST papers in PyTorch, export them to ONNX, and benchmark them on "
         "ONNX Runtime execution providers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


def guarded(fn=None, *, exit_code: int | None = None, interrupted: str = "interrupted; finished results were kept"):
    """Run a command inside the error boundary: an error's one line and its exit code (``exit_code``
    for every error where given), or ``interrupted`` and 130 on Ctrl-C."""
    if fn is None:
        return functools.partial(guarded, exit_code=exit_code, interrupted=interrupted)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except MnistBenchError as exc:
            print(f"mnistbench: error: {exc}", file=sys.stderr)
            raise typer.Exit(exit_code or exc.exit_code) from None
        except KeyboardInterrupt as exc:
            print(f"mnistbench: {interrupted}", file=sys.stderr)
            note_interrupt_reported(exc)
            raise typer.Exit(130) from None

    return wrapper


@app.command("list")
@guarded
def list_cmd() -> None:
    """List the registered models: paper, reported figure, parameters, FLOPs.

    Example: mnistbench list
    """
    from ..analysis.report import models_table
    from ...models.registry import select  # the zoo's specs: the networks (torch) load only when built
    from . import screen as console  # the light half of printing
    console.out.print(models_table(select(None)))


@app.command()
@guarded
def train(models: o.ModelsRequired, profile: o.Profile = "paper", device: o.Device = "auto", seed: o.Seed = 0,
          dataset: o.Dataset = "mnist", data_dir: o.DataDir = None, artifacts_dir: o.ArtifactsDir = None,
          amp: o.Amp = "off", channels_last: o.ChannelsLast = False) -> None:
    """Train the named models with a profile's recipe and save checkpoints.

    Example: mnistbench train lenet5 zhu-mlp --profile quick
    """
    from . import console  # heavy
    console.train(models, profile, device, seed, dataset, data_dir, artifacts_dir, amp, channels_last)


@app.command("train-all")
@guarded
def train_all(profile: o.Profile = "paper", device: o.Device = "auto", seed: o.Seed = 0, dataset: o.Dataset = "mnist",
              data_dir: o.DataDir = None, artifacts_dir: o.ArtifactsDir = None, amp: o.Amp = "off",
              channels_last: o.ChannelsLast = False) -> None:
    """Train every registered model with its paper's recipe (or a reduced profile).

    On a GPU (--device cuda) the whole dataset stays resident on the device; add --amp bf16
    --channels-last for speed. Example: mnistbench train-all --profile quick --device cpu
    """
    from . import console  # heavy
    console.train(None, profile, device, seed, dataset, data_dir, artifacts_dir, amp, channels_last)


@app.command()
@guarded
def export(models: o.Models = None, profile: o.ExportProfile = None, seed: o.Seed = 0, dataset: o.Dataset = "mnist",
           int8: o.Int8 = False, fp16: o.Fp16 = False, fp16_io: o.Fp16Io = False, data_dir: o.DataDir = None,
           artifacts_dir: o.ArtifactsDir = None) -> None:
    """Export trained checkpoints to ONNX (dynamic batch) and prove parity with PyTorch.

    Export fails unless top-1 agreement on 1,000 real test images is 100% and the
    largest logit difference is within 1e-4.

    Example: mnistbench export --profile quick --int8
    """
    from ..measure import inputs
    if data_dir is not None:  # before the checkpoints are looked for: the parity check reads the test images
        inputs.check_folder_path(Path(data_dir), f"--data-dir {data_dir}")
    from . import console  # heavy
    console.export(models, profile, seed, dataset, data_dir, artifacts_dir, int8, fp16, fp16_io)


@app.command()
@guarded
def run(
    models: o.Models = None, provider: o.Provider = ["cpu"], runtime: o.Runtime = ["onnxruntime"],
    batch_sizes: o.BatchSizes = "1,8,32,128,512", profile: o.RunProfile = None, seed: o.Seed = 0,
    dataset: o.Dataset = "mnist", warmup_iters: o.WarmupIters = WARMUP_ITERS, warmup_s: o.WarmupS = WARMUP_S,
    min_iters: o.MinIters = MIN_ITERS, min_s: o.MinS = MIN_S, rounds: o.Rounds = ROUNDS,
    max_live_sessions: o.MaxLive = 64, pin_cpus: o.PinCpus = None, reference: o.Reference = True,
    threads: o.Threads = DEFAULT_THREADS, spinning: o.Spinning = DEFAULT_SPINNING, null: o.Null = True,
    score: o.Score = True, repeat: o.Repeat = 1, shuffle_seed: o.ShuffleSeed = None, repeat_index: o.RepeatIndex = None,
    resume: o.Resume = False, variant: o.Variant = "fp32", precision: o.Precision = "fp32", onnx: o.Onnx = None,
    layout: o.Layout = "auto", preprocess: o.Preprocess = "unit", results_dir: o.ResultsDir = RUNS_DIR,
    out_path: o.RunOut = None, io_mode: o.IoMode = "end-to-end", cuda_graph: o.CudaGraph = False,
    cudnn_algo: o.CudnnAlgo = "exhaustive", tf32: o.Tf32 = False, device_id: o.DeviceId = 0,
    executor: o.Executor = "local", nodes: o.Nodes = "all", address: o.RayAddress = None,
    allow_stale: o.AllowStale = False, call_timeout: o.CallTimeout = None, data_dir: o.DataDir = None,
    artifacts_dir: o.ArtifactsDir = None,
) -> None:
    """Benchmark exported models: accuracy on the full test set, latency and throughput per batch size.

    Each cell confirms from the session itself that the requested execution
    provider is the one in use; a provider that is not really usable is an
    error before any row is written.

    Example: mnistbench run --provider cpu --batch-sizes 1,32,512 --profile quick --runtime onnxruntime,torch
    """
    from . import console
    from ..measure import inputs
    from ..launch import planning, ray_executor as rx  # heavy
    from ..runtimes.runtime import GpuOptions  # heavy
    from ..measure.timing import TimingConfig  # heavy
    inputs.check_executor(executor)
    inputs.check_ray_only(executor, nodes=(nodes, "all"), address=(address, None))
    inputs.check_onnx_only(onnx, layout, preprocess)
    inputs.check_stale_needs_models(models, onnx, allow_stale)
    inputs.check_profile_given(profile)
    profile = profile or ("foreign" if onnx else planning.default_profile(artifacts_dir, dataset, seed, "*.onnx",
                                                                          "exports", console.say))
    axes = planning.parse_axes(provider, runtime, batch_sizes, threads, spinning, io_mode, cuda_graph,
                               GpuOptions(device_id, cudnn_algo, tf32))
    req = planning.RunRequest(
        tuple(models) if models else None, axes, TimingConfig(warmup_iters, warmup_s, min_iters, min_s, rounds),
        tuple(inputs.row_variants(variant, precision, list(axes.runtimes))), profile, seed, dataset,
        tuple(onnx or ()), layout, preprocess, results_dir, out_path, resume, repeat, repeat_index, shuffle_seed, null,
        reference, score, max_live_sessions, pin_cpus, allow_stale, call_timeout, data_dir, artifacts_dir)
    if executor == "ray":
        return rx.run_everywhere(req, nodes, address, note=console.err.print,
                                 show=lambda s: console.out.print(s, markup=False, highlight=False))
    console.benchmark(req)


@app.command("all")
@guarded
def all_cmd(models: o.Models = None, profile: o.QuickProfile = "quick", provider: o.AllProvider = ["cpu"],
            batch_sizes: o.BatchSizes = "1,8,32,128,512", device: o.Device = "auto", seed: o.Seed = 0,
            dataset: o.Dataset = "mnist", results_dir: o.ResultsDir = RUNS_DIR, data_dir: o.DataDir = None,
            artifacts_dir: o.ArtifactsDir = None, fast: o.Fast = False) -> None:
    """Train every model, export each to ONNX with parity, and benchmark them: the main job.

    Defaults to the quick profile (all nine models in under ten minutes of
    training on 2 CPU cores); --profile paper runs the papers' recipes.

    Example: mnistbench all --profile quick --provider cpu
    """
    from . import console
    from ..launch import planning  # heavy
    from ..measure.timing import TimingConfig  # heavy
    from ...models.registry import select  # heavy
    from ..measure import inputs
    select(models)  # unknown names fail here, before any work
    inputs.check_creatable(results_dir, "--results-dir")  # before training and export, not after
    axes = planning.parse_axes(provider, ["onnxruntime"], batch_sizes, DEFAULT_THREADS, DEFAULT_SPINNING)
    axes = planning.usable_providers(axes, console.say)
    timing = TimingConfig(rounds=FAST[0], min_s=FAST[1], min_iters=FAST[2]) if fast else TimingConfig()
    req = planning.RunRequest(tuple(models) if models else None, axes, profile=profile, seed=seed, dataset=dataset,
                              results_dir=results_dir, data_dir=data_dir, artifacts_dir=artifacts_dir, timing=timing)
    t0 = time.perf_counter()
    console.train(models, profile, device, seed, dataset, data_dir, artifacts_dir)
    t1 = time.perf_counter()
    console.export(models, profile, seed, dataset, data_dir, artifacts_dir)
    t2 = time.perf_counter()
    console.benchmark(req)
    t3 = time.perf_counter()
    console.out.print(f"wall time: train {t1 - t0:.0f} s, export {t2 - t1:.0f} s, run {t3 - t2:.0f} s, total {t3 - t0:.0f} s")


@app.command()
@guarded
def reproduce(
    models: o.Models = None, seeds: o.Seeds = 3, profile: o.Profile = "paper", device: o.Device = "auto",
    dataset: o.Dataset = "mnist", ae_study: o.AeStudy = True, reduce_on_cpu: o.ReduceOnCpu = True,
    out_path: o.ReproduceOut = None, resume: o.ReproduceResume = False,
    results_dir: o.ReproduceDir = RUNS_DIR / "reproduce", executor: o.Executor = "local",
    address: o.RayAddress = None, max_retries: o.MaxRetries = 2, cpus_per_run: o.CpusPerRun = 2.0,
    data_dir: o.DataDir = None, artifacts_dir: o.ArtifactsDir = None,
) -> None:
    """Train each model with its paper's recipe over several seeds and compare with the paper's claim.

    Writes one CSV row per finished run (so an interrupted reproduction keeps its runs), then a
    markdown table beside it: claim, mean ± sd, min–max, verdict. On a CPU, fan-resnet runs a stated
    reduced budget unless --full-on-cpu.

    Example: mnistbench reproduce --seeds 3 ; mnistbench reproduce zhu-mlp zhu-cnn --seeds 10 --resume --out X.csv
    """
    from .. import api
    from . import console
    from ..measure import inputs
    from ..launch import ray_executor as rx  # heavy
    inputs.check_executor(executor)
    inputs.check_ray_only(executor, address=(address, None), max_retries=(max_retries, 2),
                          cpus_per_run=(cpus_per_run, 2.0))
    api.check_reproduce(models, max_retries, cpus_per_run, out_path, resume)  # before the data or a Ray cluster
    kw = dict(seeds=seeds, profile=profile, device=device, dataset=dataset, ae_study=ae_study,
              reduce_on_cpu=reduce_on_cpu, out_path=out_path, resume=resume, results_dir=results_dir,
              data_dir=data_dir, artifacts_dir=artifacts_dir, max_retries=max_retries, cpus_per_run=cpus_per_run)
    with console.reproduce_bars() as cb, \
            (rx.RayCluster(address) if executor == "ray" else contextlib.nullcontext()) as cluster:
        ray = cluster is not None
        result = api.reproduce(models, cluster=cluster, on_plan=functools.partial(cb["on_plan"], ray=ray),
                               on_start=None if ray else cb["on_start"],
                               on_done=functools.partial(cb["on_done"], ray=ray), **kw)
    console.show_reproduction(result)
    api.reproduce_failures(result.rows)


@app.command()
@guarded
def speedrun(model: o.SpeedModel = "speed-cnn", seeds: o.SpeedSeeds = 5, target: o.Target = 0.99,
             epochs: o.Epochs = None, profile: o.Profile = "paper", device: o.Device = "auto",
             dataset: o.Dataset = "mnist", out_path: o.SpeedOut = None, amp: o.Amp = "off",
             channels_last: o.ChannelsLast = False, data_dir: o.DataDir = None) -> None:
    """Time-to-accuracy: train a model once per seed and report training wall time and test accuracy.

    The clock covers model construction through the last optimiser step. Excluded, and said in
    the output: data loading and preprocessing, one untimed 10-step warm-up per process, and the
    test evaluation.

    Example: mnistbench speedrun speed-cnn --seeds 5 --target 0.99
    """
    from .. import api
    from . import console  # heavy
    res = api.speedrun(model, seeds=seeds, target=target, epochs=epochs, profile=profile, device=device,
                       dataset=dataset, out_path=out_path, amp=amp, channels_last=channels_last, data_dir=data_dir,
                       on_start=console.err.print,
                       on_result=lambda r: console.err.print(f"  seed {r.seed}: {r.accuracy:.2%} in {r.train_s:.2f} s"))
    console.show_speedrun(res.title, res.results, res.summary, target)
    console.out.print(f"runs: {res.csv_path}")


@app.command()
@guarded
def doctor(
    sweep: o.Sweep = True, min_s: o.SweepMinS = 0.5, check_defaults: o.CheckDefaults = False,
    models: o.DoctorModels = None, rounds: o.DefaultsRounds = 15, out_path: o.DefaultsOut = None,
    calibrate: o.Calibrate = False, trials: o.Trials = 20, calibrate_modes: o.CalibrateModes = "separate,live",
    calibration_dir: o.CalibrationDir = RUNS_DIR / "calibration", profile: o.CalibrateProfile = None,
    condition: o.Condition = "as-is", noise_seed: o.NoiseSeed = 0, calibrate_configs: o.CalibrateConfigs = "lenet5:32",
    calibrate_levels: o.CalibrateLevels = None,
    data_dir: o.DataDir = None, artifacts_dir: o.ArtifactsDir = None,
) -> None:
    """Check what this machine can really run: providers (by creating sessions), the GEMM peak,
    the null-model overhead floor, and the best thread settings for ONNX Runtime on this CPU.

    Example: mnistbench doctor ; mnistbench doctor --check-defaults --out runs/defaults.csv
    """
    from .. import api
    from . import console  # heavy
    _doctor_modes(check_defaults, calibrate, min_s, dict(model=(models, None), rounds=(rounds, 15), out=(out_path, None)),
                  dict(trials=(trials, 20), calibrate_modes=(calibrate_modes, "separate,live"),
                       calibration_dir=(calibration_dir, RUNS_DIR / "calibration"), profile=(profile, None),
                       condition=(condition, "as-is"), noise_seed=(noise_seed, 0),
                       calibrate_configs=(calibrate_configs, "lenet5:32"), calibrate_levels=(calibrate_levels, None),
                       data_dir=(data_dir, None)), dict(sweep=(sweep, True), min_s=(min_s, 0.5)))
    if check_defaults:
        return console.check_defaults(models, rounds, out_path)
    if calibrate:
        modes = tuple(m.strip() for m in calibrate_modes.split(",") if m.strip())
        command = "mnistbench " + " ".join(shlex.quote(a) for a in sys.argv[1:])
        summary = api.calibrate(trials=trials, out_dir=calibration_dir, profile=profile, data_dir=data_dir,
                                artifacts_dir=artifacts_dir, progress=console.say, modes=modes, condition=condition,
                                noise_seed=noise_seed, configs=calibrate_configs, levels=calibrate_levels, command=command)
        return console.out.print(summary, markup=False, highlight=False)
    label = "threads x spinning sweep (lenet5, fan-resnet; random weights)"
    res = api.doctor(sweep=False, min_s=min_s, artifacts_dir=artifacts_dir)
    console.show_machine(res.machine)
    console.show_overhead(res.overhead)
    if sweep:
        with console.counted(label, lazy=False):
            points = api.doctor_sweep(min_s)
        console.show_sweep(points)


def _doctor_modes(check_defaults: bool, calibrate: bool, min_s: float, defaults_opts: dict, calibrate_opts: dict,
                  plain_opts: dict) -> None:
    """Refuse, before any measuring, options of a mode that was not asked for (they would be ignored,
    bad values included), both modes at once, and a sweep time that is not a finite positive number.

    ``plain_opts``: those of the plain doctor (the sweep), refused in either mode.

    Raises:
        UsageError: one line naming the options.
    """
    import math

    from ...models.errors import UsageError
    from ..measure.inputs import only_with

    if check_defaults and calibrate:
        raise UsageError("--check-defaults and --calibrate are two modes of doctor: give one")
    if not (min_s > 0 and math.isfinite(min_s)):
        raise UsageError(f"--min-s must be a finite number of seconds above 0, got {min_s}")
    only_with(not (check_defaults or calibrate), "the plain doctor", " (--check-defaults and --calibrate run no sweep)",
              **plain_opts)
    only_with(check_defaults, "--check-defaults", **defaults_opts)
    only_with(calibrate, "--calibrate", **calibrate_opts)


# `load`, then the commands that read results, registered after the others (the order of `mnistbench --help`).
from . import load_command  # noqa: E402,F401
from . import results_commands  # noqa: E402,F401


def main() -> None:
    """Console-script entry point (see :func:`entrypoint.run_app`)."""
    run_app(app, _interrupted_while_starting)

