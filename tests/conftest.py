"""Shared fixtures: the real MNIST (skipped with a reason when absent) and small datasets."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from mnistbench.models.data import Dataset

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


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
