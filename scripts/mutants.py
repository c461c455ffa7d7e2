"""The mutants of :mod:`mutation` (scripts/mutation.py): which small changes are made to a source file,
where, and their stable ids (pure ``ast`` and text); and the scores and report of a run."""

from __future__ import annotations

import ast
import csv
import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

CSV_FIELDS = ["id", "file", "line", "function", "operator", "original", "mutated", "status", "before", "seconds",
              "reason"]

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


class _Generator:
    """Walks one file's syntax tree and collects its mutants in source order (see :func:`generate`)."""

    def __init__(self, path: str, src: str) -> None:
        self.path, self.src = path, src
        self.offs = _offsets(src)
        self.tree = ast.parse(src)
        self.skip = _skip_ids(self.tree)
        self.out: list[Mutant] = []

    def seg(self, n: ast.AST) -> tuple[int, int]:
        return self.offs[n.lineno - 1] + n.col_offset, self.offs[n.end_lineno - 1] + n.end_col_offset

    def add(self, n: ast.AST, op: str, new: ast.AST | str, qual: str) -> None:
        s, e = self.seg(n)
        text = new if isinstance(new, str) else "(" + ast.unparse(new) + ")"
        if text.strip("()") == self.src[s:e].strip("()"):
            return
        self.out.append(Mutant(self.path, n.lineno, qual, op, self.src[s:e], text, s, e))

    def visit(self, n: ast.AST, qual: list[str]) -> None:
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            qual = qual + [n.name]
        q = ".".join(qual) or "<module>"
        if id(n) not in self.skip and hasattr(n, "lineno"):
            self.mutate(n, q)
        for c in ast.iter_child_nodes(n):
            self.visit(c, qual)

    def mutate(self, n: ast.AST, q: str) -> None:
        if isinstance(n, ast.BinOp) and type(n.op) in _BINOP_SWAP:
            self.add(n, f"binop {type(n.op).__name__}->{_BINOP_SWAP[type(n.op)].__name__}",
                     _copy_with(n, op=_BINOP_SWAP[type(n.op)]()), q)
        elif isinstance(n, ast.AugAssign) and type(n.op) in _BINOP_SWAP:
            s, e = self.seg(n)
            new = _copy_with(n, op=_BINOP_SWAP[type(n.op)]())
            self.out.append(Mutant(self.path, n.lineno, q, f"augassign {type(n.op).__name__}", self.src[s:e],
                                   ast.unparse(new), s, e))
        elif isinstance(n, ast.Compare):
            for i, op in enumerate(n.ops):
                if type(op) in _CMP_SWAP:
                    ops = list(n.ops)
                    ops[i] = _CMP_SWAP[type(op)]()
                    self.add(n, f"compare {type(op).__name__}->{type(ops[i]).__name__}", _copy_with(n, ops=ops), q)
        elif isinstance(n, ast.BoolOp):
            self.add(n, "boolop swap", _copy_with(n, op=ast.Or() if isinstance(n.op, ast.And) else ast.And()), q)
        elif isinstance(n, ast.UnaryOp) and isinstance(n.op, (ast.Not, ast.USub)):
            self.add(n, f"drop {type(n.op).__name__}", n.operand, q)
        else:
            self.mutate_leaf(n, q)

    def mutate_leaf(self, n: ast.AST, q: str) -> None:
        if isinstance(n, ast.Constant) and type(n.value) in (int, float):
            v = n.value
            for name, nv in (("x0", 0 * v), ("+1", v + 1), ("x10", v * 10)):
                if nv != v:
                    self.add(n, f"const {name}", ast.Constant(type(v)(nv)), q)
        elif isinstance(n, ast.Constant) and isinstance(n.value, bool):
            self.add(n, "bool flip", ast.Constant(not n.value), q)
        elif isinstance(n, ast.Name) and n.id in ("min", "max") and isinstance(n.ctx, ast.Load):
            self.add(n, f"name {n.id}->{_NAME_SWAP[n.id]}", _NAME_SWAP[n.id], q)
        elif isinstance(n, ast.Attribute) and n.attr in _NAME_SWAP and isinstance(n.ctx, ast.Load):
            is_np = isinstance(n.value, ast.Name) and n.value.id in ("np", "numpy")
            if is_np or n.attr in ("min", "max"):
                self.add(n, f"attr {n.attr}->{_NAME_SWAP[n.attr]}", _copy_with(n, attr=_NAME_SWAP[n.attr]), q)
        elif isinstance(n, ast.Return) and n.value is not None:
            if not (isinstance(n.value, ast.Constant) and n.value.value is None):
                s, e = self.seg(n.value)
                self.out.append(Mutant(self.path, n.lineno, q, "return None", self.src[s:e], "None", s, e))


def _copy_with(n: ast.AST, **kw) -> ast.AST:
    m = type(n)(**{f: getattr(n, f) for f in n._fields})
    for k, v in kw.items():
        setattr(m, k, v)
    return m


def generate(root: Path, path: str, functions: list[str] | None = None) -> list[Mutant]:
    """Every mutant of ``path`` (relative to ``root``), in source order, with stable ids:
    sha1 of file, enclosing function, operator, original and mutated text and the occurrence number of
    that combination (so unrelated edits elsewhere do not renumber them)."""
    g = _Generator(path, (root / path).read_text())
    g.visit(g.tree, [])
    out = g.out
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


def read_previous(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


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
