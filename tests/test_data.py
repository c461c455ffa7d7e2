"""Tests of mnistbench.models.data: IDX parsing, lookup, verification, download.

Unit tests build tiny synthetic IDX sets in tmp_path (split sizes and the
digest tables are monkeypatched to match them); the downloader is tested
against a local HTTP server on 127.0.0.1 and never touches the internet; the
integration tests read the real files from ../shared/data (or
$MNISTBENCH_DATA) and skip with a reason when they are absent.
"""

from __future__ import annotations

import gzip
import hashlib
import http.server
import os
import socket
import struct
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mnistbench.models import data
from mnistbench.models.errors import DataError, UsageError

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
REAL = Path(os.environ.get("MNISTBENCH_DATA") or SHARED)  # read before the autouse fixture clears it
SMALL = {"train": 12, "t10k": 5}


def idx(arr: np.ndarray, dtype_byte: int = 0x08) -> bytes:
    """The IDX encoding of a uint8 array."""
    return bytes([0, 0, dtype_byte, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()


def md5(b: bytes) -> str:
    return hashlib.md5(b).hexdigest()


def synthetic(seed: int = 0) -> dict[str, bytes]:
    """A small valid set (split sizes SMALL): uncompressed IDX payload by file stem."""
    rng = np.random.default_rng(seed)
    payloads = {}
    for split, n in SMALL.items():
        payloads[f"{split}-images-idx3-ubyte"] = idx(rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        payloads[f"{split}-labels-idx1-ubyte"] = idx((np.arange(n) % 10).astype(np.uint8))
    return payloads


def write_set(folder: Path, gz: bool = True, **override: bytes) -> dict[str, bytes]:
    """Write :func:`synthetic` into folder; ``override`` replaces payloads (``_`` for ``-`` in names)."""
    payloads = synthetic()
    payloads.update({k.replace("_", "-"): v for k, v in override.items()})
    folder.mkdir(parents=True, exist_ok=True)
    for name, payload in payloads.items():
        (folder / (name + ".gz" if gz else name)).write_bytes(gzip.compress(payload) if gz else payload)
    return payloads


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """No real env or cache leaks in; the in-process cache starts empty."""
    monkeypatch.delenv("MNISTBENCH_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    data._load.cache_clear()
    yield
    data._load.cache_clear()


@pytest.fixture
def small(monkeypatch):
    """Shrink the expected split sizes; ``small.digests(payloads)`` installs matching MD5s for mnist."""
    monkeypatch.setattr(data, "SPLITS", dict(SMALL))

    class Small:
        @staticmethod
        def digests(payloads: dict[str, bytes], gz: bool = False) -> None:
            table = data.GZIP_MD5 if gz else data.MD5
            monkeypatch.setitem(table, "mnist", {k: md5(gzip.compress(v, mtime=0) if gz else v)
                                                 for k, v in payloads.items()})

    return Small()


# --- read_idx ---------------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize("shape", [(3, 28, 28), (7,), (2, 0, 4), (1, 2, 3, 4)])
def test_read_idx_round_trip(tmp_path, gz, shape):
    arr = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    path = tmp_path / "f"
    path.write_bytes(gzip.compress(idx(arr)) if gz else idx(arr))
    out = data.read_idx(path)
    assert out.dtype == np.uint8 and out.shape == shape
    np.testing.assert_array_equal(out, arr)
    assert not out.flags.writeable


def test_read_idx_detects_gzip_by_magic_not_extension(tmp_path):
    arr = np.arange(10, dtype=np.uint8)
    (tmp_path / "a.gz").write_bytes(idx(arr))
    (tmp_path / "b.raw").write_bytes(gzip.compress(idx(arr)))
    for name in ("a.gz", "b.raw"):
        np.testing.assert_array_equal(data.read_idx(tmp_path / name), arr)


GOOD = idx(np.arange(12, dtype=np.uint8).reshape(3, 4))
BAD = {  # case: (file contents, expected message)
    "empty": (b"", "not an IDX file"),
    "short": (b"\x00\x00", "not an IDX file"),
    "wrong-magic": (b"\x01" + GOOD[1:], "bad magic 01000802"),
    "wrong-magic-2": (b"\x00\x07" + GOOD[2:], "bad magic 00070802"),
    "dtype-float": (GOOD[:2] + b"\x0d" + GOOD[3:], "dtype byte 0x0d"),
    "dtype-int32": (GOOD[:2] + b"\x0c" + GOOD[3:], "dtype byte 0x0c"),
    "ndim-0": (b"\x00\x00\x08\x00", "declares 0 dimensions"),
    "header-cut": (GOOD[:9], "declares 2 dimensions but the file has 9 bytes"),
    "truncated": (GOOD[:-1], r"needs 12 payload bytes, file has 11 \(truncated"),
    "trailing": (GOOD + b"\x00", "needs 12 payload bytes, file has 13"),
    "wrong-dims": (GOOD[:4] + struct.pack(">2I", 4, 4) + GOOD[12:], r"shape \(4, 4\) needs 16"),
}


@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize("case", list(BAD))
def test_read_idx_rejects_bad_files(tmp_path, case, gz):
    blob, message = BAD[case]
    path = tmp_path / "some-file"
    path.write_bytes(gzip.compress(blob) if gz else blob)
    with pytest.raises(DataError, match=message) as info:
        data.read_idx(path)
    assert str(path) in str(info.value)


def _gzipped_noise() -> bytes:
    return gzip.compress(idx(np.random.default_rng(2).integers(0, 256, (50, 28, 28), dtype=np.uint8)))


@pytest.mark.parametrize("damage", [
    lambda b: b[: len(b) // 2] + bytes(x ^ 0xFF for x in b[len(b) // 2: len(b) // 2 + 16]) + b[len(b) // 2 + 16:],
    lambda b: b[: len(b) // 2],  # truncated gzip
    lambda b: b[:-4],  # size trailer cut
    lambda b: b[:10],  # header only
    lambda b: b + b"garbage",  # trailing garbage after the member
], ids=["flipped", "truncated", "no-trailer", "header-only", "trailing-garbage"])
def test_read_idx_corrupt_gzip_is_data_error(tmp_path, damage):
    path = tmp_path / "broken-file.gz"
    path.write_bytes(damage(_gzipped_noise()))
    with pytest.raises(DataError, match="broken-file"):
        data.read_idx(path)


def test_read_idx_missing_file(tmp_path):
    with pytest.raises(DataError, match="nope"):
        data.read_idx(tmp_path / "nope")


def _header_dims(raw: bytes) -> tuple[int, ...]:
    return struct.unpack(f">{raw[3]}I", raw[4: 4 + 4 * raw[3]])


@st.composite
def idx_blobs(draw) -> bytes:
    """Arbitrary bytes, or a valid IDX file (maybe gzipped) with random damage."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=80))
    shape = tuple(draw(st.lists(st.integers(0, 4), min_size=1, max_size=3)))
    blob = idx(np.frombuffer(draw(st.binary(min_size=int(np.prod(shape)), max_size=int(np.prod(shape)))),
                             dtype=np.uint8).reshape(shape))
    compress = draw(st.booleans())
    if compress and draw(st.booleans()):
        blob = gzip.compress(blob)  # damage the compressed stream below
        compress = False
    for _ in range(draw(st.integers(0, 3))):
        if blob:
            i = draw(st.integers(0, len(blob) - 1))
            blob = blob[:i] + bytes([draw(st.integers(0, 255))]) + blob[i + 1:]
    blob = blob[: draw(st.integers(0, len(blob)))] if draw(st.booleans()) else blob
    blob += draw(st.binary(max_size=4))
    return gzip.compress(blob) if compress else blob


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


@settings(max_examples=200, deadline=None)
@given(blob=idx_blobs())
def test_read_idx_fuzz_parses_consistently_or_raises_data_error(fuzz_dir, blob):
    path = fuzz_dir / "blob"
    path.write_bytes(blob)
    try:
        arr = data.read_idx(path)
    except DataError:
        return
    raw = gzip.decompress(blob) if blob[:2] == b"\x1f\x8b" else blob
    assert raw[:3] == b"\x00\x00\x08" and arr.dtype == np.uint8
    assert arr.shape == _header_dims(raw)
    assert arr.tobytes() == raw[4 + 4 * raw[3]:]


# --- find_data_dir ----------------------------------------------------------------------------


@pytest.mark.parametrize("nested", [True, False], ids=["root/mnist", "root"])
@pytest.mark.parametrize("gz", [True, False], ids=["gz", "raw"])
def test_find_data_dir_accepts_both_layouts_and_encodings(tmp_path, nested, gz):
    folder = tmp_path / "root" / "mnist" if nested else tmp_path / "root"
    write_set(folder, gz=gz)
    assert data.find_data_dir("mnist", tmp_path / "root") == folder
    assert data.find_data_dir("mnist", str(folder)) == folder


def test_find_data_dir_mixed_gz_and_raw(tmp_path):
    write_set(tmp_path, gz=True)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").rename(tmp_path / "t10k-labels-idx1-ubyte")
    assert data.find_data_dir("mnist", tmp_path) == tmp_path


def test_find_data_dir_lookup_order(tmp_path, monkeypatch):
    arg, env, cache = (tmp_path / n for n in ("arg", "env", "xdg"))
    for root in (arg, env, cache / "mnistbench" / "data"):
        write_set(root / "mnist")
    monkeypatch.setenv("MNISTBENCH_DATA", str(env))
    assert data.find_data_dir("mnist", arg) == arg / "mnist"
    assert data.find_data_dir("mnist") == env / "mnist"
    monkeypatch.setenv("MNISTBENCH_DATA", str(tmp_path / "empty"))  # unusable env: falls through silently
    assert data.find_data_dir("mnist") == cache / "mnistbench" / "data" / "mnist"
    monkeypatch.delenv("MNISTBENCH_DATA")
    assert data.find_data_dir("mnist") == cache / "mnistbench" / "data" / "mnist"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "nothing"))
    assert data.find_data_dir("mnist") is None


def test_find_data_dir_incomplete_set_is_not_found(tmp_path):
    write_set(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="train-labels-idx1-ubyte"):
        data.find_data_dir("mnist", tmp_path)


@pytest.mark.parametrize("sub", ["empty", "missing"])
def test_find_data_dir_explicit_dir_without_files_raises(tmp_path, monkeypatch, sub):
    write_set(tmp_path / "env" / "mnist")
    monkeypatch.setenv("MNISTBENCH_DATA", str(tmp_path / "env"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=str(tmp_path / sub)):
        data.find_data_dir("mnist", tmp_path / sub)  # no fall-through to $MNISTBENCH_DATA


def test_find_data_dir_never_takes_one_dataset_folder_for_the_other(tmp_path):
    write_set(tmp_path / "mnist")
    with pytest.raises(DataError):
        data.find_data_dir("fashion-mnist", tmp_path / "mnist")


@pytest.mark.parametrize("call", [
    lambda: data.find_data_dir("emnist"),
    lambda: data.load_dataset("emnist"),
    lambda: data.download("emnist", Path("unused"), mirrors=[]),
])
def test_unknown_dataset_is_usage_error_listing_valid_names(call):
    with pytest.raises(UsageError, match="mnist, fashion-mnist") as info:
        call()
    assert not isinstance(info.value, DataError)


# --- load_dataset on synthetic sets -----------------------------------------------------------


@pytest.mark.parametrize("gz", [True, False])
def test_load_dataset_synthetic_round_trip_and_cache(tmp_path, small, gz):
    payloads = write_set(tmp_path / "mnist", gz=gz)
    small.digests(payloads)
    ds = data.load_dataset("mnist", tmp_path, download=False)
    assert ds.name == "mnist" and ds.source == (tmp_path / "mnist").resolve()
    assert ds.train_images.shape == (12, 28, 28) and ds.test_labels.shape == (5,)
    assert ds.train_images.dtype == ds.train_labels.dtype == np.uint8
    assert ds.train_images.tobytes() == payloads["train-images-idx3-ubyte"][16:]
    np.testing.assert_array_equal(ds.test_labels, np.arange(5))
    assert data.load_dataset("mnist", tmp_path / "mnist", download=False) is ds  # same resolved folder: cached
    assert data._load.cache_info().hits == 1
    assert "train_images" not in repr(ds)


def test_load_dataset_checksum_mismatch_names_file_and_digests(tmp_path, small, monkeypatch):
    payloads = write_set(tmp_path)
    small.digests(payloads)
    monkeypatch.setitem(data.MD5["mnist"], "t10k-images-idx3-ubyte", "0" * 32)
    with pytest.raises(DataError) as info:
        data.load_dataset("mnist", tmp_path, download=False)
    msg = str(info.value)
    assert "t10k-images-idx3-ubyte" in msg and "0" * 32 in msg and md5(payloads["t10k-images-idx3-ubyte"]) in msg
    assert data.load_dataset("mnist", tmp_path, download=False, verify=False).test_images.shape == (5, 28, 28)


def test_load_dataset_verify_uses_real_digests_by_default(tmp_path, small):
    write_set(tmp_path)
    with pytest.raises(DataError, match="6bbc9ace898e44ae57da46a324031adb"):
        data.load_dataset("mnist", tmp_path, download=False)


@pytest.mark.parametrize("override, match", [
    ({"t10k_labels_idx1_ubyte": idx(np.zeros(4, np.uint8))}, "5 images but 4 labels"),
    ({"train_images_idx3_ubyte": idx(np.zeros((11, 28, 28), np.uint8)),
      "train_labels_idx1_ubyte": idx(np.zeros(11, np.uint8))}, "11 images, expected 12"),
    ({"t10k_images_idx3_ubyte": idx(np.zeros((5, 27, 28), np.uint8))}, r"expected \(N, 28, 28\)"),
    ({"t10k_labels_idx1_ubyte": idx(np.zeros((5, 1), np.uint8))}, r"expected \(N, 28, 28\) / \(N,\)"),
    ({"train_labels_idx1_ubyte": idx(np.full(12, 10, np.uint8))}, "label 10 outside 0..9"),
    ({"train_labels_idx1_ubyte": idx(np.zeros(12, np.uint8))[:-1]}, "truncated"),
])
def test_load_dataset_rejects_inconsistent_sets(tmp_path, small, override, match):
    write_set(tmp_path, **override)
    with pytest.raises(DataError, match=match):
        data.load_dataset("mnist", tmp_path, download=False, verify=False)


def test_load_dataset_missing_without_download_says_how_to_point_at_files():
    with pytest.raises(DataError) as info:
        data.load_dataset("mnist", download=False)
    assert "--data-dir PATH or MNISTBENCH_DATA=PATH" in str(info.value)


# --- download against a local HTTP server -----------------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        self.server.hits.append(self.path)
        route = self.server.routes.get(self.path)
        if isinstance(route, str):  # a redirect target
            self.send_response(302)
            self.send_header("Location", route)
            self.end_headers()
        elif route is None:
            self.send_error(404)
        else:
            self.send_response(200)
            self.send_header("Content-Length", str(len(route)))
            self.end_headers()
            self.wfile.write(route)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    """A local HTTP server: set ``server.routes[path] = bytes | redirect URL``; ``server.url`` is its base."""
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.routes, srv.hits = {}, []
    srv.url = f"http://127.0.0.1:{srv.server_port}"
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join()


def publish(server, prefix: str, small, seed: int = 0) -> dict[str, bytes]:
    """Serve a small set under ``prefix`` with GZIP_MD5/MD5 patched to it; return the gz bytes by name."""
    payloads = synthetic(seed)
    small.digests(payloads)
    small.digests(payloads, gz=True)
    blobs = {f"{k}.gz": gzip.compress(v, mtime=0) for k, v in payloads.items()}
    server.routes.update({f"{prefix}/{k}": v for k, v in blobs.items()})
    return blobs


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("progress", [False, True])
def test_download_writes_all_four_files(tmp_path, server, small, progress):
    blobs = publish(server, "/a", small)
    dest = tmp_path / "dl" / "mnist"
    assert data.download("mnist", dest, mirrors=[server.url + "/a/"], progress=progress) == dest
    assert sorted(p.name for p in dest.iterdir()) == sorted(blobs)  # and no leftover temp folder
    assert all((dest / k).read_bytes() == v for k, v in blobs.items())
    assert data.find_data_dir("mnist", dest) == dest


def test_download_falls_through_a_404_mirror(tmp_path, server, small):
    blobs = publish(server, "/good", small)
    data.download("mnist", tmp_path, mirrors=[server.url + "/gone", server.url + "/good"], progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(blobs)
    assert server.hits[:2] == ["/gone/train-images-idx3-ubyte.gz", "/good/train-images-idx3-ubyte.gz"]


def test_download_checksum_mismatch_leaves_no_file(tmp_path, server, small):
    blobs = publish(server, "/a", small)
    tampered = gzip.compress(b"tampered", mtime=0)  # gzip stamps the time: compress once, or the MD5 moves
    server.routes["/a/train-labels-idx1-ubyte.gz"] = tampered
    with pytest.raises(DataError, match="train-labels-idx1-ubyte.gz.*MD5") as info:
        data.download("mnist", tmp_path, mirrors=[server.url + "/a"], progress=False)
    assert md5(tampered) in str(info.value)
    assert [p.name for p in tmp_path.iterdir()] == ["train-images-idx3-ubyte.gz"]  # earlier file only, no temp
    assert (tmp_path / "train-images-idx3-ubyte.gz").read_bytes() == blobs["train-images-idx3-ubyte.gz"]


def test_download_corrupt_first_mirror_then_good_second(tmp_path, server, small):
    blobs = publish(server, "/good", small)
    server.routes.update({f"/bad/{k}": v[:-1] for k, v in blobs.items()})
    data.download("mnist", tmp_path, mirrors=[server.url + "/bad", server.url + "/good"], progress=False)
    assert all((tmp_path / k).read_bytes() == v for k, v in blobs.items())


@pytest.mark.parametrize("url", ["http://example.com/mnist/", "http://10.0.0.1/", "ftp://127.0.0.1/",
                                 "file:///tmp/", "http://127.0.0.1.example.com/", "//127.0.0.1/"])
def test_download_refuses_non_https_urls(tmp_path, url):
    with pytest.raises(UsageError, match="refusing non-HTTPS") as info:
        data.download("mnist", tmp_path / "dest", mirrors=["https://example.com/", url], progress=False)
    assert not isinstance(info.value, DataError)
    assert not (tmp_path / "dest").exists()  # refused before anything is created or fetched


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost"])
def test_download_allows_plain_http_on_loopback(tmp_path, host):
    with pytest.raises(DataError, match="could not download"):  # refused connection, not refused URL
        data.download("mnist", tmp_path, mirrors=[f"http://{host}:{closed_port()}/"], progress=False)


def test_download_refuses_redirect_to_plain_http(tmp_path, server, small):
    publish(server, "/a", small)
    server.routes["/r/train-images-idx3-ubyte.gz"] = "http://example.invalid/train-images-idx3-ubyte.gz"
    with pytest.raises(DataError, match="redirect refused"):
        data.download("mnist", tmp_path, mirrors=[server.url + "/r"], progress=False)
    server.routes["/r/train-images-idx3-ubyte.gz"] = server.url + "/a/train-images-idx3-ubyte.gz"  # loopback: ok
    with pytest.raises(DataError, match="train-labels"):
        data.download("mnist", tmp_path, mirrors=[server.url + "/r"], progress=False)


def test_load_dataset_offline_is_one_data_error_with_the_way_out(monkeypatch):
    monkeypatch.setitem(data.MIRRORS, "mnist", (f"http://127.0.0.1:{closed_port()}/mnist/",))
    with pytest.raises(DataError) as info:
        data.load_dataset("mnist", progress=False)
    msg = str(info.value)
    assert "\n" not in msg and "--data-dir" in msg and "MNISTBENCH_DATA" in msg


@pytest.mark.parametrize("env", [True, False], ids=["MNISTBENCH_DATA", "xdg-cache"])
def test_load_dataset_downloads_into_env_folder_or_cache(tmp_path, server, small, monkeypatch, env):
    publish(server, "/m", small)
    monkeypatch.setitem(data.MIRRORS, "mnist", (server.url + "/m/",))
    if env:
        monkeypatch.setenv("MNISTBENCH_DATA", str(tmp_path / "env"))
    ds = data.load_dataset("mnist", progress=False)
    expected = tmp_path / "env" / "mnist" if env else tmp_path / "xdg" / "mnistbench" / "data" / "mnist"
    assert ds.source == expected.resolve() and ds.train_images.shape == (12, 28, 28)
    hits = len(server.hits)
    assert data.load_dataset("mnist", progress=False) is ds and len(server.hits) == hits  # found, not refetched


# --- the real data ----------------------------------------------------------------------------


def _real(dataset: str) -> Path | None:
    try:
        return data.find_data_dir(dataset, REAL)
    except DataError:
        return None


FIRST_LABELS = {"mnist": (5, 7), "fashion-mnist": (9, 9)}  # (train[0], test[0]): a 5, a 7; ankle boots
TEST_COUNTS = {"mnist": [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009], "fashion-mnist": [1000] * 10}


@pytest.mark.integration
@pytest.mark.parametrize("dataset", [
    pytest.param(d, marks=pytest.mark.skipif(_real(d) is None, reason=f"real {d} not found at {REAL}"))
    for d in data.DATASETS])
def test_real_dataset(dataset):
    ds = data.load_dataset(dataset, REAL, download=False, verify=True, progress=False)
    assert ds.name == dataset and ds.source == _real(dataset).resolve()
    assert ds.train_images.shape == (60000, 28, 28) and ds.test_images.shape == (10000, 28, 28)
    assert ds.train_labels.shape == (60000,) and ds.test_labels.shape == (10000,)
    assert {a.dtype for a in (ds.train_images, ds.train_labels, ds.test_images, ds.test_labels)} == {np.dtype(np.uint8)}
    assert ds.train_images.max() == 255 and ds.test_images.min() == 0
    train_hist, test_hist = np.bincount(ds.train_labels, minlength=10), np.bincount(ds.test_labels, minlength=10)
    assert len(train_hist) == len(test_hist) == 10 and train_hist.sum() == 60000 and test_hist.sum() == 10000
    assert (test_hist > 0).all() and test_hist.tolist() == TEST_COUNTS[dataset]
    assert (ds.train_labels[0], ds.test_labels[0]) == FIRST_LABELS[dataset]
    assert data.load_dataset(dataset, REAL, download=False, progress=False) is ds  # read once per process
