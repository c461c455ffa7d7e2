"""The Python API of mnistbench: train, export, benchmark, compare and reproduce from a notebook,
a test or a CI script. The ``mnistbench`` command line is a thin layer over these functions: every
command is one of them (``train``/``train-all`` :func:`train`, ``export`` :func:`export`, ``run``
:func:`benchmark`/:func:`run`, ``compare`` :func:`compare`/:func:`compare_live`/:func:`gate`,
``reproduce`` :func:`reproduce`, ``speedrun`` :func:`speedrun`, ``best`` :func:`best`, ``report``
:func:`report`, ``verify`` :func:`verify`, ``table`` :func:`table`, ``doctor`` :func:`doctor`,
:func:`check_defaults`, :func:`calibrate`, ``load`` :func:`load`).

Every function checks its input before any work and raises the project's errors
(:mod:`mnistbench.models.errors`): :class:`UsageError` for unusable input (exit 2 on the command line),
:class:`MnistBenchError` subclasses for other expected failures. Nothing here prints to stdout;
one-line notes (which profile was chosen, a provider skipped) go to ``note`` (default: stderr).

Configuration is typed, reusing the library's own dataclasses:

- :class:`Axes` (from :mod:`bench.measure.config`): runtimes, execution providers, intra-op threads
  (:data:`AUTO` = per-cell probe), spinning, batch sizes (images per call), io modes, :class:`GpuOptions`;
- :class:`TimingConfig` (from :mod:`bench.timing`): warm-up calls/seconds, timed calls/seconds per
  cell, interleaved rounds;
- :class:`RunRequest` (from :mod:`bench.measure.config`): everything else a benchmark run takes, with
  ``to_dict``/``from_dict`` (what the launchers hand to a fresh process or a Ray task).

The functions live in submodules by command (:mod:`.models`, :mod:`.benchmarking`, :mod:`.comparison`,
:mod:`.reproduction`, :mod:`.commands`) and are all importable from here; each is imported on first
use (PEP 562), so that a command that only reads results (``compare`` of two CSVs, ``table``,
``verify``) starts without torch or ONNX Runtime.

Example (quick profile, two models, CPU EP)::

    from mnistbench import api
    api.train(["lenet5"], profile="smoke", device="cpu")
    api.export(["lenet5"], profile="smoke")
    df = api.benchmark(["lenet5"], profile="smoke", axes=api.Axes(batch_sizes=(1, 32)),
                       timing=api.TimingConfig(min_s=0.2, rounds=4), out_path="runs/a.csv")
    print(df[["model", "batch_size", "latency_p50_ms", "throughput_ips"]])
    ns = api.samples(df, df.iloc[0]).ns          # int64 latencies of the first row's timed calls
"""

from __future__ import annotations

import importlib
from typing import Any

# name -> the module that defines it (relative to this package)
_EXPORTS = {
    "AUTO": "..measure.config", "Axes": "..measure.config", "RunRequest": "..measure.config",
    "CellSamples": "..measure.samples", "TimingConfig": "..measure.timing", "GpuOptions": "..runtimes.runtime",
    **dict.fromkeys(["benchmark", "frame", "run", "samples"], ".benchmarking"),
    **dict.fromkeys(["Doctor", "ResultsTable", "Speedrun", "best", "calibrate", "check_defaults", "check_defaults_cells",
                     "doctor", "doctor_sweep", "report", "speedrun", "table", "verify"], ".commands"),
    **dict.fromkeys(["Comparison", "Gate", "check_noise", "compare", "compare_live", "gate", "parse_noise"], ".comparison"),
    **dict.fromkeys(["TrainProgress", "export", "train"], ".models"),
    **dict.fromkeys(["LoadOutcome", "LoadRecord", "LoadRequest", "load", "read_load_csv"], ".load"),
    **dict.fromkeys(["Reproduction", "check_reproduce", "reproduce", "reproduce_failures"], ".reproduction"),
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
