"""Variants derived from an exported fp32 ONNX file.

int8: static quantization with ``onnxruntime.quantization``. The fp32 model is
first pre-processed (``quant_pre_process``: shape inference and graph
optimisation, as ONNX Runtime's quantization guide requires), then quantized
in the QDQ format with per-channel weights (signed int8 weights and
activations, ONNX Runtime's defaults), calibrated with MinMax on
:data:`CALIBRATION_IMAGES` *training* images, never test images.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile
from pathlib import Path

import numpy as np
import onnx

from ..models.errors import ExportError, keep_interrupts
from ..models.files import atomic_write_bytes

CALIBRATION_IMAGES = 1000  # the first 1,000 training images; more changed no accuracy we measured
CALIBRATION_BATCH = 100


class _Reader:
    """CalibrationDataReader over preprocessed float32 images (N, 1, 28, 28)."""

    def __init__(self, name: str, images: np.ndarray) -> None:
        self._batches = iter([{name: images[i : i + CALIBRATION_BATCH]} for i in range(0, len(images), CALIBRATION_BATCH)])

    def get_next(self):
        return next(self._batches, None)

    def rewind(self) -> None:  # required by some calibrators; one pass suffices for MinMax
        pass


def quantize_int8(fp32_path: Path, out_path: Path, calibration: np.ndarray) -> onnx.ModelProto:
    """Write the int8 QDQ variant of ``fp32_path`` to ``out_path`` atomically.

    Args:
        fp32_path: the exported fp32 model (dynamic batch).
        out_path: destination.
        calibration: preprocessed float32 training images (N, 1, 28, 28).

    Returns:
        the quantized model, its metadata extended with ``mnistbench.variant`` =
        ``int8`` and ``mnistbench.calibration_images``.

    Raises:
        ExportError: pre-processing or quantization failed.
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    name = onnx.load(str(fp32_path), load_external_data=False).graph.input[0].name
    quiet = logging.getLogger()
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with keep_interrupts(), tempfile.TemporaryDirectory(prefix="mnistbench-int8-") as tmp, \
                contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            pre, q = os.path.join(tmp, "pre.onnx"), os.path.join(tmp, "int8.onnx")
            quant_pre_process(str(fp32_path), pre)
            quantize_static(pre, q, _Reader(name, calibration), quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                            calibrate_method=CalibrationMethod.MinMax)
            proto = onnx.load(q)
    except Exception as exc:  # the quantizer raises many types
        raise ExportError(f"{fp32_path.stem}: int8 quantization failed: {type(exc).__name__}: {str(exc).splitlines()[0]}") from exc
    finally:
        quiet.setLevel(level)
    keep = {p.key: p.value for p in onnx.load(str(fp32_path), load_external_data=False).metadata_props}
    keep.update({"mnistbench.variant": "int8", "mnistbench.calibration_images": str(len(calibration))})
    del proto.metadata_props[:]
    for k, v in keep.items():
        proto.metadata_props.add(key=k, value=v)
    atomic_write_bytes(out_path, proto.SerializeToString())
    return proto


def convert_fp16(fp32_path: Path, out_path: Path, keep_io_types: bool = True) -> onnx.ModelProto:
    """Write the fp16 variant of ``fp32_path`` to ``out_path`` atomically.

    Uses ONNX Runtime's own converter (``onnxruntime.transformers.float16.convert_float_to_float16``):
    weights and activations become float16; with ``keep_io_types`` (the default) the graph input
    and output stay float32 (Cast nodes at the edges), so callers feed the same arrays as fp32;
    without it they are float16 too (the ``fp16-io`` variant: callers feed and read float16).
    The result passes ``onnx.checker``. Its metadata gains ``mnistbench.variant`` = ``fp16`` (or
    ``fp16-io``) and ``mnistbench.fp16_io`` = the io dtype.

    Raises:
        ExportError: conversion or the checker failed.
    """
    from onnxruntime.transformers.float16 import convert_float_to_float16

    src = onnx.load(str(fp32_path))
    try:
        with keep_interrupts(), contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            proto = convert_float_to_float16(src, keep_io_types=keep_io_types)
        _topological_sort(proto.graph)  # the converter appends its input Casts after their consumers
        onnx.checker.check_model(proto)
    except Exception as exc:  # the converter and checker raise many types
        raise ExportError(f"{fp32_path.stem}: fp16 conversion failed: {type(exc).__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else ''}") from exc
    keep = {p.key: p.value for p in src.metadata_props}
    keep.update({"mnistbench.variant": "fp16" if keep_io_types else "fp16-io",
                 "mnistbench.fp16_io": "float32" if keep_io_types else "float16"})
    del proto.metadata_props[:]
    for k, v in keep.items():
        proto.metadata_props.add(key=k, value=v)
    atomic_write_bytes(out_path, proto.SerializeToString())
    return proto


def _topological_sort(graph: onnx.GraphProto) -> None:
    """Reorder ``graph.node`` in place so every node follows the producers of its inputs (Kahn's
    algorithm, stable: ties keep the original order), as the ONNX spec requires.

    Raises:
        ValueError: the graph has a cycle.
    """
    available = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        ready = [n for n in pending if all(i in available for i in n.input)]
        if not ready:
            raise ValueError("graph has a cycle or an input that nothing produces")
        for n in ready:
            available.update(n.output)
        ordered += ready
        pending = [n for n in pending if not any(n is r for r in ready)]
    copies = [onnx.NodeProto.FromString(n.SerializeToString()) for n in ordered]
    del graph.node[:]
    graph.node.extend(copies)
