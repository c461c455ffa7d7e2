"""The bad-input matrix: every case is refused up front with a one-line error on stderr
(``mnistbench: error: ...``, or the gate's one line), the expected exit code (2 for unusable input,
1 for a gate or an unusable provider), no traceback, and no file written or changed (the empty
``<csv>.lock`` of filelock excepted: it is not a result and stays by design).

A case is (id, builder, exit code, words the line must hold). The builder gets a :class:`Ctx`
(a per-case folder that also builds a small real ONNX classifier, a copy of real results and the
path of the real data) and returns the CLI's argv, or a callable for an API case (which must raise
a ``MnistBenchError`` of that exit code, one line, holding the words).

Cases whose setup is heavy stay in their own files; they are part of the matrix and counted here
(``ELSEWHERE``, checked to exist):

| id | test | case |
|---|---|---|
| two-writers | test_results_integrity::test_a_second_writer_is_refused_and_the_first_completes | two `run --out SAME.csv` processes |
| killed-lock | test_results_integrity::test_a_lock_left_by_a_killed_run_does_not_block_the_next | kill -9, then `--resume` |
| run-full-disk | test_results_integrity::test_a_full_disk_during_run_gives_one_line_and_keeps_whole_rows | RLIMIT_FSIZE during `run` |
| train-full-disk | test_fault_artifacts::test_train_under_a_full_disk_refuses_before_training | no room for the checkpoint |
| export-full-disk | test_fault_artifacts::test_export_under_a_full_disk_is_one_line_and_keeps_the_previous_file | no room for the export |
| stale-export | test_fault_artifacts::test_stale_or_foreign_exports_are_refused_unless_allowed | export older than its checkpoint, another network as lenet5.onnx |
| another-checkpoint | test_fault_artifacts::test_another_models_checkpoint_or_a_truncated_export_is_refused | checkpoint of another model, truncated export |
| checkpoint-bytes | test_fault_artifacts::test_every_flipped_or_truncated_byte_is_refused_or_harmless | flipped or truncated checkpoint bytes |
| checkpoint-metadata | test_fault_artifacts::test_metadata_of_the_wrong_shape_is_refused | 4 malformed metadata cases |
| never-ending-model | test_fault_artifacts::test_run_records_a_never_ending_model_as_an_error_row | a Loop that never ends |
| ctrl-c-export | test_fault_artifacts::test_interrupt_at_a_random_point_leaves_usable_artifacts | Ctrl-C / kill -9 in train and export |
| checkpoint-architecture | test_bad_input::test_checkpoint_of_another_architecture_is_one_line | weights of another architecture |
"""

from __future__ import annotations

import csv
import gzip
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import filelock
import numpy as np
import onnx
import pytest
from conftest import _matmul_chain, real_data_root
from mnistbench.bench.cli import app
from mnistbench.bench.measure import samples as samples_io
from mnistbench.bench.measure.records import COLUMNS, CsvAppender, read_csv
from mnistbench.bench.runtimes.foreign import inspect
from mnistbench.bench.runtimes.runtime import set_call_timeout
from mnistbench.models.errors import MnistBenchError
from onnx import TensorProto, helper
from typer.testing import CliRunner

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



class Ctx:
    """What a case builds on: ``ctx / "name"`` is a path in the case's own folder."""

    def __init__(self, d: Path, base: "Base") -> None:
        self.d, self._base = d, base

    def __truediv__(self, name: str) -> Path:
        return self.d / name

    @property
    def data(self) -> Path:
        """The real data root; the case is skipped when MNIST is not there."""
        return self._base.data()

    @property
    def model(self) -> Path:
        """A small real ONNX classifier (one 784 x 784 MatMul), the same bytes as the base results'."""
        path = self.d / "chain.onnx"
        if not path.exists():
            _matmul_chain(path, 1)
        return path

    def run(self, *args) -> list:
        """``run`` of :attr:`model` on the real test images, with the base results' axes and a copy of
        their artifacts folder (the reference model already there: a refused run must add nothing)."""
        arts = self.d / "arts"
        if not arts.exists():
            shutil.copytree(self._base.results().parent / "arts", arts)
        return ["run", "--onnx", self.model, *RUN_AXES, "--data-dir", self.data, "--artifacts-dir", arts, *args]

    def results(self, name: str = "r.csv", edit=None) -> Path:
        """A copy of real results (CSV and samples folder) as ``name``; ``edit(rows)`` may change the rows."""
        src = self._base.results()
        out = self.d / name
        shutil.copytree(samples_io.folder_for(src), samples_io.folder_for(out))
        if edit is None:
            shutil.copy(src, out)
        else:
            with open(src, newline="") as fh:
                rows = list(csv.DictReader(fh))
            with open(out, "w", newline="") as fh:
                w = csv.DictWriter(fh, fieldnames=COLUMNS, lineterminator="\n")
                w.writeheader()
                w.writerows(edit(rows))
        return out

    def hold_lock(self, csv_path: Path) -> Path:
        """Hold ``csv_path``'s writer lock (as a running writer would) until the case ends."""
        lock = filelock.FileLock(str(csv_path) + ".lock")
        lock.acquire(timeout=0)
        self._base.held.append(lock)
        return csv_path


RUN_AXES = ["--no-score", "--no-null", "--batch-sizes", "1,4", "--min-s", "0.1", "--threads", "1"]


class Base:
    """Real results made once per module (a 2-cell run of the small classifier), and the artifacts it used."""

    def __init__(self, folder: Path) -> None:
        self.folder, self._csv, self.held = folder, None, []

    def data(self) -> Path:
        root = real_data_root()
        if not (root / "mnist").is_dir():
            pytest.skip(f"real MNIST not found under {root}")
        return root

    def results(self) -> Path:
        if self._csv is None:
            out = self.folder / "base.csv"
            model = _matmul_chain(self.folder / "chain.onnx", 1)
            res = runner.invoke(app, [str(a) for a in ["run", "--onnx", model, *RUN_AXES, "--data-dir", self.data(),
                                                       "--artifacts-dir", self.folder / "arts", "--out", out]])
            assert res.exit_code == 0, res.output
            self._csv = out
        return self._csv


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return Base(tmp_path_factory.mktemp("base"))


def two_inputs(path: Path) -> Path:
    g = helper.make_graph([helper.make_node("Add", ["a", "b"], ["y"])], "g",
                          [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N", 1, 28, 28]) for n in "ab"],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])
    m.ir_version = 10
    onnx.save(m, str(path))
    return path


def external_without_data(ctx: Ctx) -> Path:
    path = ctx / "ext.onnx"
    onnx.save(onnx.load(str(ctx.model)), str(path), save_as_external_data=True, location="ext.bin", size_threshold=0)
    (ctx / "ext.bin").unlink()
    return path


def truncated(ctx: Ctx) -> Path:
    data = ctx.model.read_bytes()
    return _write(ctx / "t.onnx", data[: len(data) // 2])


def system_json(ctx: Ctx, data: bytes) -> Path:
    """Real results whose ``.system.json`` holds ``data``."""
    out = ctx.results("s.csv")
    out.with_suffix(".system.json").write_bytes(data)
    return out


def torn(ctx: Ctx) -> Path:
    out = ctx.results("torn.csv")
    with open(out, "ab") as fh:
        fh.write(b"20261127T000000Z-abc,x")
    return out


def bad_samples(ctx: Ctx) -> Path:
    out = ctx.results("bad.csv")
    f = sorted(samples_io.folder_for(out).glob("*.npz"))[0]
    arrays = dict(np.load(f))
    arrays[next(iter(arrays))] = np.zeros((3, 3))  # the per-call array of another shape
    np.savez(f, **arrays)
    return out


def damaged_samples(ctx: Ctx) -> Path:
    out = ctx.results("d.csv")
    next(samples_io.folder_for(out).glob("*.npz")).write_bytes(b"not a zip")
    return out


def older_schema(ctx: Ctx) -> Path:
    return _write(ctx / "old.csv", (",".join(c for c in COLUMNS if c not in ("rounds", "config_id")) + "\n").encode())


def header_only(ctx: Ctx, name: str = "h.csv") -> Path:
    return _write(ctx / name, (",".join(COLUMNS) + "\n").encode())


def no_samples(ctx: Ctx) -> Path:
    out = ctx.results("ns.csv")
    shutil.rmtree(samples_io.folder_for(out))
    return out


def set_cells(**values):
    return lambda rows: [dict(r, **values) for r in rows]


def another_model_file(ctx: Ctx) -> Path:
    out = ctx.results()
    _matmul_chain(ctx.model, 3)  # another network saved under the same name
    return out


def api_read_csv(ctx: Ctx):
    path = torn(ctx)
    return lambda: read_csv(path)


def api_samples_load(ctx: Ctx):
    path = bad_samples(ctx)
    return lambda: samples_io.load(path)


def api_append_to_torn(ctx: Ctx):
    path = torn(ctx)
    return lambda: CsvAppender(path).check_appendable()


def api_call_timeout(ctx: Ctx):
    return lambda: set_call_timeout(float("nan"))


def api_inspect_folder(ctx: Ctx):
    return lambda: inspect(ctx.d)


TRAIN = ["train", "lenet5", "--profile", "smoke"]


def compare(c: Ctx, *args) -> list:
    """``mnistbench compare`` of two copies of the real results, then ``args``."""
    return ["compare", c.results(), c.results("r2.csv"), *args]


def load(c: Ctx, *args) -> list:
    """``mnistbench load lenet5`` with an --out in the case's folder (every refusal comes before any file)."""
    return ["load", "lenet5", "--profile", "smoke", "--out", c / "l.csv", *args]


def load_onnx(c: Ctx, path: Path, *args) -> list:
    """``mnistbench load --onnx PATH`` (Offline) on the real test set, without the null model."""
    return ["load", "--onnx", path, "--scenario", "offline", "--no-null", "--data-dir", c.data, "--out", c / "l.csv",
            *args]

# (case id, builder, expected exit code, words the one line must hold)
CASES = [
    ("truncated-gzip", lambda c: [*TRAIN, "--data-dir", write_data(c / "data", **{"train-images-idx3-ubyte": good_gz()[:5000]})], 2, "train-images"),
    ("corrupt-gzip", lambda c: [*TRAIN, "--data-dir", write_data(c / "data", **{"train-labels-idx1-ubyte": b"\x1f\x8b" + bytes(200)})], 2, "train-labels"),
    ("wrong-idx-magic", lambda c: [*TRAIN, "--data-dir", write_data(c / "data", **{"t10k-labels-idx1-ubyte": gzip.compress(idx(np.zeros(10_000, np.uint8), b"\x01\x02\x08\x01"))})], 2, "t10k-labels"),
    ("count-mismatch", lambda c: [*TRAIN, "--data-dir", write_data(c / "data", **{"t10k-labels-idx1-ubyte": gzip.compress(idx(np.zeros(9_999, np.uint8)))})], 2, "10000 images but 9999 labels"),
    ("wrong-checksum", lambda c: [*TRAIN, "--data-dir", write_data(c / "data")], 2, "MD5"),
    ("missing-file", lambda c: [*TRAIN, "--data-dir", write_data(c / "data", **{"t10k-images-idx3-ubyte": None})], 2, "no mnist IDX files"),
    ("data-dir-absent", lambda c: [*TRAIN, "--data-dir", c / "nowhere"], 2, "nowhere"),
    ("malformed-onnx", lambda c: ["run", "--onnx", _write(c / "bad.onnx", b"\x08\x07garbage")], 2, "not a readable ONNX model"),
    ("onnx-wrong-rank", lambda c: ["run", "--onnx", onnx_file(c / "r5.onnx", ["N", 1, 28, 28, 1])], 2, "rank 5"),
    ("onnx-uint8-input", lambda c: ["run", "--onnx", onnx_file(c / "u8.onnx", ["N", 1, 28, 28], TensorProto.UINT8)], 2, "UINT8"),
    ("onnx-wrong-output", lambda c: ["run", "--onnx", onnx_file(c / "o.onnx", ["N", 784], out_shape=["N", 784])], 2, "(N, 10)"),
    ("onnx-missing", lambda c: ["run", "--onnx", c / "absent.onnx"], 2, "not found"),
    ("unknown-model", lambda c: ["run", "resnet50"], 2, "unknown model 'resnet50'"),
    ("unknown-provider", lambda c: ["run", "--provider", "rocm"], 2, "unknown provider 'rocm'"),
    ("unknown-runtime", lambda c: ["run", "--runtime", "tflite"], 2, "unknown runtime 'tflite'"),
    ("unknown-profile", lambda c: ["train-all", "--profile", "fast"], 2, "unknown profile 'fast'"),
    ("unknown-device", lambda c: ["train", "lenet5", "--device", "tpu"], 2, "unknown device 'tpu'"),
    ("unknown-dataset", lambda c: ["train", "lenet5", "--dataset", "cifar10"], 2, "cifar10"),
    ("unknown-layout", lambda c: ["run", "--onnx", onnx_file(c / "a.onnx", ["N", 784]), "--layout", "nchwc"], 2, "unknown layout"),
    ("unknown-preprocess", lambda c: ["run", "--onnx", onnx_file(c / "b.onnx", ["N", 784]), "--preprocess", "zscore"], 2, "unknown preprocess"),
    ("batch-zero", lambda c: ["run", "--batch-sizes", "0"], 2, "at least 1"),
    ("batch-negative", lambda c: ["run", "--batch-sizes", "8,-1"], 2, "at least 1"),
    ("batch-not-a-number", lambda c: ["run", "--batch-sizes", "1,x2"], 2, "not a whole number"),
    ("threads-negative", lambda c: ["run", "--threads", "-2"], 2, "at least 0"),
    ("spinning-bad", lambda c: ["run", "--spinning", "maybe"], 2, "--spinning takes"),
    ("repeat-zero", lambda c: ["run", "--repeat", "0"], 2, "--repeat must be 1 to 1000"),
    ("min-iters-zero", lambda c: ["run", "--min-iters", "0"], 2, "timing bounds"),
    ("out-not-csv", lambda c: ["run", "--onnx", onnx_file(c / "c.onnx", ["N", 784]), "--out", c / "results" / "x.txt"], 2, ".csv"),
    ("resume-without-out", lambda c: ["run", "--resume"], 2, "--resume needs --out"),
    ("unwritable-results-dir", lambda c: ["run", "--onnx", onnx_file(c / "e.onnx", ["N", 784]), "--data-dir", c.data, "--results-dir", _write(c / "results", b"a file") / "sub"], 2, "cannot create results folder"),
    ("export-without-checkpoint", lambda c: ["export", "lenet5"], 2, "no checkpoint for lenet5"),
    ("run-without-onnx", lambda c: ["run", "lenet5"], 2, "no fp32 ONNX file for lenet5"),
    ("tampered-checkpoint", lambda c: ["export", "zhu-mlp", "--artifacts-dir", _tampered(c)], 2, "does not match the sha256"),
    ("table-missing-columns", lambda c: ["table", _write(c / "t.csv", b"model,p50\nx,1\n")], 2, "missing columns"),
    ("table-foreign-rows", lambda c: ["table", _write(c / "f.csv", (",".join(COLUMNS) + "\n" + ",".join("?" for _ in COLUMNS) + "\n").encode())], 2, "line 2"),
    ("table-not-text", lambda c: ["table", _write(c / "g.csv", bytes(range(256)) * 4)], 2, "csv"),
    ("table-bad-format", lambda c: ["table", c / "x.csv", "--format", "xml"], 2, "unknown format"),
    ("cuda-unusable", lambda c: ["run", "--provider", "cuda"], 1, "not usable here"),
    # issue 16: hostile inputs that escaped the one-line promise
    ("run-batch-1e9", lambda c: c.run("--batch-sizes", "1000000000", "--out", c / "o.csv"), 2, "GiB"),
    ("run-out-proc", lambda c: c.run("--out", "/proc/x.csv"), 2, "cannot write"),
    ("run-threads-100000", lambda c: c.run("--threads", "100000", "--out", c / "o.csv"), 2, "per logical core"),
    ("compare-header-only", lambda c: ["compare", header_only(c), header_only(c, "h2.csv")], 2, "no measured rows"),
    # issue 18: stale, damaged and shared result files
    ("two-writers-lock-held", lambda c: c.run("--out", c.hold_lock(c / "w.csv")), 2, "another mnistbench process is writing"),
    ("verify-repair-beside-a-writer", lambda c: ["verify", "--repair", c.hold_lock(torn(c))], 2, "a run is writing it"),
    ("resume-other-dataset", lambda c: c.run("--resume", "--dataset", "fashion-mnist", "--out", c.results()), 2, "holds mnist rows"),
    ("resume-other-profile", lambda c: c.run("--resume", "--out", c.results(edit=set_cells(checkpoint_profile="paper"))), 2, "profile 'paper'"),
    ("resume-other-model-file", lambda c: c.run("--resume", "--out", another_model_file(c)), 2, "another model file"),
    ("resume-older-schema", lambda c: c.run("--resume", "--out", older_schema(c)), 2, "other columns"),
    ("resume-other-schema-rows", lambda c: c.run("--resume", "--out", c.results(edit=set_cells(schema_version="99"))), 2, "results schema 99"),
    ("resume-torn-last-row", lambda c: c.run("--resume", "--out", torn(c)), 2, "partial row"),
    ("resume-damaged-samples", lambda c: c.run("--resume", "--out", damaged_samples(c)), 2, "not a readable samples file"),
    ("resume-missing-samples", lambda c: c.run("--resume", "--out", no_samples(c)), 2, "have no samples"),
    ("compare-damaged-samples", lambda c: ["compare", damaged_samples(c), c.results()], 2, "not a readable samples file"),
    ("compare-baseline-p50-zero", lambda c: ["compare", c.results("z.csv", set_cells(latency_p50_ms="0")), c.results()], 2, "finite and positive"),
    ("compare-gate-without-samples", lambda c: ["compare", no_samples(c), c.results(), "--fail-on", "p50:+5%"], 1, "cannot be judged"),
    # hostile run inputs
    ("run-rounds-zero", lambda c: c.run("--rounds", "0", "--out", c / "o.csv"), 2, "--rounds"),
    ("run-rounds-negative", lambda c: c.run("--rounds", "-3", "--out", c / "o.csv"), 2, "--rounds"),
    ("run-min-s-nan", lambda c: c.run("--min-s", "nan", "--out", c / "o.csv"), 2, "finite"),
    ("run-min-s-negative", lambda c: c.run("--min-s", "-1", "--out", c / "o.csv"), 2, ">= 0"),
    ("run-min-s-inf", lambda c: c.run("--min-s", "inf", "--out", c / "o.csv"), 2, "finite"),
    ("run-warmup-s-nan", lambda c: c.run("--warmup-s", "nan", "--out", c / "o.csv"), 2, "--warmup-s"),
    ("run-pin-cpus-absent", lambda c: c.run("--pin-cpus", "9999", "--out", c / "o.csv"), 2, "--pin-cpus"),
    ("run-pin-cpus-words", lambda c: c.run("--pin-cpus", "a-b", "--out", c / "o.csv"), 2, "--pin-cpus"),
    ("run-max-live-zero", lambda c: c.run("--max-live-sessions", "0", "--out", c / "o.csv"), 2, "--max-live-sessions"),
    ("run-batch-empty", lambda c: c.run("--batch-sizes", "", "--out", c / "o.csv"), 2, "not a whole number"),
    ("run-batch-only-commas", lambda c: c.run("--batch-sizes", ",,", "--out", c / "o.csv"), 2, "not a whole number"),
    ("run-threads-word", lambda c: c.run("--threads", "many", "--out", c / "o.csv"), 2, "not a whole number"),
    ("run-call-timeout-negative", lambda c: c.run("--call-timeout", "-1", "--out", c / "o.csv"), 2, "--call-timeout"),
    ("run-call-timeout-nan", lambda c: c.run("--call-timeout", "nan", "--out", c / "o.csv"), 2, "--call-timeout"),
    ("run-repeat-negative", lambda c: c.run("--repeat", "-1", "--out", c / "o.csv"), 2, "--repeat must be 1 to 1000"),
    ("run-repeat-index-without-out", lambda c: c.run("--repeat-index", "3"), 2, "--repeat-index is set by `run --repeat`"),
    ("all-results-dir-under-a-file", lambda c: ["all", "lenet5", "--profile", "smoke", "--results-dir", _write(c / "plain.txt", b"x") / "results"], 2, "is a file, not a folder"),
    ("run-pin-cpus-huge-range", lambda c: c.run("--pin-cpus", "0-300000000", "--out", c / "o.csv"), 2, "may run on CPUs"),
    ("run-pin-cpus-backwards", lambda c: c.run("--pin-cpus", "1-0", "--out", c / "o.csv"), 2, "--pin-cpus takes a list"),
    ("run-out-name-too-long", lambda c: c.run("--out", c / ("x" * 300 + ".csv")), 2, "--out"),
    ("run-out-name-near-the-limit", lambda c: c.run("--out", c / ("x" * 240 + ".csv")), 2, "this filesystem takes at most"),
    ("check-defaults-out-exists", lambda c: ["doctor", "--check-defaults", "--model", "lenet5", "--out", c.results()], 2, "exists; choose another --out"),
    ("check-defaults-out-under-a-file", lambda c: ["doctor", "--check-defaults", "--model", "lenet5", "--out", _write(c / "plain.txt", b"x") / "d.csv"], 2, "cannot create"),
    ("run-repeat-index-alone-on-a-file", lambda c: c.run("--repeat-index", "1", "--out", c.results()), 2, "--repeat-index is set by `run --repeat`"),
    ("run-threads-nothing", lambda c: c.run("--threads", "", "--out", c / "o.csv"), 2, "--threads takes auto"),
    ("run-provider-only-a-comma", lambda c: c.run("--provider", ",", "--out", c / "o.csv"), 2, "names no execution provider"),
    ("run-runtime-only-a-comma", lambda c: c.run("--runtime", ",", "--out", c / "o.csv"), 2, "names no runtime"),
    ("train-seed-overflows-torch", lambda c: ["train", "lenet5", "--profile", "smoke", "--seed", str(2**70)], 2, "--seed must be between 0 and"),
    ("ray-address-nothing-answers", lambda c: c.run("--executor", "ray", "--address", "127.0.0.1:1", "--results-dir", c / "fleet"), 2, "nothing answers there"),
    ("ray-address-not-host-port", lambda c: c.run("--executor", "ray", "--address", "headnode", "--results-dir", c / "fleet"), 2, "--address takes HOST:PORT"),
    ("calibrate-modes-unknown", lambda c: ["doctor", "--calibrate", "--calibrate-modes", "both"], 2, "--calibrate-modes"),
    ("calibrate-condition-unknown", lambda c: ["doctor", "--calibrate", "--condition", "loud"], 2, "noise condition"),
    ("calibrate-configs-bad", lambda c: ["doctor", "--calibrate", "--calibrate-configs", "lenet5"], 2, "--calibrate-configs"),
    ("calibrate-configs-batch-zero", lambda c: ["doctor", "--calibrate", "--calibrate-configs", "lenet5:0"], 2, "--calibrate-configs"),
    ("train-seed-negative", lambda c: ["train", "lenet5", "--seed", "-1"], 2, "--seed"),
    ("verify-drop-without-repair", lambda c: ["verify", c.results(), "--drop-unsampled"], 2, "only acts with --repair"),
    ("live-sessions-zero", lambda c: ["compare", "--live", onnx_file(c / "s.onnx", ["N", 784]), onnx_file(c / "s.onnx", ["N", 784]), "--sessions", "0"], 2, "--sessions"),
    ("live-max-s-zero", lambda c: ["compare", "--live", onnx_file(c / "s.onnx", ["N", 784]), onnx_file(c / "s.onnx", ["N", 784]), "--max-s", "0"], 2, "--max-s"),
    ("live-max-s-nan", lambda c: ["compare", "--live", onnx_file(c / "s.onnx", ["N", 784]), onnx_file(c / "s.onnx", ["N", 784]), "--max-s", "nan"], 2, "--max-s"),
    ("run-device-id-negative", lambda c: c.run("--device-id", "-1", "--out", c / "o.csv"), 2, "--device-id"),
    ("run-unknown-io-mode", lambda c: c.run("--io-mode", "zero-copy", "--out", c / "o.csv"), 2, "unknown io mode"),
    ("run-unknown-cudnn-algo", lambda c: c.run("--cudnn-algo", "fastest", "--out", c / "o.csv"), 2, "cuDNN"),
    ("run-unknown-executor", lambda c: c.run("--executor", "slurm", "--out", c / "o.csv"), 2, "unknown executor"),
    ("run-unknown-variant", lambda c: ["run", "lenet5", "--variant", "int4"], 2, "unknown variant 'int4'"),
    ("run-unknown-precision", lambda c: ["run", "lenet5", "--precision", "fp8"], 2, "unknown precision 'fp8'"),
    ("run-out-is-a-folder", lambda c: c.run("--out", _mkdir(c / "d.csv")), 2, "exists"),
    ("run-out-exists", lambda c: c.run("--out", c.results()), 2, "add --resume"),
    ("run-artifacts-dir-is-a-file", lambda c: c.run("--out", c / "o.csv", "--artifacts-dir", c.results()), 2, "is a file, not a folder"),
    ("run-results-dir-is-a-file", lambda c: ["run", "--onnx", c.model, "--data-dir", c.data, "--results-dir", c.results()], 2, "cannot create results folder"),
    # hostile ONNX files
    ("onnx-truncated", lambda c: c.run("--onnx", truncated(c), "--out", c / "o.csv"), 2, "not a readable ONNX model"),
    ("onnx-empty-file", lambda c: c.run("--onnx", _write(c / "e.onnx", b""), "--out", c / "o.csv"), 2, "no graph nodes"),
    ("onnx-two-inputs", lambda c: c.run("--onnx", two_inputs(c / "two.onnx"), "--out", c / "o.csv"), 2, "found 2"),
    ("onnx-is-a-folder", lambda c: c.run("--onnx", _mkdir(c / "m.onnx"), "--out", c / "o.csv"), 2, "is a folder"),
    ("onnx-string-input", lambda c: c.run("--onnx", onnx_file(c / "s.onnx", ["N", 784], TensorProto.STRING), "--out", c / "o.csv"), 2, "STRING"),
    ("onnx-external-data-missing", lambda c: c.run("--onnx", external_without_data(c), "--out", c / "o.csv"), 2, "ext.bin, not found"),
    # hostile result files for compare, verify, table, report
    ("compare-torn-last-row", lambda c: ["compare", torn(c), c.results()], 2, "fewer cells than the header"),
    ("compare-system-json-not-an-object", lambda c: ["compare", system_json(c, b"[]"), c.results()], 2, "is not a system JSON"),
    ("compare-csv-field-over-the-limit", lambda c: ["compare", c.results("big.csv", set_cells(error="x" * 200_000)), c.results()], 2, "not a readable CSV"),
    ("compare-missing-file", lambda c: ["compare", c / "nope.csv", c.results()], 2, "does not exist"),
    ("compare-empty-folder", lambda c: ["compare", _mkdir(c / "empty"), c.results()], 2, "holds no results CSV"),
    ("compare-zero-byte-file", lambda c: ["compare", _write(c / "z.csv", b""), c.results()], 2, "not an mnistbench results CSV"),
    ("compare-fail-on-malformed", lambda c: compare(c, "--fail-on", "p50:+abc"), 2, "is not METRIC"),
    ("compare-fail-on-unknown-metric", lambda c: compare(c, "--fail-on", "p77:+5%"), 2, "is not METRIC"),
    ("compare-noise-negative", lambda c: compare(c, "--noise", "-0.1"), 2, "--noise"),
    ("compare-noise-nan", lambda c: compare(c, "--noise", "nan"), 2, "--noise"),
    ("compare-noise-word", lambda c: compare(c, "--noise", "loud"), 2, "--noise is auto"),
    ("compare-noise-inf", lambda c: compare(c, "--noise", "inf"), 2, "--noise"),
    ("compare-unknown-format", lambda c: compare(c, "--format", "xml"), 2, "unknown format"),
    ("verify-samples-wrong-shapes", lambda c: ["verify", bad_samples(c)], 2, "samples are damaged"),
    ("verify-damaged-samples", lambda c: ["verify", damaged_samples(c)], 2, "not a readable samples file"),
    ("verify-missing-file", lambda c: ["verify", c / "nope.csv"], 2, "is not a file"),
    ("verify-not-results", lambda c: ["verify", _write(c / "o.csv", b"a,b\n1,2\n")], 2, "not an mnistbench results CSV"),
    ("table-non-finite-p50", lambda c: ["table", c.results("i.csv", set_cells(latency_p50_ms="inf"))], 2, "non-finite"),
    ("report-missing-folder", lambda c: ["report", c / "nope"], 2, "does not exist"),
    # found by scripts/option_sweep.py (results/quality/option-sweep.md)
    ("report-out-dir-is-a-file", lambda c: ["report", c.results(), "--out-dir", _write(c / "plain.txt", b"x")], 2,
     "is a file, not a folder"),
    ("report-out-dir-under-a-file", lambda c: ["report", c.results(), "--out-dir", _write(c / "plain.txt", b"x") / "r"],
     2, "is a file, not a folder"),
    ("report-slo-infinite", lambda c: ["report", c.results(), "--slo-ms", "inf"], 2, "--slo-ms must be a finite"),
    ("compare-live-option-without-live", lambda c: compare(c, "--rounds", "-1"), 2,
     "--rounds only acts with --live"),
    ("compare-live-options-without-live", lambda c: compare(c, "--min-s", "nan",
                                                     "--data-dir", _write(c / "plain.txt", b"x")), 2,
     "--min-s, --data-dir only act with --live"),
    ("doctor-defaults-option-alone", lambda c: ["doctor", "--model", ""], 2, "--model only acts with --check-defaults"),
    ("doctor-calibrate-options-alone", lambda c: ["doctor", "--trials", "-1", "--calibration-dir", c / "x"], 2,
     "--trials, --calibration-dir only act with --calibrate"),
    ("doctor-two-modes", lambda c: ["doctor", "--check-defaults", "--calibrate"], 2, "two modes of doctor"),
    ("doctor-min-s-nan", lambda c: ["doctor", "--min-s", "nan"], 2, "--min-s must be a finite number"),
    ("export-profile-empty", lambda c: ["export", "lenet5", "--profile", ""], 2, "--profile is empty"),
    ("run-profile-empty", lambda c: ["run", "lenet5", "--profile", " "], 2, "--profile is empty"),
    ("reproduce-seeds-huge", lambda c: ["reproduce", "zhu-mlp", "--profile", "smoke", "--seeds", str(2**70),
                                        "--results-dir", c / "runs"], 2, "--seeds must be between 1 and 1,000"),
    ("reproduce-dataset-empty", lambda c: ["reproduce", "zhu-mlp", "--profile", "smoke", "--dataset", "",
                                           "--results-dir", c / "runs"], 2, "unknown dataset ''"),
    ("reproduce-ray-option-locally", lambda c: ["reproduce", "zhu-mlp", "--profile", "smoke", "--address", "",
                                                "--results-dir", c / "runs"], 2, "--address only acts with --executor ray"),
    ("run-nodes-locally", lambda c: c.run("--nodes", "2"), 2, "--nodes only acts with --executor ray"),
    ("reproduce-data-dir-is-a-file", lambda c: ["reproduce", "zhu-mlp", "--profile", "smoke", "--data-dir",
                                                _write(c / "plain.txt", b"x"), "--results-dir", c / "runs"], 2, "plain.txt"),
    ("speedrun-seeds-huge", lambda c: ["speedrun", "speed-cnn", "--seeds", str(2**70), "--out", c / "s.csv"], 2,
     "--seeds must be between 1 and 1,000"),
    ("speedrun-epochs-negative", lambda c: ["speedrun", "speed-cnn", "--epochs", "-1", "--out", c / "s.csv"], 2,
     "--epochs must be between 1 and 1,000"),
    ("speedrun-profile-empty", lambda c: ["speedrun", "speed-cnn", "--profile", "", "--out", c / "runs" / "s.csv"], 2,
     "unknown profile ''"),
    ("reproduce-artifacts-under-a-file", lambda c: ["reproduce", "zhu-mlp", "--profile", "smoke", "--artifacts-dir",
                                                    _write(c / "plain.txt", b"x") / "a", "--results-dir", c / "runs"], 2,
     "is a file, not a folder"),
    ("train-artifacts-under-a-file", lambda c: [*TRAIN, "--artifacts-dir", _write(c / "plain.txt", b"x") / "a"], 2,
     "is a file, not a folder"),
    ("load-loadgen-seed-negative", lambda c: load(c, "--scenario", "offline", "--loadgen-seed", "-1"), 2,
     "--loadgen-seed must be 0 to"),
    ("load-loadgen-seed-huge", lambda c: load(c, "--scenario", "offline", "--loadgen-seed", str(2**70)), 2,
     "LoadGen takes 64-bit unsigned seeds"),
    ("load-provider-empty", lambda c: load(c, "--scenario", "offline", "--provider", "", "--results-dir", c / "runs"),
     2, "unknown provider ''"),
    ("load-onnx-name-too-long", lambda c: load(c, "--scenario", "offline", "--onnx", c / ("x" * 300 + ".onnx")), 2,
     "File name too long"),
    ("run-onnx-name-too-long", lambda c: c.run("--onnx", c / ("x" * 300 + ".onnx")), 2, "File name too long"),
    ("load-layout-without-onnx", lambda c: load(c, "--scenario", "offline", "--layout", ""), 2,
     "--layout only acts with --onnx"),
    ("run-preprocess-without-onnx", lambda c: ["run", "lenet5", "--preprocess", "raw", "--out", c / "o.csv"], 2,
     "--preprocess only acts with --onnx"),
    ("run-pin-cpus-empty", lambda c: c.run("--pin-cpus", ""), 2, "--pin-cpus takes a list such as 0,2-3, got ''"),
    ("run-min-iters-huge", lambda c: c.run("--min-iters", str(2**70)), 2, "--min-iters must be at most 100,000,000"),
    ("run-warmup-iters-huge", lambda c: c.run("--warmup-iters", str(2**70)), 2, "--warmup-iters must be at most"),
    ("run-repeat-huge", lambda c: c.run("--repeat", str(2**70)), 2, "--repeat must be 1 to 1000"),
    ("run-data-dir-is-a-file", lambda c: ["run", "--onnx", c.model, *RUN_AXES, "--data-dir", _write(c / "plain.txt", b"x"),
                                          "--results-dir", c / "runs"], 2, "no mnist IDX files in"),
    ("run-io-mode-empty", lambda c: c.run("--io-mode", ""), 2, "names no io mode"),
    ("run-device-id-huge", lambda c: c.run("--device-id", str(2**70)), 2, "--device-id must be 0 to 2,147,483,647"),
    ("best-mse-increase-nan", lambda c: ["best", c.results(), "--max-mse-increase", "nan"], 2,
     "--max-mse-increase is a fraction"),
    ("best-accuracy-drop-negative", lambda c: ["best", c.results(), "--max-accuracy-drop", "-1pp"], 2,
     "--max-accuracy-drop is 0 to 100"),
    ("compare-fail-on-empty", lambda c: compare(c, "--fail-on", ""), 2,
     "--fail-on has no rule"),
    ("compare-fail-on-commas", lambda c: compare(c, "--fail-on", " , "), 2,
     "--fail-on has no rule"),
    ("train-unknown-amp", lambda c: [*TRAIN, "--amp", "fp8"], 2, "unknown --amp 'fp8'"),
    ("export-unknown-model", lambda c: ["export", "vgg16"], 2, "unknown model 'vgg16'"),
    # the Python API: the same one-line errors
    ("api-read-csv-torn", api_read_csv, 2, "fewer cells than the header"),
    ("api-samples-wrong-shapes", api_samples_load, 2, "samples are damaged"),
    ("api-append-to-torn-csv", api_append_to_torn, 2, "partial row"),
    ("api-call-timeout-nan", api_call_timeout, 2, "--call-timeout"),
    ("api-inspect-folder", api_inspect_folder, 2, "is a folder"),
    # mnistbench load (MLPerf LoadGen scenarios)
    ("load-target-qps-zero", lambda c: load(c, "--target-qps", "0"), 2, "--target-qps must be a finite number above 0"),
    ("load-target-qps-negative", lambda c: load(c, "--target-qps=-5"), 2, "--target-qps must be a finite number above 0"),
    ("load-target-qps-nan", lambda c: load(c, "--target-qps", "nan"), 2, "--target-qps must be a finite number above 0"),
    ("load-target-qps-inf", lambda c: load(c, "--target-qps", "inf"), 2, "--target-qps must be a finite number above 0"),
    ("load-latency-bound-zero", lambda c: load(c, "--target-qps", "100", "--latency-bound-ms", "0"), 2, "--latency-bound-ms"),
    ("load-latency-percentile-zero", lambda c: load(c, "--target-qps", "100", "--latency-percentile", "0"), 2, "--latency-percentile must be above 0 and below 100"),
    ("load-latency-percentile-100", lambda c: load(c, "--target-qps", "100", "--latency-percentile", "100"), 2, "--latency-percentile must be above 0 and below 100"),
    ("load-latency-percentile-101", lambda c: load(c, "--target-qps", "100", "--latency-percentile", "101"), 2, "--latency-percentile must be above 0 and below 100"),
    ("load-max-batch-zero", lambda c: load(c, "--scenario", "offline", "--max-batch", "0"), 2, "--max-batch must be at least 1"),
    ("load-max-batch-over-memory", lambda c: load(c, "--scenario", "offline", "--max-batch", str(10**12)), 2, "GiB"),
    ("load-qps-range-empty", lambda c: load(c, "--qps-range", "5:1:1"), 2, "is empty"),
    ("load-qps-range-step-zero", lambda c: load(c, "--qps-range", "1:2:0"), 2, "--qps-range step"),
    ("load-qps-range-words", lambda c: load(c, "--qps-range", "abc"), 2, "--qps-range takes a:b:step"),
    ("load-unknown-scenario", lambda c: load(c, "--scenario", "bogus"), 2, "--scenario must be one of"),
    ("load-target-qps-offline", lambda c: load(c, "--scenario", "offline", "--target-qps", "100"), 2, "--target-qps is for --scenario server"),
    ("load-server-without-a-rate", lambda c: load(c, "--scenario", "server"), 2, "needs exactly one of --target-qps, --qps-range or --find-peak"),
    ("load-workers-zero", lambda c: load(c, "--scenario", "offline", "--workers", "0"), 2, "--workers must be 1 to"),
    ("load-queue-delay-negative", lambda c: load(c, "--scenario", "offline", "--max-queue-delay-ms=-1"), 2, "--max-queue-delay-ms"),
    ("load-min-duration-nan", lambda c: load(c, "--scenario", "offline", "--min-duration-s", "nan"), 2, "--min-duration-s"),
    ("load-min-query-count-zero", lambda c: load(c, "--scenario", "offline", "--min-query-count", "0"), 2, "--min-query-count"),
    ("load-resume-without-out", lambda c: ["load", "lenet5", "--profile", "smoke", "--scenario", "offline", "--resume"], 2, "--resume needs --out"),
    ("load-out-not-csv", lambda c: load_onnx(c, c.model)[:-2] + ["--out", c / "l.txt"], 2, ".csv"),
    ("load-onnx-fixed-batch", lambda c: load_onnx(c, onnx_file(c / "fb.onnx", [4, 784], out_shape=[4, 10])), 2, "fixed batch size of 4"),
    ("load-onnx-missing", lambda c: load_onnx(c, c / "absent.onnx"), 2, "not found"),
    # issue 27: every option of every command in a case of its own command (see
    # test_every_option_of_every_command_has_a_case; the flags with no invalid use are listed there)
    ("all-unknown-provider", lambda c: ["all", "--profile", "smoke", "--provider", "rocm"], 2, "unknown provider 'rocm'"),
    ("all-batch-zero", lambda c: ["all", "--profile", "smoke", "--batch-sizes", "0"], 2, "at least 1"),
    ("all-unknown-device", lambda c: ["all", "--profile", "smoke", "--device", "tpu"], 2, "unknown device 'tpu'"),
    ("all-seed-negative", lambda c: ["all", "--profile", "smoke", "--seed", "-1"], 2, "--seed must be between 0 and"),
    ("all-unknown-dataset", lambda c: ["all", "--profile", "smoke", "--dataset", "cifar10"], 2, "unknown dataset 'cifar10'"),
    ("all-data-dir-absent", lambda c: ["all", "--profile", "smoke", "--data-dir", c / "nowhere"], 2, "no mnist IDX files in"),
    ("all-artifacts-under-a-file", lambda c: ["all", "--profile", "smoke", "--artifacts-dir", _write(c / "plain.txt", b"x") / "a"], 2,
     "is a file, not a folder"),
    ("best-unknown-format", lambda c: ["best", c.results(), "--format", "xml"], 2, "unknown format 'xml'"),
    ("compare-fail-on-inconclusive-alone", lambda c: compare(c, "--fail-on-inconclusive"),
     2, "--fail-on-inconclusive only acts with --fail-on"),
    ("compare-drift-correction-live", lambda c: ["compare", "--live", c.model, c.model, "--drift-correction"], 2,
     "--drift-correction only acts with two result files"),
    ("compare-batch-sizes-without-live", lambda c: compare(c, "--batch-sizes", "1"), 2,
     "--batch-sizes only acts with --live"),
    ("compare-threads-without-live", lambda c: compare(c, "--threads", "1"), 2,
     "--threads only acts with --live"),
    ("compare-out-without-live", lambda c: compare(c, "--out", c / "x.csv"), 2,
     "--out only acts with --live"),
    ("compare-profile-without-live", lambda c: compare(c, "--profile", "smoke"), 2,
     "--profile only acts with --live"),
    ("compare-seed-without-live", lambda c: compare(c, "--seed", "3"), 2,
     "--seed only acts with --live"),
    ("compare-dataset-without-live", lambda c: compare(c, "--dataset", "fashion-mnist"), 2,
     "--dataset only acts with --live"),
    ("compare-artifacts-without-live", lambda c: compare(c, "--artifacts-dir", c / "a"), 2,
     "--artifacts-dir only acts with --live"),
    ("doctor-no-sweep-in-a-mode", lambda c: ["doctor", "--no-sweep", "--check-defaults"], 2,
     "--sweep only acts with the plain doctor"),
    ("doctor-min-s-in-a-mode", lambda c: ["doctor", "--min-s", "1", "--calibrate"], 2, "--min-s only acts with the plain doctor"),
    ("doctor-rounds-alone", lambda c: ["doctor", "--rounds", "3"], 2, "--rounds only acts with --check-defaults"),
    ("doctor-profile-alone", lambda c: ["doctor", "--profile", "smoke"], 2, "--profile only acts with --calibrate"),
    ("doctor-noise-seed-alone", lambda c: ["doctor", "--noise-seed", "3"], 2, "--noise-seed only acts with --calibrate"),
    ("doctor-calibrate-levels-alone", lambda c: ["doctor", "--calibrate-levels", "5"], 2,
     "--calibrate-levels only acts with --calibrate"),
    ("doctor-data-dir-alone", lambda c: ["doctor", "--data-dir", c / "nowhere"], 2, "--data-dir only acts with --calibrate"),
    ("doctor-artifacts-under-a-file", lambda c: ["doctor", "--artifacts-dir", _write(c / "plain.txt", b"x") / "a"], 2, "is a file, not a folder"),
    ("export-seed-negative", lambda c: ["export", "lenet5", "--seed", "-1"], 2, "--seed must be between 0 and"),
    ("export-unknown-dataset", lambda c: ["export", "lenet5", "--dataset", "cifar10"], 2, "unknown dataset 'cifar10'"),
    ("export-data-dir-is-a-file", lambda c: ["export", "lenet5", "--data-dir", _write(c / "plain.txt", b"x")], 2,
     "plain.txt is a file, not a folder"),
    ("load-unknown-variant", lambda c: load(c, "--scenario", "offline", "--variant", "bogus"), 2, "unknown variant 'bogus'"),
    ("load-unknown-precision", lambda c: load(c, "--scenario", "offline", "--precision", "fp8"), 2, "unknown precision 'fp8'"),
    ("load-unknown-runtime", lambda c: load(c, "--scenario", "offline", "--runtime", "tflite"), 2, "unknown runtime 'tflite'"),
    ("load-threads-negative", lambda c: load(c, "--scenario", "offline", "--threads", "-1"), 2, "--threads must be 0"),
    ("load-find-peak-offline", lambda c: load(c, "--scenario", "offline", "--find-peak"), 2,
     "--find-peak is for --scenario server"),
    ("load-interleave-without-a-peak-search", lambda c: load(c, "--scenario", "server", "--target-qps", "100",
                                                              "--interleave"), 2,
     "--interleave lets peak searches take turns; give it with --scenario server --find-peak"),
    ("load-repeat-zero", lambda c: load(c, "--scenario", "offline", "--repeat", "0"), 2, "--repeat must be 1 to 1000"),
    ("load-seed-negative", lambda c: load(c, "--scenario", "offline", "--seed", "-1"), 2, "--seed must be between 0 and"),
    ("load-unknown-dataset", lambda c: load(c, "--scenario", "offline", "--dataset", "cifar10"), 2, "unknown dataset 'cifar10'"),
    ("load-preprocess-without-onnx", lambda c: load(c, "--scenario", "offline", "--preprocess", "raw"), 2,
     "--preprocess only acts with --onnx"),
    ("load-allow-stale-onnx-only", lambda c: load_onnx(c, c.model, "--allow-stale"), 2,
     "--allow-stale only acts with registered models"),
    ("load-data-dir-is-a-file", lambda c: ["load", "--onnx", c.model, "--scenario", "offline", "--data-dir",
                                           _write(c / "plain.txt", b"x"), "--out", c / "l.csv"], 2,
     "no mnist IDX files in"),
    ("load-artifacts-under-a-file", lambda c: load(c, "--scenario", "offline", "--artifacts-dir", _write(c / "plain.txt", b"x") / "a"), 2,
     "is a file, not a folder"),
    ("reproduce-unknown-device", lambda c: ["reproduce", "zhu-mlp", "--profile", "smoke", "--device", "tpu",
                                            "--results-dir", c / "runs"], 2, "unknown device 'tpu'"),
    ("reproduce-out-not-csv", lambda c: ["reproduce", "zhu-mlp", "--profile", "smoke", "--out", c / "x.txt"], 2,
     "--out must name a .csv file"),
    ("reproduce-resume-without-out", lambda c: ["reproduce", "zhu-mlp", "--profile", "smoke", "--resume",
                                                "--results-dir", c / "runs"], 2, "--resume needs --out"),
    ("reproduce-unknown-executor", lambda c: ["reproduce", "zhu-mlp", "--profile", "smoke", "--executor", "spark",
                                              "--results-dir", c / "runs"], 2, "unknown executor 'spark'"),
    ("reproduce-max-retries-locally", lambda c: ["reproduce", "zhu-mlp", "--profile", "smoke", "--max-retries", "5",
                                                 "--results-dir", c / "runs"], 2, "--max-retries only acts with --executor ray"),
    ("reproduce-cpus-per-run-locally", lambda c: ["reproduce", "zhu-mlp", "--profile", "smoke", "--cpus-per-run", "1",
                                                  "--results-dir", c / "runs"], 2, "--cpus-per-run only acts with --executor ray"),
    ("run-seed-negative", lambda c: ["run", "lenet5", "--seed", "-1", "--out", c / "o.csv"], 2, "--seed must be between 0 and"),
    ("run-cuda-graph-on-cpu", lambda c: c.run("--provider", "cpu", "--cuda-graph"), 2, "--cuda-graph needs --provider cuda"),
    ("run-tf32-on-cpu", lambda c: c.run("--provider", "cpu", "--tf32"), 2, "--tf32 only acts with --provider cuda"),
    ("run-allow-stale-onnx-only", lambda c: ["run", "--onnx", c.model, "--allow-stale", "--out", c / "o.csv"], 2,
     "--allow-stale only acts with registered models"),
    ("speedrun-target-above-one", lambda c: ["speedrun", "speed-cnn", "--target", "1.5", "--out", c / "s.csv"], 2,
     "--target is a fraction in (0, 1]"),
    ("speedrun-unknown-device", lambda c: ["speedrun", "speed-cnn", "--device", "tpu", "--out", c / "s.csv"], 2,
     "unknown device 'tpu'"),
    ("speedrun-unknown-dataset", lambda c: ["speedrun", "speed-cnn", "--dataset", "cifar10", "--out", c / "s.csv"], 2,
     "unknown dataset 'cifar10'"),
    ("speedrun-unknown-amp", lambda c: ["speedrun", "speed-cnn", "--amp", "fp8", "--out", c / "s.csv"], 2, "unknown --amp 'fp8'"),
    ("speedrun-data-dir-absent", lambda c: ["speedrun", "speed-cnn", "--data-dir", c / "nowhere", "--out", c / "s.csv"], 2,
     "no mnist IDX files in"),
    ("train-all-unknown-device", lambda c: ["train-all", "--profile", "smoke", "--device", "tpu"], 2, "unknown device 'tpu'"),
    ("train-all-seed-negative", lambda c: ["train-all", "--profile", "smoke", "--seed", "-1"], 2, "--seed must be between 0 and"),
    ("train-all-unknown-dataset", lambda c: ["train-all", "--profile", "smoke", "--dataset", "cifar10"], 2,
     "unknown dataset 'cifar10'"),
    ("train-all-data-dir-absent", lambda c: ["train-all", "--profile", "smoke", "--data-dir", c / "nowhere"], 2,
     "no mnist IDX files in"),
    ("train-all-artifacts-under-a-file", lambda c: ["train-all", "--profile", "smoke", "--artifacts-dir", _write(c / "plain.txt", b"x") / "a"], 2,
     "is a file, not a folder"),
    ("train-all-unknown-amp", lambda c: ["train-all", "--profile", "smoke", "--amp", "fp8"], 2, "unknown --amp 'fp8'"),
]
SLOW_CASES = {"run-batch-1e9"}  # over 3 s here: `pytest -m "not slow"` skips it


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


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True)
    return path


def _snapshot(d: Path) -> dict[str, bytes]:
    """Every file under ``d`` and its bytes, and every folder (``b"<dir>"``: a refusal that makes an empty
    folder leaves something too), but the test's own cache and filelock's empty lock files."""
    return {str(p.relative_to(d)): p.read_bytes() if p.is_file() else b"<dir>" for p in d.rglob("*")
            if not p.name.endswith(".lock") and "cache" not in p.relative_to(d).parts}


ELSEWHERE = {
    "two-writers": ("test_results_integrity", "test_a_second_writer_is_refused_and_the_first_completes"),
    "killed-lock": ("test_results_integrity", "test_a_lock_left_by_a_killed_run_does_not_block_the_next"),
    "run-full-disk": ("test_results_integrity", "test_a_full_disk_during_run_gives_one_line_and_keeps_whole_rows"),
    "train-full-disk": ("test_fault_artifacts", "test_train_under_a_full_disk_refuses_before_training"),
    "export-full-disk": ("test_fault_artifacts", "test_export_under_a_full_disk_is_one_line_and_keeps_the_previous_file"),
    "stale-export": ("test_fault_artifacts", "test_stale_or_foreign_exports_are_refused_unless_allowed"),
    "another-checkpoint": ("test_fault_artifacts", "test_another_models_checkpoint_or_a_truncated_export_is_refused"),
    "checkpoint-bytes": ("test_fault_artifacts", "test_every_flipped_or_truncated_byte_is_refused_or_harmless"),
    "checkpoint-metadata": ("test_fault_artifacts", "test_metadata_of_the_wrong_shape_is_refused"),
    "never-ending-model": ("test_fault_artifacts", "test_run_records_a_never_ending_model_as_an_error_row"),
    "ctrl-c-export": ("test_fault_artifacts", "test_interrupt_at_a_random_point_leaves_usable_artifacts"),
    "checkpoint-architecture": ("test_bad_input", "test_checkpoint_of_another_architecture_is_one_line"),
}


# What Typer parses itself, before any command runs: run through the real entry point (the in-process
# CliRunner would show Typer's own boxed panel, which `mnistbench` replaces by one line).
USAGE_CASES = [
    (["run", "--repeat", "x"], "Invalid value for '--repeat': Input should be a valid integer"),
    (["run", "--shuffle-seed", "x"], "Invalid value for '--shuffle-seed'"),
    (["load", "--target-qps", "fast"], "Invalid value for '--target-qps'"),
    (["run", "--bogus"], "No such option: --bogus"),
    (["train"], "Missing argument 'models'"),
    (["bogus-command"], "No such command 'bogus-command'"),
    (["compare", "--format"], "Option '--format' requires an argument"),
]

# Flags with no invalid use (each value is valid with every other option), so no case can name them.
NO_BAD_USE = {
    "all --fast": "a shorter measurement of the run step, valid with any other option",
    "export --int8": "one more variant to write; any combination of --int8, --fp16 and --fp16-io is valid",
    "export --fp16": "as --int8",
    "export --fp16-io": "as --int8",
    "load --accuracy": "LoadGen's accuracy mode beside any scenario (--no-accuracy: without it)",
    "load --null": "the null model beside any scenario (--no-null: without it)",
    "reproduce --ae-study": "on by default; zhu-mlp's autoencoder study, idle for the other models as their papers have none",
    "reproduce --reduce-on-cpu": "how a recipe infeasible on a CPU runs (--full-on-cpu: as written); valid everywhere",
    "run --reference": "the reference network in each group (--no-reference: without it)",
    "run --null": "the null model (--no-null: without it)",
    "run --score": "scoring the test set (--no-score: timing only)",
    "speedrun --channels-last": "a memory format; a no-op for a network without 4-D tensors, never wrong",
    "train --channels-last": "as speedrun's",
    "train-all --channels-last": "as speedrun's",
}


def _named_options() -> set[tuple[str, str]]:
    """(command, option) pairs that a case of that command names, read from this module's source:
    :data:`CASES` (the command from each builder's argv or helper), :data:`USAGE_CASES`."""
    import ast
    import re

    import typer.main

    src = Path(__file__).read_text()
    cases = next(n.value for n in ast.parse(src).body if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "CASES")
    commands = set(typer.main.get_command(app).commands)
    named = set()
    for elt in cases.elts:
        body = ast.get_source_segment(src, elt.elts[1])
        if "TRAIN" in body:
            cmd = "train"
        elif "c.run(" in body:
            cmd = "run"
        elif re.search(r"\bload(_onnx)?\(", body):
            cmd = "load"
        elif "compare(c" in body:
            cmd = "compare"
        else:
            cmd = next((t for t in re.findall(r'"([a-z][a-z-]*)"', body) if t in commands), None)
        named |= {(cmd, o) for o in re.findall(r'"(--[a-z0-9-]+)[="]', body)}
    for args, _ in USAGE_CASES:
        named |= {(args[0], a) for a in args if a.startswith("--")}
    return named


def test_every_option_of_every_command_has_a_case():
    """Each option of each command is named by a case of that command (its ``--no-`` form counts),
    or is a flag listed in :data:`NO_BAD_USE` with the reason no input of it can be bad."""
    import typer.main

    named = _named_options()
    missing, counts = [], {}
    for name, cmd in typer.main.get_command(app).commands.items():
        for p in cmd.params:
            if p.param_type_name != "option" or p.name == "help":
                continue
            hit = any((name, o) in named for o in (*p.opts, *p.secondary_opts))
            counts.setdefault(name, [0, 0])
            counts[name][0] += hit
            counts[name][1] += 1
            if not hit and f"{name} {p.opts[0]}" not in NO_BAD_USE:
                missing.append(f"{name} {p.opts[0]}")
    assert not missing, missing
    for flag in NO_BAD_USE:  # a listed flag that gains a case, or disappears, leaves the list
        name, opt = flag.split(" ")
        p = next((p for p in typer.main.get_command(app).commands[name].params if opt in p.opts), None)
        assert p is not None and not any((name, o) in named for o in (*p.opts, *p.secondary_opts)), flag
    assert sum(n for n, _ in counts.values()) + len(NO_BAD_USE) == sum(t for _, t in counts.values())


@pytest.mark.parametrize("args, words", USAGE_CASES, ids=[" ".join(a) for a, _ in USAGE_CASES])
def test_usage_error(tmp_path, args, words):
    """A value of the wrong type, an unknown option or command, a missing argument or value: one line
    naming the command's help, exit 2, nothing written (bench/cli/entrypoint.py)."""
    res = subprocess.run([sys.executable, "-m", "mnistbench.bench.cli", *args], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path)
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.returncode == 2 and len(lines) == 1 and res.stdout == "", (res.returncode, res.stderr, res.stdout)
    assert lines[0].startswith("mnistbench: error: ") and words in lines[0], lines[0]
    assert "--help)" in lines[0] or args[-1] == "--format"  # where to look, when click knows the command
    assert list(tmp_path.iterdir()) == []


def test_matrix_holds_at_least_sixty_distinct_cases_and_its_table_is_true():
    ids = [c[0] for c in CASES] + list(ELSEWHERE)
    assert len(set(ids)) == len(ids) and len(CASES) >= 60
    here = Path(__file__).parent
    for case, (module, test) in ELSEWHERE.items():
        assert f"def {test}(" in (here / f"{module}.py").read_text(), case
        assert f"| {case} | {module}::{test} |" in __doc__, case


@pytest.mark.parametrize("case, build, code, words",
                         [pytest.param(*c, marks=pytest.mark.slow) if c[0] in SLOW_CASES else c for c in CASES],
                         ids=[c[0] for c in CASES])
def test_bad_input(case, build, code, words, tmp_path, monkeypatch, base):
    if case == "cuda-unusable":
        from mnistbench.bench.runtimes.runtime import check_provider
        from mnistbench.models.errors import ProviderUnavailableError

        try:
            check_provider("cuda")
            pytest.skip("CUDA is really usable on this host")
        except ProviderUnavailableError:
            pass
    monkeypatch.delenv("MNISTBENCH_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    ctx = Ctx(tmp_path, base)
    try:
        built = build(ctx)
        before = _snapshot(tmp_path)
        if callable(built):  # an API case
            with pytest.raises(MnistBenchError) as err:
                built()
            assert err.value.exit_code == code and "\n" not in str(err.value) and words in str(err.value), err.value
        else:
            args = [str(a) for a in built]
            if "--artifacts-dir" not in args and args[0] not in ("table", "compare", "verify", "report", "speedrun", "best"):
                args += ["--artifacts-dir", str(tmp_path / "arts")]
            if args[0] == "run" and "--results-dir" not in args and "--out" not in args:
                args += ["--results-dir", str(tmp_path / "results")]
            res = runner.invoke(app, args)
            lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
            assert res.exit_code == code, (res.exit_code, res.output)
            assert len(lines) == 1, res.stderr
            assert lines[0].startswith(("mnistbench: error: ", "gate: ")) and words in lines[0], lines[0]
            assert "Traceback" not in res.output + res.stderr
        after = _snapshot(tmp_path)
        assert sorted(after) == sorted(before), sorted(set(after) ^ set(before))  # no file added or removed
        assert [k for k in after if after[k] != before[k]] == []  # and none changed
    finally:
        for lock in base.held:
            lock.release()
        base.held.clear()


def test_verify_repair_restores_a_torn_file(tmp_path, base):
    ctx = Ctx(tmp_path, base)
    path = torn(ctx)
    whole = base.results().read_bytes()
    res = runner.invoke(app, ["verify", str(path)])
    assert res.exit_code == 1 and "partial row" in res.output
    res = runner.invoke(app, ["verify", str(path), "--repair"])
    assert res.exit_code == 0 and "dropped the partial last line" in res.output, res.output
    assert path.read_bytes() == whole


def test_verify_reports_and_repair_removes_samples_without_a_row(tmp_path, base):
    from mnistbench.bench.measure import samples as samples_io

    path = Ctx(tmp_path, base).results("orphan.csv")
    folder = samples_io.folder_for(path)
    some = sorted(folder.glob("*.npz"))[0]
    orphan = folder / "20261127T000000Z-abcdef-r0-9999.npz"  # what a run killed between samples and rows leaves
    orphan.write_bytes(some.read_bytes())
    res = runner.invoke(app, ["verify", str(path)])
    assert res.exit_code == 1 and "1 samples files have no row" in res.stderr and orphan.exists()
    res = runner.invoke(app, ["verify", str(path), "--repair"])
    assert res.exit_code == 0 and "removed 1 samples files without a row" in res.output, res.output
    assert not orphan.exists() and some.exists()
    assert runner.invoke(app, ["verify", str(path)]).exit_code == 0


def test_checkpoint_of_another_architecture_is_one_line(tmp_path):
    import torch
    from mnistbench.models.checkpoint import save_checkpoint

    stem = tmp_path / "arts" / "mnist" / "paper" / "seed0" / "lenet5"
    save_checkpoint(stem, {"net.0.weight": torch.ones(2)}, {"model": "lenet5"})
    res = runner.invoke(app, ["export", "lenet5", "--artifacts-dir", str(tmp_path / "arts")])
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.exit_code == 2 and len(lines) == 1 and "does not fit lenet5" in lines[0], res.output


def test_the_committed_option_sweep_covers_every_option_of_every_command():
    """``results/quality/option-sweep.md`` (``scripts/option_sweep.py``: hostile values over every option of
    every command) lists every option of the CLI as it is now, each outcome refused (one line, exit 2,
    nothing left) or accepted (a valid value); none failed. An option added without sweeping it fails here."""
    import typer.main

    text = (Path(__file__).resolve().parent.parent / "results" / "quality" / "option-sweep.md").read_text()
    rows = [[c.strip() for c in ln.strip("|").split("|")] for ln in text.splitlines() if ln.startswith("| ") and "| `--" in ln]
    swept = {(r[0], r[1].strip("`")) for r in rows}
    flags = next(ln for ln in text.splitlines() if ln.startswith("Flags"))
    group = typer.main.get_command(app)
    missing = []
    for name, cmd in group.commands.items():
        for p in cmd.params:
            if p.param_type_name != "option" or p.name == "help":
                continue
            if getattr(p, "is_flag", False):
                ok = f"{name} {p.opts[0]}" in flags
            else:
                ok = (name, p.opts[0]) in swept
            if not ok:
                missing.append(f"{name} {p.opts[0]}")
    assert not missing, missing
    assert {r[3] for r in rows} <= {"refused", "accepted"}, sorted({r[3] for r in rows})
