"""Re-encode a load study's per-sample timings written as raw ``.npy`` (int64 ns, load CSVs written
before commit-of-this-script) as ``.npz`` (:func:`bench.load.rows.save_timings`: microseconds,
compressed), each read back equal to the microsecond before the ``.npy`` goes.

Usage: python scripts/pack_load_timings.py results/load [more folders]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from mnistbench.bench.load.rows import read_timings, save_timings


def main(folders: list[str]) -> None:
    for top in folders:
        for npy in sorted(Path(top).rglob("*.queries/*.npy")):
            t = np.load(npy)
            out = save_timings(npy.parent, npy.stem, t)
            back = read_timings(out)
            want = t.copy()
            if len(t):
                base = t[:, 0].min()
                want[:, :3] = (t[:, :3] - base) // 1000 * 1000 + base
            if not np.array_equal(back, want):
                raise SystemExit(f"{out} does not read back as {npy}")
            npy.unlink()
            print(f"{npy} -> {out.name}: {len(t):,} samples")


if __name__ == "__main__":
    main(sys.argv[1:])
