"""The Python API: the README's example runs as written, its DataFrame is the results CSV, raw samples
are reachable, and bad input raises the project's one-line errors before any work."""

from __future__ import annotations

import re
from pathlib import Path

import mnistbench
import numpy as np
import pytest
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
    rows = read_csv(tmp_path / "runs" / "b.csv")
    assert list(df["cell_id"]) == [r.cell_id for r in rows]  # the DataFrame is the CSV, row for row
    assert list(df.columns) == list(rows[0].__dataclass_fields__)
    measured = df[df.task != "reference"]
    assert sorted(measured["batch_size"]) == [1, 32] and (measured["status"] == "ok").all()
    assert (measured["accuracy_top1"] > 0.5).all()  # a trained lenet5, not random weights
    last = read_cell(folder_for(tmp_path / "runs" / "b.csv") / f"{df.iloc[-1]['cell_id']}.npz")
    assert np.array_equal(scope["ns"], last.ns) and len(last.ns) >= 16
    assert {c.key[0] for c in change.changes} >= {"lenet5"} and len(change.frame()) == len(change.changes)
    assert "gate passed:" in capsys.readouterr().out


def test_top_level_reexports_the_api():
    assert mnistbench.api is api and mnistbench.benchmark is api.benchmark and mnistbench.Axes is api.Axes
    with pytest.raises(AttributeError):
        mnistbench.no_such_function


@pytest.mark.parametrize("call, message", [
    (lambda: api.benchmark(["no-such-model"], profile="quick"), "no-such-model"),
    (lambda: api.benchmark(["lenet5"], profile="quick", repeat=0), "--repeat must be 1 to 1000"),
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


def test_run_configuration_round_trips_as_plain_data():
    import json

    from mnistbench.bench.measure.config import RunRequest
    from mnistbench.bench.measure.timing import TimingConfig
    from mnistbench.bench.runtimes.runtime import GpuOptions

    req = RunRequest(("lenet5", "zhu-*"), api.Axes(runtimes=("onnxruntime", "torch"), threads=(api.AUTO, 2),
                                                   spinning=(None, False), batch_sizes=(1, 32),
                                                   gpu=GpuOptions(device_id=1, tf32=True)),
                     TimingConfig(min_s=0.25, rounds=4), variants=("fp32", "int8"), out_path=Path("r/x.csv"),
                     data_dir=Path("/data"), repeat=3, call_timeout=2, command="mnistbench run lenet5")
    data = json.loads(json.dumps(req.to_dict()))  # JSON-ready: what a Ray task or a spawned process receives
    back = RunRequest.from_dict(data)
    assert back == req and back.axes.gpu.device_id == 1 and back.out_path == Path("r/x.csv")
    assert isinstance(back.call_timeout, float) and back.axes.spinning == (None, False)
    with pytest.raises(UsageError, match="no setting colour"):
        RunRequest.from_dict({**data, "colour": "red"})
    with pytest.raises(UsageError, match="--repeat must be 1 to 1000"):
        RunRequest.from_dict({**data, "repeat": 0})
    with pytest.raises(UsageError, match="TimingConfig"):
        RunRequest.from_dict({**data, "timing": {"min_s": 0.25, "rounds": 4, "speed": "max"}})


@pytest.mark.integration
@pytest.mark.slow
def test_repeats_run_in_fresh_processes_from_the_configuration(tmp_path, matmul_chain, mnist, real_data_root):
    from mnistbench.bench.measure.config import RunRequest
    from mnistbench.bench.measure.timing import TimingConfig

    model = matmul_chain(tmp_path / "m.onnx", 1)
    out = tmp_path / "rep.csv"
    req = RunRequest(onnx=(model,), axes=api.Axes(batch_sizes=(1, 4), threads=(1,)),
                     timing=TimingConfig(min_s=0.05, rounds=2), out_path=out, repeat=2, null=False, score=False,
                     reference=False, data_dir=real_data_root, artifacts_dir=tmp_path / "arts")
    outcome = api.run(req, note=lambda s: None)
    rows = read_csv(out)
    assert sorted((r.repeat, r.batch_size) for r in rows) == [(0, 1), (0, 4), (1, 1), (1, 4)]
    assert len({r.run_id for r in rows}) == 2  # one run per fresh process
    assert outcome.repeats == 2 and out.with_suffix(".system.json").is_file()
    assert all(r.status == "ok" for r in rows)
