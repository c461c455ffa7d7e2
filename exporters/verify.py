"""Parity of an exported ONNX file with the PyTorch model it came from.

Both run on the same real test images (the first 1,000 by default); the ONNX
file runs on ONNX Runtime's CPU execution provider with graph optimisations
on, as the benchmark runs it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from ..models.errors import ExportError

# Largest |ONNX - PyTorch| allowed on any output element, fp32 on CPU. Kernels
# differ in summation order, so exact equality is not expected; 1e-4 is about
# 1e3 float32 epsilons on logits of magnitude ~10 and was not approached by
# any paper model (largest seen: see the export report).
TOLERANCE = 1e-4
PARITY_IMAGES = 1000


@dataclass(frozen=True)
class ParityReport:
    """How closely ONNX Runtime reproduces PyTorch.

    Attributes:
        images: number of test images compared.
        max_abs_diff: largest absolute difference over all output elements.
        top1_agreement: fraction of images with the same argmax (None for reconstruction).
        tolerance: the bound ``max_abs_diff`` had to meet.
        passed: ``max_abs_diff <= tolerance`` and, for classifiers, agreement == 1.
    """

    images: int
    max_abs_diff: float
    top1_agreement: float | None
    tolerance: float
    passed: bool

    def as_dict(self) -> dict:
        return asdict(self)


def check_parity(
    onnx_path: Path, model: nn.Module, inputs: np.ndarray, task: str, *, tolerance: float = TOLERANCE
) -> ParityReport:
    """Compare ``model`` and the ONNX file on ``inputs``.

    Args:
        onnx_path: the exported file.
        model: the PyTorch module it was exported from.
        inputs: preprocessed float32 (N, 1, 28, 28).
        task: ``classify`` or ``reconstruct``.
        tolerance: bound on the max absolute difference.

    Returns:
        the :class:`ParityReport` (also when it fails).

    Raises:
        ExportError: ONNX Runtime cannot load or run the file.
    """
    so = ort.SessionOptions()
    so.log_severity_level = 3
    try:
        sess = ort.InferenceSession(str(onnx_path), so, providers=["CPUExecutionProvider"])
        name = sess.get_inputs()[0].name
        got = np.concatenate([sess.run(None, {name: inputs[i : i + 250]})[0] for i in range(0, len(inputs), 250)])
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... types
        raise ExportError(f"ONNX Runtime cannot run {onnx_path.name}: {str(exc).splitlines()[0]}") from exc
    with torch.no_grad():
        want = model.cpu().eval()(torch.from_numpy(inputs)).numpy()
    diff = float(np.max(np.abs(got - want)))
    agree = float(np.mean(got.argmax(1) == want.argmax(1))) if task == "classify" else None
    ok = diff <= tolerance and (agree is None or agree == 1.0)
    return ParityReport(len(inputs), diff, agree, tolerance, ok)
