"""Fault injection for mnistbench's artifacts: Ctrl-C (SIGINT) and kill -9 (SIGKILL) at random points of
`train` and `export`, each followed by the checks a user relies on.

After every interrupt point:

- the exit status is 130 for Ctrl-C (0 when the command had finished), -9 for kill -9 (0 when finished),
  and a Ctrl-C leaves one line on stderr ("mnistbench: interrupted ...") and no traceback;
- the checkpoint loads and verifies (header digest, metadata schema, weights fit the model), the ONNX file
  and its int8 variant pass ``onnx.checker`` (full check) and run on ONNX Runtime with finite outputs, and
  the ONNX file names the model and a checkpoint this run has written (old or new, never a mix);
- no temporary file is left in the artifacts folder after a Ctrl-C; after a kill -9, the sweep every
  `train` and `export` makes at start (``sweep_temp_files``) leaves none.

At the end, an uninterrupted `train` and `export` give the same weights as the first uninterrupted run
(training is deterministic for a seed on the CPU) and the export is current for its checkpoint.

Usage (the long run; the CI subset lives in tests/test_fault_artifacts.py):

    python scripts/fault_injection.py --points 50 --data-dir ../shared/data [--seed 0] [--json out.json]
    python scripts/fault_injection.py --points 20 --commands export --signals SIGINT   # 20 Ctrl-Cs in export
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from mnistbench.bench.measure.pipeline import Artifacts, load_trained, read_checkpoint, stale_reason
from mnistbench.exporters.onnx import read_metadata
from mnistbench.models.files import sha256_file, sweep_temp_files
from mnistbench.models.registry import get_spec

MODEL = "zhu-mlp"  # the fastest registered model to train and export (smoke profile: a few seconds each)
PROFILE = "smoke"
ALLOWED = {signal.SIGINT: {0, 130}, signal.SIGKILL: {0, -signal.SIGKILL}}


@dataclass
class Point:
    """One interrupt point and what was found after it."""

    command: str
    signal: str
    delay_s: float
    rc: int | None = None
    finished: bool = False  # the command had exited before the signal was due
    temp_files_after: int = 0  # temporary files in the artifacts folder right after the process ended
    temp_files_left: int = 0  # ... after the start-of-command sweep (kill -9 only); must be 0
    problems: list[str] = field(default_factory=list)


def cli(*args) -> list[str]:
    return [sys.executable, "-m", "mnistbench.bench.cli", *map(str, args)]


def command_args(command: str, arts: Artifacts, data_dir: Path) -> list[str]:
    common = [MODEL, "--profile", PROFILE, "--seed", arts.seed, "--artifacts-dir", arts.root, "--data-dir", data_dir]
    if command == "train":
        return cli("train", *common, "--device", "cpu")
    if command == "export":
        return cli("export", *common)
    if command == "export-int8":
        return cli("export", *common, "--int8")
    raise ValueError(command)


def default_sigint() -> None:
    """In the child before exec: SIGINT back to its default, so that Python installs its Ctrl-C handler
    even when this harness runs in the background (``nohup``, ``&``), where SIGINT is ignored and
    children would inherit that."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def temp_files(root: Path) -> list[Path]:
    """Every temporary file under ``root`` (what mnistbench's writers name ``.*.tmp``)."""
    return sorted(p for p in root.rglob("*") if p.name.endswith(".tmp"))


def verify(arts: Artifacts, known_checkpoints: set[str]) -> list[str]:
    """What is wrong with the artifacts of :data:`MODEL` in ``arts`` (empty: all whole and usable)."""
    spec, problems = get_spec(MODEL), []
    try:
        read_checkpoint(spec, arts)
        load_trained(spec, arts)
    except Exception as exc:  # any failure is the finding
        problems.append(f"checkpoint unusable: {type(exc).__name__}: {exc}")
    ck = arts.checkpoint(MODEL).with_suffix(".safetensors")
    if ck.is_file() and sha256_file(ck) not in known_checkpoints:
        problems.append("checkpoint is neither the previous one nor a newly written one")
    for variant in ("fp32", "int8"):
        path = arts.onnx(MODEL, variant)
        if not path.is_file():
            if variant == "fp32":
                problems.append("ONNX file missing")
            continue
        try:
            onnx.checker.check_model(str(path), full_check=True)
            meta = read_metadata(path)
            sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            y = sess.run(None, {sess.get_inputs()[0].name: np.zeros((2, 1, 28, 28), np.float32)})[0]
        except Exception as exc:  # any failure is the finding
            problems.append(f"{path.name} unusable: {type(exc).__name__}: {str(exc).splitlines()[0]}")
            continue
        if not np.all(np.isfinite(y)):
            problems.append(f"{path.name} gives non-finite outputs")
        if meta.get("model") != MODEL or meta.get("checkpoint_sha256") not in known_checkpoints:
            problems.append(f"{path.name} names model {meta.get('model')!r} and an unknown checkpoint")
    return problems


def inject(point: Point, arts: Artifacts, data_dir: Path, known_checkpoints: set[str]) -> Point:
    """Run ``point.command``, send ``point.signal`` after ``point.delay_s`` seconds, then check (see module doc)."""
    sig = signal.Signals[point.signal]
    proc = subprocess.Popen(command_args(point.command, arts, data_dir), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint)
    try:
        proc.wait(timeout=point.delay_s)
        point.finished = True
    except subprocess.TimeoutExpired:
        proc.send_signal(sig)
    _, err = proc.communicate(timeout=300)
    point.rc = proc.returncode
    ck = arts.checkpoint(MODEL).with_suffix(".safetensors")
    if ck.is_file():
        known_checkpoints.add(sha256_file(ck))  # a finished (or killed-after-the-rename) train wrote a new one
    if point.rc not in ALLOWED[sig]:
        tail = err.strip().splitlines()[-1:] if err.strip() else []
        point.problems.append(f"exit {point.rc} (allowed {sorted(ALLOWED[sig])}): {tail}")
    if point.rc == 130:
        lines = [ln for ln in err.splitlines() if ln.startswith("mnistbench:")]
        if "Traceback" in err or len(lines) != 1 or "interrupted" not in lines[0]:
            point.problems.append(f"Ctrl-C did not end in one line: {err.strip().splitlines()[-3:]}")
    left = temp_files(arts.root)
    point.temp_files_after = len(left)
    if left and sig == signal.SIGINT:
        point.problems.append(f"temporary files left after Ctrl-C: {[p.name for p in left]}")
    if sig == signal.SIGKILL:
        sweep_temp_files(arts.dir)  # what the next train or export does first
        point.temp_files_left = len(temp_files(arts.root))
        if point.temp_files_left:
            point.problems.append(f"temporary files survive the sweep: {[p.name for p in temp_files(arts.root)]}")
    point.problems += verify(arts, known_checkpoints)
    return point


def baseline(arts: Artifacts, data_dir: Path) -> tuple[float, float, dict]:
    """Uninterrupted train and export; returns their wall times and the trained weights."""
    times = []
    for command in ("train", "export-int8"):
        t0 = time.perf_counter()
        res = subprocess.run(command_args(command, arts, data_dir), capture_output=True, text=True, timeout=600)
        if res.returncode != 0:
            raise SystemExit(f"baseline {command} failed: {res.stderr.strip().splitlines()[-1:]}")
        times.append(time.perf_counter() - t0)
    return times[0], times[1], read_checkpoint(get_spec(MODEL), arts)[0]


def campaign(root: Path, data_dir: Path, points: int, seed: int, commands=("train", "export", "export-int8"),
             signals=("SIGINT", "SIGKILL"), log=print) -> dict:
    """Run ``points`` interrupt points (commands and signals drawn at random, delays uniform over each
    command's uninterrupted wall time) in a fresh artifacts folder under ``root``; returns the summary."""
    arts = Artifacts(root, "mnist", PROFILE, 0)
    t_train, t_export, reference = baseline(arts, data_dir)
    known = {sha256_file(arts.checkpoint(MODEL).with_suffix(".safetensors"))}
    log(f"baseline: train {t_train:.1f} s, export --int8 {t_export:.1f} s")
    rng = random.Random(seed)
    results = []
    for i in range(points):
        command, sig = rng.choice(commands), rng.choice(signals)
        span = t_train if command == "train" else t_export
        p = inject(Point(command, sig, round(rng.uniform(0.5, span * 1.05), 2)), arts, data_dir, known)
        results.append(p)
        log(f"{i + 1:3d} {command:11s} {sig:7s} at {p.delay_s:5.2f} s: exit {p.rc}"
            f"{' (finished)' if p.finished else ''}, temp {p.temp_files_after}->{p.temp_files_left}"
            f"{'  PROBLEMS: ' + '; '.join(p.problems) if p.problems else ''}")
    # the final state after an uninterrupted train and export equals an uninterrupted run's
    final = []
    for command in ("train", "export-int8"):
        res = subprocess.run(command_args(command, arts, data_dir), capture_output=True, text=True, timeout=600)
        if res.returncode != 0:
            final.append(f"final {command} failed: {res.stderr.strip().splitlines()[-1:]}")
    state = read_checkpoint(get_spec(MODEL), arts)[0]
    if sorted(state) != sorted(reference) or not all(torch.equal(state[k], reference[k]) for k in state):
        final.append("final weights differ from the uninterrupted run's")
    path = arts.onnx(MODEL)
    if (why := stale_reason(get_spec(MODEL), arts, path, read_metadata(path))):
        final.append(f"final export is not current: {why}")
    final += [f"temporary file left at the end: {p.name}" for p in temp_files(arts.root)]
    summary = {
        "points": len(results),
        "by_command_signal": {f"{c}/{s}": sum(1 for p in results if p.command == c and p.signal == s)
                              for c in commands for s in signals},
        "interrupted": sum(1 for p in results if not p.finished),
        "finished_before_signal": sum(1 for p in results if p.finished),
        "exit_0_after_signal": sum(1 for p in results if not p.finished and p.rc == 0),
        "exit_codes": {str(rc): sum(1 for p in results if p.rc == rc) for rc in sorted({p.rc for p in results})},
        "inconsistencies": sum(1 for p in results if p.problems) + len(final),
        "temp_files_after_kill": sum(p.temp_files_after for p in results if p.signal == "SIGKILL"),
        "leftover_files": sum(p.temp_files_after for p in results if p.signal == "SIGINT")
        + sum(p.temp_files_left for p in results) + len(temp_files(arts.root)),
        "final_problems": final,
        "results": [asdict(p) for p in results],
    }
    return summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--points", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-dir", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--commands", default="train,export,export-int8", help="drawn from: train, export, export-int8")
    ap.add_argument("--signals", default="SIGINT,SIGKILL", help="drawn from: SIGINT, SIGKILL")
    ap.add_argument("--json", type=Path, help="also write the full summary here")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="mnistbench-faults-") as tmp:
        s = campaign(Path(tmp), a.data_dir, a.points, a.seed, tuple(a.commands.split(",")), tuple(a.signals.split(",")))
    if a.json:
        a.json.write_text(json.dumps(s, indent=2) + "\n")
    brief = {k: v for k, v in s.items() if k != "results"}
    print(json.dumps(brief, indent=2))
    sys.exit(1 if s["inconsistencies"] or s["leftover_files"] else 0)


if __name__ == "__main__":
    main()
