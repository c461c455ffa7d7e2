"""Mutation testing of the measurement core: would the tests notice a wrong number?

Each mutant is one small change to one source file, made with Python's ``ast``: an arithmetic or
comparison operator flipped (``+``/``-``, ``*``/``/``, ``<``/``<=``, ``==``/``!=``, ``in``/``not in``),
a numeric constant changed (x0, +1, x10), ``min``/``max`` and ``mean``/``median`` swapped, ``and``/``or``
swapped, a ``not`` or unary minus dropped, ``True``/``False`` flipped, a return value replaced by
``None``. The mutant is written over the file in place (the tests import the package from this
worktree through the editable install), the tests that cover the file (:data:`TARGETS`) run with
``pytest -x``, and the original is written back: always, on an exception or Ctrl-C too, and a copy
in ``.mutation/backup/`` restores it at the next start if the process was killed.

A mutant is ``caught`` when a test fails, ``timeout`` when the tests run past ``--timeout`` seconds
(a hang: counted as caught), ``survived`` otherwise, and ``equivalent`` when its stable id is in
``scripts/mutation_equivalents.txt`` (one line each: ``ID  reason``): a change no user could see.
Score per file = (caught + timeout) / (mutants - equivalent).

Speed: the heavy imports (torch, onnxruntime, onnx, numpy, pytest) are made once; each mutant's
tests run in a forked child that imports ``mnistbench`` afresh (``--no-fork``: a new interpreter
per mutant, slower, for platforms without ``fork``).

Usage (from the repository root, with the project's venv)::

    python scripts/mutation.py bench/measure/metrics.py bench/analysis/compare.py --sample 40 --seed 0 \\
        --out results/quality/mutation-before
    python scripts/mutation.py --rerun results/quality/mutation-before.csv --out results/quality/mutation
    python scripts/mutation.py bench/measure/timing.py --list        # the mutants, without running anything

Writes ``OUT.md`` (scores, survivors, equivalents with their reasons, the command, date, commit) and
``OUT.csv`` (one row per mutant). ``--rerun CSV`` runs again only the mutants that survived (or timed
out) in that CSV and keeps the others' results, so the report gives a before and an after score.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]


def _load_sibling(name: str):
    """``scripts/<name>.py``, imported by path (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


_mutants = _load_sibling("mutants")
Mutant, apply = _mutants.Mutant, _mutants.apply
read_previous, score, write_report = _mutants.read_previous, _mutants.score, _mutants.write_report
BACKUP = ROOT / ".mutation" / "backup"
EQUIVALENTS = ROOT / "scripts" / "mutation_equivalents.txt"

# Source file -> the test files that exercise it (fast ones: each mutant runs them all, stopping at
# the first failure) and, optionally, the functions to mutate (qualified names; nested functions as
# ``outer.inner``). Chosen by what imports and calls the file; each subject's file (test_timing, test_metrics,
# test_records, test_compare, test_runner) holds the tests that pin exact numbers, written for this.
TARGETS: dict[str, dict] = {
    "bench/measure/timing.py": {"tests": ["tests/test_timing.py", "tests/test_bench.py", "tests/test_runner.py"]},
    "bench/measure/metrics.py": {"tests": ["tests/test_metrics.py", "tests/test_bench.py", "tests/test_compare.py"]},
    "bench/measure/records.py": {"tests": ["tests/test_records.py", "tests/test_bench.py", "tests/test_runner.py",
                                           "tests/test_fleet_identity.py"]},
    "bench/analysis/compare.py": {"tests": ["tests/test_compare.py", "tests/test_between_runs.py",
                                            "tests/test_fleet_identity.py", "tests/test_compare_fuzz.py"]},
    "bench/analysis/sequential.py": {"tests": ["tests/test_sequential.py"]},
    "bench/measure/noiseprofile.py": {"tests": ["tests/test_between_runs.py"]},
    "bench/analysis/live.py": {"tests": ["tests/test_compare.py"], "functions": ["stage_log_ratio", "live_compare", "check_max_s",
                                                                               "_LiveRun.judge_stage", "_LiveRun.changes"]},
    "bench/analysis/gate.py": {"tests": ["tests/test_compare.py", "tests/test_between_runs.py"]},
    "bench/measure/runner.py": {"tests": ["tests/test_runner.py", "tests/test_compare.py", "tests/test_foreign.py"],
                                "functions": ["MatrixRun.measure", "MatrixRun.measure_group", "MatrixRun.commit",
                                              "MatrixRun.prepare", "MatrixRun._scored", "MatrixRun._session"]},
    "bench/measure/cells.py": {"tests": ["tests/test_runner.py", "tests/test_compare.py"], "functions": ["_record"]},
    # the load figures: the verdicts of two load CSVs, LoadGen's log read back, the batcher's batches
    "bench/load/compare.py": {"tests": ["tests/test_load.py"], "functions": ["judge", "compare", "LoadRule.crossed",
                                                                         "parse_rules", "_geo", "_groups"]},
    "bench/load/loadgen.py": {"tests": ["tests/test_load.py"], "functions": ["read_result"]},
    "bench/load/sut.py": {"tests": ["tests/test_load.py"], "functions": ["BatchingSUT._take", "BatchingSUT._work",
                                                                     "BatchingSUT.timings"]},
}
# Left out of the mapping for speed: tests/test_results_integrity.py (3.5 minutes of CLI subprocesses;
# it checks files and locks rather than figures) and the integration tests of whole commands.
HEAVY_IMPORTS = ("numpy", "pandas", "scipy.stats", "torch", "onnx", "onnxruntime", "pytest", "hypothesis", "rich",
                 "typer", "filelock", "psutil")

def generate(path: str, functions: list[str] | None = None) -> list[Mutant]:
    """Every mutant of ``path`` (relative to the repository root): :func:`mutants.generate`."""
    return _mutants.generate(ROOT, path, functions)


def load_equivalents() -> dict[str, str]:
    out = {}
    if EQUIVALENTS.is_file():
        for line in EQUIVALENTS.read_text().splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                mid, _, reason = line.partition(" ")
                out[mid] = reason.strip()
    return out


def restore_backups() -> None:
    """Put back any original left in .mutation/backup/ by a killed run."""
    if not BACKUP.is_dir():
        return
    for b in BACKUP.rglob("*.py"):
        dest = ROOT / b.relative_to(BACKUP)
        shutil.copy2(b, dest)
        b.unlink()
        print(f"restored {dest.relative_to(ROOT)} from an interrupted run", file=sys.stderr)


def _drop_pyc(path: Path) -> None:
    for p in (path.parent / "__pycache__").glob(path.stem + ".*.pyc"):
        p.unlink(missing_ok=True)


def _map_package_to_root() -> None:
    """Point an editable install's import mapping (setuptools' ``MAPPING``) at this copy of the
    repository, using pyproject's ``package-dir`` (``mnistbench`` is the repository's root), so the
    tester runs in any checkout (a ``git worktree``) with the venv of another."""
    dirs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    for finder in sys.meta_path:
        mapping = getattr(sys.modules.get(getattr(finder, "__module__", "")), "MAPPING", None)
        if isinstance(mapping, dict) and "mnistbench" in mapping:
            mapping.update({k: str(ROOT / v) for k, v in dirs.items()})


class Runner:
    """Runs a file's tests against the source currently on disk: forked from a warm parent, or in a
    new interpreter. Returns (status, seconds) with status ``pass``, ``fail`` or ``timeout``."""

    def __init__(self, fork: bool, timeout: float, log: Path) -> None:
        self.fork = fork and hasattr(os, "fork")
        self.timeout = timeout
        self.log = log
        if self.fork:
            sys.dont_write_bytecode = True
            for mod in HEAVY_IMPORTS:
                try:
                    __import__(mod)
                except Exception:  # an optional dependency: the child imports it if a test needs it
                    pass

    def __call__(self, tests: list[str], limit: float | None = None) -> tuple[str, float]:
        limit = limit or self.timeout
        args = ["-x", "-q", "-p", "no:cacheprovider", "--no-header", "-o", "addopts=", *tests]
        t0 = time.monotonic()
        with open(self.log, "ab") as logf:
            if self.fork:
                pid = os.fork()
                if pid == 0:  # child: fresh mnistbench and tests, warm third-party modules
                    try:
                        os.setpgid(0, 0)
                        os.dup2(logf.fileno(), 1)
                        os.dup2(logf.fileno(), 2)
                        _map_package_to_root()
                        for name in list(sys.modules):
                            if name.split(".")[0] in ("mnistbench", "tests", "conftest") or name.startswith("test_"):
                                del sys.modules[name]
                        os.chdir(ROOT)
                        rc = pytest.main(args)
                        os._exit(int(rc))
                    except BaseException:
                        os._exit(99)
                status = self._wait(pid, t0, limit)
            else:
                env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
                proc = subprocess.Popen([sys.executable, "-m", "pytest", *args], cwd=ROOT, stdout=logf,
                                        stderr=logf, env=env, start_new_session=True)
                try:
                    rc = proc.wait(timeout=limit)
                    status = "pass" if rc == 0 else "fail"
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                    status = "timeout"
        return status, time.monotonic() - t0

    @staticmethod
    def _wait(pid: int, t0: float, limit: float) -> str:
        try:
            while True:
                done, st = os.waitpid(pid, os.WNOHANG)
                if done:
                    return "pass" if os.waitstatus_to_exitcode(st) == 0 else "fail"
                if time.monotonic() - t0 > limit:
                    os.killpg(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                    return "timeout"
                time.sleep(0.05)
        except BaseException:
            try:  # Ctrl-C: never leave a child running the tests against a mutant
                os.killpg(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except OSError:
                pass
            raise


def run_file(path: str, mutants: list[Mutant], runner: Runner, equivalents: dict[str, str],
             without: list[str] = ()) -> float:
    """Test every mutant of ``path`` not already decided; returns the baseline test time (s)."""
    tests = [t for t in TARGETS[path]["tests"] if (ROOT / t).is_file()
             and not any(Path(t).match(w) for w in without)]
    todo = [m for m in mutants if not m.status]
    for m in todo:
        if m.id in equivalents:
            m.status, m.reason = "equivalent", equivalents[m.id]
    todo = [m for m in todo if not m.status]
    if not todo:
        return 0.0
    status, base = runner(tests, limit=1800)
    if status != "pass":
        raise SystemExit(f"the tests of {path} fail (or hang) without any mutant: fix them first "
                         f"(log: {runner.log})")
    limit = max(runner.timeout, 3 * base + 10)
    target = ROOT / path
    original = target.read_text()
    stat = target.stat()
    backup = BACKUP / path
    backup.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(target, backup)
    try:
        for i, m in enumerate(todo, 1):
            target.write_text(apply(original, m))
            _drop_pyc(target)
            try:
                st, secs = runner(tests, limit=limit)
            finally:
                target.write_text(original)
                os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
                _drop_pyc(target)
            m.status = {"fail": "caught", "pass": "survived", "timeout": "timeout"}[st]
            m.seconds = round(secs, 2)
            print(f"[{path} {i}/{len(todo)}] {m.status:8} {m.id} line {m.line} {m.operator}: "
                  f"{m.original!r} -> {m.mutated!r} ({secs:.1f} s)", flush=True)
    finally:
        target.write_text(original)
        os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        backup.unlink(missing_ok=True)
    return base



def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


def _args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="*", help=f"source files (default: {', '.join(TARGETS)})")
    ap.add_argument("--sample", type=int, default=0, help="test at most N mutants per file, drawn with --seed")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds per mutant at least (3x baseline + 10 s)")
    ap.add_argument("--rerun", type=Path, help="a previous CSV: rerun its survived/timeout mutants, keep the rest")
    ap.add_argument("--before", type=Path, help="a CSV of an earlier run whose statuses fill the 'before' column")
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "quality" / "mutation")
    ap.add_argument("--without", action="append", default=[], metavar="GLOB",
                    help="leave out the mapped test files matching GLOB (e.g. 'tests/test_bench.py')")
    ap.add_argument("--report-only", action="store_true",
                    help="with --rerun: rewrite the report from that CSV and the equivalents list, run nothing")
    ap.add_argument("--list", action="store_true", help="print the mutants and stop")
    ap.add_argument("--no-fork", action="store_true", help="a new interpreter per mutant (slower)")
    a = ap.parse_args(argv)
    if a.report_only and not a.rerun:
        ap.error("--report-only needs --rerun CSV")
    return a


def _choose(a: argparse.Namespace, files: list[str], previous: dict, equivalents: dict[str, str]
            ) -> tuple[dict[str, list[Mutant]], dict[str, int]]:
    """The mutants to test per file (all, a seeded sample, or a rerun's survivors), and how many each file has."""
    chosen: dict[str, list[Mutant]] = {}
    generated: dict[str, int] = {}
    for f in files:
        ms = generate(f, TARGETS[f].get("functions"))
        generated[f] = len(ms)
        if previous:
            ms = [m for m in ms if m.id in previous]
            for m in ms:
                p = previous[m.id]
                m.before = p["status"]
                if a.report_only:
                    m.before = ""
                    m.status, m.seconds = p["status"], float(p["seconds"] or 0)
                    if m.id in equivalents and m.status != "caught":
                        m.status = "equivalent"
                    m.reason = equivalents.get(m.id, p["reason"]) if m.status == "equivalent" else p["reason"]
                elif p["status"] in ("caught",) or (p["status"] == "equivalent" and m.id in equivalents):
                    m.status, m.seconds = p["status"], float(p["seconds"] or 0)
                    m.reason = equivalents.get(m.id, p["reason"]) if p["status"] == "equivalent" else p["reason"]
        elif a.sample and len(ms) > a.sample:
            ms = sorted(random.Random(f"{a.seed}|{f}").sample(ms, a.sample), key=lambda m: m.start)
        chosen[f] = ms
    if a.before:
        earlier = {r["id"]: r["status"] for r in read_previous(a.before)}
        for ms in chosen.values():
            for m in ms:
                m.before = earlier.get(m.id, "")
    return chosen, generated


def main(argv: list[str] | None = None) -> int:
    a = _args(argv)
    restore_backups()
    equivalents = load_equivalents()
    previous = {r["id"]: r for r in read_previous(a.rerun)} if a.rerun else {}
    files = a.files or (sorted({r["file"] for r in previous.values()}) if previous else list(TARGETS))
    unknown = [f for f in files if f not in TARGETS]
    if unknown:
        raise SystemExit(f"no test mapping for {', '.join(unknown)}: add it to TARGETS in {__file__}")
    chosen, generated = _choose(a, files, previous, equivalents)
    if a.list:
        for f, ms in chosen.items():
            for m in ms:
                print(f"{m.id} {f}:{m.line} {m.function} {m.operator}: {m.original!r} -> {m.mutated!r}")
        print(f"{sum(map(len, chosen.values()))} mutants of {sum(generated.values())}")
        return 0
    log = ROOT / ".mutation" / "pytest.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("")
    runner = Runner(not a.no_fork, a.timeout, log)
    head = _git("rev-parse", "--short", "HEAD")  # the commit tested: taken before any mutant is written
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    t0 = time.monotonic()
    def interrupted(*_):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)  # the originals are written back in run_file's finally
    signal.signal(signal.SIGINT, signal.default_int_handler)  # a background start may have ignored it
    def report(done: list[str]) -> list[Mutant]:
        ms = [m for f in done for m in chosen[f]]
        sampling = (f"{len(ms)} of {sum(generated[f] for f in done)} mutants"
                    + (f" (at most {a.sample} per file, seed {a.seed})" if a.sample else "")
                    + (f"; rewritten from {a.rerun.name} with the equivalents list, no test run" if a.report_only
                       else f"; survivors of {a.rerun.name} rerun" if a.rerun else "")
                    + ("" if len(done) == len(chosen) else f"; partial: {len(done)} of {len(chosen)} files"))
        write_report(a.out, ms, {
            "command": "python scripts/mutation.py " + " ".join(argv if argv is not None else sys.argv[1:]),
            "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M"),
            "commit": head + (" (with uncommitted changes)" if dirty else ""),
            "wall_s": time.monotonic() - t0, "note": "a busy shared 2-core machine; times are indicative",
            "sampling": sampling, "generated": {f: generated[f] for f in done}})
        return ms

    done: list[str] = []
    for f, ms in chosen.items():
        if not a.report_only:
            run_file(f, ms, runner, equivalents, a.without)
        done.append(f)
        all_m = report(done)  # after each file: an interrupted run keeps the files it finished
    for f in files + ["all"]:
        n, c, t, s, e, sc = score([m for m in all_m if f == "all" or m.file == f])
        print(f"{f}: {n} mutants, caught {c}, timeout {t}, survived {s}, equivalent {e}, score {sc:.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
