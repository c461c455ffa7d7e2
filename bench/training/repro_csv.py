"""The runs CSV of a paper reproduction: its columns (:data:`RUN_FIELDS`), the row of a run that
failed (:func:`error_row`), a row's status and identity (:func:`is_ok`, :func:`run_key`), and the
file itself, appended to run by run (:func:`runs_csv`, which first upgrades a CSV written before the
``status`` and ``error`` columns) and read back (:func:`read_runs`).
"""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path

from ...models.errors import UsageError
from ...models.files import atomic_write_bytes
from ..measure.records import CsvAppender
from .repro_plan import AE_SCALES, PlannedRun

RUN_FIELDS = [
    "experiment", "dataset", "model", "scale", "seed", "profile", "recipe", "reduced", "metric",
    "final", "best", "best_step", "checkpoints", "reconstruction_mse", "steps", "epochs", "device",
    "threads", "wall_s", "finished_utc", "commit", "status", "error",
]
# Columns added after the first CSVs were written: files without them read as all ``ok``.
ADDED_RUN_FIELDS = ("status", "error")


def error_row(run: PlannedRun, dataset: str, error: str, commit: str = "") -> dict:
    """The CSV row of a run that could not be trained: its identity, ``status`` ``error`` and
    the reason in ``error``; the measurement columns are empty."""
    row = dict.fromkeys(RUN_FIELDS, "")
    row.update(experiment=run.experiment, dataset=dataset, model=run.model,
               scale=AE_SCALES.get(run.scale, "") if run.experiment == "ae-scale" else "", seed=run.seed,
               profile=run.profile, reduced=run.reduced, commit=commit, status="error", error=error,
               finished_utc=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    return row


def is_ok(row: dict) -> bool:
    """Whether a runs-CSV row is a finished run (rows written before the ``status`` column are)."""
    return row.get("status", "ok") in ("ok", "", None)


def run_key(row: dict) -> tuple:
    scale = {v: k for k, v in AE_SCALES.items()}.get(row["scale"], "")
    return (row["experiment"], row["model"], scale, str(row["seed"]))


def runs_csv(path: Path) -> CsvAppender:
    """The append-only, fsynced CSV of finished runs (columns :data:`RUN_FIELDS`). An existing
    file written before the ``status`` and ``error`` columns is first rewritten (atomically)
    with them, its rows marked ``ok``, so that appended rows line up with its header.

    Raises:
        UsageError: its folder cannot be created or written; an existing file that is not a
            reproduction CSV.
    """
    if path.is_file() and path.stat().st_size > 0:
        with open(path, newline="") as fh:
            header = next(csv.reader(fh), [])
        if header != RUN_FIELDS:
            rows = read_runs(path)
            buf = io.StringIO()
            w = csv.DictWriter(buf, fieldnames=RUN_FIELDS, lineterminator="\n", extrasaction="ignore")
            w.writeheader()
            for r in rows:
                w.writerow({**dict.fromkeys(RUN_FIELDS, ""), "status": "ok", **r})
            atomic_write_bytes(path, buf.getvalue().encode())
    return CsvAppender(path, RUN_FIELDS)


def read_runs(path: Path) -> list[dict]:
    """Rows of a reproduction CSV.

    Raises:
        UsageError: missing file, or a CSV that is not a reproduction CSV.
    """
    if not path.is_file():
        raise UsageError(f"{path} does not exist")
    try:
        with open(path, newline="") as fh:
            reader = csv.DictReader(fh)
            if reader.fieldnames is None or not {"experiment", "model", "seed", "final"} <= set(reader.fieldnames):
                raise UsageError(f"{path} is not a reproduction CSV (written by `mnistbench reproduce`)")
            rows = list(reader)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise UsageError(f"{path} is not a readable CSV: {exc}") from None
    return rows
