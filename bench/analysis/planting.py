"""Slower copies of a model for the calibration study: ``Mul``-by-ones nodes whose outputs are
bit-for-bit the input's, so that only time changes (:func:`planted`), on the model's input or, for
the fine steps that small levels need, on its output (:func:`site_of`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx

from ...models.errors import UsageError
from ...models.files import atomic_write_bytes

SITES = ("input", "output")
SMALL_LEVEL = 0.01  # levels up to this get their nodes on the output (fine steps; see site_of)


def planted(src: Path, dst: Path, k: int, batch: int, site: str = "input") -> Path:
    """``src`` with a static batch axis of ``batch`` and ``k`` ``Mul``-by-ones nodes on its input
    (``site="input"``: each node costs a pass over the (batch, 1, 28, 28) images) or on its output
    (``site="output"``: a pass over the (batch, 10) logits, mostly the runtime's per-node cost; the
    fine steps that small levels need). The outputs are bit-for-bit those of ``src``.

    Raises:
        UsageError: the model has not exactly one float input and one output, or an unknown site.
    """
    if site not in SITES:
        raise UsageError(f"unknown node site {site!r}; choose from {', '.join(SITES)}")
    m = onnx.load(str(src))
    g = m.graph
    inits = {i.name for i in g.initializer}
    inputs = [i for i in g.input if i.name not in inits]
    if len(inputs) != 1 or inputs[0].type.tensor_type.elem_type != onnx.TensorProto.FLOAT or len(g.output) != 1:
        raise UsageError(f"{src}: calibration needs one float32 input and one output")
    inp = inputs[0]
    for vi in (inp, *g.output):
        vi.type.tensor_type.shape.dim[0].ClearField("dim_param")
        vi.type.tensor_type.shape.dim[0].dim_value = batch
    if k and site == "input":
        _chain_on_input(g, inp, k, batch)
    elif k:
        _chain_on_output(g, k, batch)
    onnx.checker.check_model(m)
    dst.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(dst, m.SerializeToString())
    return dst


def _ones(g, vi, batch: int, name: str) -> str:
    """A float32 ones initializer of ``vi``'s shape at ``batch`` (a full tensor, not a scalar: ONNX
    Runtime's no-op elimination removes ``Mul`` by a scalar one)."""
    shape = [batch] + [d.dim_value for d in vi.type.tensor_type.shape.dim[1:]]
    if any(d <= 0 for d in shape):
        raise UsageError(f"calibration needs static dimensions besides the batch axis, not {shape}")
    g.initializer.append(onnx.numpy_helper.from_array(np.ones(shape, np.float32), name))
    return name


def _chain(k: int, first: str, ones: str, last: str | None = None) -> list:
    nodes, prev = [], first
    for i in range(k):
        out = last if last is not None and i == k - 1 else f"calibration_mul_{i}"
        nodes.append(onnx.helper.make_node("Mul", [prev, ones], [out], name=f"calibration_mul_{i}"))
        prev = out
    return nodes


def _chain_on_input(g, inp, k: int, batch: int) -> None:
    nodes = _chain(k, inp.name, _ones(g, inp, batch, "calibration_ones"))
    for node in g.node:
        for j, name in enumerate(node.input):
            if name == inp.name:
                node.input[j] = nodes[-1].output[0]
    for n in reversed(nodes):
        g.node.insert(0, n)


def _chain_on_output(g, k: int, batch: int) -> None:
    out = g.output[0]
    pre = "calibration_pre_output"
    for node in g.node:
        for j, name in enumerate(node.output):
            if name == out.name:
                node.output[j] = pre
    g.node.extend(_chain(k, pre, _ones(g, out, batch, "calibration_ones"), last=out.name))


def site_of(lv: float) -> str:
    """Where a level's nodes go: on the output for levels of :data:`SMALL_LEVEL` or less, on the
    input otherwise. On lenet5 at batch 32 one input node already costs about 1.7% (session 9's
    studies, results/calibration/v2/README.md), so a 1% copy needs the finer output nodes (about
    0.06% each there); larger levels keep the input nodes every earlier study used."""
    return "output" if 0 < abs(lv) <= SMALL_LEVEL else "input"
