"""A sweep of hostile values over every option of every command (issue 27): each option of each
command gets the bad values of its kind, and each invocation must end in one line on stderr and
exit 2, within a time limit, before any training or measuring, leaving no file.

Kinds (from the option's click type and name):

- a folder option (``*-dir``): a regular file where the folder should be, and a path under a file;
- a file option (``--out``, ``--onnx``): a folder where the file should be, and a 300-character name;
- an integer: ``-1`` and ``2**70``; a float: ``nan``, ``-1`` and ``inf``;
- a text option: the empty string and ``,``;
- a flag: nothing to make bad (listed as such).

Each command starts from a valid invocation (:data:`BASE`; real result files for the commands that read
them), so a refusal is the option's own. An invocation that exits 0 is listed as *accepted* (the value
is valid for that option, or a gap to look at); any other outcome (a traceback, exit 1, a timeout,
more than one line, a file left) is a *failure*.

    python scripts/option_sweep.py OUT.md --results R.csv [--timeout 20]

The commands read MNIST from ``MNISTBENCH_DATA`` (default ``../shared/data`` beside the repository).
The sweep makes its own artifacts folder first (lenet5 trained and exported with the smoke profile,
about a minute) and passes it as ``MNISTBENCH_ARTIFACTS``, so what it finds does not hang on the
caller's environment; a file or folder left in it counts as left, as one left in the scratch
folder. Beside OUT.md it writes OUT.system.json: the machine, the software and the commit it ran
on, and the command.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import typer.main
from mnistbench.bench.cli import app
from mnistbench.bench.measure.system import describe_system
from mnistbench.models.files import atomic_write_bytes

# A valid invocation of each command (before the option under test); {R} a run CSV.
BASE = {
    "train": ["train", "lenet5", "--profile", "smoke"], "train-all": ["train-all", "--profile", "smoke"],
    "export": ["export", "lenet5", "--profile", "smoke"], "run": ["run", "lenet5", "--profile", "smoke", "--no-score", "--no-null", "--batch-sizes", "1",
            "--min-s", "0.05", "--rounds", "2", "--warmup-s", "0"],
    "load": ["load", "lenet5", "--profile", "smoke", "--scenario", "offline", "--min-duration-s", "0.2",
             "--min-query-count", "16", "--no-null"], "compare": ["compare", "{R}", "{R}"],
    "table": ["table", "{R}"], "verify": ["verify", "{R}"], "report": ["report", "{R}"], "best": ["best", "{R}"],
    "doctor": ["doctor"], "reproduce": ["reproduce", "zhu-mlp", "--profile", "smoke"],
    "speedrun": ["speedrun", "speed-cnn"], "all": ["all", "--profile", "smoke"], "list": ["list"],
}
HUGE = str(2**70)


def bad_values(p, scratch: Path) -> list[str]:
    """The hostile values of option ``p`` (a click option, typer's vendored click: typed by duck)."""
    name = p.opts[0]
    ann = p.type_descriptor.annotation
    ann = next((a for a in getattr(ann, "__args__", ()) if a is not type(None)), ann)  # Optional[X] -> X
    plain = scratch.parent / "plain.txt"
    if getattr(p, "is_flag", False):
        return []
    if name.endswith("-dir"):
        return [str(plain), str(plain / "sub")]
    if name in ("--out", "--onnx", "--out-path"):
        return [str(scratch), str(scratch / ("x" * 300 + ".csv"))]
    if ann is int:
        return ["-1", HUGE]
    if ann is float:
        return ["nan", "-1", "inf"]
    return ["", ","]


ENV: dict[str, str] = {}  # MNISTBENCH_DATA and MNISTBENCH_ARTIFACTS, set in main()


def cli(argv: list[str], **kw) -> subprocess.CompletedProcess:
    """``mnistbench ARGV`` in a fresh process with :data:`ENV` (``kw``: subprocess.run's, ``env`` added to)."""
    env = {**os.environ, **ENV, **kw.pop("env", {})}
    return subprocess.run([sys.executable, "-m", "mnistbench.bench.cli", *argv], capture_output=True, text=True,
                          env=env, **kw)


def invoke(argv: list[str], timeout: float, cwd: Path) -> tuple[str, int, list[str], str]:
    try:
        res = cli(argv, timeout=timeout, cwd=cwd, env={"COLUMNS": "200", "XDG_CACHE_HOME": str(cwd / "cache")})
    except subprocess.TimeoutExpired:
        return "timeout", -1, [], ""
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    if "Traceback" in res.stderr + res.stdout:
        return "traceback", res.returncode, lines[-1:], ""
    if res.returncode == 0:
        return "accepted", 0, lines[-1:], ""
    if res.returncode == 2 and len(lines) == 1 and lines[0].startswith("mnistbench: error: "):
        return "refused", 2, lines, ""
    return "failure", res.returncode, lines[-3:], ""


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--results", type=Path, required=True, help="a run CSV the reading commands start from")
    ap.add_argument("--timeout", type=float, default=20.0)
    ap.add_argument("--only", default="", help="comma-separated commands")
    a = ap.parse_args()
    # collected before any output is written, so the commit reads clean when the tree was
    system = {**describe_system(), "command": " ".join(["python", *sys.argv])}
    repo = Path(__file__).resolve().parents[1]
    ENV["MNISTBENCH_DATA"] = str(Path(os.environ.get("MNISTBENCH_DATA", repo.parent / "shared" / "data")).resolve())
    arts_tmp = tempfile.TemporaryDirectory(prefix="mnistbench-sweep-artifacts-")
    arts = Path(arts_tmp.name) / "artifacts"
    ENV["MNISTBENCH_ARTIFACTS"] = str(arts)
    for step in (["train", "lenet5", "--profile", "smoke"], ["export", "lenet5", "--profile", "smoke"]):
        res = cli(step)
        if res.returncode:
            sys.exit(f"option_sweep: {' '.join(step)} failed: {res.stderr.strip()[-300:]}")

    def state(scratch: Path) -> set[str]:
        return {str(x) for root in (scratch, arts) for x in root.rglob("*")
                if "cache" not in x.parts and not x.name.endswith(".lock")}

    group = typer.main.get_command(app)
    rows, flags = [], []
    only = set(filter(None, a.only.split(",")))
    for cmd_name, cmd in sorted(group.commands.items()):
        if only and cmd_name not in only:
            continue
        base = [x.replace("{R}", str(a.results.resolve())) for x in BASE[cmd_name]]
        for p in cmd.params:
            if p.param_type_name != "option" or p.name == "help":
                continue
            with tempfile.TemporaryDirectory(prefix="mnistbench-sweep-") as tmp:
                scratch = Path(tmp)
                (scratch / "plain.txt").write_text("a file\n")
                values = bad_values(p, scratch / "work")
                if not values:
                    flags.append(f"{cmd_name} {p.opts[0]}")
                    continue
                (scratch / "work").mkdir()
                for v in values:
                    before = state(scratch)
                    outcome, rc, lines, _ = invoke([*base, p.opts[0], v], a.timeout, scratch / "work")
                    left = sorted(state(scratch) - before)
                    if outcome == "refused" and left:
                        outcome = "failure"
                        lines = [f"left {left[0]}"]
                    shown = v if len(v) < 40 else v[:20] + "..." + v[-12:]
                    rows.append((cmd_name, p.opts[0], shown, outcome, rc, " ".join(lines)[:160]))
                    print(f"{cmd_name} {p.opts[0]} {shown!r}: {outcome} ({rc}) {' '.join(lines)[:120]}", flush=True)
    counts: dict[str, dict[str, int]] = {}
    for c, _, _, o, _, _ in rows:
        counts.setdefault(c, {}).setdefault(o, 0)
        counts[c][o] += 1
    md = ["# Option sweep", "", f"`python scripts/option_sweep.py {' '.join(sys.argv[1:])}`", "",
          "| command | options swept | refused (exit 2, one line) | accepted (exit 0) | failures |", "|---|---:|---:|---:|---:|"]
    for c in sorted(counts):
        opts = len({o for cc, o, *_ in rows if cc == c})
        k = counts[c]
        md.append(f"| {c} | {opts} | {k.get('refused', 0)} | {k.get('accepted', 0)} | "
                  f"{sum(v for o, v in k.items() if o not in ('refused', 'accepted'))} |")
    md += ["", "Flags (no bad value to give): " + ", ".join(flags), "", "| command | option | value | outcome | exit | line |",
           "|---|---|---|---|---:|---|"]
    md += [f"| {c} | `{o}` | `{v}` | {oc} | {rc} | {ln.replace('|', '/')} |" for c, o, v, oc, rc, ln in rows]
    atomic_write_bytes(a.out, ("\n".join(md) + "\n").encode())
    system["values"] = len(rows)
    atomic_write_bytes(a.out.with_suffix(".system.json"), (json.dumps(system, indent=2) + "\n").encode())
    return 0 if not any(r[3] not in ("refused", "accepted") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
