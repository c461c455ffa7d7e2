"""The command line's options, declared once: Typer ``Annotated`` aliases shared by the commands of
:mod:`bench.cli`, so that a command's signature reads as a list of names and defaults. Help texts
here are what ``mnistbench COMMAND --help`` shows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

# ---------------------------------------------------------------- shared by several commands
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
ModelsRequired = Annotated[list[str], typer.Argument(help="Model names or wildcard patterns.")]
Profile = Annotated[str, typer.Option("--profile", help="paper, quick or smoke (default paper).")]
QuickProfile = Annotated[str, typer.Option("--profile", help="paper, quick or smoke (default quick).")]
Amp = Annotated[str, typer.Option("--amp", help="Mixed precision for training: off or bf16 (torch.autocast; "
                                  "for GPUs).")]
ChannelsLast = Annotated[bool, typer.Option("--channels-last", help="Train in channels-last memory format "
                                            "(faster convolutions on GPUs).")]
Format = Annotated[str, typer.Option("--format", help="rich or markdown.")]
BatchSizes = Annotated[str, typer.Option("--batch-sizes", help="Comma-separated batch sizes.")]
ResultsDir = Annotated[Path, typer.Option(help="Folder for the results CSV and system JSON.")]

# ---------------------------------------------------------------- export
ExportProfile = Annotated[Optional[str], typer.Option("--profile", help="paper, quick or smoke (default: the profile "
                                                      "whose checkpoints were written last).")]
Int8 = Annotated[bool, typer.Option("--int8", help="Also write the int8 QDQ variant (static quantization, "
                                    "calibrated on 1,000 training images).")]
Fp16 = Annotated[bool, typer.Option("--fp16", help="Also write the fp16 variant (ONNX Runtime's float16 "
                                    "converter; float32 inputs and outputs kept).")]
Fp16Io = Annotated[bool, typer.Option("--fp16-io", help="Also write the fp16-io variant: fp16 with float16 "
                                      "inputs and outputs (callers feed float16).")]

# ---------------------------------------------------------------- run
Provider = Annotated[list[str], typer.Option(
    "--provider", help="Execution provider(s): cpu, cuda, tensorrt (repeat or comma-separate).")]
Runtime = Annotated[list[str], typer.Option(
    "--runtime", help="onnxruntime, torch (PyTorch eager, the baseline), torch.compile and/or openvino "
    "(pip install -e \".[openvino]\"); comma-separate.")]
RunProfile = Annotated[Optional[str], typer.Option("--profile", help="paper, quick or smoke (default: the profile "
                                                   "whose ONNX exports were written last).")]
WarmupIters = Annotated[int, typer.Option(help="Untimed warm-up calls per cell (at least).")]
WarmupS = Annotated[float, typer.Option(help="Warm-up seconds per cell (at least).")]
MinIters = Annotated[int, typer.Option(help="Timed calls per cell (at least).")]
MinS = Annotated[float, typer.Option(help="Timed seconds per cell (at least).")]
Rounds = Annotated[int, typer.Option(
    help="Interleaved rounds: each visits every cell once, in a fresh random order, for one block of "
         "min-s/rounds seconds; a cell's confidence intervals come from its blocks.")]
MaxLive = Annotated[int, typer.Option(
    "--max-live-sessions", help="Sessions kept alive and interleaved at once; a larger matrix is measured in "
    "groups of this size (recorded per row).")]
PinCpus = Annotated[Optional[str], typer.Option(
    "--pin-cpus", help="Run the benchmark process on these CPUs only, e.g. 0,1 or 2-3 (affinity; no root "
    "needed).")]
Reference = Annotated[bool, typer.Option(
    "--reference/--no-reference", help="Measure the fixed reference network in every group, so `compare` "
    "can correct for drift of the machine between runs.")]
Threads = Annotated[str, typer.Option(
    help="Intra-op threads, comma-separated to sweep: auto (per cell, the faster of 1 and one per physical "
         "core in a short probe), 0 (the runtime's own choice) or a number.")]
Spinning = Annotated[str, typer.Option(
    help="ONNX Runtime intra-op spinning: default, on, off (comma-separated to sweep).")]
Null = Annotated[bool, typer.Option("--null/--no-null", help="Also measure the null model (overhead floor).")]
Score = Annotated[bool, typer.Option("--score/--no-score", help="Score the full test set (accuracy, agreement); "
                                     "--no-score for timing-only sweeps.")]
Repeat = Annotated[int, typer.Option(help="Run the whole matrix N times, each in a fresh process, shuffled.")]
ShuffleSeed = Annotated[Optional[int], typer.Option(help="Shuffle the cell order with this seed.")]
RepeatIndex = Annotated[Optional[int], typer.Option(hidden=True)]
Resume = Annotated[bool, typer.Option(
    "--resume", help="Complete an interrupted run: measure only the cells missing from --out.")]
Variant = Annotated[str, typer.Option(
    help="Model variants, comma-separated: fp32, int8, fp16, fp16-io (export them with --int8 / --fp16 / "
         "--fp16-io).")]
Precision = Annotated[str, typer.Option(
    help="Inference precisions of the fp32 file, comma-separated: fp32, bf16 (OpenVINO's precision hint, "
         "PyTorch's bf16 autocast; rows get variant bf16; ONNX Runtime runs fp32 only).")]
Onnx = Annotated[Optional[list[Path]], typer.Option(
    "--onnx", help="Benchmark this MNIST classifier instead of registered models (repeatable).")]
Layout = Annotated[str, typer.Option(help="Input layout of --onnx models: auto, nchw, nhwc, flat, hw.")]
Preprocess = Annotated[str, typer.Option(
    help="Input scaling of --onnx models: unit [0,1], mnist-norm, signed [-1,1], raw 0-255.")]
RunOut = Annotated[Optional[Path], typer.Option("--out", help="Exact CSV path (must not exist, unless --resume).")]
IoMode = Annotated[str, typer.Option(
    "--io-mode", help="GPU rows, comma-separated: end-to-end (host arrays in and out) and/or device (IO binding, "
    "data resident on the GPU, transfers excluded).")]
CudaGraph = Annotated[bool, typer.Option(
    "--cuda-graph", help="Also run device mode as one captured CUDA graph per batch size (CUDA EP).")]
CudnnAlgo = Annotated[str, typer.Option(
    "--cudnn-algo", help="cuDNN convolution algorithm search: exhaustive (ONNX Runtime's default), heuristic, "
    "default. Its cost falls in each cell's warm-up.")]
Tf32 = Annotated[bool, typer.Option("--tf32/--no-tf32", help="Allow TF32 math for fp32 on CUDA (off: fp32 "
                                    "parity with PyTorch).")]
DeviceId = Annotated[int, typer.Option("--device-id", help="CUDA device ordinal.")]
Nodes = Annotated[str, typer.Option("--nodes", help="--executor ray: the nodes to benchmark on, one at a time "
                                    "each: all, a count, or label=KEY=VALUE.")]
AllowStale = Annotated[bool, typer.Option(
    "--allow-stale", help="Benchmark exported files even when they do not come from the current checkpoint "
    "(retrained since, or another network saved under the model's name).")]
CallTimeout = Annotated[Optional[float], typer.Option(
    "--call-timeout", help="Seconds one ONNX Runtime call may take before it is ended and its cell recorded "
    "as an error row (0: no limit; default 60).", show_default=False)]
AllProvider = Annotated[list[str], typer.Option("--provider", help="Execution provider(s) for the run step.")]

# ---------------------------------------------------------------- reproduce
Seeds = Annotated[int, typer.Option("--seeds", help="Runs per model, seeds 0..N-1 (the papers' 'mean of 10 "
                                    "runs' needs 10).")]
AeStudy = Annotated[bool, typer.Option("--ae-study/--no-ae-study", help="Also train both autoencoders at the "
                                       "same settings on [0,1] and [-1,1] inputs.")]
ReduceOnCpu = Annotated[bool, typer.Option("--reduce-on-cpu/--full-on-cpu", help="On a CPU, run recipes "
                                           "marked infeasible there (fan-resnet's 30 epochs) with their quick "
                                           "recipe, labelled reduced.")]
ReproduceOut = Annotated[Optional[Path], typer.Option("--out", help="Runs CSV to write (default "
                                                      "runs/reproduce/<UTC stamp>-<dataset>-<profile>.csv).")]
ReproduceResume = Annotated[bool, typer.Option("--resume", help="Complete the --out CSV: train only the runs it lacks "
                                               "(more seeds or models may be added), then rewrite its table.")]
ReproduceDir = Annotated[Path, typer.Option(help="Folder for the runs CSV, its table and system JSON.")]
MaxRetries = Annotated[int, typer.Option("--max-retries", help="--executor ray: retries of a run whose worker "
                                         "died (crash, out of memory); then it is an error row.")]
CpusPerRun = Annotated[float, typer.Option("--cpus-per-run", help="--executor ray: CPUs each run holds (its "
                                           "torch threads).")]

# ---------------------------------------------------------------- speedrun
SpeedModel = Annotated[str, typer.Argument(help="A registered classifier (default speed-cnn, the model designed "
                                           "for it).")]
SpeedSeeds = Annotated[int, typer.Option("--seeds", help="Runs, seeds 0..N-1.")]
Target = Annotated[float, typer.Option("--target", help="Test accuracy to reach (fraction), judged on the "
                                       "mean over seeds.")]
Epochs = Annotated[Optional[int], typer.Option("--epochs", help="Override the recipe's epoch count.")]
SpeedOut = Annotated[Optional[Path], typer.Option("--out", help="CSV to write (default runs/speedrun/"
                                                  "<UTC stamp>-<dataset>-<model>-<device>.csv).")]

# ---------------------------------------------------------------- doctor
Sweep = Annotated[bool, typer.Option("--sweep/--no-sweep", help="Run the threads x spinning sweep.")]
SweepMinS = Annotated[float, typer.Option(help="Timed seconds per sweep cell (at least).")]
CheckDefaults = Annotated[bool, typer.Option(
    "--check-defaults", help="Instead: measure the default session options against every threads x spinning "
    "configuration for each model at batch 1 and 128, in interleaved blocks in one process.")]
DoctorModels = Annotated[Optional[list[str]], typer.Option("--model", help="Models for --check-defaults (repeatable; "
                                                           "default every registered model).")]
DefaultsRounds = Annotated[int, typer.Option(help="--check-defaults: blocks per configuration.")]
DefaultsOut = Annotated[Optional[Path], typer.Option("--out", help="--check-defaults: also write the figures to "
                                                     "this CSV (with a .system.json beside it).")]
Calibrate = Annotated[bool, typer.Option(
    "--calibrate", help="Instead: the calibration study of `compare` (planted 0-20% slowdowns and speedups, "
    "separate runs and --live, --trials times each, under a neighbour --condition); stores this host's noise "
    "profile (as-is and quiet).")]
Condition = Annotated[str, typer.Option(help="--calibrate: neighbour noise: as-is (the host as it is), quiet (pinned "
                                        "to the last CPU), busy or bursty (seeded load on the benchmark's CPUs).")]
NoiseSeed = Annotated[int, typer.Option(help="--calibrate: seed of the neighbour's bursts and of the A/B order.")]
CalibrateLevels = Annotated[Optional[str], typer.Option(help="--calibrate: planted changes in percent, comma-separated "
                                                   "(separate runs: 0 and slowdowns, each also as a speedup; live: signed, "
                                                   "negative = a speedup). Default: 0,2,5,10,20 and 0,1,3,-3.")]
CalibrateConfigs = Annotated[str, typer.Option(help="--calibrate: MODEL:BATCH configurations, comma-separated.")]
Trials = Annotated[int, typer.Option(help="--calibrate: repetitions of each comparison.")]
CalibrateModes = Annotated[str, typer.Option(help="--calibrate: which comparisons, comma-separated: separate "
                                             "(two run processes, then compare) and live (compare --live).")]
CalibrationDir = Annotated[Path, typer.Option(help="--calibrate: output folder.")]
CalibrateProfile = Annotated[Optional[str], typer.Option("--profile", help="--calibrate: artifacts profile (default: the "
                                                         "newest that exists).")]

# ---------------------------------------------------------------- compare
Base = Annotated[str, typer.Argument(help="Baseline results: a CSV from `run` or a folder of them; with --live, "
                                     "a model: an .onnx path or MODEL[:VARIANT].")]
New = Annotated[list[str], typer.Argument(help="Results to compare against the baseline; with --live, one model.")]
FailOn = Annotated[Optional[str], typer.Option(
    "--fail-on", help="Gate: exit 1 when a change judged slower/faster crosses a rule, e.g. "
    "'p50:+5%,throughput:-5%,accuracy:-0.1pp'.")]
Noise = Annotated[Optional[str], typer.Option(
    help="Noise threshold (fraction of p50): a change whose 95% interval lies within +-noise is 'no change'. "
    "auto (default): 0.02 between runs, 0.01 with --live; between runs the intervals also hold the host's "
    "between-run spread (its noise profile, from doctor --calibrate) and the reference network's movement.")]
Fast = Annotated[bool, typer.Option(
    "--fast", help="Shorter measurement for the run step: 8 rounds, 0.5 s and 8 calls per cell (wider "
    "intervals; the default is 16 rounds, 1 s, 16 calls).")]
DriftCorrection = Annotated[bool, typer.Option(
    "--drift-correction", help="Judge each ratio divided by the reference network's ratio when that moved "
    "between the runs (off by default: see README, compare).")]
FailOnInconclusive = Annotated[bool, typer.Option(
    "--fail-on-inconclusive", help="Also fail the gate when a cell is inconclusive (interval too wide).")]
Live = Annotated[bool, typer.Option("--live", help="Measure BASE and NEW now, in this process, blocks "
                                    "alternating: the most sensitive comparison on a shared machine.")]
LiveBatchSizes = Annotated[str, typer.Option("--batch-sizes", help="--live: batch sizes.")]
LiveRounds = Annotated[int, typer.Option(help="--live: rounds a stage; each measures one block of every session of both sides.")]
LiveMinS = Annotated[float, typer.Option(help="--live: timed seconds a stage per side and batch size, shared by its sessions.")]
LiveSessions = Annotated[int, typer.Option(help="--live: fresh sessions per side in each stage (a session's own offset, "
                                           "up to ~2% here, averages out over stages).")]
LiveMaxS = Annotated[float, typer.Option(help="--live: time budget in seconds: stages go on until the sequential test "
                                         "decides (slower, faster, no change) or this is spent.")]
LiveThreads = Annotated[str, typer.Option(help="--live: intra-op threads (one value; auto as in run, 0 = the runtime's choice).")]
LiveOut = Annotated[Optional[Path], typer.Option("--out", help="--live: keep the rows and samples here.")]
LiveProfile = Annotated[Optional[str], typer.Option("--profile", help="--live: artifacts profile of MODEL "
                                                    "(default: the newest that exists).")]

# ---------------------------------------------------------------- report, table, verify, best
ReportResults = Annotated[list[Path], typer.Argument(help="Results CSVs or folders (several hosts are merged).")]
ReportDir = Annotated[Path, typer.Option("--out-dir", help="Folder for the PNGs and report.html.")]
SloMs = Annotated[float, typer.Option(help="p99 latency budget for the best-batch-size table (ms).")]
TableCsvs = Annotated[list[Path], typer.Argument(help="A results CSV written by `mnistbench run`, or reproduction "
                                                 "CSVs written by `mnistbench reproduce` (several merge).")]
VerifyPath = Annotated[Path, typer.Argument(help="A results CSV, or a folder of them.")]
Repair = Annotated[bool, typer.Option("--repair", help="Drop a partial last row and leftover temporary "
                                      "files (the CSV is rewritten atomically).")]
DropUnsampled = Annotated[bool, typer.Option("--drop-unsampled", help="With --repair: also drop measured rows "
                                             "whose samples file is missing.")]
BestResults = Annotated[list[Path], typer.Argument(help="Results CSVs or folders (raw samples beside them are used "
                                                   "for confidence intervals when the rows carry none).")]
MaxAccuracyDrop = Annotated[str, typer.Option(
    "--max-accuracy-drop", help="Accuracy budget against ONNX Runtime fp32, percentage points (0.2 or 0.2pp).")]
MaxMseIncrease = Annotated[float, typer.Option(
    "--max-mse-increase", help="MSE budget of reconstruction models against ONNX Runtime fp32, a fraction.")]
