"""Pack the raw samples of committed runs into one compressed file a run.

A run writes ``<csv stem>.samples/<cell_id>.npz``, one uncompressed file a cell (fast to write, safe
to resume). Committed evidence needs neither: this packs each such folder into
``<csv stem>.samples.packed.npz`` (LZMA, :func:`mnistbench.bench.measure.samples.pack`), which every
command reads as before, and removes the folder once the packed file reads back equal.

    python scripts/pack_samples.py results/                # every run under results/
    python scripts/pack_samples.py results/cross-runtime/20261128T003427Z-mnist-quick-cpu.csv
"""

from __future__ import annotations

import sys
from pathlib import Path

from mnistbench.bench.measure import samples as samples_io
from mnistbench.models.errors import UsageError


def runs_under(paths: list[Path]) -> list[Path]:
    """The results CSVs named by ``paths`` (CSV files, or folders searched recursively) that have a
    samples folder beside them."""
    csvs = [c for p in paths for c in ([p] if p.suffix == ".csv" else sorted(p.rglob("*.csv")))]
    return [c for c in csvs if samples_io.folder_for(c).is_dir()]


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__.strip().splitlines()[0], "\nusage: python scripts/pack_samples.py PATH [PATH ...]", file=sys.stderr)
        return 2
    total_before = total_after = 0
    for csv in runs_under([Path(a) for a in argv]):
        folder = samples_io.folder_for(csv)
        before = sum(f.stat().st_size for f in folder.glob("*.npz"))
        try:
            target, n = samples_io.pack(csv)
        except UsageError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        after = target.stat().st_size
        total_before, total_after = total_before + before, total_after + after
        print(f"{csv}: {n} cells, {before / 1e6:.2f} MB -> {after / 1e6:.2f} MB")
    print(f"total {total_before / 1e6:.2f} MB -> {total_after / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
