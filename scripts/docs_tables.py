"""The result tables of the documentation site, drawn from the committed files under ``results/``.

Each table is the output of the command that draws it (``mnistbench table``, ``mnistbench best``,
``scripts/cross_runtime_table.py``, ``scripts/calibration_table.py``; the speedrun summary is computed
here from the speedrun CSVs), run now on the committed CSVs and printed under that command, so a
table in the docs is always the committed numbers and says how to get them again. ``docs/hooks.py``
calls :func:`render` at build time for every ``<!-- table: NAME -->`` in a page; by hand::

    python scripts/docs_tables.py              # every table, as markdown, to stdout
    python scripts/docs_tables.py best speedrun
    python scripts/docs_tables.py --list       # the names
"""

from __future__ import annotations

import contextlib
import csv
import glob
import io
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# name -> (what it is, the command as a user types it from the repository root)
TABLES: dict[str, tuple[str, str]] = {
    "main-job": ("the main job, 2026-11-21 (`mnistbench all` on a fresh clone)",
                 "mnistbench table results/20261121T165940Z-mnist-quick-cpu.csv --format markdown"),
    "main-job-2": ("the main job, 2026-11-27 (`mnistbench all`, 1-thread sessions)",
                   "mnistbench table results/20261127T223436Z-mnist-quick-cpu.csv --format markdown"),
    "int8": ("int8 against fp32 (quick exports)",
             "mnistbench table results/20261121T173401Z-mnist-quick-cpu.csv --format markdown"),
    "fashion-mnist": ("Fashion-MNIST through the pipeline (quick profile)",
                      "mnistbench table results/20261121T203206Z-fashion-mnist-quick-cpu.csv --format markdown"),
    "cross-runtime": ("ten models, four runtimes, three precisions, one intra-op thread",
                      "python scripts/cross_runtime_table.py results/cross-runtime/*.csv"),
    "compile-freezing": ("PyTorch eager against torch.compile with freezing",
                         "python scripts/cross_runtime_table.py "
                         "results/cross-runtime/compile-freezing/20261128T013430Z-mnist-quick-cpu.csv"),
    "best": ("the fastest configuration within 0.2 pp of ONNX Runtime fp32",
             "mnistbench best results/cross-runtime/ --format markdown"),
    "reproduce": ("the papers' recipes against their claims",
                  "mnistbench table results/reproduce/mnist-paper.csv results/reproduce/fashion-mnist-quick.csv "
                  "--format markdown"),
    "speedrun": ("time to 99% test accuracy (speed-cnn)",
                 "python scripts/docs_tables.py speedrun"),
    "defaults": ("the default session options against every threads x spinning setting",
                 "mnistbench table results/defaults/20261121-check-defaults-cpu.csv"),
    "calibration": ("how often `compare` is wrong: verdicts against planted change (calibration v2)",
                    "python scripts/calibration_table.py results/calibration/v2/*/"),
}


def _argv(command: str) -> list[str]:
    """The command's words after the program, globs expanded from the repository root (sorted)."""
    out = []
    for word in command.split()[1:]:
        out += sorted(os.path.relpath(p, ROOT) + ("/" if word.endswith("/") else "")
                      for p in glob.glob(f"{ROOT}/{word}")) if "*" in word else [word]
    return out


@contextlib.contextmanager
def _cwd(path: Path):
    """``contextlib.chdir`` (Python 3.11) for Python 3.10."""
    before = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def _mnistbench(args: list[str]) -> str:
    """``mnistbench ARGS`` in this process (the Typer app, as the command line runs it)."""
    from mnistbench.bench.cli import app
    from typer.testing import CliRunner

    with _cwd(ROOT):
        res = CliRunner().invoke(app, args, env={"NO_COLOR": "1", "TERM": "dumb"})
    if res.exit_code != 0:
        raise RuntimeError(f"mnistbench {' '.join(args)} exited {res.exit_code}:\n{res.output}")
    return res.stdout


def _script(args: list[str]) -> str:
    """``python SCRIPT ARGS`` in a fresh interpreter (the scripts are standalone programs)."""
    res = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "NO_COLOR": "1"})
    if res.returncode != 0:
        raise RuntimeError(f"python {' '.join(args)} exited {res.returncode}:\n{res.stderr}")
    return res.stdout


def speedrun_markdown(paths: list[Path]) -> str:
    """One row per speedrun CSV: the command that wrote it, train time and test accuracy (mean ± sd,
    min–max over its seeds) and how many seeds reached the target."""
    lines = ["| command | model | train time, mean ± sd (min–max) | test accuracy, mean ± sd (min–max) "
             "| seeds at target | file |", "|---|---|---|---|---|---|"]
    for path in paths:
        rows = list(csv.DictReader(path.open(newline="")))
        if not rows:
            continue
        t = [float(r["train_s"]) for r in rows]
        a = [float(r["accuracy"]) * 100 for r in rows]
        target = float(rows[0]["target"]) * 100
        flags = [f"--seeds {len(rows)}"]
        if rows[0]["amp"] not in ("", "off", "none"):
            flags.append(f"--amp {rows[0]['amp']}")
        if rows[0]["channels_last"] == "True":
            flags.append("--channels-last")
        model = rows[0]["model"]
        cmd = "mnistbench speedrun " + ("" if model == "speed-cnn" else model + " ") + " ".join(flags)
        sd = statistics.stdev if len(rows) > 1 else (lambda _: 0.0)
        lines.append(f"| `{cmd}` | {model} | {statistics.mean(t):.2f} ± {sd(t):.2f} s ({min(t):.2f}–{max(t):.2f}) "
                     f"| {statistics.mean(a):.2f} ± {sd(a):.2f}% ({min(a):.2f}–{max(a):.2f}) "
                     f"| {sum(x >= target - 1e-9 for x in a)} of {len(rows)} (>= {target:.1f}%) "
                     f"| `{path.relative_to(ROOT)}` |")
    return "\n".join(lines)


def _demote(markdown: str, by: int) -> str:
    """Headings of a script's output moved ``by`` levels down, so they sit under the page's own."""
    return re.sub(r"^(#{1,6}) ", lambda m: "#" * min(6, len(m.group(1)) + by) + " ", markdown, flags=re.M)


def body(name: str) -> str:
    """The table ``name`` as its command prints it (markdown; rich text tables in a text block)."""
    _, command = TABLES[name]
    args = _argv(command)
    if name == "speedrun":
        return speedrun_markdown(sorted(ROOT.glob("results/speedrun/*.csv")))
    if command.startswith("mnistbench "):
        text = _mnistbench(args)
    else:
        text = _script(args)
    text = text.strip("\n")
    if "--format markdown" not in command and command.startswith("mnistbench "):
        return "```text\n" + "\n".join(line.rstrip() for line in text.splitlines()) + "\n```"
    return _demote(text, 2)


def render(name: str) -> str:
    """The table ``name`` under one line naming the command that drew it from the committed files."""
    what, command = TABLES[name]
    return f"*{what[0].upper() + what[1:]}*, drawn from the committed files by `{command}`:\n\n{body(name)}\n"


def main(argv: list[str]) -> int:
    if argv[:1] == ["--list"]:
        for name, (what, command) in TABLES.items():
            print(f"{name:18} {what}\n{'':18} {command}")
        return 0
    unknown = [n for n in argv if n not in TABLES]
    if unknown:
        print(f"unknown table(s): {', '.join(unknown)}; known: {', '.join(TABLES)}", file=sys.stderr)
        return 2
    buf = io.StringIO()
    for name in argv or TABLES:
        buf.write(f"<!-- {name} -->\n{render(name)}\n")
    sys.stdout.write(buf.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
