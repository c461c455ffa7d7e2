"""Runtimes that execute a model for the benchmark.

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
import os
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
import onnxruntime as ort

from mnistbench.models.errors import ProviderUnavailableError, UsageError

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
    """

    provider: str = "cpu"
    intra_op_threads: int = 0
    spinning: bool | None = None
    graph_optimization: str = "all"


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
    providers = [ep] if ep == "CPUExecutionProvider" else [ep, "CPUExecutionProvider"]
    try:
        # ORT's Python layer print()s an "EP Error ... Falling back" banner when a GPU EP
        # fails to register; the fallback is detected and reported below, in one line.
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            sess = ort.InferenceSession(model, so, providers=providers)
    except Exception as exc:  # ORT raises Fail / InvalidGraph / RuntimeException ...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if ep != "CPUExecutionProvider":
            raise ProviderUnavailableError(f"{cfg.provider}: {ep} could not create a session: {first}") from None
        raise UsageError(f"ONNX Runtime cannot load the model: {first}") from None
    used = sess.get_providers()
    if not used or used[0] != ep:
        raise ProviderUnavailableError(
            f"provider {cfg.provider!r} is not usable here: ONNX Runtime {ort.__version__} lists {ep} "
            f"but the session fell back to {', '.join(used) or 'nothing'}"
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


class OrtRuntime:
    """One ONNX Runtime session on one execution provider, checked at creation.

    Attributes:
        session: the ``InferenceSession``.
        create_ms: wall time of session creation (cold start), milliseconds.
        input_name: the graph's first input.
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
        self.providers_used = list(self.session.get_providers())

    def run(self, x: np.ndarray) -> np.ndarray:
        """One synchronous inference: float32 (N, 1, 28, 28) in, first output out (host memory)."""
        return self.session.run(None, {self.input_name: x})[0]


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
        sess.run(None, {sess.get_inputs()[0].name: x})
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


class TorchRuntime:
    """PyTorch eager inference (the baseline users would otherwise run), host arrays in and out.

    ``run`` converts the float32 array to a tensor, runs the model under
    ``torch.inference_mode`` on the device, synchronises CUDA, and returns a
    host array: the same end-to-end contract as :class:`OrtRuntime`.

    Raises (from the constructor):
        ProviderUnavailableError: ``cuda`` asked for and torch sees no GPU.
    """

    name = "torch"

    def __init__(self, build: Callable[[], object], provider: str, threads: int = 0) -> None:
        import torch

        if provider not in ("cpu", "cuda"):
            raise UsageError(f"the torch runtime runs on cpu or cuda, not {provider!r}")
        if provider == "cuda" and not torch.cuda.is_available():
            raise ProviderUnavailableError("torch runtime on cuda: torch sees no CUDA device on this host")
        self._torch = torch
        if threads > 0:
            torch.set_num_threads(threads)
        self.device = torch.device(provider)
        t0 = time.perf_counter()
        self.model = build().to(self.device).eval()
        self.create_ms = (time.perf_counter() - t0) * 1e3
        self.providers_used = [f"torch-{provider}"]
        self.sync = torch.cuda.synchronize if provider == "cuda" else (lambda: None)

    def run(self, x: np.ndarray) -> np.ndarray:
        """One synchronous inference: float32 (N, 1, 28, 28) in, output as a host array."""
        with self._torch.inference_mode():
            y = self.model(self._torch.from_numpy(x).to(self.device))
            self.sync()
            return y.cpu().numpy()
