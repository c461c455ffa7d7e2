"""The two control networks every run measures beside the models: the null model (an identity graph:
the harness's own overhead floor) and the drift reference (a fixed small network whose movement
between two runs says how much the machine's speed changed). Both are written once into the
artifacts root, atomically, and rebuilt when damaged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx

from ...models.errors import UsageError
from ...models.files import atomic_write_bytes

NULL_MODEL = "null-identity"


def _model_folder(folder: Path) -> Path:
    """``folder`` (the artifacts root), created if absent.

    Raises:
        UsageError: it cannot be (a file in the way, no permission), in one line.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        why = "it is a file" if folder.is_file() else exc.strerror or exc
        raise UsageError(f"cannot use artifacts folder {folder}: {why}; "
                         "choose another --artifacts-dir") from None
    return folder


def null_model(folder: Path) -> Path:
    """An ONNX Identity with the paper models' input and output shape, float32 (N, 1, 28, 28):
    the overhead floor (harness, binding and call cost) that every row carries."""
    path = folder / f"{NULL_MODEL}.onnx"
    if not path.is_file():
        _model_folder(folder)
        h = onnx.helper
        io_ = [h.make_tensor_value_info(n, onnx.TensorProto.FLOAT, ["batch", 1, 28, 28]) for n in ("input", "output")]
        graph = h.make_graph([h.make_node("Identity", ["input"], ["output"])], NULL_MODEL, [io_[0]], [io_[1]])
        proto = h.make_model(graph, opset_imports=[h.make_opsetid("", 18)], producer_name="mnistbench")
        proto.ir_version = 10
        onnx.checker.check_model(proto)
        atomic_write_bytes(path, proto.SerializeToString())
    return path


REFERENCE_MODEL = "mnistbench-reference"


def reference_model(folder: Path) -> Path:
    """A fixed small CNN (seeded weights, never trained) measured interleaved in every run, so that
    `compare` can tell a change of a model from a change of the machine between two runs (drift).

    Graph, float32 (N, 1, 28, 28) -> (N, 10): Conv 1->8 (3x3, pad 1), Relu, MaxPool 2x2, Conv
    8->16 (3x3, pad 1), Relu, MaxPool 2x2, Flatten, Gemm 784->10: 0.58 MFLOP per image (2 x
    multiply-adds: 112,896 + 451,584 + 15,680), the size of lenet5 (0.85 MFLOP), so it feels the same
    clock, cache and scheduler changes as the paper models; it is rebuilt byte-identical from its
    seed, so its sha256 is the same everywhere.
    """
    path = folder / f"{REFERENCE_MODEL}.onnx"
    if path.is_file():
        return path
    _model_folder(folder)
    h, nh = onnx.helper, onnx.numpy_helper
    rng = np.random.default_rng(20261127)
    w = {"w1": rng.standard_normal((8, 1, 3, 3)) / 3, "b1": np.zeros(8), "w2": rng.standard_normal((16, 8, 3, 3)) / 8.5,
         "b2": np.zeros(16), "w3": rng.standard_normal((784, 10)) / 28, "b3": np.zeros(10)}
    inits = [nh.from_array(v.astype(np.float32), k) for k, v in w.items()]
    nodes = [h.make_node("Conv", ["input", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
             h.make_node("Relu", ["c1"], ["r1"]),
             h.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
             h.make_node("Conv", ["p1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1]),
             h.make_node("Relu", ["c2"], ["r2"]),
             h.make_node("MaxPool", ["r2"], ["p2"], kernel_shape=[2, 2], strides=[2, 2]),
             h.make_node("Flatten", ["p2"], ["f"], axis=1),
             h.make_node("Gemm", ["f", "w3", "b3"], ["logits"])]
    graph = h.make_graph(nodes, REFERENCE_MODEL,
                         [h.make_tensor_value_info("input", onnx.TensorProto.FLOAT, ["batch", 1, 28, 28])],
                         [h.make_tensor_value_info("logits", onnx.TensorProto.FLOAT, ["batch", 10])], inits)
    proto = h.make_model(graph, opset_imports=[h.make_opsetid("", 18)], producer_name="mnistbench")
    proto.ir_version = 10
    onnx.checker.check_model(proto, full_check=True)
    atomic_write_bytes(path, proto.SerializeToString())
    return path
