"""The one exception family for expected failures.

Anything a user can cause (bad data, an unknown model name, an execution
provider that is not really usable, an unwritable folder) raises a subclass of
:class:`MnistBenchError`. The CLI turns it into one line on stderr and a
non-zero exit; everything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import contextlib
import signal
import threading


class MnistBenchError(Exception):
    """Base class of every expected failure. ``exit_code`` is what the CLI returns."""

    exit_code = 1


class UsageError(MnistBenchError):
    """Unusable input given by the user (names, numbers, paths, files): exit 2."""

    exit_code = 2


class DataError(UsageError):
    """A dataset file is missing, truncated, corrupt or fails its checksum."""


class ProviderUnavailableError(MnistBenchError):
    """A requested execution provider or device cannot really be used here."""


class ExportError(MnistBenchError):
    """ONNX export or its parity check against PyTorch failed."""


class StorageError(MnistBenchError, OSError):
    """A file could not be written (disk full, file-size limit, read-only or vanished folder); the
    previous version of the file, if any, is unchanged. Also an ``OSError``, for callers that catch those."""


@contextlib.contextmanager
def keep_interrupts():
    """Inside the block, a Ctrl-C always ends as ``KeyboardInterrupt``, even where a library catches
    it and raises its own error instead (the dynamo ONNX exporter reports it as ``TorchExportError``)
    or swallows it: a SIGINT seen during the block is noted, and whatever the block then raises, or
    its normal end, becomes ``KeyboardInterrupt``. Only in the main thread, under Python's default
    SIGINT handler (elsewhere the block runs unchanged).
    """
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield
        return
    seen = []

    def note(signum, frame):
        seen.append(signum)
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, note)
    try:
        yield
    except BaseException as exc:
        if seen or _from_interrupt(exc):
            raise KeyboardInterrupt from None
        raise
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if seen:
        raise KeyboardInterrupt


def _from_interrupt(exc: BaseException) -> bool:
    """Whether ``exc`` is, or was caused by, a ``KeyboardInterrupt`` (cause and context chains)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


class CallTimeoutError(MnistBenchError):
    """One inference call ran past its time limit (``run --call-timeout``) and was ended."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C would be (:func:`sigterm_as_interrupt`): every clean-up written
    for an interrupt runs, and the command line exits 143 (128 + 15, the shell's convention)."""


_sigterm_received = [False]


def sigterm_as_interrupt(signum, frame) -> None:
    """A SIGTERM handler (the command line installs it): note it and raise :class:`Terminated`. The
    watchdog ends a call in flight on it as on SIGINT."""
    _sigterm_received[0] = True
    raise Terminated


def terminated() -> bool:
    """Whether this process has received SIGTERM through :func:`sigterm_as_interrupt`. A process
    that waits for a child should then pass it on: unlike Ctrl-C in a terminal, which reaches the
    whole process group, SIGTERM reaches only the process it was sent to."""
    return _sigterm_received[0]
