"""ONNX Runtime sessions, and what every runtime shares (providers, session configuration, the
per-call time limit, cell errors). The PyTorch sessions are :mod:`.torch_eager`; OpenVINO's
:mod:`.openvino_runtime`; the interface the measurement uses, :mod:`.base`.

This module gathers, under their historical names, what now lives in four modules:
:mod:`.providers` (provider names, io modes, :class:`GpuOptions`, :class:`SessionConfig` and their
checks), :mod:`.calls` (the per-call time limit, :class:`CallGuard`, the errors a cell raises),
:mod:`.ort_session` (:class:`OrtRuntime`, :func:`check_provider`, input dtypes and output health)
and :mod:`.placement` (the node-placement audit and CUDA-graph capture).

:class:`OrtRuntime` wraps one ONNX Runtime ``InferenceSession`` on one
execution provider (EP). ONNX Runtime silently falls back to the CPU EP when
a requested EP cannot load (onnxruntime-gpu lists CUDA as *available* on
hosts without a GPU), so every session is checked after creation: the EP the
session really uses must be the one requested, or the runtime raises
:class:`ProviderUnavailableError` and no figure is ever labelled with the
wrong provider.
"""

from __future__ import annotations

import onnxruntime as ort  # tests patch `runtime.ort.InferenceSession`: the module object every session uses

from .calls import (
    CELL_ERRORS,
    DEFAULT_CALL_TIMEOUT_S,
    ORT_ERRORS,
    CallGuard,
    _limit,
    _Watchdog,
    call_timeout,
    first_line,
    set_call_timeout,
)
from .ort_session import _OPT, OrtRuntime, _np_dtype, _session, check_provider, nonfinite_fraction, onnx_input_dtype
from .placement import GRAPH_CAPTURE_CALLS, Placement, audit_placement, cuda_graph_blockers
from .providers import (
    CUDNN_ALGO_SEARCH,
    GPU_PROVIDERS,
    IO_MODES,
    PROVIDERS,
    GpuOptions,
    SessionConfig,
    options_label,
    provider_name,
    provider_options,
    validate_config,
)

__all__ = [
    # .providers
    "PROVIDERS", "IO_MODES", "CUDNN_ALGO_SEARCH", "GPU_PROVIDERS", "GpuOptions", "SessionConfig",
    "provider_name", "validate_config", "provider_options", "options_label",
    # .calls
    "first_line", "DEFAULT_CALL_TIMEOUT_S", "_limit", "set_call_timeout", "call_timeout", "CallGuard",
    "_Watchdog", "ORT_ERRORS", "CELL_ERRORS",
    # .ort_session
    "_OPT", "_session", "check_provider", "nonfinite_fraction", "_np_dtype", "onnx_input_dtype", "OrtRuntime",
    # .placement
    "Placement", "audit_placement", "cuda_graph_blockers", "GRAPH_CAPTURE_CALLS",
    # onnxruntime itself
    "ort",
]
