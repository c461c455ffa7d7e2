"""uint8 pixels -> model input, one definition shared by training, export parity and benchmarking.

Constants: MNIST_MEAN = 0.1307 and MNIST_STD = 0.3081 are the mean and
standard deviation of the MNIST training pixels scaled to [0, 1], as used by
the PyTorch MNIST example that seed 000 follows.
"""

from __future__ import annotations

import numpy as np

from .errors import UsageError

MNIST_MEAN = 0.1307
MNIST_STD = 0.3081
PREPROCESS_CHOICES = ("unit", "mnist-norm", "signed", "raw")


def preprocess(images: np.ndarray, kind: str) -> np.ndarray:
    """Scale uint8 images to a model's input.

    Args:
        images: uint8 array (N, 28, 28) or (N, 1, 28, 28).
        kind: ``unit`` ([0, 1]), ``mnist-norm`` ((x/255 - 0.1307) / 0.3081),
            ``signed`` ([-1, 1]) or ``raw`` ([0, 255]).

    Returns:
        float32 C-contiguous array (N, 1, 28, 28).

    Raises:
        UsageError: unknown ``kind``.
    """
    x = np.asarray(images)
    if x.ndim == 3:
        x = x[:, None]
    x = x.astype(np.float32)
    if kind == "unit":
        x /= 255.0
    elif kind == "mnist-norm":
        x = (x / 255.0 - MNIST_MEAN) / MNIST_STD
    elif kind == "signed":
        x = x / 127.5 - 1.0
    elif kind != "raw":
        raise UsageError(f"unknown preprocess {kind!r}; choose one of: {', '.join(PREPROCESS_CHOICES)}")
    return np.ascontiguousarray(x, dtype=np.float32)
