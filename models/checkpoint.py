"""Checkpoints that describe themselves: safetensors weights plus JSON metadata.

``<stem>.safetensors`` holds the weights (never pickled, so loading runs no
code); ``<stem>.json`` holds the metadata (model, recipe, profile, seed, epochs
done, test metric, wall time, versions). Both are written atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .errors import UsageError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _temp_beside(path: Path) -> tuple[int, str]:
    """A temporary file in ``path``'s folder, with the permissions a plain ``open`` would give."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600
    return fd, tmp


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    fd, tmp = _temp_beside(path)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_checkpoint(stem: Path, state_dict: dict[str, torch.Tensor], meta: dict[str, Any]) -> Path:
    """Write ``stem.safetensors`` and ``stem.json``; returns the weights path.

    The JSON gains ``weights_sha256``. Tensors are made contiguous CPU copies.
    """
    weights = stem.with_suffix(".safetensors")
    fd, tmp = _temp_beside(weights)
    os.close(fd)
    try:
        tensors = {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}
        save_file(tensors, tmp, metadata={"model": str(meta.get("model", "")), "format": "pt"})
        os.chmod(tmp, 0o666 & ~_umask())  # safetensors recreates the file as 0600
        os.replace(tmp, weights)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    meta = {**meta, "weights_sha256": sha256_file(weights)}
    atomic_write_bytes(stem.with_suffix(".json"), (json.dumps(meta, indent=2, sort_keys=True) + "\n").encode())
    return weights


def load_checkpoint(stem: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Returns:
        (state_dict of CPU tensors, metadata dict).

    Raises:
        UsageError: a file is missing, unreadable, or the weights do not match
            the sha256 recorded in the metadata.
    """
    weights, meta_path = stem.with_suffix(".safetensors"), stem.with_suffix(".json")
    for p in (weights, meta_path):
        if not p.is_file():
            raise UsageError(f"checkpoint file not found: {p}")
    try:
        meta = json.loads(meta_path.read_text())
        state = load_file(str(weights))
    except (json.JSONDecodeError, SafetensorError, OSError) as exc:
        raise UsageError(f"unreadable checkpoint {stem}: {exc}") from None
    expected = meta.get("weights_sha256")
    if expected and sha256_file(weights) != expected:
        raise UsageError(f"checkpoint {weights} does not match the sha256 in {meta_path.name}")
    return state, meta
