"""The bad-input matrix: every case gives one line on stderr, a non-zero exit (2 for unusable
input), no traceback, and no file written where outputs go."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from typer.testing import CliRunner

from mnistbench.bench.cli import app
from mnistbench.bench.records import COLUMNS

runner = CliRunner()
N = {"train": 60_000, "t10k": 10_000}


def idx(arr: np.ndarray, magic: bytes | None = None) -> bytes:
    head = magic or bytes([0, 0, 8, arr.ndim])
    return head + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()


def write_data(folder, **override):
    """A full-size MNIST-shaped set of zeros (valid IDX, wrong digests); ``override`` replaces files' bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for split, n in N.items():
        files[f"{split}-images-idx3-ubyte"] = idx(np.zeros((n, 28, 28), np.uint8))
        files[f"{split}-labels-idx1-ubyte"] = idx(np.zeros(n, np.uint8))
    for name, payload in files.items():
        data = override.get(name, gzip.compress(payload, compresslevel=1))
        if data is not None:
            (folder / f"{name}.gz").write_bytes(data)
    return folder


def onnx_file(path, in_shape, elem=TensorProto.FLOAT, out_shape=("N", 10)):
    g = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", elem, list(in_shape))],
                          [helper.make_tensor_value_info("y", elem, list(out_shape))])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])
    m.ir_version = 10
    onnx.save(m, str(path))
    return path


def good_gz():
    return gzip.compress(idx(np.zeros((60_000, 28, 28), np.uint8)), compresslevel=1)


TRAIN = ["train", "lenet5", "--profile", "smoke"]

# (case id, how to build the command from tmp_path, expected exit code, words the one line must hold)
CASES = [
    ("truncated-gzip", lambda d: [*TRAIN, "--data-dir", write_data(d / "data", **{"train-images-idx3-ubyte": good_gz()[:5000]})], 2, "train-images"),
    ("corrupt-gzip", lambda d: [*TRAIN, "--data-dir", write_data(d / "data", **{"train-labels-idx1-ubyte": b"\x1f\x8b" + bytes(200)})], 2, "train-labels"),
    ("wrong-idx-magic", lambda d: [*TRAIN, "--data-dir", write_data(d / "data", **{"t10k-labels-idx1-ubyte": gzip.compress(idx(np.zeros(10_000, np.uint8), b"\x01\x02\x08\x01"))})], 2, "t10k-labels"),
    ("count-mismatch", lambda d: [*TRAIN, "--data-dir", write_data(d / "data", **{"t10k-labels-idx1-ubyte": gzip.compress(idx(np.zeros(9_999, np.uint8)))})], 2, "10000 images but 9999 labels"),
    ("wrong-checksum", lambda d: [*TRAIN, "--data-dir", write_data(d / "data")], 2, "MD5"),
    ("missing-file", lambda d: [*TRAIN, "--data-dir", write_data(d / "data", **{"t10k-images-idx3-ubyte": None})], 2, "no mnist IDX files"),
    ("data-dir-absent", lambda d: [*TRAIN, "--data-dir", d / "nowhere"], 2, "nowhere"),
    ("malformed-onnx", lambda d: ["run", "--onnx", _write(d / "bad.onnx", b"\x08\x07garbage")], 2, "not a readable ONNX model"),
    ("onnx-wrong-rank", lambda d: ["run", "--onnx", onnx_file(d / "r5.onnx", ["N", 1, 28, 28, 1])], 2, "rank 5"),
    ("onnx-uint8-input", lambda d: ["run", "--onnx", onnx_file(d / "u8.onnx", ["N", 1, 28, 28], TensorProto.UINT8)], 2, "UINT8"),
    ("onnx-wrong-output", lambda d: ["run", "--onnx", onnx_file(d / "o.onnx", ["N", 784], out_shape=["N", 784])], 2, "(N, 10)"),
    ("onnx-missing", lambda d: ["run", "--onnx", d / "absent.onnx"], 2, "not found"),
    ("unknown-model", lambda d: ["run", "resnet50"], 2, "unknown model 'resnet50'"),
    ("unknown-provider", lambda d: ["run", "--provider", "rocm"], 2, "unknown provider 'rocm'"),
    ("unknown-runtime", lambda d: ["run", "--runtime", "tflite"], 2, "unknown runtime 'tflite'"),
    ("unknown-profile", lambda d: ["train-all", "--profile", "fast"], 2, "unknown profile 'fast'"),
    ("unknown-device", lambda d: ["train", "lenet5", "--device", "tpu"], 2, "unknown device 'tpu'"),
    ("unknown-dataset", lambda d: ["train", "lenet5", "--dataset", "cifar10"], 2, "cifar10"),
    ("unknown-layout", lambda d: ["run", "--onnx", onnx_file(d / "a.onnx", ["N", 784]), "--layout", "nchwc"], 2, "unknown layout"),
    ("unknown-preprocess", lambda d: ["run", "--onnx", onnx_file(d / "b.onnx", ["N", 784]), "--preprocess", "zscore"], 2, "unknown preprocess"),
    ("batch-zero", lambda d: ["run", "--batch-sizes", "0"], 2, "at least 1"),
    ("batch-negative", lambda d: ["run", "--batch-sizes", "8,-1"], 2, "at least 1"),
    ("batch-not-a-number", lambda d: ["run", "--batch-sizes", "1,x2"], 2, "not a whole number"),
    ("threads-negative", lambda d: ["run", "--threads", "-2"], 2, "at least 0"),
    ("spinning-bad", lambda d: ["run", "--spinning", "maybe"], 2, "--spinning takes"),
    ("repeat-zero", lambda d: ["run", "--repeat", "0"], 2, "--repeat must be at least 1"),
    ("min-iters-zero", lambda d: ["run", "--min-iters", "0"], 2, "timing bounds"),
    ("out-not-csv", lambda d: ["run", "--onnx", onnx_file(d / "c.onnx", ["N", 784]), "--out", d / "results" / "x.txt"], 2, ".csv"),
    ("resume-without-out", lambda d: ["run", "--resume"], 2, "--resume needs --out"),
    ("unwritable-results-dir", lambda d: ["run", "--onnx", onnx_file(d / "e.onnx", ["N", 784]), "--results-dir", _write(d / "results", b"a file") / "sub"], 2, "cannot create results folder"),
    ("export-without-checkpoint", lambda d: ["export", "lenet5"], 2, "no checkpoint for lenet5"),
    ("run-without-onnx", lambda d: ["run", "lenet5"], 2, "no fp32 ONNX file for lenet5"),
    ("tampered-checkpoint", lambda d: ["export", "zhu-mlp", "--artifacts-dir", _tampered(d)], 2, "does not match the sha256"),
    ("table-missing-columns", lambda d: ["table", _write(d / "t.csv", b"model,p50\nx,1\n")], 2, "missing columns"),
    ("table-foreign-rows", lambda d: ["table", _write(d / "f.csv", (",".join(COLUMNS) + "\n" + ",".join("?" for _ in COLUMNS) + "\n").encode())], 2, "line 2"),
    ("table-not-text", lambda d: ["table", _write(d / "g.csv", bytes(range(256)) * 4)], 2, "t.csv" if False else "csv"),
    ("table-bad-format", lambda d: ["table", d / "x.csv", "--format", "xml"], 2, "unknown format"),
    ("cuda-unusable", lambda d: ["run", "--provider", "cuda"], 1, "not usable here"),
]


def _write(path, data: bytes):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _tampered(d):
    import torch

    from mnistbench.models.checkpoint import save_checkpoint

    stem = d / "arts" / "mnist" / "paper" / "seed0" / "zhu-mlp"
    save_checkpoint(stem, {"w": torch.ones(4)}, {"model": "zhu-mlp"})
    blob = bytearray(stem.with_suffix(".safetensors").read_bytes())
    blob[-1] ^= 1
    stem.with_suffix(".safetensors").write_bytes(bytes(blob))
    return d / "arts"


def _outputs(d):
    return sorted(p.relative_to(d) for p in (d / "results").rglob("*") if p.is_file()) if (d / "results").is_dir() else []


def test_matrix_has_at_least_twenty_distinct_cases():
    assert len({c[0] for c in CASES}) == len(CASES) >= 20


@pytest.mark.parametrize("case, build, code, words", CASES, ids=[c[0] for c in CASES])
def test_bad_input(case, build, code, words, tmp_path, monkeypatch):
    if case == "cuda-unusable":
        from mnistbench.bench.runtime import check_provider
        from mnistbench.models.errors import ProviderUnavailableError

        try:
            check_provider("cuda")
            pytest.skip("CUDA is really usable on this host")
        except ProviderUnavailableError:
            pass
    monkeypatch.delenv("MNISTBENCH_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    args = [str(a) for a in build(tmp_path)]
    if "--artifacts-dir" not in args:
        args += ["--artifacts-dir", str(tmp_path / "arts")] if args[0] != "table" else []
    if args[0] == "run" and "--results-dir" not in args:
        args += ["--results-dir", str(tmp_path / "results")]
    before = _outputs(tmp_path)
    res = runner.invoke(app, args)
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.exit_code == code, (res.exit_code, res.output)
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("mnistbench: error: ") and words in lines[0], lines[0]
    assert "Traceback" not in res.output + res.stderr
    assert _outputs(tmp_path) == before
    assert not any((tmp_path / "arts").rglob("*.onnx")) if (tmp_path / "arts").exists() else True


def test_checkpoint_of_another_architecture_is_one_line(tmp_path):
    import torch

    from mnistbench.models.checkpoint import save_checkpoint

    stem = tmp_path / "arts" / "mnist" / "paper" / "seed0" / "lenet5"
    save_checkpoint(stem, {"net.0.weight": torch.ones(2)}, {"model": "lenet5"})
    res = runner.invoke(app, ["export", "lenet5", "--artifacts-dir", str(tmp_path / "arts")])
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.exit_code == 2 and len(lines) == 1 and "does not fit lenet5" in lines[0], res.output
