"""Crash safety with a real process and a real signal: Ctrl-C keeps every finished row, --resume completes the rest."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from mnistbench.bench.measure.pipeline import Artifacts, export_model, train_model
from mnistbench.bench.measure.records import read_csv
from mnistbench.models.registry import get_spec

BATCHES = "1,2,4,8,16,32"


@pytest.fixture(scope="module")
def smoke_artifacts(mnist_small, tmp_path_factory):
    arts = Artifacts(tmp_path_factory.mktemp("arts"), "mnist", "smoke", 0)
    for name in ("zhu-mlp", "lenet5"):
        train_model(get_spec(name), mnist_small, arts, "cpu")
        export_model(get_spec(name), mnist_small, arts)
    return arts


def cli(*args):
    return [sys.executable, "-m", "mnistbench.bench.cli", *map(str, args)]


def _sigint_as_in_a_terminal():
    """The child's SIGINT disposition, stated: a test run started as a shell's background job (``cmd &``,
    nohup, CI runners) hands its children SIGINT *ignored*, which Python and the command line then keep
    (as a nohup'd run should), and the Ctrl-C below would be lost for reasons outside mnistbench."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.slow
@pytest.mark.integration
def test_sigint_keeps_finished_rows_and_resume_completes_only_missing_cells(smoke_artifacts, real_data_root, tmp_path):
    out = tmp_path / "run.csv"
    common = ["zhu-mlp", "lenet5", "--profile", "smoke", "--artifacts-dir", smoke_artifacts.root, "--data-dir",
              real_data_root, "--batch-sizes", BATCHES, "--no-null", "--min-s", "0.4", "--max-live-sessions", "2", "--out", out]
    proc = subprocess.Popen(cli("run", *common), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_sigint_as_in_a_terminal)
    deadline = time.time() + 120
    while time.time() < deadline:  # wait until the first group (2 cells + their reference cells) is written
        if out.exists() and sum(1 for _ in open(out)) >= 3:
            break
        time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail("no rows appeared within 120 s")
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    every = read_csv(out)  # readable: every line a complete row
    kept = [r for r in every if r.task != "reference"]
    assert 2 <= len(kept) < 12 and len(kept) % 2 == 0 and all(r.status == "ok" for r in every)
    assert out.read_text().endswith("\n")

    res = subprocess.run(cli("run", *common, "--resume"), capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    rows = [r for r in read_csv(out) if r.task != "reference"]
    keys = [r.config_id for r in rows]
    assert len(rows) == 12 and len(set(keys)) == 12  # 2 models x 6 batch sizes, each exactly once
    assert keys[: len(kept)] == [r.config_id for r in kept]  # kept rows untouched
    assert f"{len(kept)} cells were already in run.csv, {12 - len(kept)} measured now" in res.stdout
    stored = sorted(p.stem for p in (tmp_path / "run.samples").glob("*.npz"))
    assert stored == sorted(r.cell_id for r in read_csv(out))  # every row, reference rows too, has its samples
    assert not list((tmp_path / "run.samples").glob(".*"))  # no temporary file left


@pytest.mark.slow
@pytest.mark.integration
def test_refuses_to_overwrite_results(smoke_artifacts, real_data_root, tmp_path):
    out = tmp_path / "r.csv"
    out.write_text("keep me\n")
    res = subprocess.run(cli("run", "zhu-mlp", "--profile", "smoke", "--artifacts-dir", smoke_artifacts.root,
                             "--out", out), capture_output=True, text=True)
    assert res.returncode == 2 and "exists" in res.stderr and out.read_text() == "keep me\n"


def test_sigint_inside_a_cell_commit_is_held_until_the_commit_ends():
    from mnistbench.bench.measure.runner import _deferred_sigint

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal (see above)
    try:
        steps = []
        with pytest.raises(KeyboardInterrupt):
            with _deferred_sigint():
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.05)  # the signal is handled here, and must not interrupt
                steps.append("commit finished")
        assert steps == ["commit finished"]
        with _deferred_sigint():  # no signal, no exception; the default handler is back afterwards
            pass
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, previous)


def test_an_interrupt_exits_before_the_commands_objects_are_freed(tmp_path):
    """After Ctrl-C the process ends by os._exit with the interrupt's traceback still held, so the
    command's objects (its sessions: 2.2 s of CPU freeing a never-ending Loop's memory,
    results/faults/interrupt-latency) are never destroyed one by one on the way out. A destructor that
    would write a file must not run; on a normal exit it does."""
    code = textwrap.dedent(f"""
        import sys, typer
        from mnistbench.bench.cli.app import guarded
        from mnistbench.bench.cli.entrypoint import run_app

        class Session:
            def __del__(self):
                open({str(tmp_path / "freed")!r} + sys.argv[-1], "w").close()

        app = typer.Typer()

        @app.command()
        @guarded
        def go(how: str) -> None:
            session = Session()
            if how == "interrupt":
                raise KeyboardInterrupt

        @app.command()
        def other() -> None:
            pass

        run_app(app, None)
    """)
    for how, exit_code, freed in (("interrupt", 130, False), ("normal", 0, True)):
        res = subprocess.run([sys.executable, "-c", code, "go", how], capture_output=True, text=True, timeout=60)
        assert res.returncode == exit_code, res.stderr
        assert (tmp_path / f"freed{how}").exists() == freed, (how, res.stderr)
        assert ("mnistbench: interrupted" in res.stderr) == (how == "interrupt"), res.stderr


def test_an_abort_is_one_line_and_a_bug_keeps_its_own_traceback():
    """``typer.Abort`` (click's, e.g. a prompt cut short) ends with one line and exit 1; any other
    exception is a bug and keeps its own traceback (the boundary once looked Abort up where Typer 0.29
    does not keep it, so every bug's traceback ended in an AttributeError of the boundary's)."""
    code = textwrap.dedent("""
        import typer
        from mnistbench.bench.cli.entrypoint import run_app

        app = typer.Typer()

        @app.command()
        def go(how: str) -> None:
            if how == "abort":
                raise typer.Abort()
            raise ZeroDivisionError("a bug")

        @app.command()
        def other() -> None:
            pass

        run_app(app, None)
    """)
    res = subprocess.run([sys.executable, "-c", code, "go", "abort"], capture_output=True, text=True, timeout=60)
    assert (res.returncode, res.stderr) == (1, "mnistbench: aborted\n")
    res = subprocess.run([sys.executable, "-c", code, "go", "bug"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 1 and res.stderr.rstrip().endswith("ZeroDivisionError: a bug"), res.stderr
    assert "AttributeError" not in res.stderr
