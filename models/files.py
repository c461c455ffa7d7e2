"""Files that appear whole or not at all, and the temporary files a killed writer leaves.

Every file mnistbench writes goes through :func:`atomic_write_bytes`: a temporary file beside the
target, named ``.<name>.<pid>.<random>.tmp``, then one rename. A temporary file left by a killed
process is removed by :func:`sweep_temp_files` once that process is gone. Standard library and
psutil only, so that every layer (and a command that must start without torch) can use it.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import secrets
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import psutil

from .errors import StorageError, UsageError

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


@contextlib.contextmanager
def folders_removed_on_error(folder: Path) -> Iterator[None]:
    """Undo the folders a block makes if it raises: each missing folder on the way to ``folder``
    (found before the block) is removed again, deepest first, if it is still empty; one that now
    holds anything is kept. The exception is re-raised unchanged.

    Used where a folder is proved writable before a later check can still refuse the command, so a
    refusal leaves no empty folder behind.
    """
    missing = []
    p = Path(os.path.abspath(folder))
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    try:
        yield
    except BaseException:
        for m in missing:  # deepest first
            with contextlib.suppress(OSError):
                m.rmdir()
        raise


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
