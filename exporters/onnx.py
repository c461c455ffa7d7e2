"""PyTorch -> ONNX with a dynamic batch axis, checked and self-describing.

The dynamo exporter (``torch.onnx.export(..., dynamo=True)``, which needs
onnxscript) writes opset :data:`OPSET`. The file carries metadata
(``mnistbench.*`` keys in ``metadata_props``) naming the model, paper,
preprocessing, task and the sha256 of the checkpoint it came from, so a
results row can always be traced back to its weights.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import warnings
from pathlib import Path
from typing import Any

import onnx
import torch
from torch import nn

from ..models.errors import ExportError, keep_interrupts
from ..models.files import atomic_write_bytes
from ..models.spec import ModelSpec

# Opset 18: supported by every ONNX Runtime since 1.14 and the dynamo
# exporter's own default before torch 2.9; newer opsets add nothing these
# nets use. Checked against the installed runtime when the session is made.
OPSET = 18
INPUT_NAME = "input"
META_PREFIX = "mnistbench."


def output_name(task: str) -> str:
    """``logits`` for classifiers, ``reconstruction`` for autoencoders."""
    return "logits" if task == "classify" else "reconstruction"


def export_onnx(model: nn.Module, spec: ModelSpec, path: Path, metadata: dict[str, Any], *, opset: int = OPSET) -> onnx.ModelProto:
    """Export ``model`` (eval mode, CPU) to ``path`` atomically.

    Args:
        model: the trained module; input float32 (N, 1, 28, 28), N dynamic.
        spec: its registered spec (name, paper, preprocess, task).
        path: destination ``.onnx`` file (parent folders are created).
        metadata: extra ``mnistbench.*`` entries (checkpoint sha256, profile, seed...).
        opset: default-domain opset to target.

    Returns:
        The saved ``onnx.ModelProto`` (after ``onnx.checker.check_model(full_check=True)``).

    Raises:
        ExportError: the exporter or the checker failed (the message names the model).
        KeyboardInterrupt: Ctrl-C during the export, also where the exporter reports it as its own error.
        StorageError: ``path`` cannot be written (nothing is left behind).
    """
    model = model.cpu().eval()
    example = torch.zeros(2, *spec.input_shape)
    batch = torch.export.Dim("batch", min=1, max=1 << 20)
    buf = io.StringIO()
    # The exporter logs noise (e.g. "torchvision is not installed") through logging.
    onnx_log = logging.getLogger("torch.onnx")
    level = onnx_log.level
    onnx_log.setLevel(logging.ERROR)
    try:
        with keep_interrupts(), warnings.catch_warnings(), contextlib.redirect_stdout(buf), \
                contextlib.redirect_stderr(buf):
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                model, (example,), None, dynamo=True, opset_version=opset,
                input_names=[INPUT_NAME], output_names=[output_name(spec.task)],
                dynamic_shapes=({0: batch},), external_data=False, verbose=False,
            )
        proto = program.model_proto
    except Exception as exc:  # the exporter raises many types; all mean "could not export"
        raise ExportError(f"{spec.name}: ONNX export failed: {type(exc).__name__}: {str(exc).splitlines()[0]}") from exc
    finally:
        onnx_log.setLevel(level)
    info = {
        "model": spec.name, "paper": spec.paper, "task": spec.task, "preprocess": spec.preprocess,
        "num_params": str(spec.num_params), "flops_per_image": str(spec.flops), **metadata,
    }
    del proto.metadata_props[:]
    for k, v in info.items():
        proto.metadata_props.add(key=META_PREFIX + k, value=v if isinstance(v, str) else json.dumps(v))
    proto.producer_name = "mnistbench"
    proto.doc_string = f"{spec.name}: {spec.paper}"
    try:
        onnx.checker.check_model(proto, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise ExportError(f"{spec.name}: exported ONNX fails onnx.checker: {str(exc).splitlines()[0]}") from exc
    atomic_write_bytes(path, proto.SerializeToString())
    return proto


def default_opset(proto: onnx.ModelProto) -> int:
    """The model's default-domain (``ai.onnx``) opset, 0 when it declares none."""
    return next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0)


def read_metadata(path_or_proto: Path | onnx.ModelProto) -> dict[str, str]:
    """The ``mnistbench.*`` metadata of an ONNX file, without the prefix (empty for foreign models)."""
    proto = path_or_proto if isinstance(path_or_proto, onnx.ModelProto) else onnx.load(str(path_or_proto), load_external_data=False)
    return {p.key[len(META_PREFIX):]: p.value for p in proto.metadata_props if p.key.startswith(META_PREFIX)}
