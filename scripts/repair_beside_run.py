"""`verify --repair` beside a running writer (issue 27): N repair calls while a 48-row `run` writes its
CSV; nothing the run writes may be lost.

The run (a subprocess): lenet5, zhu-mlp and rich-cnn of the quick profile at fp32 and int8, eight
batch sizes, without the null model and the reference (3 x 2 x 8 = 48 rows), in groups of 8 sessions
so that rows land throughout the run. Beside it, this process calls ``api.verify(csv, repair=True)``
(what `mnistbench verify --repair` runs) every ``--pace`` seconds until it has made ``--calls`` calls
and the run has ended. Each outcome is counted: refused (the writer's lock), repaired (and what), ok,
or nothing to verify yet. At the end the run's exit code, its rows, and a plain `verify` of the file.

    python scripts/repair_beside_run.py OUT_DIR [--calls 1000] [--pace 0.05]

Needs the quick exports (`mnistbench train ... --profile quick && mnistbench export ... --int8`).
"""

from __future__ import annotations

import argparse
import collections
import json
import subprocess
import sys
import time
from pathlib import Path

from mnistbench.bench import api
from mnistbench.bench.measure.records import read_csv
from mnistbench.models.errors import UsageError

RUN = ["lenet5", "zhu-mlp", "rich-cnn", "--profile", "quick", "--variant", "fp32,int8", "--batch-sizes",
       "1,2,4,8,16,32,64,128", "--no-null", "--no-reference", "--threads", "1", "--min-s", "0.3",
       "--max-live-sessions", "8"]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--calls", type=int, default=1000)
    ap.add_argument("--pace", type=float, default=0.05)
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=False)
    csv_path = a.out / "run.csv"
    cmd = [sys.executable, "-m", "mnistbench.bench.cli", "run", *RUN, "--out", str(csv_path)]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=open(a.out / "run.stdout", "w"), stderr=open(a.out / "run.stderr", "w"))
    counts: collections.Counter[str] = collections.Counter()
    repaired: list[str] = []
    got_lock: list[tuple[float, int, str]] = []  # (s since start, rows in the file, outcome) of calls that held the lock
    calls = during = 0
    while calls < a.calls or proc.poll() is None:
        running = proc.poll() is None
        try:
            reports = api.verify(csv_path, repair=True)
            for rep in reports:
                if rep.repaired:
                    counts["repaired"] += 1
                    repaired += [f"{time.monotonic() - t0:.1f} s: {x}" for x in rep.repaired]
                else:
                    state = "ok" if not rep.problems else "problems left"
                    counts[state] += 1
                    got_lock.append((round(time.monotonic() - t0, 2), rep.rows, state))
        except UsageError as exc:
            msg = str(exc)
            counts["refused: a run is writing it" if "a run is writing it" in msg
                   else "nothing to verify yet" if "does not exist" in msg or "is not a file" in msg
                   else f"other: {msg[:80]}"] += 1
        calls += 1
        during += running
        time.sleep(a.pace)
    wall = time.monotonic() - t0
    rows = read_csv(csv_path)
    final = api.verify(csv_path)
    summary = {
        "command": " ".join(["mnistbench", "run", *RUN, "--out", str(csv_path)]),
        "this_script": " ".join(["python", "scripts/repair_beside_run.py", *sys.argv[1:]]),
        "run_exit": proc.returncode, "rows": len(rows), "rows_ok": sum(r.status == "ok" for r in rows),
        "repair_calls": calls, "calls_while_the_run_ran": during, "outcomes": dict(counts), "repaired": repaired,
        "calls_that_got_the_lock": {"count": len(got_lock), "rows_in_the_file_then": sorted({g[1] for g in got_lock}),
                                    "first_s": got_lock[0][0] if got_lock else None},
        "final_verify": [{"rows": r.rows, "problems": r.problems} for r in final], "wall_s": round(wall, 1),
    }
    (a.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    ok = (proc.returncode == 0 and len(rows) == 48 and not any(r.problems for r in final) and not repaired
          and all(g[1] == 48 for g in got_lock))  # the lock was free only once every row was written
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
