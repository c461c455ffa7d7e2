"""One run in a fresh process, handed its configuration as data.

A fresh interpreter (multiprocessing's ``spawn``: nothing inherited but the environment) receives the
:class:`~mnistbench.bench.measure.config.RunRequest` as ``to_dict`` data and calls
:func:`.planning.execute` itself: process-level state (allocator, thread pools, the model's page
cache) starts anew, as it did when the repeats started the command line, without the library
rebuilding a command line. Used by ``run --repeat`` (:mod:`.repeats`), the Ray executor's node task
and the calibration's separate runs.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
from dataclasses import dataclass

from ...models.errors import MnistBenchError, sigterm_as_interrupt, terminated
from ..measure.config import RunRequest


@dataclass(frozen=True)
class ProcessResult:
    """How a fresh-process run ended: ``exit_code`` as the ``run`` command's (0 ok, 1 failed cells or a
    failed run, 2 unusable input, 130 interrupted) and the error's one line ("" when it succeeded)."""

    exit_code: int
    error: str = ""


def _child(config: dict, env: dict[str, str | None], cwd: str | None, quiet: bool, errors) -> None:
    """The spawned process: rebuild the request, run it, report the error's line and exit code. A
    SIGTERM (passed on by the parent) is an interrupt here too, so the run's own clean-up runs."""
    signal.signal(signal.SIGTERM, sigterm_as_interrupt)
    for k, v in env.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    if cwd:
        os.chdir(cwd)
    from .planning import _stderr, check_failures, execute

    try:
        out = execute(RunRequest.from_dict(config), note=_silent if quiet else _stderr)
        check_failures(out.rows)
    except KeyboardInterrupt:
        errors.put("interrupted")
        sys.exit(130)
    except MnistBenchError as exc:
        errors.put(str(exc))
        sys.exit(exc.exit_code)


def _silent(msg: str) -> None:
    pass


def run_in_fresh_process(req: RunRequest, env: dict[str, str | None] | None = None, cwd: str | None = None,
                         quiet: bool = False) -> ProcessResult:
    """Run ``req`` in a fresh interpreter and wait for it.

    Args:
        req: the run; its ``out_path`` names the CSV the child writes (a repeat's child appends).
        env: environment variables set in the child before it imports the library (e.g.
            ``MNISTBENCH_CACHE`` for an isolated user cache); a value None removes the variable.
        cwd: the child's working folder (None: this process's).
        quiet: drop the child's notes (its errors still come back in the result).

    Returns:
        the child's :class:`ProcessResult`; an exception in the child never raises here.
    """
    ctx = multiprocessing.get_context("spawn")
    errors = ctx.SimpleQueue()
    proc = ctx.Process(target=_child, args=(req.to_dict(), dict(env or {}), cwd, quiet, errors), daemon=False)
    proc.start()
    try:
        proc.join()
    except KeyboardInterrupt:
        if terminated():  # SIGTERM reached this process alone: pass it on (Ctrl-C reached the child too)
            proc.terminate()
        proc.join()  # let the child keep its finished rows and exit
        raise
    message = errors.get() if not errors.empty() else ""
    code = proc.exitcode if proc.exitcode is not None else 1
    if code < 0:  # killed by a signal
        message = message or f"the run process was killed by signal {-code}"
        code = 1
    return ProcessResult(code, message)
