"""The Python API: the README's example runs as written, its DataFrame is the results CSV, raw samples
are reachable, and bad input raises the project's one-line errors before any work."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import mnistbench
from mnistbench.bench import api
from mnistbench.bench.measure.records import read_csv
from mnistbench.bench.measure.samples import folder_for, read_cell
from mnistbench.models.errors import UsageError

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_example() -> str:
    """The first ```python block of the README's "Python API" section."""
    text = README.read_text()
    section = text[text.index("## Python API"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.mark.integration
@pytest.mark.slow
def test_readme_python_example_runs(mnist, real_data_root, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MNISTBENCH_DATA", str(real_data_root))
    scope: dict = {}
    exec(compile(readme_example(), "README.md (Python API)", "exec"), scope)

    df, change = scope["df"], scope["change"]
    rows = read_csv(tmp_path / "results" / "b.csv")
    assert list(df["cell_id"]) == [r.cell_id for r in rows]  # the DataFrame is the CSV, row for row
    assert list(df.columns) == list(rows[0].__dataclass_fields__)
    measured = df[df.task != "reference"]
    assert sorted(measured["batch_size"]) == [1, 32] and (measured["status"] == "ok").all()
    assert (measured["accuracy_top1"] > 0.5).all()  # a trained lenet5, not random weights
    last = read_cell(folder_for(tmp_path / "results" / "b.csv") / f"{df.iloc[-1]['cell_id']}.npz")
    assert np.array_equal(scope["ns"], last.ns) and len(last.ns) >= 16
    assert {c.key[0] for c in change.changes} >= {"lenet5"} and len(change.frame()) == len(change.changes)
    assert "gate passed:" in capsys.readouterr().out


def test_top_level_reexports_the_api():
    assert mnistbench.api is api and mnistbench.benchmark is api.benchmark and mnistbench.Axes is api.Axes
    with pytest.raises(AttributeError):
        mnistbench.no_such_function


@pytest.mark.parametrize("call, message", [
    (lambda: api.benchmark(["no-such-model"], profile="quick"), "no-such-model"),
    (lambda: api.benchmark(["lenet5"], profile="quick", repeat=0), "--repeat must be at least 1"),
    (lambda: api.benchmark(["lenet5"], profile="quick", colour="red"), "no option 'colour'"),
    (lambda: api.benchmark(onnx=["m.onnx"], axes=api.Axes(runtimes=("torch",))), "--onnx benchmarks"),
    (lambda: api.train(["lenet5"], profile="weekly"), "weekly"),
    (lambda: api.train(["lenet5"], amp="fp8"), "unknown --amp"),
    (lambda: api.compare("missing-a.csv", "missing-b.csv"), "missing-a.csv"),
    (lambda: api.compare("a.csv", "b.csv", noise=1.5), "--noise is auto or a fraction"),
    (lambda: api.gate([], "p50:5"), "--fail-on rule"),
    (lambda: api.compare_live("lenet5", "lenet5:int8", axes=api.Axes(threads=(1, 2))), "one --threads"),
    (lambda: api.reproduce(["zhu-mlp"], max_retries=-1), "--max-retries"),
    (lambda: api.samples("nowhere.csv", "abc"), "no raw samples"),
])
def test_bad_input_raises_usage_errors(call, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UsageError, match=re.escape(message)):
        call()
    assert not any(tmp_path.iterdir())  # refused before any file
