"""One ONNX Runtime call and how it can end: the per-call time limit (:func:`set_call_timeout`,
:func:`call_timeout`), the guard and the one watchdog thread that end a call past it or on Ctrl-C
(:class:`CallGuard`, :class:`_Watchdog`), and what a failing call or cell raises
(:data:`ORT_ERRORS`, :data:`CELL_ERRORS`, reported in one line by :func:`first_line`).
"""

from __future__ import annotations

import contextlib
import math
import os
import select
import signal
import threading
import time
import weakref
from typing import Callable

import onnxruntime as ort

from ...models.errors import CallTimeoutError, ProviderUnavailableError, UsageError


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (runtimes' messages run to many lines), or its type
    name when the message is empty."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# Per-call time limit of ONNX Runtime calls (`run --call-timeout`): generous, so that it only ends calls
# that would never return (a Loop whose condition stays true), never a slow but finite one.
DEFAULT_CALL_TIMEOUT_S = 60.0
_limit = {"s": DEFAULT_CALL_TIMEOUT_S}


def set_call_timeout(seconds: float | None) -> None:
    """Set the time limit of every ONNX Runtime call made from now on (sessions created after it):
    ``None`` restores :data:`DEFAULT_CALL_TIMEOUT_S`, 0 means no limit.

    Raises:
        UsageError: a negative or non-finite number.
    """
    seconds = DEFAULT_CALL_TIMEOUT_S if seconds is None else float(seconds)
    if not math.isfinite(seconds) or seconds < 0:
        raise UsageError(f"--call-timeout must be a number of seconds, 0 or more (0: no limit), got {seconds:g}")
    _limit["s"] = seconds


def call_timeout() -> float:
    """The current per-call time limit in seconds (0: none)."""
    return _limit["s"]


class CallGuard:
    """Ends an ONNX Runtime call that runs past ``limit_s`` seconds, or that Ctrl-C should stop.

    ONNX Runtime releases the GIL during a call and runs Python's SIGINT handler only once the call
    returns, so a call that never returns can be stopped only from another thread: one shared
    watchdog thread (see :class:`_Watchdog`) sets ``RunOptions.terminate`` on the call in flight
    when its time is up or when SIGINT or SIGTERM arrives (it learns of them through
    ``signal.set_wakeup_fd``). The caller passes :attr:`options` to the call and marks it with
    :attr:`started`; the hot path costs one clock read and two attribute stores.

    Attributes:
        limit_s: the limit (0: none); defaults to :func:`call_timeout`.
        options: the ``onnxruntime.RunOptions`` to pass to every call (replaced after a termination).
        started: ``time.monotonic()`` at the start of the call in flight, None between calls.
    """

    __slots__ = ("limit_s", "options", "started", "why", "__weakref__")

    def __init__(self, limit_s: float | None = None) -> None:
        self.limit_s = call_timeout() if limit_s is None else limit_s
        self.options = ort.RunOptions()
        self.started: float | None = None
        self.why: str | None = None  # set by the watchdog: "timeout" or "interrupt"
        _Watchdog.get().watch(self)

    def ended(self, exc: BaseException) -> None:
        """Called in the ``except`` of a call that raised ``exc`` (:attr:`started` still set).

        Returns (the caller retries once) when the watchdog ended this call by a race with the one
        before it; re-raises ``exc`` when the watchdog had no part in it.

        Raises:
            KeyboardInterrupt: SIGINT arrived during the call.
            CallTimeoutError: the call ran past the limit (one line, with the limit and the option).
        """
        why, self.why = self.why, None
        if why is None:
            raise exc
        elapsed = time.monotonic() - (self.started or time.monotonic())
        self.options = ort.RunOptions()  # terminate stays set on the old one
        if why == "interrupt":
            raise KeyboardInterrupt from None
        if elapsed >= self.limit_s > 0:
            raise CallTimeoutError(f"ONNX Runtime call ended after {elapsed:.1f} s, over the limit of {self.limit_s:g} s "
                                   "per call (run --call-timeout S; 0 for none)") from None

    def call(self, fn: Callable[[ort.RunOptions], object]):
        """``fn(options)`` under the guard (for calls off the hot path)."""
        self.started = time.monotonic()
        try:
            return fn(self.options)
        except ORT_ERRORS as exc:
            self.ended(exc)
            return self.call(fn)
        finally:
            self.started = None


class _Watchdog:
    """The one daemon thread that ends guarded calls (see :class:`CallGuard`)."""

    _one: "_Watchdog | None" = None
    _made = threading.Lock()

    @classmethod
    def get(cls) -> "_Watchdog":
        with cls._made:
            if cls._one is None:
                cls._one = cls()
            return cls._one

    def __init__(self) -> None:
        self._guards: weakref.WeakSet[CallGuard] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._wake = self._sigint_pipe()
        threading.Thread(target=self._loop, name="mnistbench-call-watchdog", daemon=True).start()

    @staticmethod
    def _sigint_pipe() -> int | None:
        """The read end of a pipe Python's C-level signal handler writes each signal number to, or
        None where that cannot be had (not the main thread, or the wakeup fd already taken)."""
        if threading.current_thread() is not threading.main_thread():
            return None
        r, w = os.pipe()
        os.set_blocking(r, False)
        os.set_blocking(w, False)
        old = signal.set_wakeup_fd(w, warn_on_full_buffer=False)
        if old != -1:  # someone else (an event loop) owns it: leave it to them; time limits still work
            signal.set_wakeup_fd(old)
            os.close(r)
            os.close(w)
            return None
        return r

    def watch(self, guard: CallGuard) -> None:
        with self._lock:
            self._guards.add(guard)

    def _period(self, guards: list[CallGuard]) -> float:
        limits = [g.limit_s for g in guards if g.limit_s > 0]
        return min(1.0, max(0.05, min(limits) / 20)) if limits else 1.0

    def _loop(self) -> None:
        while True:
            with self._lock:
                period = self._period(list(self._guards))
            interrupted = False
            if self._wake is None:
                time.sleep(period)
            elif select.select([self._wake], [], [], period)[0]:
                with contextlib.suppress(BlockingIOError):
                    woken_by = os.read(self._wake, 512)
                    interrupted = signal.SIGINT in woken_by or signal.SIGTERM in woken_by
            now = time.monotonic()
            with self._lock:  # the guards as they are now: one may have started its first call while we waited
                guards = list(self._guards)
            for g in guards:
                started = g.started
                if started is None:
                    continue
                if interrupted:
                    g.why = "interrupt"
                elif 0 < g.limit_s < now - started:
                    g.why = "timeout"
                else:
                    continue
                g.options.terminate = True


# What a failing cell raises: ONNX Runtime's own exceptions (they derive from Exception, not
# RuntimeError), PyTorch's CUDA errors and out-of-memory (RuntimeError), host memory exhaustion.
ORT_ERRORS = tuple(v for v in vars(ort.capi.onnxruntime_pybind11_state).values()
                   if isinstance(v, type) and issubclass(v, Exception))
CELL_ERRORS = (ProviderUnavailableError, CallTimeoutError, RuntimeError, MemoryError) + ORT_ERRORS
