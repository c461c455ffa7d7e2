"""What an ONNX Runtime session is asked for: mnistbench's provider names and their execution
providers (:data:`PROVIDERS`, :func:`provider_name`), the io modes and cuDNN searches, the GPU and
session options recorded with every row (:class:`GpuOptions`, :class:`SessionConfig`), their
validation and the ``providers`` argument built from them (:func:`provider_options`,
:func:`options_label`). Plain data and checks: nothing here loads onnxruntime.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...models.errors import UsageError

# mnistbench provider name -> ONNX Runtime execution provider.
PROVIDERS = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}


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
    if not 0 <= cfg.gpu.device_id < 2**31:  # a CUDA device ordinal is an int
        raise UsageError(f"--device-id must be 0 to {2**31 - 1:,} (a CUDA device ordinal), got {cfg.gpu.device_id:,}")


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
