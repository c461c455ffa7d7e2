"""OpenVINO as a runtime beside ONNX Runtime and PyTorch (``run --runtime openvino``).

OpenVINO reads the same ONNX file as ONNX Runtime, is reshaped to the cell's static batch shape and
compiled for the CPU once per shape (the read and the compile are the row's cold start,
``session_create_ms``), and runs one synchronous inference per call: ``PERFORMANCE_HINT`` LATENCY
with ``NUM_STREAMS`` 1, ``INFERENCE_NUM_THREADS`` from the threads axis (0: OpenVINO's own
choice), and ``INFERENCE_PRECISION_HINT`` f32 or bf16 (the row's precision). The ``openvino``
package is an optional extra (``pip install -e ".[openvino]"``); this module imports it only when
an OpenVINO runtime is built.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ...models.errors import ProviderUnavailableError, UsageError
from .base import Runtime, register

# mnistbench precision -> OpenVINO inference precision hint (element type name).
PRECISIONS = {"fp32": "f32", "bf16": "bf16"}
# OPTIMIZATION_CAPABILITIES entry a device must list to run each precision natively.
CAPABILITY = {"fp32": "FP32", "bf16": "BF16"}
DEVICE = "CPU"


class OpenVinoMissingError(ProviderUnavailableError):
    """The optional ``openvino`` package is not installed (one line saying how to install it)."""


def _ov():
    """The ``openvino`` module, or one line saying how to install it."""
    try:
        import openvino  # optional heavy extra: imported only when an OpenVINO runtime is asked for
    except ImportError:
        raise OpenVinoMissingError('the openvino runtime needs the openvino package: pip install -e ".[openvino]"') \
            from None
    return openvino


def openvino_version() -> str:
    """OpenVINO's release, e.g. ``2026.4.1`` (the build suffix dropped), or '' when not installed."""
    try:
        return _ov().__version__.split("-")[0]
    except OpenVinoMissingError:
        return ""


def check_openvino() -> str:
    """Prove OpenVINO importable and its CPU plugin present; returns the version.

    Raises:
        OpenVinoMissingError: the package is not installed.
        ProviderUnavailableError: OpenVINO lists no CPU device.
    """
    ov = _ov()
    if DEVICE not in ov.Core().available_devices:
        raise ProviderUnavailableError(f"OpenVINO {openvino_version()} lists no {DEVICE} device")
    return openvino_version()


def capabilities(core=None) -> list[str]:
    """The CPU plugin's ``OPTIMIZATION_CAPABILITIES`` (e.g. ``['BF16', 'FP32', 'INT8', ...]``)."""
    ov = _ov()
    core = core or ov.Core()
    return list(core.get_property(DEVICE, ov.properties.device.capabilities))


def options_label(precision: str) -> str:
    """The ``provider_options`` of an OpenVINO row: version, precision, hint and streams."""
    return f"openvino={openvino_version()};precision={precision};hint=LATENCY;streams=1"


class OpenVinoRuntime:
    """One OpenVINO model on the CPU, compiled for a static batch shape (same protocol as
    :class:`bench.runtime.OrtRuntime`).

    The constructor reads the ONNX file. :meth:`prepare` reshapes it to the input's shape and
    compiles it; :meth:`run` compiles again only when given another shape (the full-test-set
    scoring, never a timed call: each cell's input has one shape, prepared before the clock).

    Attributes:
        create_ms: read + compile time, milliseconds (the compile is added by :meth:`prepare`).
        input_dtype: numpy.float32 (the fp32 and int8 QDQ files take float32).
        providers_used: ``["openvino-CPU"]``, the device that compiled and ran the model.
        precision: ``fp32`` or ``bf16``.
        threads_used: ``INFERENCE_NUM_THREADS`` of the compiled model (0 until compiled).
        bf16_nodes / nodes: executed nodes whose runtime precision is bf16 / all executed nodes
            (from the compiled model's runtime graph; shows whether the hint took effect).

    Raises (from the constructor):
        OpenVinoMissingError: the openvino package is not installed.
        UsageError: unknown precision; the file cannot be read.
        ProviderUnavailableError: bf16 asked for on a CPU whose capabilities lack BF16.
    """

    name = "openvino"

    def __init__(self, path: Path, precision: str = "fp32", threads: int = 0) -> None:
        if precision not in PRECISIONS:
            raise UsageError(f"unknown OpenVINO precision {precision!r}; choose one of: {', '.join(PRECISIONS)}")
        ov = self._ov = _ov()
        t0 = time.perf_counter()
        self.core = ov.Core()
        caps = capabilities(self.core)
        if CAPABILITY[precision] not in caps:
            raise ProviderUnavailableError(f"openvino {precision}: this CPU does not support it "
                                           f"(OPTIMIZATION_CAPABILITIES: {', '.join(caps)})")
        try:
            self.model = self.core.read_model(str(path))
        except RuntimeError as exc:
            raise UsageError(f"OpenVINO cannot read {path}: {str(exc).strip().splitlines()[0]}") from None
        self.create_ms = (time.perf_counter() - t0) * 1e3
        self.precision = precision
        self.threads = threads
        self.input_dtype = np.float32
        self.providers_used = [f"openvino-{DEVICE}"]
        self.threads_used = 0
        self.bf16_nodes = self.nodes = 0
        self._shape: tuple[int, ...] | None = None
        self._request = None
        self._requests: dict[tuple[int, ...], object] = {}  # one compiled request per input shape

    def _compile(self, shape: tuple[int, ...]) -> None:
        """Make the request of ``shape`` current: compiled once per shape and kept (a dynamic batcher
        alternates batch sizes call by call; compiling again at each change cost tens of ms a call)."""
        if tuple(shape) in self._requests:
            self._request, self._shape = self._requests[tuple(shape)], tuple(shape)
            return
        ov, props = self._ov, self._ov.properties
        self.model.reshape({self.model.inputs[0].get_any_name(): ov.PartialShape(list(shape))})
        config = {props.hint.performance_mode: props.hint.PerformanceMode.LATENCY,
                  props.num_streams: 1,
                  props.hint.inference_precision: getattr(ov.Type, PRECISIONS[self.precision])}
        if self.threads > 0:
            config[props.inference_num_threads] = self.threads
        compiled = self.core.compile_model(self.model, DEVICE, config)
        self._request = compiled.create_infer_request()
        self._shape = tuple(shape)
        self._requests[self._shape] = self._request
        self.threads_used = int(compiled.get_property(props.inference_num_threads))
        ops = compiled.get_runtime_model().get_ordered_ops()
        info = [op.get_rt_info() for op in ops]
        self.nodes = len(ops)
        self.bf16_nodes = sum(1 for i in info
                              if "runtimePrecision" in i.keys() and i["runtimePrecision"].astype(str) == "bf16")

    def prepare(self, x: np.ndarray) -> None:
        """Reshape to ``x.shape`` and compile (added to :attr:`create_ms`); call before any clock."""
        if self._shape != tuple(x.shape):
            t0 = time.perf_counter()
            self._compile(x.shape)
            self.create_ms += (time.perf_counter() - t0) * 1e3

    def run(self, x: np.ndarray) -> np.ndarray:
        """One synchronous inference: float32 (N, 1, 28, 28) in, float32 (N, classes) or
        (N, 1, 28, 28) out (a host array the next call does not overwrite)."""
        if self._shape != tuple(x.shape):
            self._compile(x.shape)  # scoring in chunks; cells are compiled by prepare, before timing
        self._request.infer({0: x}, share_inputs=True)
        return np.array(self._request.get_output_tensor(0).data, dtype=np.float32)


@register
class OpenVino(Runtime):
    """OpenVINO on the CPU (``run --runtime openvino``): the fp32 ONNX file at an fp32 or bf16
    precision hint, the int8 QDQ file, foreign files."""

    name = "openvino"
    variants = ("fp32", "bf16", "int8", "foreign")
    providers = ("cpu",)
    graph_optimization = "compiled"

    def unserved(self, provider: str) -> str:
        return f"the openvino runtime runs on cpu here, not {provider!r}"

    def check(self, provider: str) -> None:
        check_openvino()

    def open(self, target, provider, threads, spinning, io_mode, gpu) -> OpenVinoRuntime:
        return OpenVinoRuntime(target.path, "bf16" if target.variant == "bf16" else "fp32", threads)

    def options_label(self, target, provider, io_mode, gpu) -> str:
        return options_label("bf16" if target.variant == "bf16" else "fp32")
