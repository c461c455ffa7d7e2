"""ONNX export: dynamic batch, checker, metadata, parity against PyTorch on real images."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from mnistbench.exporters.onnx import OPSET, export_onnx, read_metadata
from mnistbench.exporters.verify import TOLERANCE, check_parity
from mnistbench.models.errors import ExportError
from mnistbench.models.preprocess import preprocess
from mnistbench.models.registry import get_spec, list_models

SLOW_EXPORTS = {"fan-resnet", "rich-cnn"}  # over 3 s each here (fan-resnet about 28 s): `pytest -m "not slow"` skips them


@pytest.mark.integration
@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW_EXPORTS else n
                                  for n in list_models()])
def test_every_model_exports_with_dynamic_batch_and_parity(name, mnist, tmp_path):
    spec = get_spec(name)
    torch.manual_seed(0)
    model = spec.build().eval()
    path = tmp_path / f"{name}.onnx"
    proto = export_onnx(model, spec, path, {"checkpoint_sha256": "abc"})
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    assert {(o.domain or "ai.onnx"): o.version for o in proto.opset_import}["ai.onnx"] == OPSET
    meta = read_metadata(path)
    assert meta["model"] == name and meta["checkpoint_sha256"] == "abc" and meta["preprocess"] == spec.preprocess
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    dim0 = sess.get_inputs()[0].shape[0]
    assert isinstance(dim0, str), f"batch axis is fixed at {dim0}"
    for n in (1, 7):
        assert sess.run(None, {sess.get_inputs()[0].name: np.zeros((n, 1, 28, 28), np.float32)})[0].shape[0] == n
    rep = check_parity(path, model, preprocess(mnist.test_images[:1000], spec.preprocess), spec.task)
    assert rep.passed and rep.images == 1000 and rep.max_abs_diff <= TOLERANCE
    assert rep.top1_agreement == (1.0 if spec.task == "classify" else None)


def test_parity_detects_a_different_model(tmp_path):
    spec = get_spec("zhu-mlp")
    torch.manual_seed(0)
    exported = spec.build().eval()
    export_onnx(exported, spec, tmp_path / "m.onnx", {})
    other = spec.build().eval()  # different random weights
    x = np.random.default_rng(0).random((200, 1, 28, 28), dtype=np.float32)
    rep = check_parity(tmp_path / "m.onnx", other, x, "classify")
    assert not rep.passed and rep.max_abs_diff > TOLERANCE and rep.top1_agreement < 1.0


def test_parity_tolerance_is_enforced_on_tiny_differences(tmp_path):
    spec = get_spec("zhu-mlp")
    model = spec.build().eval()
    export_onnx(model, spec, tmp_path / "m.onnx", {})
    with torch.no_grad():
        model.net[3].bias += 1e-3  # shifts every logit by 1e-3: same argmax, diff above 1e-4
    x = np.random.default_rng(0).random((50, 1, 28, 28), dtype=np.float32)
    rep = check_parity(tmp_path / "m.onnx", model, x, "classify")
    assert rep.top1_agreement == 1.0 and not rep.passed


def test_unreadable_onnx_raises_export_error(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(ExportError, match="cannot run bad.onnx"):
        check_parity(bad, get_spec("zhu-mlp").build(), np.zeros((1, 1, 28, 28), np.float32), "classify")
