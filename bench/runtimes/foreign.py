"""Benchmark MNIST classifiers that mnistbench did not produce (``run --onnx PATH``).

The input layout is read from the graph's first input and can be overridden:

- ``nchw``: (N, 1, 28, 28);  ``nhwc``: (N, 28, 28, 1);  ``flat``: (N, 784);  ``hw``: (N, 28, 28).

The batch axis may be dynamic (a name or unknown) or fixed; a fixed-batch model
is run only at its batch size, and the test set is scored in chunks of that
size (the last chunk padded with repeats, padded outputs dropped). The output
must be (N, 10) logits or probabilities (top-1 is the argmax of either).
Inputs are scaled by ``--preprocess`` (``unit`` [0,1], ``mnist-norm``,
``signed`` [-1,1], ``raw`` 0-255). External-data files beside the model are
loaded by ONNX Runtime from the model's folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from ...exporters.onnx import default_opset
from ...models.errors import UsageError
from ...models.preprocess import preprocess

LAYOUTS = ("auto", "nchw", "nhwc", "flat", "hw")
_SHAPES = {"nchw": (1, 28, 28), "nhwc": (28, 28, 1), "flat": (784,), "hw": (28, 28)}


@dataclass(frozen=True)
class ForeignModel:
    """What the graph says about a foreign ONNX classifier.

    Attributes:
        path: the file.
        input_name: the first graph input that is not an initializer.
        layout: ``nchw``, ``nhwc``, ``flat`` or ``hw``.
        fixed_batch: the batch size the graph fixes, or None when dynamic.
        opset: default-domain opset.
    """

    path: Path
    input_name: str
    layout: str
    fixed_batch: int | None
    opset: int


def _dims(vi: onnx.ValueInfoProto) -> list[int | None]:
    """Each dimension's size, None where it is symbolic or unset; a size of 0 or below (-1 is how some
    converters, e.g. tf2onnx, write a dynamic axis) is taken as dynamic too, as ONNX Runtime takes it."""
    return [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
            for d in vi.type.tensor_type.shape.dim]


def inspect(path: Path, layout: str = "auto") -> ForeignModel:
    """Read the input layout, batch axis and opset of ``path``.

    Raises:
        UsageError: missing or malformed file, or missing external data files; an input that is not float32 or whose
            shape fits no MNIST layout (the message gives the shape); an unknown ``layout``;
            an output that is not (N, 10).
    """
    if layout not in LAYOUTS:
        raise UsageError(f"unknown layout {layout!r}; choose one of: {', '.join(LAYOUTS)}")
    try:
        is_dir, is_file = path.is_dir(), path.is_file()
    except OSError as exc:  # a name too long for the filesystem (pathlib passes ENAMETOOLONG on)
        raise UsageError(f"--onnx {str(path)[:60]}...: {exc.strerror}") from None
    if is_dir:
        raise UsageError(f"{path} is a folder; --onnx takes an .onnx file")
    if not is_file:
        raise UsageError(f"ONNX file not found: {path}")
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError, ValueError, ... for bad bytes
        raise UsageError(f"{path} is not a readable ONNX model: {type(exc).__name__}") from None
    graph = proto.graph
    if not graph.node:
        raise UsageError(f"{path} is not a readable ONNX model: it has no graph nodes")
    missing = sorted({e.value for t in graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL
                      for e in t.external_data if e.key == "location" and not (path.parent / e.value).is_file()})
    if missing:
        raise UsageError(f"{path.name}: its weights are in {', '.join(missing)}, not found beside it "
                         "(copy the external data files with the .onnx file)")
    inits = {i.name for i in graph.initializer}
    inputs = [i for i in graph.input if i.name not in inits]
    if len(inputs) != 1:
        raise UsageError(f"{path.name}: expected one image input, found {len(inputs)}")
    vi = inputs[0]
    if vi.type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
        raise UsageError(f"{path.name}: input {vi.name!r} is {onnx.TensorProto.DataType.Name(vi.type.tensor_type.elem_type)}, "
                         "mnistbench feeds float32")
    dims = _dims(vi)
    rest = tuple(dims[1:])
    if layout == "auto":
        found = [k for k, shape in _SHAPES.items() if len(shape) == len(rest) and all(
            d is None or d == s for d, s in zip(rest, shape))]
        if not found:
            raise UsageError(f"{path.name}: input shape {['?' if d is None else d for d in dims]} (rank {len(dims)}) "
                             "is no MNIST layout (N,1,28,28), (N,28,28,1), (N,784) or (N,28,28)")
        layout = found[0]
    elif len(rest) != len(_SHAPES[layout]):
        raise UsageError(f"{path.name}: --layout {layout} needs an input of rank {len(_SHAPES[layout]) + 1}, "
                         f"the graph's has rank {len(dims)}")
    outs = graph.output
    if not outs or len(_dims(outs[0])) != 2 or _dims(outs[0])[1] not in (10, None):
        raise UsageError(f"{path.name}: the first output must be (N, 10) logits or probabilities")
    opset = default_opset(proto)
    return ForeignModel(path, vi.name, layout, dims[0] if dims and dims[0] else None, opset)


def foreign_inputs(images: np.ndarray, model: ForeignModel, kind: str) -> np.ndarray:
    """uint8 (N, 28, 28) -> float32 in the model's layout, scaled by ``kind``."""
    x = preprocess(images, kind)  # (N, 1, 28, 28)
    n = len(x)
    if model.layout == "nhwc":
        x = x.transpose(0, 2, 3, 1)
    elif model.layout == "flat":
        x = x.reshape(n, 784)
    elif model.layout == "hw":
        x = x.reshape(n, 28, 28)
    return np.ascontiguousarray(x)
