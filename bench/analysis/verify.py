"""`mnistbench verify`: check a results file (or a folder of them) and, when asked, repair what an
interrupted or crashed writer can leave behind.

Checks, per results CSV: the header is this schema's; every line is a complete row (a torn last
line is what a crash during an append leaves); every measured row has its samples file, whose call
count and median agree with the row; each row's ``config_id`` matches its identity fields; no
configuration is measured twice in one repeat; no temporary file is left in the samples folder.
``repair=True`` drops a torn tail and leftover temporary files, rewriting the CSV atomically; it
never invents or edits a measurement (rows whose samples are missing are reported, and dropped
only with ``drop_unsampled=True``).
"""

from __future__ import annotations

import contextlib
import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...models.errors import UsageError
from ...models.files import atomic_write_bytes
from ..measure import samples as samples_io
from ..measure.records import COLUMNS, IDENTITY_FIELDS, config_id, read_csv, writer_lock


@dataclass
class Report:
    """What :func:`verify` found in one results CSV; ``problems`` empty means consistent; ``notes``
    are facts that are not problems (a load CSV whose per-sample timings were not kept)."""

    path: Path
    rows: int = 0
    problems: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _torn_tail(path: Path) -> bytes | None:
    """The bytes after the last newline when the file does not end in one, else None."""
    data = path.read_bytes()
    if not data or data.endswith(b"\n"):
        return None
    return data[data.rfind(b"\n") + 1:]


def verify(path: Path, repair: bool = False, drop_unsampled: bool = False) -> Report:
    """Check one results CSV; see the module docstring. ``repair`` holds the file's writer lock
    (:func:`records.writer_lock`) while it checks and mends, so it never touches a file that a run is
    writing.

    Raises:
        UsageError: the file is missing, is not a results CSV of this or an older schema, or (with
            ``repair``) a run is writing it.
    """
    if not path.is_file():
        raise UsageError(f"{path} is not a file")
    if not repair:
        return _verify(path, False, drop_unsampled)
    with repair_lock(path):
        return _verify(path, True, drop_unsampled)


@contextlib.contextmanager
def repair_lock(path: Path):
    """Hold ``path``'s writer lock while repairing it (run and load CSVs alike).

    Raises:
        UsageError: a run is writing it (``--repair`` waits for no one).
    """
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(writer_lock(path))
        except UsageError:
            raise UsageError(f"{path}: a run is writing it; --repair waits for no one: repair it once that run "
                             "has ended") from None
        yield


def _verify(path: Path, repair: bool, drop_unsampled: bool) -> Report:
    rep = Report(path)
    tail = _torn_tail(path)
    if tail is not None:
        rep.problems.append(f"the last line is a partial row ({len(tail)} bytes without a newline)")
        if not repair:
            return rep  # the rest is checked once the tail is dropped (--repair)
        data = path.read_bytes()
        atomic_write_bytes(path, data[: len(data) - len(tail)])
        rep.repaired.append("dropped the partial last line")
    rows = read_csv(path)
    rep.rows = len(rows)
    with open(path, newline="", encoding="utf-8") as fh:
        header = next(csv.reader(fh), [])
    if header != COLUMNS:
        rep.notes.append("an older schema (readable; `run --resume` will not append to it)")
    smp = samples_io.load(path)
    unsampled = []
    seen: dict[tuple, str] = {}
    for r in rows:
        if r.config_id and r.config_id != config_id({k: getattr(r, k) for k in (*IDENTITY_FIELDS, "schema_version")}):
            rep.problems.append(f"{r.cell_id}: config_id does not match the row's identity fields (edited by hand?)")
        if r.status != "ok":
            continue
        if r.task != "reference":
            k = (r.config_id or r.cell_id, r.repeat, r.run_id if not r.config_id else "")
            if k in seen:
                rep.problems.append(f"{r.cell_id}: the same configuration as {seen[k]} (two writers, or a resume "
                                    "that did not know the file)")
            seen.setdefault(k, r.cell_id)
        s = smp.get(r.cell_id)
        if s is None:
            unsampled.append(r.cell_id)
            continue
        if len(s.ns) != r.timed_iters or not np.isclose(np.median(s.ns) / 1e6, r.latency_p50_ms, rtol=1e-9):
            rep.problems.append(f"{r.cell_id}: samples do not match the row (calls {len(s.ns)} vs {r.timed_iters})")
    if unsampled:
        rep.problems.append(f"{len(unsampled)} measured rows have no samples (e.g. {unsampled[0]}): "
                            "compare cannot judge them")
        if repair and drop_unsampled:
            _rewrite_without(path, set(unsampled))
            rep.repaired.append(f"dropped {len(unsampled)} rows without samples")
    files = samples_io.cell_files(path)
    orphans = sorted(set(files) - {r.cell_id for r in rows})
    if orphans and repair:
        for cell in orphans:
            files[cell].unlink(missing_ok=True)
        rep.repaired.append(f"removed {len(orphans)} samples files without a row")
    elif orphans:
        rep.problems.append(f"{len(orphans)} samples files have no row (e.g. {orphans[0]}; a run stopped between "
                            "a group's samples and its rows)")
    left = samples_io.leftovers(path)
    if left:
        rep.problems.append(f"{len(left)} temporary files in {samples_io.folder_for(path).name}/")
        if repair:
            for f in left:
                f.unlink(missing_ok=True)
            rep.repaired.append(f"removed {len(left)} temporary files")
    return rep


def _head(path: Path) -> str:
    with open(path, "rb") as fh:
        return fh.read(7).decode("utf-8", "replace")


def _rewrite_without(path: Path, cell_ids: set[str]) -> None:
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        fields, kept = reader.fieldnames or COLUMNS, [r for r in reader if r["cell_id"] not in cell_ids]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    w.writeheader()
    w.writerows(kept)
    atomic_write_bytes(path, buf.getvalue().encode())


def verify_path(path: Path, repair: bool = False, drop_unsampled: bool = False) -> list[Report]:
    """:func:`verify` each results CSV of ``path`` (a file, or a folder's ``*.csv`` files that are
    results CSVs).

    Raises:
        UsageError: nothing to verify at ``path``; ``drop_unsampled`` without ``repair``.
    """
    if drop_unsampled and not repair:
        raise UsageError("--drop-unsampled only acts with --repair (it says which rows --repair may drop)")
    if path.is_dir():
        csvs = [c for c in sorted(path.glob("*.csv")) if _head(c).startswith("run_id,")]
        if not csvs:
            raise UsageError(f"{path} holds no results CSV")
        return [verify(c, repair, drop_unsampled) for c in csvs]
    return [verify(path, repair, drop_unsampled)]
