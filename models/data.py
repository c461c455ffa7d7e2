"""MNIST and Fashion-MNIST: find, download, read and verify the four IDX files.

Each file may be gzip-compressed (``name.gz``) or raw (``name``); gzip is told
by its magic bytes, not the extension. Every problem with the data (missing,
truncated, corrupt, wrong checksum, offline) raises :class:`DataError`.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.client
import ipaddress
import math
import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from .errors import DataError, UsageError

DATASETS = ("mnist", "fashion-mnist")
FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
SPLITS = {"train": 60_000, "t10k": 10_000}  # images per split
OFFLINE_HINT = "--data-dir PATH or MNISTBENCH_DATA=PATH (a folder with the four IDX files, gzip or raw)"

# MD5 of the *uncompressed* IDX payloads, as published by the datasets' authors
# (LeCun et al.; Zalando Research) and listed in shared/data/README.md.
MD5 = {
    "mnist": dict(zip(FILES, ("6bbc9ace898e44ae57da46a324031adb", "a25bea736e30d166cdddb491f175f624",
                              "2646ac647ad5339dbf082846283269ea", "27ae3e4e09519cfbb04c329615203637"))),
    "fashion-mnist": dict(zip(FILES, ("f4a8712d7a061bf5bd6d2ca38dc4d50a", "9018921c3c673c538a1fc5bad174d6f9",
                                      "8181f5470baa50b63fa0f6fddb340f0a", "15d484375f8d13e6eb1aabb0c3f46965"))),
}
# MD5 of the ``.gz`` files the public mirrors serve (same sources), checked by download().
GZIP_MD5 = {
    "mnist": dict(zip(FILES, ("f68b3c2dcbeaaa9fbdd348bbdeb94873", "d53e105ee54ea40749a09fcbcd1e9432",
                              "9fb629c4189551a2d022fa330f9573f3", "ec29112dd5afa0611ce80d1b7f02629c"))),
    "fashion-mnist": dict(zip(FILES, ("8d4fb7e6c68d591d4c3dfef9ec88bf0d", "25c81989df183df01b3e8a0aad5dffbe",
                                      "bef4ecab320f06d8554ea6380940ec79", "bb300cfdad3c16e7a12a480ee83cd310"))),
}
# HTTPS base URLs tried in order; ``<base><file>.gz`` is fetched.
MIRRORS = {
    "mnist": ("https://ossci-datasets.s3.amazonaws.com/mnist/", "https://storage.googleapis.com/cvdf-datasets/mnist/"),
    "fashion-mnist": ("https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
                      "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/"),
}


@dataclass(frozen=True, eq=False)
class Dataset:
    """One dataset's train and test splits in memory. The arrays are read-only
    (the in-process cache shares them): copy before modifying.

    Attributes:
        name: ``"mnist"`` or ``"fashion-mnist"``.
        train_images: uint8 ``(60000, 28, 28)``, pixel intensities 0..255.
        train_labels: uint8 ``(60000,)``, class indices 0..9.
        test_images: uint8 ``(10000, 28, 28)``.
        test_labels: uint8 ``(10000,)``.
        source: the folder the files were read from.
    """

    name: str
    train_images: np.ndarray = field(repr=False)
    train_labels: np.ndarray = field(repr=False)
    test_images: np.ndarray = field(repr=False)
    test_labels: np.ndarray = field(repr=False)
    source: Path


def check_dataset_name(dataset: str) -> None:
    """Raises UsageError for a dataset name that is not one of :data:`DATASETS`."""
    if dataset not in DATASETS:
        raise UsageError(f"unknown dataset {dataset!r}; valid datasets: {', '.join(DATASETS)}")


def _read_payload(path: Path) -> bytes:  # gunzipped when it starts with the gzip magic 1f 8b
    try:
        raw = Path(path).read_bytes()
        return gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    except (OSError, EOFError, zlib.error) as e:  # BadGzipFile is an OSError
        raise DataError(f"cannot read {path}: {type(e).__name__}: {e}") from None


def _parse_idx(buf: bytes, path: Path) -> np.ndarray:
    if len(buf) < 4 or buf[:2] != b"\x00\x00":
        raise DataError(f"{path} is not an IDX file (bad magic {buf[:4].hex() or 'empty'})")
    if buf[2] != 0x08:
        raise DataError(f"{path}: IDX dtype byte 0x{buf[2]:02x} is not supported (only 0x08, uint8)")
    ndim, header = buf[3], 4 + 4 * buf[3]
    if ndim == 0 or len(buf) < header:
        raise DataError(f"{path}: IDX header declares {ndim} dimensions but the file has {len(buf)} bytes")
    dims = tuple(int.from_bytes(buf[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    if len(buf) - header != (expected := math.prod(dims)):
        raise DataError(f"{path}: IDX shape {dims} needs {expected} payload bytes, file has {len(buf) - header}"
                        " (truncated or trailing data)")
    return np.frombuffer(buf, dtype=np.uint8, offset=header).reshape(dims)


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (gzip or raw) into a read-only uint8 array of the header's shape.

    Only unsigned-byte IDX (``00 00 08 ndim``, then ndim big-endian uint32 dims)
    is accepted, and the payload must be exactly ``prod(dims)`` bytes.

    Raises:
        DataError (naming the file): unreadable, corrupt or truncated gzip, bad
            magic, another dtype byte, or a payload too short or too long.
    """
    return _parse_idx(_read_payload(path), path)


def _cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "mnistbench" / "data"


def _files_in(folder: Path) -> dict[str, Path] | None:
    """The four files in ``folder`` (``name.gz`` preferred over ``name``), or None if one is missing."""
    found = {n: next((p for p in (folder / f"{n}.gz", folder / n) if p.is_file()), None) for n in FILES}
    return None if None in found.values() else found


def find_data_dir(dataset: str, data_dir: Path | None = None) -> Path | None:
    """The first folder holding all four IDX files of ``dataset``, or None.

    Roots are tried in order: ``data_dir``, ``$MNISTBENCH_DATA``, then the user
    cache ``${XDG_CACHE_HOME:-~/.cache}/mnistbench/data``. In each root ``R``,
    ``R/<dataset>/`` is tried first, then ``R`` itself (unless ``R`` is named
    after the *other* dataset, so ``data/mnist`` is never taken for Fashion-MNIST).

    Raises:
        UsageError: unknown dataset name.
        DataError: ``data_dir`` was given but holds no usable files (no fallback).
    """
    check_dataset_name(dataset)
    roots = [Path(r).expanduser() for r in (data_dir, os.environ.get("MNISTBENCH_DATA") or None) if r is not None]
    for i, root in enumerate([*roots, _cache_root()]):
        candidates = [root / dataset] + ([root] if root.name == dataset or root.name not in DATASETS else [])
        for folder in candidates:
            if _files_in(folder) is not None:
                return folder
        if i == 0 and data_dir is not None:
            raise DataError(f"no {dataset} IDX files in {root} or {root / dataset} (need "
                            f"{', '.join(FILES)}, each raw or .gz)")
    return None


@functools.lru_cache(maxsize=4)
def _load(dataset: str, folder: Path, verify: bool) -> Dataset:
    # Structure first (magic, shapes, counts: the most telling message), the digest last.
    arrays, digests = {}, {}
    for name, path in _files_in(folder).items():
        buf = _read_payload(path)
        arrays[name] = _parse_idx(buf, path)
        if verify:
            digests[name] = (path, hashlib.md5(buf, usedforsecurity=False).hexdigest())
    for split, count in SPLITS.items():
        images, labels = arrays[f"{split}-images-idx3-ubyte"], arrays[f"{split}-labels-idx1-ubyte"]
        where = f"{folder}: {split} split"
        if images.ndim != 3 or images.shape[1:] != (28, 28) or labels.ndim != 1:
            raise DataError(f"{where}: images {images.shape} / labels {labels.shape}, expected (N, 28, 28) / (N,)")
        if len(images) != len(labels):
            raise DataError(f"{where}: {len(images)} images but {len(labels)} labels")
        if len(images) != count:
            raise DataError(f"{where}: {len(images)} images, expected {count}")
        if labels.size and labels.max() > 9:
            raise DataError(f"{where}: label {labels.max()} outside 0..9")
    for name, (path, got) in digests.items():
        if got != (want := MD5[dataset][name]):
            raise DataError(f"{path}: MD5 of the uncompressed data is {got}, expected {want}")
    return Dataset(dataset, *(arrays[n] for n in FILES), source=folder)


def _check_url(url: str) -> None:
    parts = urllib.parse.urlsplit(url)
    try:
        loopback = parts.hostname == "localhost" or ipaddress.ip_address(parts.hostname or "").is_loopback
    except ValueError:
        loopback = False
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
        raise UsageError(f"refusing non-HTTPS URL {url} (plain http is allowed only on loopback)")


class _HttpsOnlyRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        try:
            _check_url(newurl)
        except UsageError as e:
            raise urllib.error.URLError(f"redirect refused: {e}") from None
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _fetch(url: str, out, want_md5: str, timeout_s: float, bar) -> None:
    md5 = hashlib.md5(usedforsecurity=False)
    with urllib.request.build_opener(_HttpsOnlyRedirects).open(url, timeout=timeout_s) as resp:
        task = bar.add_task(url.rsplit("/", 1)[-1], total=resp.length)  # None: unknown
        while chunk := resp.read(1 << 16):
            md5.update(chunk)
            out.write(chunk)
            bar.advance(task, len(chunk))
    if md5.hexdigest() != want_md5:
        raise DataError(f"{url}: MD5 {md5.hexdigest()}, expected {want_md5}")


def download(dataset: str, dest: Path, *, mirrors: Sequence[str] | None = None, progress: bool = True,
             timeout_s: float = 30.0) -> Path:
    """Download ``dataset``'s four ``.gz`` files into ``dest`` and return ``dest``.

    Each file comes from the first of ``mirrors`` (default :data:`MIRRORS`)
    that serves it with the published gzip MD5 (:data:`GZIP_MD5`). It is
    written to a temporary folder inside ``dest`` and atomically renamed into
    place only once its MD5 matches, so no partial or corrupt file is left at
    its final name. URLs (redirects included) must be HTTPS; plain ``http://``
    is allowed only for loopback hosts (127.0.0.0/8, ::1, localhost), which
    the tests use. ``timeout_s``: socket timeout in seconds per connection
    and read. ``progress``: rich progress bar on stderr.

    Raises:
        UsageError: unknown dataset, or a non-HTTPS, non-loopback mirror.
        DataError: ``dest`` cannot be created, or a file failed on every mirror.
    """
    check_dataset_name(dataset)
    dest = Path(dest)
    mirrors = MIRRORS[dataset] if mirrors is None else tuple(mirrors)
    for base in mirrors:
        _check_url(base)
    try:
        dest.mkdir(parents=True, exist_ok=True)
        work = tempfile.TemporaryDirectory(dir=dest, prefix=".download-")  # removed on exit, partial files too
    except OSError as e:
        raise DataError(f"cannot write to download folder {dest}: {e}") from None
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    with work, Progress(*columns, console=Console(stderr=True), disable=not progress) as bar:
        for name in FILES:
            part, errors = Path(work.name) / f"{name}.gz", []
            for base in mirrors:
                url = f"{base.rstrip('/')}/{name}.gz"
                try:
                    with part.open("wb") as out:
                        _fetch(url, out, GZIP_MD5[dataset][name], timeout_s, bar)
                    os.replace(part, dest / part.name)
                    break
                except (OSError, http.client.HTTPException, DataError) as e:  # URLError is an OSError
                    errors.append(f"{url}: {e}")
            else:
                raise DataError(f"could not download {name}.gz: {'; '.join(errors) or 'no mirrors'}")
    return dest


_download = download  # load_dataset's ``download`` flag shadows the function


def load_dataset(dataset: str = "mnist", data_dir: Path | None = None, *, download: bool = True,
                 verify: bool = True, progress: bool = True) -> Dataset:
    """Load ``dataset``'s four IDX files (see :class:`Dataset` for shapes and dtypes).

    The folder comes from :func:`find_data_dir`; if there is none and
    ``download`` is true, the files are fetched into ``$MNISTBENCH_DATA/<dataset>``
    if that is set, else the user cache (never into ``data_dir``). ``verify``
    checks each uncompressed file's MD5 against :data:`MD5`. Results are cached
    in-process per (dataset, resolved folder, verify).

    Raises:
        UsageError: unknown dataset name.
        DataError: files missing (and not downloadable), corrupt, failing their
            checksum, or with wrong counts, shapes or labels.
    """
    folder = find_data_dir(dataset, data_dir)
    if folder is None:
        env = os.environ.get("MNISTBENCH_DATA")
        dest = (Path(env).expanduser() if env else _cache_root()) / dataset
        if not download:
            raise DataError(f"{dataset} not found locally and downloading is off; use {OFFLINE_HINT}")
        try:
            folder = _download(dataset, dest, progress=progress)
        except DataError as e:
            raise DataError(f"{dataset} not found locally and the download failed ({e}); use {OFFLINE_HINT}") from None
    return _load(dataset, folder.resolve(), verify)
