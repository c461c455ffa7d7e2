"""mnistbench: reproduce MNIST papers in PyTorch, export to ONNX, benchmark on ONNX Runtime.

Sub-packages: :mod:`mnistbench.models` (data, model zoo, training),
:mod:`mnistbench.exporters` (ONNX export and parity), :mod:`mnistbench.bench`
(timing, runtimes, results, CLI). Imports go one way: models <- exporters <- bench.
"""

__version__ = "0.1.0"
