"""Shared fixtures: the real MNIST (skipped with a reason when absent) and small datasets."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from mnistbench.models.data import Dataset

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(autouse=True, scope="session")
def _private_user_cache(tmp_path_factory):
    """The suite never reads or writes the user's cache (the host noise profile): a fresh one per
    session, inherited by the CLI subprocesses the tests start."""
    old = os.environ.get("MNISTBENCH_CACHE")
    os.environ["MNISTBENCH_CACHE"] = str(tmp_path_factory.mktemp("user-cache"))
    yield
    if old is None:
        os.environ.pop("MNISTBENCH_CACHE", None)
    else:
        os.environ["MNISTBENCH_CACHE"] = old


def real_data_root() -> Path:
    """$MNISTBENCH_DATA, else ../shared/data beside the checkout."""
    return Path(os.environ.get("MNISTBENCH_DATA") or SHARED_DATA)


def _has_mnist(root: Path) -> bool:
    return (root / "mnist" / "t10k-labels-idx1-ubyte.gz").exists() or (root / "mnist" / "t10k-labels-idx1-ubyte").exists()


@pytest.fixture(scope="session", name="real_data_root")
def real_data_root_fixture() -> Path:
    """Where the real datasets are (may not exist; use the ``mnist`` fixture to skip)."""
    return real_data_root()


@pytest.fixture(scope="session")
def mnist() -> Dataset:
    """The real MNIST, verified; skips when the files are not there."""
    root = real_data_root()
    if not _has_mnist(root):
        pytest.skip(f"real MNIST not found under {root} (set MNISTBENCH_DATA to a folder holding mnist/)")
    from mnistbench.models.data import load_dataset

    return load_dataset("mnist", root, download=False, progress=False)


@pytest.fixture(scope="session")
def mnist_small(mnist: Dataset) -> Dataset:
    """Real MNIST cut to 2,000 train and 1,000 test images, for fast end-to-end tests."""
    return Dataset("mnist", mnist.train_images[:2000], mnist.train_labels[:2000],
                   mnist.test_images[:1000], mnist.test_labels[:1000], mnist.source)


@pytest.fixture()
def tiny_dataset() -> Dataset:
    """Synthetic, learnable data (class k = a bright kxk corner square): 512 train, 128 test."""
    rng = np.random.default_rng(0)

    def make(n):
        y = rng.integers(0, 10, n).astype(np.uint8)
        x = rng.integers(0, 40, (n, 28, 28)).astype(np.uint8)
        for i, k in enumerate(y):
            x[i, 2 : 4 + 2 * k, 2 : 4 + 2 * k] = 250
        return x, y

    xtr, ytr = make(512)
    xte, yte = make(128)
    return Dataset("mnist", xtr, ytr, xte, yte, Path("synthetic"))


def _matmul_chain(path: Path, k: int) -> Path:
    """An MNIST-shaped classifier, float32 (N, 1, 28, 28) -> (N, 10): reshape, k MatMuls with a fixed
    784 x 784 weight, the first 10 columns. Its cost grows with k; its outputs are deterministic."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = (rng.standard_normal((784, 784)) / 28).astype(np.float32)
    nodes = [helper.make_node("Reshape", ["input", "shape"], ["h0"])]
    for i in range(k):
        nodes.append(helper.make_node("MatMul", [f"h{i}", "w"], [f"h{i + 1}"]))
    nodes.append(helper.make_node("Slice", [f"h{k}", "start", "end", "axis"], ["logits"]))
    inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(np.array([-1, 784], np.int64), "shape"),
             numpy_helper.from_array(np.array([0], np.int64), "start"),
             numpy_helper.from_array(np.array([10], np.int64), "end"),
             numpy_helper.from_array(np.array([1], np.int64), "axis")]
    g = helper.make_graph(nodes, f"chain{k}", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, 28, 28])],
                          [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])
    m.ir_version = 10  # onnx writes IR 14 by default; ONNX Runtime 1.31 reads up to 13
    onnx.save(m, str(path))
    return path


@pytest.fixture(scope="session")
def matmul_chain():
    """Builder of small MNIST-shaped ONNX classifiers: ``matmul_chain(path, k)``."""
    return _matmul_chain
