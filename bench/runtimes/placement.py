"""Where ONNX Runtime places a model's nodes: one profiled inference counted per execution provider
(:class:`Placement`, :func:`audit_placement`), what that audit says against capturing the model as
one CUDA graph (:func:`cuda_graph_blockers`), and the untimed calls graph capture needs
(:data:`GRAPH_CAPTURE_CALLS`).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .calls import CallGuard
from .ort_session import _session, onnx_input_dtype
from .providers import SessionConfig, provider_name


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
