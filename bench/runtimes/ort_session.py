"""ONNX Runtime sessions: :class:`OrtRuntime` wraps one ``InferenceSession`` on one execution
provider (EP), with IO binding for the device io modes; :func:`check_provider` proves an EP usable
on a one-node model. ONNX Runtime silently falls back to the CPU EP when a requested EP cannot load
(onnxruntime-gpu lists CUDA as *available* on hosts without a GPU), so every session is checked
after creation (:func:`_session`): the EP the session really uses must be the one requested, or it
raises :class:`ProviderUnavailableError` and no figure is ever labelled with the wrong provider.
Also the dtype and health of a session's inputs and outputs (:func:`onnx_input_dtype`,
:func:`nonfinite_fraction`).
"""

from __future__ import annotations

import contextlib
import io
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from ...models.errors import ProviderUnavailableError, UsageError
from .calls import ORT_ERRORS, CallGuard, first_line
from .providers import SessionConfig, provider_name, provider_options

# Silence ONNX Runtime's own log (a failed CUDA load prints a page of errors);
# mnistbench reports the outcome itself, in one line.
ort.set_default_logger_severity(4)

_OPT = {
    "none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


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
