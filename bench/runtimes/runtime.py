"""ONNX Runtime sessions, and what every runtime shares (providers, session configuration, the
per-call time limit, cell errors). The PyTorch sessions are :mod:`.torch_eager`; OpenVINO's
:mod:`.openvino_runtime`; the interface the measurement uses, :mod:`.base`.

:class:`OrtRuntime` wraps one ONNX Runtime ``InferenceSession`` on one
execution provider (EP). ONNX Runtime silently falls back to the CPU EP when
a requested EP cannot load (onnxruntime-gpu lists CUDA as *available* on
hosts without a GPU), so every session is checked after creation: the EP the
session really uses must be the one requested, or the runtime raises
:class:`ProviderUnavailableError` and no figure is ever labelled with the
wrong provider.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import select
import signal
import tempfile
import threading
import time
import weakref
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
import onnxruntime as ort

from ...models.errors import CallTimeoutError, ProviderUnavailableError, UsageError

# mnistbench provider name -> ONNX Runtime execution provider.
PROVIDERS = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}

# Silence ONNX Runtime's own log (a failed CUDA load prints a page of errors);
# mnistbench reports the outcome itself, in one line.
ort.set_default_logger_severity(4)


def provider_name(provider: str) -> str:
    """ONNX Runtime EP name for ``cpu``/``cuda``/``tensorrt``.

    Raises:
        UsageError: unknown name (lists the valid ones).
    """
    try:
        return PROVIDERS[provider]
    except KeyError:
        raise UsageError(f"unknown provider {provider!r}; choose one of: {', '.join(PROVIDERS)}") from None


# How a row's timed call moves data (see README, "CUDA"):
#   end-to-end    host numpy arrays in and out: copies and synchronisation are in the figure;
#   device        IO binding: input already on the GPU, output written to a preallocated GPU
#                 buffer; the call returns after the device has finished (ORT synchronises its
#                 stream at the end of Run, then the binding's outputs are synchronised);
#   device-graph  device mode replayed as one captured CUDA graph (CUDA EP option enable_cuda_graph).
IO_MODES = ("end-to-end", "device", "device-graph")
# cuDNN convolution algorithm search (CUDA EP option cudnn_conv_algo_search); ONNX Runtime's
# default is EXHAUSTIVE, which benchmarks every algorithm at each new input shape: the warm-up of
# each cell (one session per batch size) absorbs it, so it never lands in the timed calls.
CUDNN_ALGO_SEARCH = {"exhaustive": "EXHAUSTIVE", "heuristic": "HEURISTIC", "default": "DEFAULT"}
GPU_PROVIDERS = ("cuda", "tensorrt")


@dataclass(frozen=True)
class GpuOptions:
    """CUDA / TensorRT EP options, recorded with every GPU row (``provider_options``).

    Attributes:
        device_id: CUDA device ordinal.
        cudnn_conv_algo_search: ``exhaustive`` (ONNX Runtime's default), ``heuristic`` or ``default``.
        tf32: allow TF32 tensor-core math for fp32 (CUDA EP ``use_tf32``). ONNX Runtime turns it
            on by default; mnistbench turns it off so fp32 rows keep fp32 precision and parity with
            PyTorch (whose own default for convolutions is TF32 on; the torch runtime sets it to match).
    """

    device_id: int = 0
    cudnn_conv_algo_search: str = "exhaustive"
    tf32: bool = False


@dataclass(frozen=True)
class SessionConfig:
    """Session options recorded with every row.

    Attributes:
        provider: ``cpu``, ``cuda`` or ``tensorrt``.
        intra_op_threads: threads for one operator; 0 lets ONNX Runtime choose
            (one per physical core).
        spinning: let idle intra-op threads spin (``session.intra_op.allow_spinning``);
            None keeps ONNX Runtime's default (on).
        graph_optimization: ``all`` (ORT_ENABLE_ALL) unless told otherwise.
        io_mode: one of :data:`IO_MODES`; device modes need a GPU provider, ``device-graph`` CUDA.
        gpu: CUDA/TensorRT options (ignored on the CPU EP).
    """

    provider: str = "cpu"
    intra_op_threads: int = 0
    spinning: bool | None = None
    graph_optimization: str = "all"
    io_mode: str = "end-to-end"
    gpu: GpuOptions = GpuOptions()


def validate_config(cfg: SessionConfig) -> None:
    """Reject option combinations that cannot mean anything.

    Raises:
        UsageError: unknown io mode or cuDNN search; a device io mode on the CPU EP (host memory
            is the device there); ``device-graph`` on a provider other than CUDA; negative device id.
    """
    provider_name(cfg.provider)
    if cfg.io_mode not in IO_MODES:
        raise UsageError(f"unknown io mode {cfg.io_mode!r}; choose one of: {', '.join(IO_MODES)}")
    if cfg.io_mode != "end-to-end" and cfg.provider not in GPU_PROVIDERS:
        raise UsageError(f"io mode {cfg.io_mode!r} needs a GPU provider (cuda or tensorrt); on {cfg.provider} "
                         "the host memory is the device, so only end-to-end applies")
    if cfg.io_mode == "device-graph" and cfg.provider != "cuda":
        raise UsageError("CUDA graphs (--cuda-graph) need the cuda provider")
    if cfg.gpu.cudnn_conv_algo_search not in CUDNN_ALGO_SEARCH:
        raise UsageError(f"unknown cuDNN algorithm search {cfg.gpu.cudnn_conv_algo_search!r}; choose one of: "
                         f"{', '.join(CUDNN_ALGO_SEARCH)}")
    if cfg.gpu.device_id < 0:
        raise UsageError(f"--device-id must be 0 or more, got {cfg.gpu.device_id}")


def provider_options(cfg: SessionConfig) -> list[tuple[str, dict[str, str]]]:
    """The ``providers`` argument of ``InferenceSession`` for ``cfg``: the requested EP with its
    options, then the EPs ONNX Runtime may place unsupported nodes on (CUDA for TensorRT, and the CPU).
    """
    validate_config(cfg)
    g = cfg.gpu
    cuda = {"device_id": str(g.device_id), "cudnn_conv_algo_search": CUDNN_ALGO_SEARCH[g.cudnn_conv_algo_search],
            "use_tf32": "1" if g.tf32 else "0"}
    if cfg.provider == "cpu":
        return [("CPUExecutionProvider", {})]
    if cfg.provider == "cuda":
        return [("CUDAExecutionProvider", {**cuda, "enable_cuda_graph": "1" if cfg.io_mode == "device-graph" else "0"}),
                ("CPUExecutionProvider", {})]
    return [("TensorrtExecutionProvider", {"device_id": str(g.device_id)}), ("CUDAExecutionProvider", cuda),
            ("CPUExecutionProvider", {})]


def options_label(cfg: SessionConfig) -> str:
    """The requested EP's options as ``key=value;...`` for the ``provider_options`` column ('' on CPU)."""
    name, opts = provider_options(cfg)[0]
    return ";".join(f"{k}={v}" for k, v in sorted(opts.items()))


_OPT = {
    "none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (runtimes' messages run to many lines), or its type
    name when the message is empty."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _session(model: str | bytes, cfg: SessionConfig, profile_prefix: str | None = None) -> ort.InferenceSession:
    ep = provider_name(cfg.provider)
    so = ort.SessionOptions()
    if profile_prefix:
        so.enable_profiling = True
        so.profile_file_prefix = profile_prefix
    so.log_severity_level = 4
    so.intra_op_num_threads = cfg.intra_op_threads
    so.graph_optimization_level = _OPT[cfg.graph_optimization]
    if cfg.spinning is not None:
        so.add_session_config_entry("session.intra_op.allow_spinning", "1" if cfg.spinning else "0")
    providers = provider_options(cfg)
    try:
        # ORT's Python layer print()s an "EP Error ... Falling back" banner when a GPU EP
        # fails to register; the fallback is detected and reported below, in one line.
        banner = io.StringIO()
        with contextlib.redirect_stdout(banner), contextlib.redirect_stderr(io.StringIO()):
            sess = ort.InferenceSession(model, so, providers=providers)
    except Exception as exc:  # ORT raises Fail / InvalidGraph / RuntimeException ...
        first = first_line(exc)
        if ep != "CPUExecutionProvider":
            raise ProviderUnavailableError(f"{cfg.provider}: {ep} could not create a session: {first}") from None
        raise UsageError(f"ONNX Runtime cannot load the model: {first}") from None
    # ONNX Runtime's Python layer would also re-run a call on the CPU after an EP failure at run time
    # (EPFail) and carry on there; with fallback off that call raises instead, and the cell is an error row.
    sess.disable_fallback()
    used = sess.get_providers()
    if not used or used[0] != ep:
        why = next((ln.split(" when using ")[0].removeprefix("EP Error").strip(" :")
                    for ln in banner.getvalue().splitlines() if ln.startswith("EP Error ")), "")
        raise ProviderUnavailableError(
            f"provider {cfg.provider!r} is not usable here: ONNX Runtime {ort.__version__} lists {ep} "
            f"but the session fell back to {', '.join(used) or 'nothing'}" + (f" ({why})" if why else "")
        )
    return sess


def check_provider(provider: str) -> None:
    """Prove ``provider`` usable by creating a session on a one-node model.

    Raises:
        UsageError: unknown provider name.
        ProviderUnavailableError: ONNX Runtime cannot really run on it here.
    """
    h = onnx.helper
    x = h.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", 4])
    y = h.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["N", 4])
    g = h.make_graph([h.make_node("Relu", ["x"], ["y"])], "probe", [x], [y])
    m = h.make_model(g, opset_imports=[h.make_opsetid("", 13)])
    m.ir_version = 8
    _session(m.SerializeToString(), SessionConfig(provider=provider))


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
    when its time is up or when SIGINT arrives (it learns of SIGINT through
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
                    interrupted = signal.SIGINT in os.read(self._wake, 512)
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


def nonfinite_fraction(out) -> float:
    """Fraction of a model output's elements that are NaN or +-inf (0.0 for a healthy model).

    Args:
        out: a numpy array (or anything with ``.numpy()``, e.g. an ``OrtValue``), any shape;
            integer outputs count as finite.

    Returns:
        a float in [0, 1]; 0.0 for an empty output.
    """
    a = out if isinstance(out, np.ndarray) else (out.numpy() if hasattr(out, "numpy") else np.asarray(out))
    if a.size == 0 or not np.issubdtype(a.dtype, np.inexact):
        return 0.0
    return float(1.0 - np.count_nonzero(np.isfinite(a)) / a.size)


def _np_dtype(node_arg) -> type:
    """numpy dtype of a session input or output: float16 for ``tensor(float16)`` (the fp16-io
    variant), else float32 (every other model mnistbench runs)."""
    return np.float16 if node_arg.type == "tensor(float16)" else np.float32


def onnx_input_dtype(session) -> type:
    """numpy dtype of an ONNX Runtime session's first input (see :func:`_np_dtype`)."""
    return _np_dtype(session.get_inputs()[0])


class OrtRuntime:
    """One ONNX Runtime session on one execution provider, checked at creation.

    Attributes:
        session: the ``InferenceSession``.
        create_ms: wall time of session creation (cold start), milliseconds.
        input_name: the graph's first input.
        input_dtype: numpy dtype it takes (:func:`onnx_input_dtype`).
        providers_used: ``session.get_providers()`` (the first is the one requested).

    Raises (from the constructor):
        ProviderUnavailableError: the session does not really run on the requested EP.
        UsageError: the file cannot be loaded.
    """

    name = "onnxruntime"

    def __init__(self, path: Path, cfg: SessionConfig) -> None:
        self.cfg = cfg
        t0 = time.perf_counter()
        self.session = _session(str(path), cfg)
        self.create_ms = (time.perf_counter() - t0) * 1e3
        self.input_name = self.session.get_inputs()[0].name
        self.input_dtype = onnx_input_dtype(self.session)
        self.providers_used = list(self.session.get_providers())
        self._guard = CallGuard()  # ends a call past the time limit, or on Ctrl-C

        self._io = None
        self._bound = None
        self._device_type = "cuda"  # where device modes keep inputs and outputs (GPU EPs are CUDA-based)

    def prepare(self, x: np.ndarray) -> None:
        """Device modes: copy ``x`` to the GPU and bind it and a preallocated output buffer
        (call before the clock starts; :meth:`run` rebinds only when given another array).
        End-to-end mode: nothing to do."""
        if self.cfg.io_mode == "end-to-end":
            return
        dev = self.cfg.gpu.device_id
        out = self.session.get_outputs()[0]
        shape = [d if isinstance(d, int) else len(x) for d in out.shape]
        io = self.session.io_binding()
        self._x_dev = ort.OrtValue.ortvalue_from_numpy(x, self._device_type, dev)
        self._y_dev = ort.OrtValue.ortvalue_from_shape_and_type(shape, _np_dtype(out), self._device_type, dev)
        io.bind_ortvalue_input(self.input_name, self._x_dev)
        io.bind_ortvalue_output(out.name, self._y_dev)
        self._io, self._bound = io, x

    def run(self, x: np.ndarray):
        """One synchronous inference: (N, 1, 28, 28) of :attr:`input_dtype` in (float32; float16 for
        the fp16-io variant; the caller converts before the clock).

        End-to-end: returns the first output as a host array. Device modes: returns the output's
        GPU ``OrtValue`` once the device has finished (copy it with ``.numpy()`` when needed).

        Raises:
            UsageError: device-graph mode given an input of another shape than the captured one.
            CallTimeoutError: the call ran past :func:`call_timeout` and was ended.
            KeyboardInterrupt: Ctrl-C, also during a call that would never return.
        """
        g = self._guard
        if self.cfg.io_mode == "end-to-end":
            g.started = time.monotonic()
            try:
                return self.session.run(None, {self.input_name: x}, g.options)[0]
            except ORT_ERRORS as exc:
                g.ended(exc)  # raises, or returns when the watchdog ended this call by a race
                return self.run(x)
            finally:
                g.started = None
        if x is not self._bound:
            if self._io is not None and self.cfg.io_mode == "device-graph":
                # A captured graph replays fixed device addresses: new data goes into the bound buffer.
                if x.shape != self._bound.shape:
                    raise UsageError(f"a CUDA graph has a static shape: captured for {self._bound.shape}, "
                                     f"given {x.shape}; use one session per batch size")
                self._x_dev.update_inplace(np.ascontiguousarray(x, self.input_dtype))
                self._bound = x
            else:
                self.prepare(x)
        g.started = time.monotonic()
        try:
            self.session.run_with_iobinding(self._io, g.options)
        except ORT_ERRORS as exc:
            g.ended(exc)
            return self.run(x)
        finally:
            g.started = None
        self._io.synchronize_outputs()
        return self._y_dev


@dataclass(frozen=True)
class Placement:
    """Where ONNX Runtime ran each node of the optimised graph (from one profiled inference).

    Attributes:
        nodes_total: distinct nodes executed.
        nodes_on_provider: of those, on the requested EP.
        nodes_on_cpu: on the CPU EP (the fallback when a GPU EP was requested).
        memcpy_nodes: MemcpyToHost/MemcpyFromHost nodes (device <-> host copies inside the graph).
        by_provider: node count per EP.
    """

    nodes_total: int
    nodes_on_provider: int
    nodes_on_cpu: int
    memcpy_nodes: int
    by_provider: dict[str, int]


def audit_placement(path: Path, cfg: SessionConfig, x: np.ndarray) -> Placement:
    """Run ``x`` once through a profiling session and count nodes per execution provider.

    Raises:
        ProviderUnavailableError / UsageError: as :class:`OrtRuntime`.
    """
    with tempfile.TemporaryDirectory(prefix="mnistbench-prof-") as tmp:
        sess = _session(str(path), cfg, profile_prefix=os.path.join(tmp, "p"))
        feed = {sess.get_inputs()[0].name: x.astype(onnx_input_dtype(sess), copy=False)}
        CallGuard().call(lambda options: sess.run(None, feed, options))
        events = json.loads(Path(sess.end_profiling()).read_text())
    nodes: dict[str, tuple[str, str]] = {}
    for e in events:
        if e.get("cat") == "Node" and "provider" in e.get("args", {}):
            nodes[e["name"].removesuffix("_kernel_time")] = (e["args"]["provider"], e["args"].get("op_name", ""))
    per_ep = Counter(p for p, _ in nodes.values())
    return Placement(
        nodes_total=len(nodes),
        nodes_on_provider=per_ep.get(provider_name(cfg.provider), 0),
        nodes_on_cpu=per_ep.get("CPUExecutionProvider", 0),
        memcpy_nodes=sum(1 for _, op in nodes.values() if op.startswith("Memcpy")),
        by_provider=dict(per_ep),
    )


def cuda_graph_blockers(placement: Placement) -> str | None:
    """Why a model cannot be captured as one CUDA graph, or None when nothing in the placement audit
    rules it out.

    ONNX Runtime's rule for the CUDA EP (graph-capture node policy ``ALLOW_CPU_FOR_SHAPES``, checked
    when a session with ``enable_cuda_graph`` is created): nodes may sit on the CPU EP only for shape
    computation, and no Memcpy node may copy between host and device. CPU nodes alone are therefore
    not a verdict (ONNX Runtime decides, and its refusal becomes the error row); Memcpy nodes are.
    """
    if placement.memcpy_nodes > 0:
        on_cpu = f" ({placement.nodes_on_cpu} of {placement.nodes_total} nodes on the CPU EP)" if placement.nodes_on_cpu else ""
        return f"{placement.memcpy_nodes} Memcpy nodes copy between host and device{on_cpu}"
    return None


# ONNX Runtime's CUDA EP runs a graph-capture session regularly this many times before it captures
# (min_num_runs_before_cuda_graph_capture_ = 2 in cuda_execution_provider.h, so the 3rd Run
# captures; some releases capture within the first Run by re-running internally). Every device-graph
# cell makes at least this many untimed calls, whatever the warm-up settings, so the timed calls are
# replays.
GRAPH_CAPTURE_CALLS = 3

# What a failing cell raises: ONNX Runtime's own exceptions (they derive from Exception, not
# RuntimeError), PyTorch's CUDA errors and out-of-memory (RuntimeError), host memory exhaustion.
ORT_ERRORS = tuple(v for v in vars(ort.capi.onnxruntime_pybind11_state).values()
                   if isinstance(v, type) and issubclass(v, Exception))
CELL_ERRORS = (ProviderUnavailableError, CallTimeoutError, RuntimeError, MemoryError) + ORT_ERRORS
