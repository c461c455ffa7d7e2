"""Raw samples on disk: the per-cell files a run writes, and the packed file a run is committed as
(`scripts/pack_samples.py`): every array read back equal, damage refused in one line, an interrupted
pack leaving the samples readable."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from mnistbench.bench.measure import samples as samples_io
from mnistbench.bench.measure.samples import CellSamples
from mnistbench.models.errors import StorageError, UsageError


def _cell(seed: int, blocks: int = 6) -> CellSamples:
    """Latencies shaped like a small model's at batch 32 (lognormal around 0.2 ms, a few slow calls)."""
    rng = np.random.default_rng(seed)
    per = [np.round(rng.lognormal(np.log(2e5), 0.15, int(rng.integers(20, 60)))).astype(np.int64) for _ in range(blocks)]
    return CellSamples.from_blocks(per, [int(b.sum()) + 1000 for b in per], list(range(blocks)))


@pytest.fixture()
def run_csv(tmp_path):
    csv = tmp_path / "run.csv"
    csv.write_text("cell_id\n")
    cells = {f"c{i}.lenet5.b32": _cell(i) for i in range(5)}
    for cid, s in cells.items():
        samples_io.save(csv, cid, s)
    return csv, cells


def _equal(a: CellSamples, b: CellSamples) -> bool:
    return all(np.array_equal(getattr(a, f), getattr(b, f)) for f in ("ns", "block_n", "block_wall_ns", "block_round"))


def test_pack_reads_back_every_array_and_removes_the_folder(run_csv):
    csv, cells = run_csv
    before = sum(f.stat().st_size for f in samples_io.folder_for(csv).glob("*.npz"))
    target, n = samples_io.pack(csv)
    assert n == 5 and target == csv.with_name("run.samples.packed.npz")
    assert not samples_io.folder_for(csv).exists()
    back = samples_io.load(csv)
    assert back.keys() == cells.keys() and all(_equal(back[k], cells[k]) for k in cells)
    assert back["c3.lenet5.b32"].blocks()[2].tolist() == cells["c3.lenet5.b32"].blocks()[2].tolist()
    assert target.stat().st_size < before / 2  # compressed: a real point of packing


def test_cells_measured_after_a_pack_join_the_packed_ones(run_csv):
    csv, cells = run_csv
    samples_io.pack(csv)
    samples_io.save(csv, "late.lenet5.b1", _cell(99))
    assert set(samples_io.load(csv)) == set(cells) | {"late.lenet5.b1"}  # folder and packed file both read
    _, n = samples_io.pack(csv)
    assert n == 6 and _equal(samples_io.load(csv)["late.lenet5.b1"], _cell(99))


def test_a_failed_write_keeps_the_folder(run_csv, monkeypatch):
    csv, cells = run_csv

    def full(path, data):
        raise StorageError(f"cannot write {path}: No space left on device; nothing was written")

    monkeypatch.setattr(samples_io, "atomic_write_bytes", full)
    with pytest.raises(StorageError):
        samples_io.pack(csv)
    assert len(list(samples_io.folder_for(csv).glob("*.npz"))) == 5
    assert all(_equal(samples_io.load(csv)[k], cells[k]) for k in cells)


def test_a_damaged_packed_file_is_one_line(run_csv):
    csv, _ = run_csv
    target, _ = samples_io.pack(csv)
    data = target.read_bytes()
    target.write_bytes(data[: len(data) // 2])
    with pytest.raises(UsageError, match="not a readable packed samples file") as e:
        samples_io.load(csv)
    assert "\n" not in str(e.value)


def test_packed_counts_that_do_not_add_up_are_refused(run_csv):
    csv, cells = run_csv
    target = samples_io.packed_for(csv)
    arrays = samples_io._packed_bytes(cells)
    target.write_bytes(arrays)
    with zipfile.ZipFile(io.BytesIO(arrays)) as z:
        members = {n: z.read(n) for n in z.namelist()}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, raw in members.items():
            if name == "calls.npy":
                calls = np.load(io.BytesIO(raw))
                calls[0] += 1
                b = io.BytesIO()
                np.save(b, calls)
                raw = b.getvalue()
            z.writestr(name, raw)
    target.write_bytes(buf.getvalue())
    for f in samples_io.folder_for(csv).glob("*.npz"):
        f.unlink()
    with pytest.raises(UsageError):
        samples_io.load(csv)


def test_pack_without_samples_is_refused(tmp_path):
    csv = tmp_path / "empty.csv"
    csv.write_text("cell_id\n")
    with pytest.raises(UsageError, match="no samples folder"):
        samples_io.pack(csv)
