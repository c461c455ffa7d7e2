"""Per-cell commit cost of a results file: the per-cell samples files of schema 5 against the single
rewritten `.samples.npz` of schema 4, for N cells (default 500) of realistic size.

Each cell: 2,000 int64 latencies in 8 blocks (a small model's 1 s of calls) and one CSV row.
Prints the median commit time of the first 50 and the last 50 cells for each layout.

    python scripts/commit_cost.py --cells 500
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from pathlib import Path

import numpy as np
from mnistbench.bench.measure import samples as samples_io
from mnistbench.bench.measure.records import CsvAppender, error_record
from mnistbench.models.files import atomic_write_bytes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", type=int, default=500)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    blocks = [rng.integers(20_000, 40_000, 250).astype(np.int64) for _ in range(8)]
    smp = samples_io.CellSamples.from_blocks(blocks, [int(b.sum()) for b in blocks], list(range(8)))
    row = error_record("x", model="m", batch_size=1)
    with tempfile.TemporaryDirectory() as d:
        csv_path = Path(d) / "new.csv"
        sink = CsvAppender(csv_path)
        new = []
        for i in range(args.cells):
            t = time.perf_counter()
            samples_io.save(csv_path, f"cell{i:04d}", smp)
            sink.append(row)
            new.append(time.perf_counter() - t)
        old_path, old, store = Path(d) / "old.samples.npz", [], {}
        sink_old = CsvAppender(Path(d) / "old.csv")
        for i in range(args.cells):
            t = time.perf_counter()
            store[f"cell{i:04d}"] = smp.ns
            buf = io.BytesIO()
            np.savez_compressed(buf, **store)  # schema 4: the whole file rewritten per cell
            atomic_write_bytes(old_path, buf.getvalue())
            sink_old.append(row)
            old.append(time.perf_counter() - t)
    for name, ts in (("per-cell files (schema 5)", new), ("one rewritten .npz (schema 4)", old)):
        first, last = np.median(ts[:50]) * 1e3, np.median(ts[-50:]) * 1e3
        print(f"{name}: first 50 cells {first:.2f} ms, last 50 {last:.2f} ms a cell (last/first {last / first:.2f}); "
              f"total {sum(ts):.1f} s")


if __name__ == "__main__":
    main()
