"""`mnistbench speedrun` and the speed-cnn model: timing scope, statistics, CLI, bad input."""

from __future__ import annotations

import csv
import json

import pytest
from mnistbench.bench.cli import app
from mnistbench.bench.training import speedrun as sr
from mnistbench.models.errors import UsageError
from mnistbench.models.registry import get_spec
from typer.testing import CliRunner

runner = CliRunner()


def test_speedrun_trains_each_seed_and_times_only_training(tiny_dataset):
    spec = get_spec("speed-cnn")
    seen = []
    res = sr.speedrun(spec, tiny_dataset, seeds=3, device="cpu", epochs=3, on_result=seen.append)
    assert [r.seed for r in res] == [0, 1, 2] and seen == res
    steps = 3 * -(-512 // spec.recipe.batch_size)
    assert all(r.steps == steps for r in res)
    assert all(r.train_s > 0 and r.eval_s > 0 for r in res)
    # the synthetic classes (a bright k x k square) are learnable: far above chance in 3 epochs
    assert min(r.accuracy for r in res) > 0.5
    assert len({r.accuracy for r in res} | {r.train_s for r in res}) > 2  # seeds differ


def test_summary_statistics_and_target_on_the_mean():
    rs = [sr.SpeedrunResult(i, t, 10, a, 0.1) for i, (t, a) in enumerate([(4.0, 0.989), (5.0, 0.992), (6.0, 0.991)])]
    s = sr.summarize(rs, 0.99)
    assert s.train_s_mean == pytest.approx(5.0) and s.train_s_sd == pytest.approx(1.0)
    assert s.acc_mean == pytest.approx(0.990667, abs=1e-6) and s.reached and s.seeds_reaching == 2
    assert not sr.summarize(rs[:1], 0.99).reached


@pytest.mark.parametrize("name,kwargs,message", [
    ("zhu-conv-autoencoder", {}, "reconstruct model"),
    ("zhu-autoencoder", {}, "trains in stages"),
    ("speed-cnn", {"seeds": 0}, "--seeds"),
    ("speed-cnn", {"epochs": 0}, "--epochs"),
    ("rich-cnn", {"epochs": 2}, "counts steps"),
])
def test_speedrun_refuses_what_it_cannot_time(tiny_dataset, name, kwargs, message):
    with pytest.raises(UsageError, match=message):
        sr.speedrun(get_spec(name), tiny_dataset, **{"seeds": 1, **kwargs})


@pytest.mark.slow
def test_speedrun_command_on_real_mnist(mnist, tmp_path, monkeypatch, real_data_root):
    monkeypatch.setenv("MNISTBENCH_DATA", str(real_data_root))
    out = tmp_path / "s.csv"
    # zhu-mlp trains in about a second per epoch; one epoch on real MNIST is far above 90%
    res = runner.invoke(app, ["speedrun", "zhu-mlp", "--seeds", "2", "--epochs", "1", "--target", "0.9",
                              "--out", str(out)])
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(open(out)))
    assert [r["seed"] for r in rows] == ["0", "1"]
    assert all(float(r["accuracy"]) > 0.9 and int(r["steps"]) == 600 for r in rows)
    assert "target 90.00% reached on the mean" in res.stdout and "excluded: data loading" in res.stdout
    assert "epochs overridden: 1" in rows[0]["recipe"]
    assert json.loads(out.with_suffix(".system.json").read_text())["command"] == "speedrun"


@pytest.mark.parametrize("args,message", [
    (["--target", "99"], "--target is a fraction"),
    (["--out", "x.json"], "--out must name a .csv"),
    (["nonesuch"], "unknown model"),
])
def test_speedrun_bad_input_is_one_line(args, message):
    res = runner.invoke(app, ["speedrun", *args])
    assert res.exit_code == 2
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and message in lines[0], res.stderr
