"""int8 variant: static QDQ quantization, calibrated on training images; benchmarked beside fp32."""

from __future__ import annotations

import csv
import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from mnistbench.bench.cli import app
from mnistbench.exporters.variants import CALIBRATION_IMAGES
from typer.testing import CliRunner

runner = CliRunner()


@pytest.mark.slow
@pytest.mark.integration
def test_export_int8_and_run_both_variants(mnist, real_data_root, tmp_path, monkeypatch):
    arts = tmp_path / "arts"
    common = ["--profile", "smoke", "--artifacts-dir", str(arts), "--data-dir", str(real_data_root)]
    assert runner.invoke(app, ["train", "zhu-cnn", *common]).exit_code == 0
    res = runner.invoke(app, ["export", "zhu-cnn", "--int8", *common])
    assert res.exit_code == 0, res.output
    seed_dir = arts / "mnist/smoke/seed0"
    q = onnx.load(str(seed_dir / "zhu-cnn.int8.onnx"))
    ops = {n.op_type for n in q.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops  # QDQ format
    # per-channel: a weight's scale is a vector (one per output channel), not a scalar
    scales = [i for i in q.graph.initializer if i.name.endswith("_scale") and len(i.dims) == 1 and i.dims[0] > 1]
    assert scales
    meta = {p.key: p.value for p in q.metadata_props}
    assert meta["mnistbench.variant"] == "int8" and meta["mnistbench.calibration_images"] == str(CALIBRATION_IMAGES)
    report = json.loads((seed_dir / "zhu-cnn.int8.export.json").read_text())
    assert report["top1_agreement_vs_fp32"] > 0.95 and report["onnx_bytes"] > 0

    out = tmp_path / "r.csv"
    res = runner.invoke(app, ["run", "zhu-cnn", "--variant", "fp32,int8", "--batch-sizes", "1,32", "--min-s", "0",
                              "--min-iters", "3", "--no-null", "--out", str(out), *common])
    assert res.exit_code == 0, res.output
    rows = [r for r in csv.DictReader(open(out)) if r["task"] != "reference"]  # the drift reference aside
    assert sorted((r["variant"], r["batch_size"]) for r in rows) == [
        ("fp32", "1"), ("fp32", "32"), ("int8", "1"), ("int8", "32")]
    acc = {r["variant"]: float(r["accuracy_top1"]) for r in rows}
    assert abs(acc["int8"] - acc["fp32"]) < 0.02
    # each variant is scored and fingerprinted on its own file, not its model name
    from mnistbench.bench.measure.pipeline import eval_inputs
    from mnistbench.models.files import sha256_file
    from mnistbench.models.registry import get_spec

    x, y = eval_inputs(get_spec("zhu-cnn"), mnist)
    for variant, name in (("fp32", "zhu-cnn.onnx"), ("int8", "zhu-cnn.int8.onnx")):
        sess = ort.InferenceSession(str(seed_dir / name), providers=["CPUExecutionProvider"])
        want = float(np.mean(sess.run(None, {sess.get_inputs()[0].name: x})[0].argmax(1) == y))
        got = [r for r in rows if r["variant"] == variant]
        assert all(float(r["accuracy_top1"]) == pytest.approx(want, abs=1e-9) for r in got), (variant, want)
        assert all(r["onnx_sha256"] == sha256_file(seed_dir / name) for r in got)
    assert "Variants against fp32" in res.stdout and "speedup" in res.stdout


def test_run_rejects_unknown_variant(tmp_path):
    res = runner.invoke(app, ["run", "lenet5", "--variant", "int4", "--artifacts-dir", str(tmp_path)])
    assert res.exit_code == 2 and "unknown variant 'int4'" in res.stderr
