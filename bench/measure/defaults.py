"""The measurement's defaults, shown in the command line's ``--help``: timing of a ``run`` cell, of
a live stage, and the session settings. Constants only (no numpy, torch or ONNX Runtime), so that the
command line declares its options without importing the measurement."""

from __future__ import annotations

from pathlib import Path

# Where commands write by default: a folder git ignores (.gitignore), so that a user's runs never land in
# the committed results/ (the project's evidence, written only with an explicit --results-dir or --out).
RUNS_DIR = Path("runs")

AUTO = -1  # the threads axis value ``auto``: choose per cell by a short probe (see threads.autotune_threads)
# Precisions a runtime applies to the fp32 ONNX file itself (``run --precision``), carried as the row's
# variant: ``bf16`` is OpenVINO's inference precision hint and PyTorch's bf16 autocast. ONNX Runtime
# runs each file as written (its reduced precisions are the int8/fp16 variant files).
PRECISIONS = ("fp32", "bf16")

# Defaults, shown in `mnistbench run --help`. 16 timed calls and 1 s bound the
# cost of the slowest cell (fan-resnet at batch 512, 2 to 4 s a call on 2 cores)
# while small models collect thousands of samples in the 1 s. With interleaving
# (`run --rounds R`) a cell's timed calls are spread over R blocks of
# ceil(MIN_ITERS / R) calls and MIN_S / R seconds each: one call per block at least.
WARMUP_ITERS = 5
WARMUP_S = 0.2
MIN_ITERS = 16
MIN_S = 1.0
# 16 rounds: `compare` judges the 25th percentile of the block medians, which 8 blocks resolve only
# coarsely. 10 separate runs at 16 rounds against 14 at 8 (results/calibration/README.md): planted
# ~7% slowdowns flagged in 64-90% of pairs against 51-77%.
ROUNDS = 16
# `mnistbench all --fast`: half the rounds, seconds and calls of a cell. On the 2-core machine here the
# main job's run step took 341 s with the defaults and 276 s with these (median interval +-0.16% and
# +-2.4%); about 180 s before interleaving.
FAST = (8, 0.5, 8)  # rounds, min_s, min_iters

# One stage: 4 fresh sessions a side, 6 rounds, 1 timed second a side (blocks of ~40 ms), 50 ms of
# warm-up per session. Chosen on this 2-vCPU VM (lenet5 batch 32, unpinned, bursty neighbour): a
# stage takes ~3 s with its session set-up, and its log ratio's spread between stages is what the
# sequential test needs to resolve a 3% change within a minute (results/calibration/v2/).
LIVE_SESSIONS = 4
LIVE_ROUNDS = 6
LIVE_MIN_S = 1.0
LIVE_WARMUP_S = 0.05
LIVE_MAX_S = 120.0  # the default time budget, seconds: stop with `inconclusive` after it

# Session defaults of `run` and `all` (see README, "Threads and spinning"): threads chosen per
# cell by a short probe of 1 against one per physical core; spinning left at ONNX Runtime's default.
DEFAULT_THREADS = "auto"
DEFAULT_SPINNING = "default"
