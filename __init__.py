"""mnistbench: reproduce MNIST papers in PyTorch, export to ONNX, benchmark on ONNX Runtime.

Sub-packages: :mod:`mnistbench.models` (data, model zoo, training),
:mod:`mnistbench.exporters` (ONNX export and parity), :mod:`mnistbench.bench`
(timing, runtimes, results, CLI). Imports go one way: models <- exporters <- bench.
"""

__version__ = "0.1.0"

# The Python API (:mod:`mnistbench.bench.api`) at the top level: ``from mnistbench import api`` or
# ``mnistbench.benchmark(...)``. Resolved on first use (PEP 562), so that ``import mnistbench`` stays
# light and the library's own ``import mnistbench`` (for ``__version__``) makes no import cycle.
_API = ("api", "train", "export", "benchmark", "compare", "compare_live", "reproduce", "samples", "gate",
        "Axes", "TimingConfig", "GpuOptions", "RunRequest")


def __getattr__(name: str):
    if name not in _API:
        raise AttributeError(f"module 'mnistbench' has no attribute {name!r}")
    from .bench import api  # deferred: see above

    return api if name == "api" else getattr(api, name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
