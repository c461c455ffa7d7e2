"""Benchmark: the API of ``mnistbench run`` (:func:`benchmark`, :func:`run`) and its results
(:func:`frame`, :func:`samples`)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd

from ...models.errors import UsageError
from ..launch.planning import Note, RunOutcome, RunRequest, _stderr, check_failures, default_profile, execute
from ..launch.repeats import run_repeats
from ..measure import samples as samples_io
from ..measure.records import COLUMNS, BenchmarkRecord
from ..measure.runner import Axes, RunProgress
from ..measure.samples import CellSamples
from ..measure.timing import TimingConfig


def frame(rows: list[BenchmarkRecord], csv_path: Path | None = None) -> pd.DataFrame:
    """Rows as a DataFrame with the results CSV's columns (:data:`records.COLUMNS`), one row per
    cell; ``df.attrs["csv_path"]`` names the CSV, whose raw samples :func:`samples` reads."""
    df = pd.DataFrame([dataclasses.asdict(r) for r in rows], columns=COLUMNS)
    df.attrs["csv_path"] = str(csv_path) if csv_path else None
    return df


def benchmark(models: list[str] | None = None, *, axes: Axes = Axes(), timing: TimingConfig = TimingConfig(),
              profile: str | None = None, progress: RunProgress | None = None, note: Note = _stderr,
              **options) -> pd.DataFrame:
    """Benchmark exported models (or foreign ONNX files): accuracy on the full test set, latency and
    throughput per batch size, every cell written to a results CSV as it finishes.

    Args:
        models: registered names or patterns (None: every model; leave None with ``onnx=[...]``).
        axes: the swept axes (batch sizes are images per call; threads :data:`AUTO`, 0 or a count).
        timing: warm-up and timed-loop bounds per cell (calls and seconds) and interleaved rounds.
        profile: artifacts profile (None: the one whose ONNX files were written last; ``foreign``
            with ``onnx``).
        progress: ``(description, cells done, cells)``. note: one-line notes.
        options: any other :class:`RunRequest` field: ``variants``, ``onnx``, ``out_path`` (a new
            ``.csv``), ``results_dir``, ``resume``, ``repeat``, ``null``, ``reference``, ``score``, ...

    Returns:
        the rows of the results CSV as a DataFrame (:func:`frame`; reference-network rows included,
        ``task == "reference"``); latencies in ms, throughput in images/s. ``df.attrs["csv_path"]``.

    Raises:
        UsageError: unusable input (names, options, an existing ``out_path``, a missing artifact);
        ProviderUnavailableError; MnistBenchError when cells failed (they are error rows in the CSV).

    Example: ``api.benchmark(onnx=["m.onnx"], axes=api.Axes(batch_sizes=(1,)), out_path="r.csv")``
    """
    if "out_path" in options and options["out_path"] is not None:
        options["out_path"] = Path(options["out_path"])
    options["onnx"] = tuple(Path(p) for p in options.get("onnx", ()))
    if profile is None:
        profile = "foreign" if options["onnx"] else default_profile(
            options.get("artifacts_dir"), options.get("dataset", "mnist"), options.get("seed", 0), "*.onnx",
            "exports", note)
    unknown = set(options) - {f.name for f in dataclasses.fields(RunRequest)}
    if unknown:
        raise UsageError(f"benchmark() takes no option {sorted(unknown)[0]!r}")
    req = RunRequest(names=tuple(models) if models else None, axes=axes, timing=timing, profile=profile, **options)
    outcome = run(req, progress, note)
    check_failures(outcome.rows)
    return frame(outcome.rows, outcome.csv_path)  # resumed or repeated: the whole file


def run(req: RunRequest, progress: RunProgress | None = None, note: Note = _stderr) -> RunOutcome:
    """Execute a :class:`RunRequest` (repeats in fresh processes); the rows and files it wrote.

    Raises: as :func:`benchmark`, except that failed cells are returned as error rows."""
    return execute(req, progress, note, run_repeats=lambda path, r: run_repeats(path, r, note))


def samples(results: pd.DataFrame | str | Path, cell: str | pd.Series) -> CellSamples:
    """The raw samples of one cell: ``.ns`` int64 (n,) per-call latencies in ns, ``.blocks()``.

    Args:
        results: a DataFrame from :func:`benchmark`, or the results CSV's path.
        cell: a row of that DataFrame, or its ``cell_id``.

    Raises:
        UsageError: no samples for that cell (the samples folder or file is missing, or damaged).

    Example: ``api.samples(df, df.iloc[0]).ns.mean() / 1e6`` (mean latency, ms)
    """
    csv_path = Path(results.attrs["csv_path"]) if isinstance(results, pd.DataFrame) else Path(results)
    cell_id = cell["cell_id"] if isinstance(cell, pd.Series) else str(cell)
    path = samples_io.folder_for(csv_path) / f"{cell_id}.npz"
    if path.is_file():
        return samples_io.read_cell(path)
    found = samples_io.load(csv_path).get(cell_id)
    if found is None:
        raise UsageError(f"no raw samples for cell {cell_id} beside {csv_path}")
    return found
