"""How the ``mnistbench`` process ends: the exit code of a Typer app, with Ctrl-C handled
everywhere (one line, exit 130), SIGTERM as an interrupt (exit 143), click's usage errors as one
line (exit 2), and interpreter shutdown kept from changing the code."""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading

import typer

from ...models import errors

# Click's exceptions as Typer raises them (Typer 0.29 vendors click; this finds them either way).
_click = sys.modules[typer.BadParameter.__module__]

_interrupt_reported: list[BaseException] = []


def note_interrupt_reported(exc: BaseException) -> None:
    """Called by the error boundary once it printed its interrupt line for ``exc`` (``run_app`` then
    prints none). ``exc`` is kept alive until the process exits: Typer releases the ``Exit`` the
    boundary raises, and with it this exception's traceback, whose frames hold the command's sessions
    (see :func:`run_app`)."""
    _interrupt_reported.append(exc)


def reported_interrupt() -> bool:
    return bool(_interrupt_reported)


def usage_line(exc: _click.UsageError) -> str:
    """A click usage error as one line: its message, then where the command's help is, e.g.
    ``Invalid value for '--repeat': 'x' is not a valid integer (see mnistbench run --help)``."""
    message = " ".join(exc.format_message().split()).rstrip(".")
    ctx = exc.ctx
    return f"{message} (see {ctx.command_path} --help)" if ctx is not None else message


def run_app(app: typer.Typer, starting_handler) -> None:
    """Run ``app`` and exit with its code. ``starting_handler``, the SIGINT handler installed while the
    command line still imports, is replaced by Python's own first. A Ctrl-C outside a command's error
    boundary exits 130 with one line; SIGTERM is an interrupt too (:class:`models.errors.Terminated`),
    exit 143;
    once the command has returned, a Ctrl-C or SIGTERM during interpreter shutdown changes nothing."""
    if signal.getsignal(signal.SIGINT) is starting_handler:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, errors.sigterm_as_interrupt)
    held = None  # the exception that ended the command, kept alive until os._exit (below)
    try:
        # Not standalone: click's usage errors (an unknown option, a value of the wrong type, a missing
        # argument) come here, to be one line like every other bad input, not Typer's boxed panel.
        # Commands return None, so an int is an exit code (typer.Exit); a Ctrl-C is Exit(130) too.
        rv = app(standalone_mode=False)
        code = rv if type(rv) is int else 0
        if code == 130 and not reported_interrupt():
            print("mnistbench: interrupted", file=sys.stderr)  # a Ctrl-C while Typer parsed
    except _click.NoArgsIsHelpError:
        code = 2  # the help, already printed
    except _click.UsageError as exc:
        print(f"mnistbench: error: {usage_line(exc)}", file=sys.stderr)
        code, held = 2, exc
    except typer.Abort:  # (Typer 0.29 keeps it in typer.exceptions, not with click's others)
        print("mnistbench: aborted", file=sys.stderr)
        code = 1
    except _click.ClickException as exc:
        print(f"mnistbench: error: {' '.join(exc.format_message().split())}", file=sys.stderr)
        code, held = exc.exit_code, exc
    except SystemExit as exc:
        code, held = exc.code, exc
        if isinstance(getattr(exc.__context__, "__cause__", None), KeyboardInterrupt):
            print("mnistbench: interrupted", file=sys.stderr)  # Typer ends a Ctrl-C while parsing with a silent 130
    except KeyboardInterrupt as exc:
        print("mnistbench: interrupted", file=sys.stderr)
        code, held = 130, exc
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if code == 130 and errors.terminated():
        code = 143
    if code in (130, 143):
        # Interrupted: every file this process writes is already whole on disk (atomic renames, fsynced
        # appends) and the command's own clean-up ran while the interrupt unwound it; the interpreter's
        # shutdown (torch, ONNX Runtime, OpenVINO and their threads) took 2-3 s more here, past the
        # promise that Ctrl-C stops a command within a second. End now, and before the exception is
        # released: its traceback holds the command's frames, and with them its sessions, whose
        # destructors would free their memory one block at a time first (2.2 s of CPU for the
        # never-ending Loop model's 0.9 GiB, scripts/interrupt_latency.py).
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    del held  # any other exit releases the command's objects as usual
    _interrupt_reported.clear()
    if sys.implementation.name == "cpython":
        # Where Ctrl-C lands while a C extension runs Python code through PyRun_* (the ONNX exporter
        # does), CPython notes "KeyboardInterrupt went unhandled" even though the command handled it,
        # and would end `python -m` by SIGINT (status -2) instead of `code`; any PyRun_* call clears it.
        ctypes.pythonapi.PyRun_SimpleString(b"pass")
    sys.exit(code)
