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
import ast
import csv
import datetime as dt
import hashlib
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BACKUP = ROOT / ".mutation" / "backup"
EQUIVALENTS = ROOT / "scripts" / "mutation_equivalents.txt"

# Source file -> the test files that exercise it (fast ones: each mutant runs them all, stopping at
# the first failure) and, optionally, the functions to mutate (qualified names; nested functions as
# ``outer.inner``). Chosen by what imports and calls the file; each subject's file (test_timing, test_metrics,
# test_records, test_compare, test_runner) holds the tests that pin exact numbers, written for this.
TARGETS: dict[str, dict] = {
    "bench/measure/timing.py": {"tests": ["tests/test_timing.py", "tests/test_bench.py", "tests/test_runner.py"]},
    "bench/measure/metrics.py": {"tests": ["tests/test_metrics.py", "tests/test_bench.py", "tests/test_compare.py"]},
    "bench/measure/records.py": {"tests": ["tests/test_records.py", "tests/test_bench.py", "tests/test_runner.py"]},
    "bench/analysis/compare.py": {"tests": ["tests/test_compare.py", "tests/test_between_runs.py"]},
    "bench/analysis/sequential.py": {"tests": ["tests/test_sequential.py"]},
    "bench/measure/noiseprofile.py": {"tests": ["tests/test_between_runs.py"]},
    "bench/analysis/live.py": {"tests": ["tests/test_compare.py"], "functions": ["stage_log_ratio", "live_compare", "check_max_s"]},
    "bench/measure/runner.py": {"tests": ["tests/test_runner.py", "tests/test_compare.py"],
                        "functions": ["run_matrix.measure_group", "run_matrix.commit", "run_matrix.prepare",
                                      "_record"]},
}
# Left out of the mapping for speed: tests/test_results_integrity.py (3.5 minutes of CLI subprocesses;
# it checks files and locks rather than figures) and the integration tests of whole commands.
HEAVY_IMPORTS = ("numpy", "pandas", "scipy.stats", "torch", "onnx", "onnxruntime", "pytest", "hypothesis", "rich",
                 "typer", "filelock", "psutil")

_BINOP_SWAP = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult, ast.FloorDiv: ast.Div,
               ast.Mod: ast.FloorDiv, ast.Pow: ast.Mult}
_CMP_SWAP = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq,
             ast.NotEq: ast.Eq, ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot, ast.IsNot: ast.Is}
_NAME_SWAP = {"min": "max", "max": "min", "mean": "median", "median": "mean", "minimum": "maximum",
              "maximum": "minimum", "any": "all", "all": "any"}


@dataclass
class Mutant:
    file: str
    line: int
    function: str
    operator: str
    original: str
    mutated: str
    start: int  # character offsets of the replaced segment in the source
    end: int
    id: str = ""
    status: str = ""
    seconds: float = 0.0
    reason: str = ""
    before: str = ""  # status in the --rerun CSV


def _offsets(src: str) -> list[int]:
    out, pos = [0], 0
    for line in src.splitlines(keepends=True):
        pos += len(line)
        out.append(pos)
    return out


def _skip_ids(tree: ast.AST) -> set[int]:
    """Nodes never mutated: docstrings, annotations, f-string parts, assignment targets."""
    skip: set[int] = set()

    def mark(n: ast.AST | None) -> None:
        if n is not None:
            for x in ast.walk(n):
                skip.add(id(x))

    for n in ast.walk(tree):
        if isinstance(n, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and n.body:
            first = n.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                mark(first)
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
            mark(n.returns)
            for a in n.args.args + n.args.kwonlyargs + n.args.posonlyargs + [n.args.vararg, n.args.kwarg]:
                if a is not None:
                    mark(a.annotation)
        if isinstance(n, ast.AnnAssign):
            mark(n.annotation)
        if isinstance(n, ast.JoinedStr):
            mark(n)
    return skip


def generate(path: str, functions: list[str] | None = None) -> list[Mutant]:
    """Every mutant of ``path`` (relative to the repository root), in source order, with stable ids:
    sha1 of file, enclosing function, operator, original and mutated text and the occurrence number of
    that combination (so unrelated edits elsewhere do not renumber them)."""
    src = (ROOT / path).read_text()
    tree = ast.parse(src)
    offs = _offsets(src)
    skip = _skip_ids(tree)
    out: list[Mutant] = []

    def seg(n: ast.AST) -> tuple[int, int]:
        return offs[n.lineno - 1] + n.col_offset, offs[n.end_lineno - 1] + n.end_col_offset

    def add(n: ast.AST, op: str, new: ast.AST | str, qual: str) -> None:
        s, e = seg(n)
        text = new if isinstance(new, str) else "(" + ast.unparse(new) + ")"
        if text.strip("()") == src[s:e].strip("()"):
            return
        out.append(Mutant(path, n.lineno, qual, op, src[s:e], text, s, e))

    def copy_with(n: ast.AST, **kw) -> ast.AST:
        m = type(n)(**{f: getattr(n, f) for f in n._fields})
        for k, v in kw.items():
            setattr(m, k, v)
        return m

    def visit(n: ast.AST, qual: list[str]) -> None:
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            qual = qual + [n.name]
        q = ".".join(qual) or "<module>"
        if id(n) not in skip and hasattr(n, "lineno"):
            mutate(n, q)
        for c in ast.iter_child_nodes(n):
            visit(c, qual)

    def mutate(n: ast.AST, q: str) -> None:
        if isinstance(n, ast.BinOp) and type(n.op) in _BINOP_SWAP:
            add(n, f"binop {type(n.op).__name__}->{_BINOP_SWAP[type(n.op)].__name__}",
                copy_with(n, op=_BINOP_SWAP[type(n.op)]()), q)
        elif isinstance(n, ast.AugAssign) and type(n.op) in _BINOP_SWAP:
            s, e = seg(n)
            new = copy_with(n, op=_BINOP_SWAP[type(n.op)]())
            out.append(Mutant(path, n.lineno, q, f"augassign {type(n.op).__name__}", src[s:e], ast.unparse(new), s, e))
        elif isinstance(n, ast.Compare):
            for i, op in enumerate(n.ops):
                if type(op) in _CMP_SWAP:
                    ops = list(n.ops)
                    ops[i] = _CMP_SWAP[type(op)]()
                    add(n, f"compare {type(op).__name__}->{type(ops[i]).__name__}", copy_with(n, ops=ops), q)
        elif isinstance(n, ast.BoolOp):
            add(n, "boolop swap", copy_with(n, op=ast.Or() if isinstance(n.op, ast.And) else ast.And()), q)
        elif isinstance(n, ast.UnaryOp) and isinstance(n.op, (ast.Not, ast.USub)):
            add(n, f"drop {type(n.op).__name__}", n.operand, q)
        elif isinstance(n, ast.Constant) and type(n.value) in (int, float):
            v = n.value
            for name, nv in (("x0", 0 * v), ("+1", v + 1), ("x10", v * 10)):
                if nv != v:
                    add(n, f"const {name}", ast.Constant(type(v)(nv)), q)
        elif isinstance(n, ast.Constant) and isinstance(n.value, bool):
            add(n, "bool flip", ast.Constant(not n.value), q)
        elif isinstance(n, ast.Name) and n.id in ("min", "max") and isinstance(n.ctx, ast.Load):
            add(n, f"name {n.id}->{_NAME_SWAP[n.id]}", _NAME_SWAP[n.id], q)
        elif isinstance(n, ast.Attribute) and n.attr in _NAME_SWAP and isinstance(n.ctx, ast.Load):
            is_np = isinstance(n.value, ast.Name) and n.value.id in ("np", "numpy")
            if is_np or n.attr in ("min", "max"):
                add(n, f"attr {n.attr}->{_NAME_SWAP[n.attr]}", copy_with(n, attr=_NAME_SWAP[n.attr]), q)
        elif isinstance(n, ast.Return) and n.value is not None:
            if not (isinstance(n.value, ast.Constant) and n.value.value is None):
                s, e = seg(n.value)
                out.append(Mutant(path, n.lineno, q, "return None", src[s:e], "None", s, e))

    visit(tree, [])
    if functions:
        out = [m for m in out if any(m.function == f or m.function.startswith(f + ".") for f in functions)]
    seen: dict[str, int] = {}
    for m in out:
        base = f"{m.file}|{m.function}|{m.operator}|{m.original}|{m.mutated}"
        k = seen.get(base, 0)
        seen[base] = k + 1
        m.id = hashlib.sha1(f"{base}|{k}".encode()).hexdigest()[:10]
    return out


def apply(src: str, m: Mutant) -> str:
    return src[:m.start] + m.mutated + src[m.end:]


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


CSV_FIELDS = ["id", "file", "line", "function", "operator", "original", "mutated", "status", "before", "seconds",
              "reason"]


def read_previous(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


def score(ms: list[Mutant], key: str = "status") -> tuple[int, int, int, int, int, float]:
    """(mutants, caught, timeout, survived, equivalent, score) by ``status`` or ``before`` (a mutant
    known now to be equivalent counts as equivalent before too)."""
    st = [m.status if m.status == "equivalent" else getattr(m, key) for m in ms]
    caught, timeout, survived, equiv = (st.count(s) for s in ("caught", "timeout", "survived", "equivalent"))
    live = caught + timeout + survived
    return len(ms), caught, timeout, survived, equiv, (caught + timeout) / live if live else float("nan")


def write_report(out: Path, mutants: list[Mutant], meta: dict) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = tempfile.NamedTemporaryFile("w", dir=out.parent, delete=False, suffix=".tmp", newline="")
    with tmp as fh:
        w = csv.DictWriter(fh, fieldnames=CSV_FIELDS, lineterminator="\n")
        w.writeheader()
        for m in mutants:
            w.writerow({k: getattr(m, k) for k in CSV_FIELDS})
    os.replace(tmp.name, out.with_suffix(".csv"))
    rerun = any(m.before for m in mutants)
    lines = ["# Mutation testing of the measurement core", "",
             f"- command: `{meta['command']}`", f"- date (UTC): {meta['date']}",
             f"- commit: {meta['commit']}", f"- wall time: {meta['wall_s']:.0f} s ({meta['note']})",
             f"- sampling: {meta['sampling']}", "",
             "Score = (caught + timeout) / (mutants - equivalent). A timeout (the tests ran past the limit) "
             "counts as caught. Equivalent mutants are listed in `scripts/mutation_equivalents.txt` "
             "with one line why.", "",
             "| file | tested of generated | caught | timeout | survived | equivalent | score |"
             + (" score before |" if rerun else ""),
             "|---|---|---|---|---|---|---|" + ("---|" if rerun else "")]
    files = sorted({m.file for m in mutants})
    for f in files + ["all"]:
        ms = [m for m in mutants if f == "all" or m.file == f]
        n, c, t, s, e, sc = score(ms)
        row = (f"| {f} | {n} of {meta['generated'].get(f, sum(meta['generated'].values()))} | {c} | {t} | {s} | {e} "
               f"| {sc:.0%} |")
        if rerun:
            row += f" {score(ms, 'before')[5]:.0%} |"
        lines.append(row)
    for title, st in (("Surviving mutants", "survived"), ("Equivalent mutants", "equivalent")):
        ms = [m for m in mutants if m.status == st]
        lines += ["", f"## {title} ({len(ms)})", ""]
        if ms:
            lines += ["| id | file:line | function | mutation | reason |", "|---|---|---|---|---|"]
            for m in ms:
                o = m.original.replace("|", "\\|").replace("\n", " ")
                n_ = m.mutated.replace("|", "\\|").replace("\n", " ")
                lines.append(f"| {m.id} | {m.file}:{m.line} | {m.function} | `{o}` -> `{n_}` | {m.reason} |")
    tmp = tempfile.NamedTemporaryFile("w", dir=out.parent, delete=False, suffix=".tmp")
    with tmp as fh:
        fh.write("\n".join(lines) + "\n")
    os.replace(tmp.name, out.with_suffix(".md"))


def main(argv: list[str] | None = None) -> int:
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
    restore_backups()
    equivalents = load_equivalents()
    previous = {r["id"]: r for r in read_previous(a.rerun)} if a.rerun else {}
    files = a.files or (sorted({r["file"] for r in previous.values()}) if previous else list(TARGETS))
    unknown = [f for f in files if f not in TARGETS]
    if unknown:
        raise SystemExit(f"no test mapping for {', '.join(unknown)}: add it to TARGETS in {__file__}")
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
