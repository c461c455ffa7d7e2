"""LoadGen's log folders beside a load CSV: ``<csv stem>.loadgen/<cell_id>/`` holds the summary and
detail logs of a row's test (a peak search: of its VALID test at the peak, and ``tries.csv``, every
rate it tried). A row's logs are written in ``.<cell_id>.partial`` and renamed into place whole
before the row is appended; an interrupted row's partial folder is removed.
"""

from __future__ import annotations

import contextlib
import csv
import io
import shutil
from pathlib import Path

from ...models.files import atomic_write_bytes
from .scenarios import Peak

KEPT = ("mlperf_log_summary.txt", "mlperf_log_detail.txt", "tries.csv")  # what a row's folder keeps


def logs_folder(csv_path: Path) -> Path:
    """``<csv stem>.loadgen`` beside ``csv_path``."""
    return csv_path.with_name(csv_path.stem + ".loadgen")


def fresh_work(logs: Path, cell_id: str) -> Path:
    """The empty partial folder of row ``cell_id`` under ``logs`` (one left by a killed run removed)."""
    work = logs / f".{cell_id}.partial"
    shutil.rmtree(work, ignore_errors=True)
    return work


def drop_partial(work: Path, logs: Path) -> None:
    """An interrupted row's logs: no row names them."""
    shutil.rmtree(work, ignore_errors=True)
    with contextlib.suppress(OSError):
        logs.rmdir()  # only when empty: nothing of this run was kept there


def publish_logs(work: Path, final: Path) -> None:
    """Keep LoadGen's summary and detail logs (and tries.csv) of ``work`` as ``final``, whole (rename)."""
    for p in work.iterdir() if work.exists() else ():
        if p.is_file() and p.name not in KEPT:
            p.unlink()
    shutil.rmtree(final, ignore_errors=True)
    final.parent.mkdir(parents=True, exist_ok=True)
    work.rename(final)


def keep_peak_logs(work: Path, peak: Peak) -> None:
    """A peak search's folder: the logs of its VALID test at the peak, and ``tries.csv`` of every rate."""
    tries = sorted((work / "tries").iterdir()) if (work / "tries").exists() else []
    for d, (q, ok) in zip(tries, peak.tried):
        if ok and q == peak.peak_qps:
            for name in ("mlperf_log_summary.txt", "mlperf_log_detail.txt"):
                if (d / name).exists():
                    shutil.copyfile(d / name, work / name)
    shutil.rmtree(work / "tries", ignore_errors=True)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["target_qps", "valid"])
    w.writerows([(f"{q:.3f}", "VALID" if ok else "INVALID") for q, ok in peak.tried])
    atomic_write_bytes(work / "tries.csv", buf.getvalue().encode())
