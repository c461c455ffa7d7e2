"""How fast `mnistbench run` stops inside an ONNX Runtime call that never returns (issue 27).

Usage: python scripts/interrupt_latency.py OUT_DIR [--trials N]

The model is a classifier-shaped ONNX file, (N, 784) float32 -> (N, 10), whose Loop condition never
turns false (`tests/test_fault_artifacts.forever_model`). Per trial, one `mnistbench run --onnx` of it
at batch 1 and one thread, in three ways:

- `sigint`: no time limit (`--call-timeout 0`); SIGINT to the process 3 s after it printed that the
  cell started (its progress line), so that the call is in flight;
- `sigterm`: the same with SIGTERM;
- `limit`: `--call-timeout 1` and no signal: the per-call limit ends the call and the run writes an
  error row (exit 1); `call_s` is how long the ended call had run, from the row's error.

It writes `OUT_DIR/interrupt-latency.csv` (with `interrupt-latency.system.json`: the machine, the
commit and this command;one row per trial and way: the seconds from the signal, or
from the limit's expiry, to the process's exit, its exit code, its stderr lines, the CSV rows it
left, and any temporary file left) and prints a summary with medians and maxima. A figure is the wall time seen by the parent:
the exit, the kernel's release of the process's memory, and the parent's wake-up included.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import pty
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_fault_artifacts import forever_model  # noqa: E402  (the model the tests use)

CLI = [sys.executable, "-m", "mnistbench.bench.cli"]


class Terminal:
    """The child's stderr as a terminal (so that its progress line is drawn as it happens), read
    continuously by a thread of its own (a terminal buffer left unread would block the child's
    writes and so its exit), with the monotonic time each piece arrived."""

    def __init__(self) -> None:
        self.master, self.slave = pty.openpty()
        self.pieces: list[tuple[float, str]] = []
        self._thread = threading.Thread(target=self._read, daemon=True)

    def start(self) -> None:
        os.close(self.slave)
        self._thread.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # EIO: the child closed the terminal
                return
            if not chunk:
                return
            self.pieces.append((time.monotonic(), ANSI.sub("", chunk.decode(errors="replace"))))

    def first(self, text: str, timeout_s: float = 300) -> float:
        """The time ``text`` first arrived, waiting for it up to ``timeout_s``."""
        t_end = time.monotonic() + timeout_s
        while True:
            seen = ""
            for t, piece in list(self.pieces):
                seen += piece
                if text in seen:
                    return t
            if time.monotonic() >= t_end:
                break
            time.sleep(0.005)
        raise RuntimeError(f"no {text!r} within {timeout_s} s")

    def close(self) -> str:
        self._thread.join(timeout=10)
        os.close(self.master)
        return "".join(p for _, p in self.pieces)


ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def trial(way: str, folder: Path, model: Path, data: str) -> dict:
    out = folder / f"{way}.csv"
    limit = "1" if way == "limit" else "0"
    cmd = CLI + ["run", "--onnx", str(model), "--no-null", "--no-score", "--batch-sizes", "1", "--threads", "1",
                 "--call-timeout", limit, "--data-dir", data, "--out", str(out)]
    term = Terminal()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=term.slave, env=dict(os.environ, COLUMNS="200"),
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    term.start()
    try:  # whatever goes wrong here, never leave the never-ending call burning a CPU
        t_start = term.first("forever")
        if way == "limit":
            t_ref = t_start + 1.0  # the call starts after the cell's line: an upper bound on the limit's expiry
        else:
            time.sleep(3.0)
            t_ref = time.monotonic()
            proc.send_signal(signal.SIGINT if way == "sigint" else signal.SIGTERM)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    t_exit = time.monotonic()
    lines = [ln.strip() for ln in re.split(r"[\r\n]", term.close()) if ln.strip().startswith("mnistbench:")]
    t_line = term.first("mnistbench:", timeout_s=0) if lines else float("nan")
    rows = sum(1 for _ in out.open()) - 1 if out.exists() else 0
    call = re.search(r"call ended after ([0-9.]+) s", lines[-1] if lines else "")
    return {"way": way, "call_s": float(call.group(1)) if call else float("nan"), "seconds_to_line": round(t_line - t_ref, 3), "seconds_to_exit": round(t_exit - t_ref, 3),
            "exit_code": proc.returncode, "error_lines": len(lines), "last_line": lines[-1] if lines else "",
            "csv_rows": rows, "leftovers": ";".join(sorted(p.name for p in folder.iterdir() if p.name.endswith((".tmp", ".partial"))))}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--data-dir", default=os.environ.get("MNISTBENCH_DATA", "../shared/data"))
    args = ap.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        model = forever_model(Path(tmp) / "forever.onnx")
        for i in range(args.trials):
            for way in ("sigint", "sigterm", "limit"):
                folder = Path(tmp) / f"{i}"
                folder.mkdir(exist_ok=True)
                r = {"trial": i, **trial(way, folder, model, args.data_dir)}
                print(r, flush=True)
                results.append(r)
    path = args.out_dir / "interrupt-latency.csv"
    tmp_path = path.with_suffix(".csv.tmp")
    with tmp_path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(results[0]))
        w.writeheader()
        w.writerows(results)
    os.replace(tmp_path, path)
    from mnistbench.bench.measure.system import write_system_json

    write_system_json(path.with_suffix(".system.json"), {"command": " ".join(["python", *sys.argv]),
                                                         "loadavg_1m_at_end": os.getloadavg()[0]})
    print(f"\n{platform.node()} {platform.machine()}, {os.cpu_count()} CPUs; {args.trials} trials a way")
    for way in ("sigint", "sigterm", "limit"):
        s = [r["seconds_to_exit"] for r in results if r["way"] == way]
        codes = sorted({r["exit_code"] for r in results if r["way"] == way})
        line = [r["seconds_to_line"] for r in results if r["way"] == way]
        print(f"{way:8s} to the line: median {statistics.median(line):.3f} s, max {max(line):.3f} s; "
              f"to exit: median {statistics.median(s):.3f} s, max {max(s):.3f} s; exit codes {codes}")
    calls = [r["call_s"] for r in results if r["way"] == "limit"]
    print(f"limit    the call ran {min(calls):.1f}-{max(calls):.1f} s under --call-timeout 1")


if __name__ == "__main__":
    main()
