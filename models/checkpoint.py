"""Checkpoints that describe themselves, written as one file.

``<stem>.safetensors`` holds the weights (never pickled, so loading runs no
code) *and* the metadata (model, recipe, profile, seed, epochs done, test
metric, wall time, versions) in its header's ``__metadata__``, with a sha256
over both. Weights and metadata are therefore replaced together by one rename:
an interrupt at any instant leaves either the old or the new checkpoint whole.
``<stem>.json`` is a human-readable copy of the metadata written after the
rename (it can lag after an interrupt; mnistbench never reads it for such a
checkpoint). Checkpoints of the previous format (metadata only in
``<stem>.json``, with the weights file's sha256) are still read.

Every file is written through :func:`files.atomic_write_bytes` (one rename).
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as safetensors_bytes

from .errors import UsageError
from .files import atomic_write_bytes, sha256_file

FORMAT_KEY = "mnistbench.checkpoint"  # header key marking the one-file format, value FORMAT_VERSION
FORMAT_VERSION = "2"
META_KEY = "mnistbench.meta"  # header key: the metadata as JSON
DIGEST_KEY = "mnistbench.content_sha256"  # header key: sha256 of the metadata JSON and every tensor
# What a checkpoint's metadata must hold (type checked), and what it may hold (type checked when present).
REQUIRED = {"model": str}
TYPED = {"dataset": str, "profile": str, "task": str, "seed": int, "test_metric": (int, float),
         "epochs_done": (int, float), "wall_time_s": (int, float), "recipe": dict, "weights_sha256": str}


def state_bytes(state_dict: dict[str, torch.Tensor]) -> int:
    """Bytes the tensors of ``state_dict`` take (what a checkpoint of them stores, before its header)."""
    return sum(t.numel() * t.element_size() for t in state_dict.values())


def _content_digest(meta_json: str, tensors: dict[str, torch.Tensor]) -> str:
    """sha256 over the metadata JSON and every tensor's name, dtype, shape and bytes (names sorted)."""
    h = hashlib.sha256(meta_json.encode())
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"\0{name}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def save_checkpoint(stem: Path, state_dict: dict[str, torch.Tensor], meta: dict[str, Any]) -> Path:
    """Write ``stem.safetensors`` (weights and metadata, one file, one rename), then the copy ``stem.json``.

    Tensors are stored as contiguous CPU copies. The JSON copy gains ``weights_sha256``, the
    sha256 of the ``.safetensors`` file. Returns the weights path.

    Raises:
        StorageError: the file cannot be written (disk full, file-size limit, unwritable folder);
            the previous checkpoint, if any, is left whole.
    """
    weights = stem.with_suffix(".safetensors")
    tensors = {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}
    meta_json = json.dumps(meta, sort_keys=True)
    header = {"format": "pt", "model": str(meta.get("model", "")), FORMAT_KEY: FORMAT_VERSION, META_KEY: meta_json,
              DIGEST_KEY: _content_digest(meta_json, tensors)}
    blob = safetensors_bytes(tensors, metadata=header)
    atomic_write_bytes(weights, blob)
    copy = {**meta, "weights_sha256": hashlib.sha256(blob).hexdigest()}
    atomic_write_bytes(stem.with_suffix(".json"), (json.dumps(copy, indent=2, sort_keys=True) + "\n").encode())
    return weights


def _validate_meta(meta: Any) -> str | None:
    """Why ``meta`` is not a checkpoint's metadata, or None when it is."""
    if not isinstance(meta, dict):
        return f"its metadata is a JSON {type(meta).__name__}, not an object"
    for key in REQUIRED:
        if key not in meta:
            return f"its metadata has no {key!r}"
    for key, kind in {**REQUIRED, **TYPED}.items():
        v = meta.get(key)
        if v is None and key not in REQUIRED:
            continue
        if not isinstance(v, kind) or isinstance(v, bool):
            return f"its metadata's {key!r} is {type(v).__name__} {v!r:.40}"
        if isinstance(v, float) and not math.isfinite(v):
            return f"its metadata's {key!r} is {v}"
    return None


def load_checkpoint(stem: Path, repair: str = "") -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read and verify a checkpoint written by :func:`save_checkpoint` (or by the previous format).

    Args:
        stem: the path without suffix (``<folder>/<model>``).
        repair: how to fix a damaged checkpoint, appended to the error (default: retrain the model).

    Returns:
        (state_dict of CPU tensors, metadata dict); the metadata's ``weights_sha256`` is the sha256
        of the ``.safetensors`` file (what exports record as ``checkpoint_sha256``).

    Raises:
        UsageError: a file is missing; the file is truncated or unreadable; the metadata is not an
            object with the expected keys and types; or weights or metadata do not match the sha256
            recorded with them. One line, ending with how to repair.
    """
    weights, meta_path = stem.with_suffix(".safetensors"), stem.with_suffix(".json")
    fix = f"; {repair or f'retrain it: mnistbench train {stem.name}'}"
    if not weights.is_file():
        raise UsageError(f"checkpoint file not found: {weights}")

    def damaged(why: str) -> UsageError:
        return UsageError(f"checkpoint {weights} is damaged: {why}{fix}")

    try:
        digest = sha256_file(weights)
        with safe_open(str(weights), framework="pt") as fh:
            header = fh.metadata() or {}
            state = {k: fh.get_tensor(k) for k in fh.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise damaged(f"unreadable ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    if header.get(FORMAT_KEY) == FORMAT_VERSION:
        try:
            meta = json.loads(header.get(META_KEY, ""))
        except json.JSONDecodeError as exc:
            raise damaged(f"its metadata is not JSON ({exc.msg})") from None
        if _content_digest(header.get(META_KEY, ""), state) != header.get(DIGEST_KEY):
            raise damaged("its content does not match the sha256 recorded with it")
    elif FORMAT_KEY in header:
        raise UsageError(f"checkpoint {weights} has format {header[FORMAT_KEY]!r}, which this mnistbench "
                         f"(format {FORMAT_VERSION}) cannot read: a newer mnistbench wrote it, or it is damaged{fix}")
    else:  # previous format: metadata in the JSON file, with the weights file's sha256
        if not meta_path.is_file():
            raise UsageError(f"checkpoint file not found: {meta_path} (a checkpoint of the previous format keeps "
                             f"its metadata there){fix}")
        try:
            meta = json.loads(meta_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError, OSError) as exc:
            raise damaged(f"{meta_path.name} is not readable JSON ({type(exc).__name__})") from None
        expected = meta.get("weights_sha256") if isinstance(meta, dict) else None
        if expected and digest != expected:
            raise damaged(f"its weights file does not match the sha256 in {meta_path.name}")
    why = _validate_meta(meta)
    if why:
        raise damaged(why)
    return state, {**meta, "weights_sha256": digest}
