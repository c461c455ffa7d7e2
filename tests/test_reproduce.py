"""`mnistbench reproduce`: planning, verdicts, rich-cnn's Table I, the autoencoder scale study,
and the command end to end on real MNIST (smoke recipes), including resume."""

from __future__ import annotations

import csv
import json

import pytest
import torch
from mnistbench.bench.cli import app
from mnistbench.bench.training import reproduce as rp
from mnistbench.models.errors import UsageError
from mnistbench.models.registry import get_spec, select
from typer.testing import CliRunner

runner = CliRunner()
CPU, CUDA = torch.device("cpu"), torch.device("cuda")


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


# ---------------------------------------------------------------- verdicts


def test_point_claim_within_when_inside_the_seed_spread():
    v, why = rp.verdict([0.9760, 0.9770, 0.9768], 0.9765, None, None, "accuracy")
    assert v == "within" and "97.65%" in why


def test_point_claim_above_and_below():
    assert rp.verdict([0.990, 0.991, 0.9905], 0.9806, None, None, "accuracy")[0] == "above"
    v, why = rp.verdict([0.60, 0.62, 0.61], 0.7438, None, None, "accuracy")
    assert v == "below" and "13.38 pp below" in why


def test_claim_widened_by_half_its_last_digit():
    # 0.984 printed with 3 digits: 0.98449 counts as 0.984 even with zero spread
    assert rp.verdict([0.98449, 0.98449], 0.984, None, None, "accuracy")[0] == "within"
    assert rp.verdict([0.98451, 0.98451], 0.984, None, None, "accuracy")[0] == "above"


def test_range_claims_compare_the_mean():
    assert rp.verdict([0.985, 0.987], None, 0.98, 0.99, "accuracy")[0] == "within"
    v, why = rp.verdict([0.995, 0.996], None, 0.98, 0.99, "accuracy")
    assert v == "above" and "98.00%–99.00%" in why


def test_mse_verdict_says_how_far_relatively():
    v, why = rp.verdict([0.1275, 0.1280, 0.1270], 0.1129, None, None, "mse")
    assert v == "above" and "13%" in why


def test_no_claim():
    assert rp.verdict([0.5], None, None, None, "accuracy") == ("no claim", "")


# ---------------------------------------------------------------- planning


def test_plan_reduces_fan_resnet_on_cpu_only():
    specs = select(["fan-resnet", "zhu-mlp"])
    runs = rp.plan(specs, 2, "paper", CPU, reduce_on_cpu=True, ae_study=False)
    fan = [r for r in runs if r.model == "fan-resnet"]
    assert [r.seed for r in fan] == [0, 1]
    assert all(r.profile == "quick" and "CPU budget" in r.reduced for r in fan)
    assert all(r.profile == "paper" and not r.reduced for r in runs if r.model == "zhu-mlp")
    assert all(r.profile == "paper" for r in rp.plan(specs, 1, "paper", CPU, reduce_on_cpu=False, ae_study=False))
    assert all(r.profile == "paper" for r in rp.plan(specs, 1, "paper", CUDA, ae_study=False))


def test_plan_adds_the_autoencoder_study_when_an_autoencoder_is_selected():
    runs = rp.plan(select(["zhu-conv-autoencoder"]), 3, "paper", CPU)
    study = [r for r in runs if r.experiment == "ae-scale"]
    assert len(study) == 2 * 2 * 3  # two models x two scales x three seeds
    assert {(r.model, r.scale) for r in study} == {(m, s) for m in rp.AE_MODELS for s in rp.AE_SCALES}
    assert not [r for r in rp.plan(select(["lenet5"]), 3, "paper", CPU) if r.experiment == "ae-scale"]


def test_plan_rejects_bad_seeds_and_profiles():
    with pytest.raises(UsageError, match="--seeds"):
        rp.plan(select(["lenet5"]), 0, "paper", CPU)
    with pytest.raises(UsageError, match="unknown profile"):
        rp.plan(select(["lenet5"]), 1, "fast", CPU)


@pytest.mark.parametrize("model", rp.AE_MODELS)
@pytest.mark.parametrize("scale,lo,hi", [("unit", 0.0, 1.0), ("signed", -1.0, 1.0)])
def test_autoencoder_study_output_range_follows_the_scale(model, scale, lo, hi):
    spec = rp.ae_spec(model, scale)
    assert spec.preprocess == scale and spec.task == "reconstruct"
    assert spec.recipe == get_spec("zhu-conv-autoencoder").recipe  # the same settings for both models
    torch.manual_seed(0)  # an untrained conv autoencoder gives negatives on [-1,1] for most inits, not all
    net = spec.build()
    out = net(torch.randn(64, 1, 28, 28) * 5)
    assert out.shape == (64, 1, 28, 28)
    assert out.min() >= lo and out.max() <= hi
    assert (out.min() < 0) == (scale == "signed")


def test_rich_cnn_table_i_marks_come_from_the_curve():
    curve = [[s, 0.9 + s / 200_000] for s in range(100, 10_001, 100)]
    curve[5] = [600, 0.999]  # a lucky early score: best-of keeps it, final at 1000 does not
    meta = {"model": "rich-cnn", "test_metric": curve[-1][1],
            "stages": {"classify": {"eval_curve": curve, "best_test_accuracy": 0.999, "best_step": 600}}}
    final, best, best_step, marks = rp._final_and_best(meta)
    marks = json.loads(marks)
    assert set(marks) == {"1000", "2500", "5000", "10000"}
    assert marks["1000"] == {"final": pytest.approx(0.905), "best": 0.999}
    assert marks["10000"]["final"] == pytest.approx(0.95)
    assert float(best) == 0.999 and best_step == "600"


# ---------------------------------------------------------------- the command, on real MNIST


@pytest.fixture()
def data_env(monkeypatch, tmp_path, real_data_root):
    root = real_data_root
    if not (root / "mnist").is_dir():
        pytest.skip(f"real MNIST not found under {root}")
    monkeypatch.setenv("MNISTBENCH_DATA", str(root))
    monkeypatch.setenv("MNISTBENCH_ARTIFACTS", str(tmp_path / "arts"))
    return tmp_path


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_reproduce_writes_runs_table_and_resumes(data_env):
    out = data_env / "r" / "mnist-smoke.csv"
    res = invoke("reproduce", "zhu-mlp", "--profile", "smoke", "--seeds", "2", "--no-ae-study", "--out", out)
    assert res.exit_code == 0, res.output
    rows = _rows(out)
    assert [(r["model"], r["seed"]) for r in rows] == [("zhu-mlp", "0"), ("zhu-mlp", "1")]
    assert all(0.5 < float(r["final"]) <= 1 and r["device"] == "cpu" and float(r["wall_s"]) > 0 for r in rows)
    assert rows[0]["final"] != rows[1]["final"]  # two seeds, two different models
    system = json.loads(out.with_suffix(".system.json").read_text())
    assert system["command"] == "reproduce" and system["cpu_model"]
    md = out.with_suffix(".md").read_text()
    assert "| zhu-mlp | Zhu, seed 004 | 97.65% |" in md and "mean of 10 runs, this one of 2" in md
    assert (data_env / "arts" / "mnist" / "smoke" / "seed1" / "zhu-mlp.safetensors").is_file()

    # --resume with more seeds trains only the missing one and keeps the finished rows verbatim
    res = invoke("reproduce", "zhu-mlp", "--profile", "smoke", "--seeds", "3", "--no-ae-study", "--out", out,
                 "--resume")
    assert res.exit_code == 0, res.output
    again = _rows(out)
    assert again[:2] == rows and [r["seed"] for r in again] == ["0", "1", "2"]
    assert "| 3 |" in out.with_suffix(".md").read_text()

    # `table` renders the same reproduction table from the CSV
    res = invoke("table", out)
    assert res.exit_code == 0 and "| zhu-mlp | Zhu, seed 004 |" in res.stdout


@pytest.mark.slow
def test_reproduce_autoencoder_study_on_both_scales(data_env):
    out = data_env / "ae.csv"
    res = invoke("reproduce", "zhu-conv-autoencoder", "--profile", "smoke", "--seeds", "1", "--out", out)
    assert res.exit_code == 0, res.output
    study = {(r["model"], r["scale"]): float(r["final"]) for r in _rows(out) if r["experiment"] == "ae-scale"}
    assert set(study) == {(m, s) for m in rp.AE_MODELS for s in ("[0,1]", "[-1,1]")}
    # the same images on a twice-as-wide scale: MSE is larger on [-1,1] for both models
    for m in rp.AE_MODELS:
        assert study[(m, "[-1,1]")] > study[(m, "[0,1]")]
    assert "Autoencoders at the same settings" in out.with_suffix(".md").read_text()


@pytest.mark.parametrize("args,message", [
    (["--seeds", "0"], "--seeds must be between 1 and 1,000, got 0"),
    (["--resume"], "--resume needs --out"),
    (["--out", "x.txt"], "--out must name a .csv"),
    (["nonesuch"], "unknown model"),
])
def test_reproduce_bad_input_is_one_line(data_env, args, message):
    res = invoke("reproduce", "--profile", "smoke", *args)
    assert res.exit_code == 2
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and message in lines[0], res.stderr


def test_reproduce_resume_refuses_another_profile(data_env):
    out = data_env / "a.csv"
    assert invoke("reproduce", "zhu-mlp", "--profile", "smoke", "--seeds", "1", "--no-ae-study",
                  "--out", out).exit_code == 0
    before = out.read_bytes()
    res = invoke("reproduce", "zhu-mlp", "--profile", "quick", "--seeds", "1", "--out", out, "--resume")
    assert res.exit_code == 2 and "cannot be completed with" in res.stderr
    assert out.read_bytes() == before


def test_a_claimed_mean_is_compared_as_a_mean():
    runs = [0.9812, 0.9840, 0.9860, 0.9870, 0.9880, 0.9850, 0.9865, 0.9875, 0.9856, 0.9880]
    # as a single-run claim 98.95% lies in the runs' spread; as a mean of 10 it is too far from ours
    assert rp.verdict(runs, 0.9895, None, None, "accuracy")[0] == "within"
    v, why = rp.verdict(runs, 0.9895, None, None, "accuracy", mean_of=10)
    assert v == "below" and "a mean of 10" in why
    assert rp.verdict(runs, 0.9860, None, None, "accuracy", mean_of=10)[0] == "within"
