"""Artifacts under faults: checkpoints and exports survive Ctrl-C, kill -9 and full disks; damaged,
stale and misbehaving models are refused or stopped in one line. The fast subset of
scripts/fault_injection.py (the long run) is at the end."""

from __future__ import annotations

import importlib.util
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from mnistbench.bench.measure.pipeline import (
    Artifacts,
    export_model,
    null_model,
    onnx_for,
    read_checkpoint,
    stale_reason,
    train_model,
)
from mnistbench.bench.runtimes.runtime import (
    CELL_ERRORS,
    OrtRuntime,
    SessionConfig,
    call_timeout,
    nonfinite_fraction,
    set_call_timeout,
)
from mnistbench.exporters.onnx import read_metadata
from mnistbench.models.checkpoint import load_checkpoint, save_checkpoint
from mnistbench.models.errors import CallTimeoutError, StorageError, UsageError, keep_interrupts
from mnistbench.models.files import (
    atomic_write_bytes,
    check_writable,
    folders_removed_on_error,
    sha256_file,
    sweep_temp_files,
    temp_path_beside,
)
from mnistbench.models.registry import get_spec
from onnx import TensorProto as T
from onnx import helper as h
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("fault_injection", ROOT / "scripts" / "fault_injection.py")
faults = sys.modules["fault_injection"] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(faults)


def run_limited(limit_bytes: int, args: list[str], **kw) -> subprocess.CompletedProcess:
    """``args`` in a subprocess whose files may not grow past ``limit_bytes`` (RLIMIT_FSIZE: a full disk)."""
    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return subprocess.run(args, preexec_fn=limit, capture_output=True, text=True, timeout=300, **kw)


def one_line(stderr: str) -> str:
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
    assert "Traceback" not in stderr and len(lines) == 1, stderr
    return lines[0]


# ---------------------------------------------------------------- checkpoints: one file, verified


def small_state():
    g = torch.Generator().manual_seed(0)
    return {"fc.weight": torch.randn(4, 3, generator=g), "fc.bias": torch.randn(4, generator=g),
            "bn.num_batches_tracked": torch.tensor(7), "half": torch.randn(2, generator=g).to(torch.bfloat16)}


META = {"model": "m", "dataset": "mnist", "profile": "smoke", "seed": 0, "task": "classify", "test_metric": 0.9,
        "epochs_done": 1}


def test_checkpoint_is_one_file_carrying_weights_and_metadata(tmp_path):
    state = small_state()
    save_checkpoint(tmp_path / "m", state, META)
    (tmp_path / "m.json").unlink()  # the JSON is a copy for people; the checkpoint needs only its one file
    got, meta = load_checkpoint(tmp_path / "m")
    assert all(torch.equal(got[k], state[k]) and got[k].dtype == state[k].dtype for k in state)
    assert {k: meta[k] for k in META} == META
    assert meta["weights_sha256"] == sha256_file(tmp_path / "m.safetensors")


def test_every_flipped_or_truncated_byte_is_refused_or_harmless(tmp_path):
    state = small_state()
    save_checkpoint(tmp_path / "m", state, META)
    blob = (tmp_path / "m.safetensors").read_bytes()
    refused = 0
    for i in range(len(blob)):
        bad = bytearray(blob)
        bad[i] ^= 0x01
        (tmp_path / "m.safetensors").write_bytes(bytes(bad))
        try:
            got, meta = load_checkpoint(tmp_path / "m")
        except UsageError as exc:
            assert "damaged" in str(exc) and "retrain it: mnistbench train m" in str(exc) and "\n" not in str(exc)
            refused += 1
            continue
        # a flip the reader accepts must change nothing the checkpoint says (e.g. a padding byte)
        assert all(torch.equal(got[k], state[k]) for k in state) and {k: meta[k] for k in META} == META
    assert refused > 0.95 * len(blob)  # only bytes outside what the digest covers (e.g. the "format" tag) may flip unnoticed
    for n in range(0, len(blob), 7):
        (tmp_path / "m.safetensors").write_bytes(blob[:n])
        with pytest.raises(UsageError, match="damaged"):
            load_checkpoint(tmp_path / "m")


@pytest.mark.parametrize("meta, words", [
    ({"dataset": "mnist"}, "no 'model'"),
    ({**META, "seed": "0"}, "'seed' is str"),
    ({**META, "test_metric": float("nan")}, "'test_metric' is nan"),
    ({**META, "seed": True}, "'seed' is bool"),
])
def test_metadata_of_the_wrong_shape_is_refused(tmp_path, meta, words):
    save_checkpoint(tmp_path / "m", small_state(), meta)
    with pytest.raises(UsageError, match=words):
        load_checkpoint(tmp_path / "m")


def test_previous_format_checkpoints_are_still_read_and_verified(tmp_path):
    state = {k: v for k, v in small_state().items()}
    save_file(state, str(tmp_path / "old.safetensors"), metadata={"model": "m", "format": "pt"})
    meta = {**META, "weights_sha256": sha256_file(tmp_path / "old.safetensors")}
    (tmp_path / "old.json").write_text(json.dumps(meta))
    got, read = load_checkpoint(tmp_path / "old")
    assert all(torch.equal(got[k], state[k]) for k in state) and read["weights_sha256"] == meta["weights_sha256"]
    blob = bytearray((tmp_path / "old.safetensors").read_bytes())
    blob[-1] ^= 0x01
    (tmp_path / "old.safetensors").write_bytes(bytes(blob))
    with pytest.raises(UsageError, match="does not match the sha256 in old.json"):
        load_checkpoint(tmp_path / "old")
    (tmp_path / "old.json").unlink()
    with pytest.raises(UsageError, match="old.json"):
        load_checkpoint(tmp_path / "old")


# ---------------------------------------------------------------- full disks, unwritable folders, temp files


def test_full_disk_while_saving_a_checkpoint_keeps_the_previous_one(tmp_path):
    save_checkpoint(tmp_path / "m", small_state(), META)
    before = sha256_file(tmp_path / "m.safetensors")
    code = textwrap.dedent(f"""
        import torch
        from pathlib import Path
        from mnistbench.models.checkpoint import save_checkpoint
        from mnistbench.models.errors import StorageError
        try:
            save_checkpoint(Path({str(tmp_path / "m")!r}), {{"w": torch.zeros(50_000)}}, {{"model": "m"}})
        except StorageError as exc:
            print(exc)
    """)
    res = run_limited(20_000, [sys.executable, "-c", code])
    assert res.returncode == 0, res.stderr
    assert "cannot write" in res.stdout and "File too large" in res.stdout and "previous m.safetensors is unchanged" in res.stdout
    assert sha256_file(tmp_path / "m.safetensors") == before
    load_checkpoint(tmp_path / "m")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "m.safetensors"]  # no temporary file


def test_atomic_write_on_an_unwritable_place_is_one_storage_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(StorageError, match="cannot write .*nothing was written"):
        atomic_write_bytes(tmp_path / "file" / "sub" / "a.json", b"{}")
    with pytest.raises(OSError):  # callers that catch OSError still catch it
        atomic_write_bytes(tmp_path / "file" / "a.json", b"{}")


def test_check_writable_refuses_before_any_work(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match="cannot write the checkpoint under"):
        check_writable(tmp_path / "file" / "arts", 1000, "the checkpoint")
    free = shutil.disk_usage(tmp_path).free
    with pytest.raises(UsageError, match="not enough room .* MiB free"):
        check_writable(tmp_path / "arts", free + (1 << 30), "the checkpoint")
    check_writable(tmp_path / "arts", 1 << 20, "the checkpoint")
    assert list((tmp_path / "arts").iterdir()) == []  # the probe is gone


def test_folders_made_by_a_refused_block_are_removed_and_kept_otherwise(tmp_path):
    (tmp_path / "a").mkdir()
    with pytest.raises(UsageError):
        with folders_removed_on_error(tmp_path / "a" / "b" / "c"):
            check_writable(tmp_path / "a" / "b" / "c", 1, "x")
            raise UsageError("refused after the folder was made")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a"]  # b and c gone, a (there before) kept
    with pytest.raises(KeyboardInterrupt):
        with folders_removed_on_error(tmp_path / "a" / "b" / "c"):
            (tmp_path / "a" / "b" / "c").mkdir(parents=True)
            (tmp_path / "a" / "b" / "kept.txt").write_text("x")
            raise KeyboardInterrupt
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == ["a", "a/b", "a/b/kept.txt"]
    with folders_removed_on_error(tmp_path / "d"):
        (tmp_path / "d").mkdir()
    assert (tmp_path / "d").is_dir()  # no error: kept


def test_sweep_removes_only_files_of_dead_writers(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    mine = temp_path_beside(tmp_path / "a.onnx")
    theirs = tmp_path / f".a.onnx.{int(dead.stdout)}.0badc0de.tmp"
    legacy_old, legacy_new = tmp_path / ".b.onnx.tmp", tmp_path / ".c.onnx.tmp"
    for p in (mine, theirs, legacy_old, legacy_new, tmp_path / "keep.onnx"):
        p.write_bytes(b"x")
    os.utime(legacy_old, (time.time() - 7200, time.time() - 7200))
    assert sorted(p.name for p in sweep_temp_files(tmp_path)) == sorted([theirs.name, legacy_old.name])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([mine.name, legacy_new.name, "keep.onnx"])


@pytest.fixture(scope="module")
def arts(mnist_small, tmp_path_factory):
    """zhu-mlp trained (smoke, 2,000 real images) and exported with an int8 variant."""
    a = Artifacts(tmp_path_factory.mktemp("arts"), "mnist", "smoke", 0)
    train_model(get_spec("zhu-mlp"), mnist_small, a, "cpu")
    export_model(get_spec("zhu-mlp"), mnist_small, a)
    return a


def cli(*args) -> list[str]:
    return [sys.executable, "-m", "mnistbench.bench.cli", *map(str, args)]


@pytest.mark.slow
@pytest.mark.integration
def test_train_under_a_full_disk_refuses_before_training(arts, real_data_root):
    before = sha256_file(arts.checkpoint("zhu-mlp").with_suffix(".safetensors"))
    res = run_limited(50_000, cli("train", "zhu-mlp", "--profile", "smoke", "--device", "cpu", "--artifacts-dir",
                                  arts.root, "--data-dir", real_data_root))
    assert res.returncode == 2 and "not enough room for the checkpoint of zhu-mlp" in one_line(res.stderr)
    assert "File too large" in res.stderr
    assert sha256_file(arts.checkpoint("zhu-mlp").with_suffix(".safetensors")) == before
    assert faults.temp_files(arts.root) == []


@pytest.mark.integration
def test_export_under_a_full_disk_is_one_line_and_keeps_the_previous_file(arts, mnist_small):
    path = arts.onnx("zhu-mlp")
    before = sha256_file(path)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, hard))  # this process: restored below
    try:
        with pytest.raises(StorageError) as exc:
            export_model(get_spec("zhu-mlp"), mnist_small, arts)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert str(exc.value) == f"cannot write {path}: File too large; the previous zhu-mlp.onnx is unchanged"
    assert sha256_file(path) == before and faults.temp_files(arts.root) == []


# ---------------------------------------------------------------- Ctrl-C kept as Ctrl-C


def test_an_interrupt_a_library_disguises_is_still_an_interrupt():
    """Run in a child process: a SIGINT sent to the pytest process itself, after other tests loaded
    native runtimes and threads, ended the whole suite with a segmentation fault once."""
    code = textwrap.dedent("""
        import os, signal, time
        from mnistbench.models.errors import keep_interrupts

        def exporter_that_wraps_interrupts():
            try:
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.5)
            except KeyboardInterrupt as exc:
                raise RuntimeError("TorchExportError: export failed") from exc

        def exporter_that_swallows_interrupts():
            try:
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.5)
            except KeyboardInterrupt:
                pass

        seen = []
        for fn in (exporter_that_wraps_interrupts, exporter_that_swallows_interrupts):
            try:
                with keep_interrupts():
                    fn()
            except KeyboardInterrupt:
                seen.append("interrupt")
        try:
            with keep_interrupts():
                raise ValueError("x")
        except ValueError:
            seen.append("value error")  # other errors pass unchanged
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        print(",".join(seen))
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         preexec_fn=faults.default_sigint)
    assert res.returncode == 0 and res.stdout.strip() == "interrupt,interrupt,value error", res.stderr


# ---------------------------------------------------------------- stale exports


@pytest.mark.slow
@pytest.mark.integration
def test_stale_or_foreign_exports_are_refused_unless_allowed(arts, tmp_path, real_data_root):
    spec = get_spec("zhu-mlp")
    copy = Artifacts(tmp_path / "arts", "mnist", "smoke", 0)
    shutil.copytree(arts.dir, copy.dir)
    path, meta = onnx_for(spec, copy)
    assert stale_reason(spec, copy, path, meta) is None
    state, ck_meta = read_checkpoint(spec, copy)
    save_checkpoint(copy.checkpoint("zhu-mlp"), {k: v * 1.01 for k, v in state.items()}, ck_meta)  # retrained
    new = sha256_file(copy.checkpoint("zhu-mlp").with_suffix(".safetensors"))
    with pytest.raises(UsageError) as exc:
        onnx_for(spec, copy)
    msg = str(exc.value)
    assert f"exported (" in msg and meta["checkpoint_sha256"][:12] in msg and new[:12] in msg
    assert "mnistbench export zhu-mlp --profile smoke --seed 0" in msg and "--allow-stale" in msg
    assert onnx_for(spec, copy, allow_stale=True)[0] == path
    res = subprocess.run(cli("run", "zhu-mlp", "--profile", "smoke", "--artifacts-dir", copy.root, "--data-dir",
                             real_data_root, "--out", tmp_path / "r.csv"), capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "is stale" in one_line(res.stderr) and not (tmp_path / "r.csv").exists()

    for other, words in ((arts.onnx("zhu-mlp"), "holds model 'zhu-mlp', not lenet5"),
                         (null_model(tmp_path), "holds a network mnistbench did not export, not lenet5")):
        lenet = Artifacts(tmp_path / f"l{len(words)}", "mnist", "smoke", 0)
        save_checkpoint(lenet.checkpoint("lenet5"), get_spec("lenet5").build().state_dict(), {"model": "lenet5"})
        shutil.copy(other, lenet.onnx("lenet5"))
        with pytest.raises(UsageError, match=words):
            onnx_for(get_spec("lenet5"), lenet)


def test_another_models_checkpoint_or_a_truncated_export_is_refused(tmp_path):
    lenet = Artifacts(tmp_path, "mnist", "smoke", 0)
    save_checkpoint(lenet.checkpoint("lenet5"), get_spec("lenet5").build().state_dict(), {"model": "zhu-cnn"})
    with pytest.raises(UsageError, match="holds model 'zhu-cnn', not lenet5; retrain it: mnistbench train lenet5"):
        read_checkpoint(get_spec("lenet5"), lenet)
    proto = onnx.load(str(null_model(tmp_path)))
    lenet.onnx("lenet5").write_bytes(proto.SerializeToString()[:-9])
    with pytest.raises(UsageError, match="not a readable ONNX model .*run: mnistbench export lenet5"):
        onnx_for(get_spec("lenet5"), lenet)


# ---------------------------------------------------------------- misbehaving models


def forever_model(path: Path) -> Path:
    """A classifier-shaped model, (N, 784) float32 -> (N, 10), whose Loop condition never turns false."""
    body = h.make_graph(
        [h.make_node("Identity", ["cond_in"], ["cond_out"]), h.make_node("Add", ["v_in", "one"], ["v_out"])], "body",
        [h.make_tensor_value_info("iter", T.INT64, []), h.make_tensor_value_info("cond_in", T.BOOL, []),
         h.make_tensor_value_info("v_in", T.FLOAT, None)],
        [h.make_tensor_value_info("cond_out", T.BOOL, []), h.make_tensor_value_info("v_out", T.FLOAT, None)],
        [h.make_tensor("one", T.FLOAT, [], [1.0])])
    g = h.make_graph(
        [h.make_node("Constant", [], ["cond"], value=h.make_tensor("c", T.BOOL, [], [True])),
         h.make_node("Loop", ["", "cond", "input"], ["looped"], body=body),
         h.make_node("Slice", ["looped", "starts", "ends", "axes"], ["logits"])],
        "forever", [h.make_tensor_value_info("input", T.FLOAT, ["batch", 784])],
        [h.make_tensor_value_info("logits", T.FLOAT, ["batch", 10])],
        [h.make_tensor("starts", T.INT64, [1], [0]), h.make_tensor("ends", T.INT64, [1], [10]),
         h.make_tensor("axes", T.INT64, [1], [1])])
    m = h.make_model(g, opset_imports=[h.make_opsetid("", 18)])
    m.ir_version = 10
    onnx.checker.check_model(m, full_check=True)
    onnx.save(m, str(path))
    return path


def test_a_call_that_never_returns_is_ended_by_the_time_limit(tmp_path):
    path = forever_model(tmp_path / "forever.onnx")
    set_call_timeout(0.5)
    try:
        rt = OrtRuntime(path, SessionConfig("cpu", 1))
    finally:
        set_call_timeout(None)
    assert call_timeout() == 60.0
    with pytest.raises(CallTimeoutError, match=r"over the limit of 0.5 s per call \(run --call-timeout"):
        rt.run(np.zeros((2, 784), np.float32))
    assert issubclass(CallTimeoutError, CELL_ERRORS)  # the runner records it as an error row
    with pytest.raises(UsageError, match="--call-timeout"):
        set_call_timeout(-1)


def test_ctrl_c_stops_a_call_that_never_returns(tmp_path):
    path = forever_model(tmp_path / "forever.onnx")
    code = textwrap.dedent(f"""
        import numpy as np
        from pathlib import Path
        from mnistbench.bench.runtimes.runtime import OrtRuntime, SessionConfig, set_call_timeout
        set_call_timeout(0)  # no time limit: only Ctrl-C can end the call
        rt = OrtRuntime(Path({str(path)!r}), SessionConfig("cpu", 1))
        print("calling", flush=True)
        try:
            rt.run(np.zeros((2, 784), np.float32))
        except KeyboardInterrupt:
            print("interrupted", flush=True)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=faults.default_sigint)  # Ctrl-C handled even when pytest runs in the background
    try:
        assert proc.stdout.readline().strip() == "calling"
        time.sleep(0.5)  # inside the call
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)  # a hang fails here
    finally:
        proc.kill()  # never leave a call that does not end burning a CPU after the test (one ran for an hour)
    assert proc.returncode == 0 and out.strip() == "interrupted", err


@pytest.mark.slow
@pytest.mark.integration
def test_run_records_a_never_ending_model_as_an_error_row(tmp_path, real_data_root):
    from mnistbench.bench.measure.records import read_csv

    path = forever_model(tmp_path / "forever.onnx")
    res = subprocess.run(cli("run", "--onnx", path, "--no-null", "--no-score", "--batch-sizes", "1", "--threads", "1",
                             "--call-timeout", "1", "--data-dir", real_data_root, "--out", tmp_path / "r.csv"),
                         capture_output=True, text=True, timeout=300)
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("mnistbench:")]  # beside the progress bar
    assert res.returncode == 1 and "Traceback" not in res.stderr and len(errors) == 1 and "CallTimeoutError" in errors[0]
    rows = read_csv(tmp_path / "r.csv")
    assert [r.status for r in rows] == ["error"] and "over the limit of 1 s" in rows[0].error


def _in_the_call(proc: subprocess.Popen, timeout_s: float = 120) -> None:
    """Wait until ``proc`` or a child of it is inside the never-ending model's call: that Loop grows
    the process by about 150 MiB/s, so a resident size past 600 MiB (the command line before the
    call: under 300 MiB) says the call is in flight."""
    import psutil

    t_end = time.monotonic() + timeout_s
    while time.monotonic() < t_end:
        try:
            procs = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
            if max(p.memory_info().rss for p in procs) > 600 * 2**20:
                return
        except psutil.Error:
            pass
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError("the never-ending call did not start")


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_sigint_and_sigterm_stop_a_run_inside_a_call_that_never_returns(tmp_path, real_data_root, sig, code):
    """Ctrl-C and SIGTERM end the call through the watchdog (RunOptions.terminate), print one line
    and exit 130 / 143 (128 + the signal), leaving no file; scripts/interrupt_latency.py times it."""
    path = forever_model(tmp_path / "forever.onnx")
    proc = subprocess.Popen(cli("run", "--onnx", path, "--no-null", "--no-score", "--batch-sizes", "1", "--threads", "1",
                                "--call-timeout", "0", "--data-dir", real_data_root, "--out", tmp_path / "r.csv"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=faults.default_sigint)
    try:
        _in_the_call(proc)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)  # a hang fails here
    finally:
        proc.kill()
    lines = [ln for ln in err.splitlines() if ln.startswith("mnistbench:")]
    assert proc.returncode == code and "Traceback" not in err and len(lines) == 1 and "interrupted" in lines[0], err
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == ["forever.onnx", "r.csv.lock"], left  # no CSV, samples or temporary file; the writer's lock file stays


@pytest.mark.slow
@pytest.mark.integration
def test_sigterm_reaches_the_fresh_process_of_a_repeat(tmp_path, real_data_root):
    """SIGTERM reaches only the process it is sent to (Ctrl-C reaches the whole process group): a
    `run --repeat` parent passes it on to the fresh process it waits for, and neither is left."""
    import psutil

    path = forever_model(tmp_path / "forever.onnx")
    proc = subprocess.Popen(cli("run", "--onnx", path, "--no-null", "--no-score", "--batch-sizes", "1", "--threads", "1",
                                "--call-timeout", "0", "--repeat", "2", "--data-dir", real_data_root,
                                "--out", tmp_path / "r.csv"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=faults.default_sigint)
    try:
        _in_the_call(proc)
        children = psutil.Process(proc.pid).children(recursive=True)
        assert children
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        gone, alive = psutil.wait_procs(children, timeout=10)
    finally:
        for p in psutil.Process(proc.pid).children(recursive=True) if proc.poll() is None else []:
            p.kill()  # never leave the never-ending call burning a CPU after the test
        proc.kill()
    assert proc.returncode == 143 and "Traceback" not in err and not alive, err


def test_nonfinite_fraction_of_real_model_outputs(tmp_path):
    g = h.make_graph([h.make_node("Log", ["x"], ["y"])], "log", [h.make_tensor_value_info("x", T.FLOAT, ["N", 4])],
                     [h.make_tensor_value_info("y", T.FLOAT, ["N", 4])])
    m = h.make_model(g, opset_imports=[h.make_opsetid("", 18)])
    m.ir_version = 10
    onnx.save(m, str(tmp_path / "log.onnx"))
    rt = OrtRuntime(tmp_path / "log.onnx", SessionConfig("cpu", 1))
    y = rt.run(np.array([[1, 2, -1, 0], [3, 4, 5, 6]], np.float32))  # log(-1) = nan, log(0) = -inf
    assert nonfinite_fraction(y) == 0.25
    assert nonfinite_fraction(rt.run(np.ones((3, 4), np.float32))) == 0.0
    assert nonfinite_fraction(np.zeros((0, 10), np.float32)) == 0.0 and nonfinite_fraction(np.arange(3)) == 0.0


def log_of_signed_sums(path: Path) -> Path:
    """float32 (N, 784) -> (N, 10): log(x*x @ W), W's first 3 columns -1, the other 7 +1. Every
    MNIST image has a non-zero pixel, so columns 0-2 are log of a negative sum (NaN) and 3-9 are
    finite: exactly 30% of the output values are non-finite, whatever the preprocessing."""
    w = np.ones((784, 10), np.float32)
    w[:, :3] = -1
    nodes = [h.make_node("Mul", ["x", "x"], ["sq"]), h.make_node("MatMul", ["sq", "w"], ["s"]),
             h.make_node("Log", ["s"], ["y"])]
    g = h.make_graph(nodes, "logsum", [h.make_tensor_value_info("x", T.FLOAT, ["N", 784])],
                     [h.make_tensor_value_info("y", T.FLOAT, ["N", 10])], [onnx.numpy_helper.from_array(w, "w")])
    m = h.make_model(g, opset_imports=[h.make_opsetid("", 18)])
    m.ir_version = 10
    onnx.save(m, str(path))
    return path


@pytest.mark.slow
@pytest.mark.integration
def test_run_flags_nonfinite_outputs_on_the_row_and_warns(tmp_path, mnist, real_data_root):
    from mnistbench.bench.measure.records import read_csv

    path = log_of_signed_sums(tmp_path / "logsum.onnx")
    out = tmp_path / "nf.csv"
    res = subprocess.run(cli("run", "--onnx", path, "--no-null", "--batch-sizes", "1,4", "--threads", "1", "--min-s",
                             "0.1", "--data-dir", real_data_root, "--artifacts-dir", tmp_path / "arts", "--out", out),
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
    rows = [r for r in read_csv(out) if r.task != "reference"]
    assert len(rows) == 2 and all(r.nonfinite_fraction == pytest.approx(0.3) for r in rows)
    assert all(r.eval_images == 10_000 for r in rows)  # the fraction is over the whole scored test set
    warn = [ln for ln in res.stderr.splitlines() if "non-finite outputs" in ln]
    assert len(warn) == 1 and "2 of " in warn[0] and "logsum" in warn[0] and "(30.00%)" in warn[0], res.stderr
    ref = [r for r in read_csv(out) if r.task == "reference"]
    assert ref and all(r.nonfinite_fraction == 0.0 for r in ref)  # a healthy model scores 0, not empty
    unscored = tmp_path / "ns.csv"
    res = subprocess.run(cli("run", "--onnx", path, "--no-null", "--no-score", "--batch-sizes", "1", "--threads", "1",
                             "--min-s", "0.1", "--data-dir", real_data_root, "--artifacts-dir", tmp_path / "arts",
                             "--out", unscored), capture_output=True, text=True, timeout=300)
    assert res.returncode == 0 and "non-finite" not in res.stderr, res.stderr
    assert all(np.isnan(r.nonfinite_fraction) for r in read_csv(unscored))  # not scored: empty, never 0


# ---------------------------------------------------------------- fault injection, fast subset


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.parametrize("command, sig", [("train", "SIGINT"), ("train", "SIGKILL"), ("export", "SIGINT"),
                                          ("export", "SIGKILL")])
def test_interrupt_at_a_random_point_leaves_usable_artifacts(arts, real_data_root, command, sig):
    delay = round(random.Random(f"{command}{sig}").uniform(0.8, 4.0), 2)  # fixed per case, reproducible
    known = {read_metadata(arts.onnx("zhu-mlp"))["checkpoint_sha256"],
             sha256_file(arts.checkpoint("zhu-mlp").with_suffix(".safetensors"))}
    p = faults.inject(faults.Point(command, sig, delay), arts, real_data_root, known)
    assert p.problems == [], p
    assert p.rc == (0 if p.finished else {"SIGINT": 130, "SIGKILL": -9}[sig])
    assert faults.temp_files(arts.root) == []
