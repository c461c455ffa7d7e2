"""Checkpoints that describe themselves, written as one file, and the atomic-write helpers.

``<stem>.safetensors`` holds the weights (never pickled, so loading runs no
code) *and* the metadata (model, recipe, profile, seed, epochs done, test
metric, wall time, versions) in its header's ``__metadata__``, with a sha256
over both. Weights and metadata are therefore replaced together by one rename:
an interrupt at any instant leaves either the old or the new checkpoint whole.
``<stem>.json`` is a human-readable copy of the metadata written after the
rename (it can lag after an interrupt; mnistbench never reads it for such a
checkpoint). Checkpoints of the previous format (metadata only in
``<stem>.json``, with the weights file's sha256) are still read.

Every file mnistbench writes goes through :func:`atomic_write_bytes`: a
temporary file beside the target, named ``.<name>.<pid>.<random>.tmp``, then
one rename. A temporary file left by a killed process is removed by
:func:`sweep_temp_files` once that process is gone.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import math
import os
import re
import secrets
import shutil
import time
from pathlib import Path
from typing import Any

import psutil
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as safetensors_bytes

from .errors import StorageError, UsageError

FORMAT_KEY = "mnistbench.checkpoint"  # header key marking the one-file format, value FORMAT_VERSION
FORMAT_VERSION = "2"
META_KEY = "mnistbench.meta"  # header key: the metadata as JSON
DIGEST_KEY = "mnistbench.content_sha256"  # header key: sha256 of the metadata JSON and every tensor
# What a checkpoint's metadata must hold (type checked), and what it may hold (type checked when present).
REQUIRED = {"model": str}
TYPED = {"dataset": str, "profile": str, "task": str, "seed": int, "test_metric": (int, float),
         "epochs_done": (int, float), "wall_time_s": (int, float), "recipe": dict, "weights_sha256": str}
# errnos that mean "this location cannot take the file" rather than a bug
STORAGE_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOENT,
                  errno.ENOTDIR, errno.EIO}
_TEMP = re.compile(r"^\..+\.(?P<pid>\d+)\.[0-9a-f]{8}\.tmp$")  # what temp_path_beside names
_LEGACY_TEMP = re.compile(r"^\..+\.tmp$")  # older releases: no pid in the name
LEGACY_TEMP_AGE_S = 3600.0


def temp_path_beside(path: Path) -> Path:
    """A fresh temporary name in ``path``'s folder, ``.<name>.<pid>.<8 hex>.tmp`` (no file is made),
    so that :func:`sweep_temp_files` can remove it once this process is gone. Assign it before
    creating the file, inside the ``try`` that removes it, so that no interrupt can leave it behind."""
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def storage_error(path: Path, exc: OSError, previous: bool | None = None) -> StorageError:
    """The one-line :class:`StorageError` for an ``OSError`` met while writing ``path`` (its
    ``reason`` attribute keeps the system's words, e.g. "No space left on device")."""
    if previous is None:
        previous = path.exists()
    reason = getattr(exc, "reason", None) or exc.strerror or str(exc)
    kept = f"the previous {path.name} is unchanged" if previous else "nothing was written"
    err = StorageError(f"cannot write {path}: {reason}; {kept}")
    err.reason = reason
    return err


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder (created with the
    permissions a plain ``open`` gives), ``fsync`` and one rename: ``path`` is whole or untouched,
    and the temporary file is removed on any exception, ``KeyboardInterrupt`` included.

    Raises:
        StorageError: the folder cannot be created or written, or the disk (or the file-size limit)
            is full; a previous ``path`` is left as it was.
    """
    previous = path.exists()
    tmp = temp_path_beside(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):  # e.g. the folder was never made: nothing to remove
            tmp.unlink()
        if isinstance(exc, OSError) and not isinstance(exc, StorageError) and exc.errno in STORAGE_ERRNOS:
            raise storage_error(path, exc, previous) from None
        raise


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _process_alive(pid: int, since: float) -> bool:
    """Whether process ``pid`` runs and was started no later than ``since`` (epoch seconds)."""
    try:
        return psutil.Process(pid).create_time() <= since + 1.0
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return False


def sweep_temp_files(folder: Path) -> list[Path]:
    """Remove the temporary files that writers killed mid-write left in ``folder`` (not recursive).

    A file named by :func:`temp_path_beside` is removed when the process that made it is gone (or its
    pid now belongs to a younger process); an older-style ``.<name>.tmp`` when it is more than
    :data:`LEGACY_TEMP_AGE_S` old. Live writers' files are kept.

    Returns:
        the removed paths.
    """
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    now = time.time()
    for e in entries:
        if not e.name.endswith(".tmp") or not e.is_file(follow_symlinks=False):
            continue
        try:
            mtime = e.stat(follow_symlinks=False).st_mtime
        except OSError:
            continue
        m = _TEMP.match(e.name)
        if m:
            stale = not _process_alive(int(m["pid"]), mtime)
        else:
            stale = bool(_LEGACY_TEMP.match(e.name)) and now - mtime > LEGACY_TEMP_AGE_S
        if stale:
            try:
                os.unlink(e.path)
                removed.append(Path(e.path))
            except OSError:
                pass
    return removed


def check_writable(folder: Path, need_bytes: int, what: str) -> None:
    """Prove, before any work, that ``folder`` can take ``need_bytes`` more bytes: the folder is
    created, and a temporary file of that size is allocated there and removed (which also meets
    disk quotas and a process file-size limit).

    Raises:
        UsageError: the folder cannot be created or written, or has too little room (the message
            gives what is needed and what is free).
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(folder).free
    except OSError as exc:
        raise UsageError(f"cannot write {what} under {folder}: {exc.strerror or exc}") from None
    mb = 1 / (1 << 20)
    if free < need_bytes:
        raise UsageError(f"not enough room for {what} under {folder}: needs {need_bytes * mb:.1f} MiB, "
                         f"{free * mb:.1f} MiB free; free some space or choose another --artifacts-dir")
    tmp = temp_path_beside(folder / "space-probe")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            os.posix_fallocate(fd, 0, max(1, need_bytes))
        finally:
            os.close(fd)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
            raise UsageError(f"not enough room for {what} under {folder}: {need_bytes * mb:.1f} MiB cannot be "
                             f"allocated ({exc.strerror}); free some space or choose another --artifacts-dir") from None
        if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):  # a filesystem without fallocate: the free-space check stands
            raise UsageError(f"cannot write {what} under {folder}: {exc.strerror or exc}") from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


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
