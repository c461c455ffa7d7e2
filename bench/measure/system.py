"""A description of the machine and software a run used, written beside each results CSV."""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import time
from functools import lru_cache
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import psutil
import torch

from ... import __version__ as _mnistbench_version
from ...models.files import atomic_write_bytes
from .noiseprofile import cpu_model, machine_id, node_id  # noqa: F401  (cpu_model re-exported: it lives with the host key)


@lru_cache(maxsize=1)
def git_commit() -> str:
    """The mnistbench checkout's commit (``+dirty`` when modified), or ``unknown``."""
    here = Path(__file__).resolve().parent
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        if rev.returncode != 0:
            return "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return rev.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def gpus() -> list[dict]:
    """GPU name, memory and driver through NVML (``nvidia-smi``), empty when there is none."""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return []
    if out.returncode != 0:
        return []
    rows = [r.split(", ") for r in out.stdout.strip().splitlines() if r.strip()]
    return [{"name": r[0], "memory": r[1], "driver": r[2]} for r in rows if len(r) == 3]


def gemm_peak_gflops(n: int = 1024, seconds: float = 0.5, device: str = "cpu") -> float:
    """Best achieved fp32 GEMM rate of a device, GFLOP/s: ``torch.mm`` of two n x n matrices
    (2 n^3 FLOPs) repeated for ``seconds``. A practical peak to compare model throughput against,
    not the datasheet figure.

    ``device="cpu"`` uses all of torch's threads. ``device="cuda"`` uses n = 4096 (1024 is too small
    to fill a GPU), TF32 off as in mnistbench's fp32 GPU rows, and times each product between two
    device synchronisations.

    Raises:
        RuntimeError: ``cuda`` asked for and torch sees no GPU.
    """
    cuda = device == "cuda"
    if cuda and not torch.cuda.is_available():
        raise RuntimeError("torch sees no CUDA device")
    n = max(n, 4096) if cuda else n
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    prev = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False  # fp32 math (no effect on the CPU)
    try:
        a, b = torch.rand(n, n, device=device), torch.rand(n, n, device=device)
        torch.mm(a, b)
        sync()
        best, end = float("inf"), time.perf_counter() + seconds
        while time.perf_counter() < end:
            t0 = time.perf_counter()
            torch.mm(a, b)
            sync()
            best = min(best, time.perf_counter() - t0)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = prev
    return 2 * n**3 / best / 1e9


def gemm_peaks(providers) -> dict[str, float]:
    """:func:`gemm_peak_gflops` per device the rows of ``providers`` run on: ``cpu`` always, ``cuda``
    (shared by the CUDA and TensorRT EPs) when a GPU provider is asked for and torch sees a GPU."""
    peaks = {"cpu": gemm_peak_gflops()}
    if set(providers) & {"cuda", "tensorrt"} and torch.cuda.is_available():
        peaks["cuda"] = gemm_peak_gflops(device="cuda")
    return peaks


def describe_system() -> dict:
    """Machine and software facts for a results file (JSON-serialisable)."""
    vm = psutil.virtual_memory()
    return {
        "host": socket.gethostname(),
        "machine_id": machine_id(),
        "node": node_id(),
        "collected_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cpu_model": cpu_model(),
        "cpu_logical_cores": psutil.cpu_count(logical=True),
        "cpu_physical_cores": psutil.cpu_count(logical=False),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_total_gib": round(vm.total / 2**30, 2),
        "os": platform.platform(),
        "python": platform.python_version(),
        "mnistbench": _mnistbench_version,
        "mnistbench_commit": git_commit(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "torch_cudnn": torch.backends.cudnn.version() if torch.cuda.is_available() else None,
        "torch_threads": torch.get_num_threads(),
        "onnx": onnx.__version__,
        "onnxruntime": ort.__version__,
        "onnxruntime_build_device": ort.get_device(),  # what the wheel was built for, not what is usable
        "onnxruntime_build": ort.get_build_info() if hasattr(ort, "get_build_info") else "",
        "onnxruntime_available_providers": ort.get_available_providers(),
        "numpy": np.__version__,
        "openvino": _openvino_version(),
        "gpus": gpus(),
    }


def _openvino_version() -> str | None:
    """OpenVINO's full version string (release and build), or None when the optional extra is absent."""
    try:
        import openvino  # optional heavy extra: present only with pip install -e ".[openvino]"
    except ImportError:
        return None
    return openvino.__version__


def write_system_json(path: Path, extra: dict | None = None) -> dict:
    """Write :func:`describe_system` (plus ``extra``) to ``path`` atomically; returns it."""
    info = {**describe_system(), **(extra or {})}
    atomic_write_bytes(path, (json.dumps(info, indent=2) + "\n").encode())
    return info


def _governor() -> str:
    try:
        return Path("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor").read_text().strip()
    except OSError:
        return "unknown"


BUSY_CPU_PERCENT = 10.0  # another process using more than this share of one CPU counts as busy


def hygiene(sample_s: float = 0.3) -> dict:
    """The machine's state around a run: CPU frequency governor, load average (1, 5, 15 min),
    the process's CPU affinity, and the other processes that used more than
    :data:`BUSY_CPU_PERCENT` % of a CPU over ``sample_s`` seconds (name, pid, percent; psutil).
    Read-only: nothing is tuned."""
    me = os.getpid()
    procs = []
    for p in psutil.process_iter(["pid", "name"]):
        try:
            p.cpu_percent(None)
            procs.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    time.sleep(sample_s)
    busy = []
    for p in procs:
        try:
            pct = p.cpu_percent(None)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if pct > BUSY_CPU_PERCENT and p.pid != me:
            busy.append({"pid": p.pid, "name": p.info["name"], "cpu_percent": round(pct, 1)})
    freq = psutil.cpu_freq()
    return {"time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "governor": _governor(), "loadavg": [round(v, 2) for v in os.getloadavg()],
            "cpu_freq_mhz": round(freq.current) if freq else None, "affinity": sorted(os.sched_getaffinity(0)),
            "busy_processes": sorted(busy, key=lambda b: -b["cpu_percent"])[:10]}
