"""Raw latency samples beside a results CSV: one file per cell, written once, read back validated.

Layout: ``<csv stem>.samples/<cell_id>.npz`` (uncompressed ``numpy.savez``), holding

- ``ns``: int64 (n,), every timed call's latency in nanoseconds, in the order measured;
- ``block_n``: int64 (m,), the calls of each block (``ns`` is the blocks concatenated);
- ``block_wall_ns``: int64 (m,), each block's wall time in nanoseconds (throughput per block);
- ``block_round``: int64 (m,), the round of the run each block was measured in (interleaved
  measurement visits every cell once per round; blocks of one round can be paired across cells).

Each cell's file is written atomically before its CSV row, so the cost of committing a cell does
not grow with the number of cells, and a row never names samples that are not there. Results
written before schema 5 kept one ``<stem>.samples.npz`` (or ``<stem>.rN.samples.npz`` per repeat)
of plain per-call arrays with no blocks: :func:`load` still reads them, as one contiguous run of
calls (``blocked`` False), which :mod:`bench.compare` splits into contiguous pseudo-blocks and
says that its verdict is weaker.

Committed evidence keeps one file a run instead of a folder: :func:`pack` writes
``<csv stem>.samples.packed.npz`` (the cells' arrays concatenated, ``cell_ids``,
``calls`` and ``blocks`` to split them; LZMA, about 1.5 bytes a call against 8) and removes the folder; :func:`load` reads both.
"""

from __future__ import annotations

import io
import re
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...models.errors import UsageError
from ...models.files import atomic_write_bytes

_CELL_ID = re.compile(r"^[A-Za-z0-9._-]+$")


@dataclass(frozen=True)
class CellSamples:
    """One cell's raw samples.

    Attributes:
        ns: int64 (n,) latencies of the timed calls, nanoseconds, in measured order.
        block_n: int64 (m,) calls per block; sums to n.
        block_wall_ns: int64 (m,) wall time of each block, nanoseconds (loop overhead included).
        block_round: int64 (m,) round index of each block.
        blocked: False for samples of schema 4 and older (one contiguous loop, no block data).
    """

    ns: np.ndarray
    block_n: np.ndarray
    block_wall_ns: np.ndarray
    block_round: np.ndarray
    blocked: bool = True

    def blocks(self) -> list[np.ndarray]:
        """The per-call latencies of each block, nanoseconds."""
        return np.split(self.ns, np.cumsum(self.block_n)[:-1])

    @classmethod
    def from_blocks(cls, blocks: list[np.ndarray], walls_ns: list[int], rounds: list[int]) -> "CellSamples":
        """Samples of ``blocks`` (int64 arrays of ns), with each block's wall time (ns) and round."""
        return cls(np.concatenate(blocks).astype(np.int64), np.array([len(b) for b in blocks], np.int64),
                   np.asarray(walls_ns, np.int64), np.asarray(rounds, np.int64))


def folder_for(csv_path: Path) -> Path:
    """``<stem>.samples/`` beside ``csv_path``."""
    return csv_path.with_name(csv_path.stem + ".samples")


def save(csv_path: Path, cell_id: str, s: CellSamples) -> Path:
    """Write one cell's samples atomically; returns the file.

    Raises:
        UsageError: ``cell_id`` is not a plain file name; OSError from the filesystem propagates.
    """
    if not _CELL_ID.match(cell_id):
        raise UsageError(f"cell id {cell_id!r} is not a plain name")
    folder = folder_for(csv_path)
    folder.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    np.savez(buf, ns=s.ns, block_n=s.block_n, block_wall_ns=s.block_wall_ns, block_round=s.block_round)
    path = folder / f"{cell_id}.npz"
    atomic_write_bytes(path, buf.getvalue())
    return path


def _check(name: str, s: CellSamples | None) -> CellSamples:
    ok = s is not None and (s.ns.ndim == 1 and s.ns.dtype.kind in "iu" and len(s.ns) > 0 and bool(np.all(s.ns >= 0))
          and s.block_n.ndim == 1 and len(s.block_n) == len(s.block_wall_ns) == len(s.block_round)
          and bool(np.all(s.block_n > 0)) and int(s.block_n.sum()) == len(s.ns) and bool(np.all(s.block_wall_ns > 0)))
    if not ok:
        raise UsageError(f"{name}: samples are damaged (shapes, counts or signs do not add up); "
                         "run `mnistbench verify` on the results, or measure the cell again")
    return s


class _Damaged(ValueError):
    """An npz member that is not a 1-D integer array."""


def _ints(z, name: str) -> np.ndarray:
    """Array ``name`` of an npz as int64, refusing what the writer never writes (raises ValueError): a
    member that is no array (``np.load`` gives raw bytes for a member without the npy header), an
    array that is not 1-D or not of an integer dtype (floats would be truncated, not read)."""
    a = z[name]
    if not isinstance(a, np.ndarray) or a.ndim != 1 or a.dtype.kind not in "iu":
        raise _Damaged(f"{name}: not a 1-D integer array")
    return a.astype(np.int64)


def read_cell(path: Path) -> CellSamples:
    """One cell's samples file, validated.

    Raises:
        UsageError: unreadable, not an npz of the layout above, or inconsistent.
    """
    try:
        with np.load(path, allow_pickle=False) as z:
            s = CellSamples(*(_ints(z, f) for f in _FIELDS))
    except _Damaged:
        return _check(str(path), None)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):
        raise UsageError(f"{path} is not a readable samples file; delete it, then `mnistbench verify --repair "
                         "--drop-unsampled` drops the rows whose samples are gone and `run --resume` measures them again") from None
    return _check(str(path), s)


PACKED_SUFFIX = ".samples.packed.npz"
_FIELDS = ("ns", "block_n", "block_wall_ns", "block_round")


def packed_for(csv_path: Path) -> Path:
    """``<stem>.samples.packed.npz`` beside ``csv_path``."""
    return csv_path.with_name(csv_path.stem + PACKED_SUFFIX)


def _packed_bytes(cells: dict[str, CellSamples]) -> bytes:
    ids = sorted(cells)
    arrays = {"cell_ids": np.array(ids, dtype=str),
              "calls": np.array([len(cells[i].ns) for i in ids], np.int64),
              "blocks": np.array([len(cells[i].block_n) for i in ids], np.int64),
              **{f: np.concatenate([getattr(cells[i], f) for i in ids]).astype(np.int64) if ids
                 else np.zeros(0, np.int64) for f in _FIELDS}}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_LZMA) as z:
        for name, arr in arrays.items():
            with z.open(f"{name}.npy", "w") as member:
                np.lib.format.write_array(member, arr, allow_pickle=False)
    return buf.getvalue()


def read_packed(path: Path) -> dict[str, CellSamples]:
    """Every cell of a packed samples file, validated.

    Raises:
        UsageError: unreadable, not a packed samples file, or a cell's arrays do not add up.
    """
    try:
        with np.load(path, allow_pickle=False) as z:
            if not isinstance(z["cell_ids"], np.ndarray) or z["cell_ids"].dtype.kind != "U":
                raise ValueError("cell_ids")
            ids, calls, blocks = [str(i) for i in z["cell_ids"]], _ints(z, "calls"), _ints(z, "blocks")
            per_call = np.split(_ints(z, "ns"), np.cumsum(calls)[:-1])
            per_block = [np.split(_ints(z, f), np.cumsum(blocks)[:-1]) for f in _FIELDS[1:]]
            if not (len(ids) == len(calls) == len(blocks) == len(per_call) and int(calls.sum()) == len(z["ns"])):
                raise ValueError("counts")
            out = {i: CellSamples(per_call[k], *(b[k] for b in per_block)) for k, i in enumerate(ids)}
    except (OSError, ValueError, KeyError, IndexError, zipfile.BadZipFile, EOFError, NotImplementedError):
        raise UsageError(f"{path} is not a readable packed samples file; check it out again from git, or "
                         "move it away to treat those rows as having no samples") from None
    return {i: _check(f"{path}[{i}]", s) for i, s in out.items()}


def pack(csv_path: Path) -> tuple[Path, int]:
    """Pack the per-cell samples folder beside ``csv_path`` into one compressed file, then remove
    the folder. The packed file is written atomically and read back (every array equal) before
    anything is removed, so an interrupt at any instant leaves the samples readable. Cells already
    packed are kept. Returns (the packed file, cells in it).

    Raises:
        UsageError: no samples folder or packed file, a damaged samples file, or a read-back mismatch.
        StorageError: the packed file cannot be written (the folder is left as it was).
    """
    folder, target = folder_for(csv_path), packed_for(csv_path)
    cells = read_packed(target) if target.is_file() else {}
    if not folder.is_dir() and not cells:
        raise UsageError(f"{csv_path}: no samples folder ({folder.name}/) to pack")
    cells.update({cell: read_cell(f) for cell, f in cell_files(csv_path).items()})
    atomic_write_bytes(target, _packed_bytes(cells))
    back = read_packed(target)
    if back.keys() != cells.keys() or any(not np.array_equal(getattr(back[i], f), getattr(cells[i], f))
                                          for i in cells for f in _FIELDS):
        raise UsageError(f"{target}: read-back differs from the samples folder; the folder is kept")
    if folder.is_dir():
        shutil.rmtree(folder)
    return target, len(cells)


def _legacy(ns: np.ndarray) -> CellSamples:
    ns = np.asarray(ns).astype(np.int64)
    return CellSamples(ns, np.array([len(ns)], np.int64), np.array([max(int(ns.sum()), 1)], np.int64),
                       np.zeros(1, np.int64), blocked=False)


def load(csv_path: Path) -> dict[str, CellSamples]:
    """Every cell's samples beside ``csv_path``: the per-cell folder, the packed file (:func:`pack`),
    and the single ``.npz`` files of schema 4 and older (``<stem>.samples.npz``, ``<stem>.rN.samples.npz``). Missing is empty.

    Raises:
        UsageError: a samples file exists but is damaged.
    """
    out: dict[str, CellSamples] = {}
    for npz in [csv_path.with_name(csv_path.stem + ".samples.npz"),
                *sorted(csv_path.parent.glob(csv_path.stem + ".r*.samples.npz"))]:
        if not npz.is_file():
            continue
        try:
            with np.load(npz) as z:
                out.update({k: _legacy(z[k]) for k in z.files})
        except (OSError, ValueError, zipfile.BadZipFile, EOFError):
            raise UsageError(f"{npz} is not a readable samples file; compare and resume cannot use it "
                             "(move it away to treat those rows as having no samples)") from None
    if packed_for(csv_path).is_file():
        out.update(read_packed(packed_for(csv_path)))
    out.update({cell: read_cell(f) for cell, f in cell_files(csv_path).items()})
    return out


def cell_files(csv_path: Path) -> dict[str, Path]:
    """The per-cell samples files beside ``csv_path`` (cell id -> file; the packed file not included)."""
    folder = folder_for(csv_path)
    return {f.stem: f for f in sorted(folder.glob("*.npz"))} if folder.is_dir() else {}


def leftovers(csv_path: Path) -> list[Path]:
    """Temporary files an interrupted write may have left in the samples folder."""
    folder = folder_for(csv_path)
    return sorted(p for p in folder.glob(".*.tmp")) if folder.is_dir() else []
