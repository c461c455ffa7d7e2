"""The one exception family for expected failures.

Anything a user can cause (bad data, an unknown model name, an execution
provider that is not really usable, an unwritable folder) raises a subclass of
:class:`MnistBenchError`. The CLI turns it into one line on stderr and a
non-zero exit; everything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class MnistBenchError(Exception):
    """Base class of every expected failure. ``exit_code`` is what the CLI returns."""

    exit_code = 1


class UsageError(MnistBenchError):
    """Unusable input given by the user (names, numbers, paths, files): exit 2."""

    exit_code = 2


class DataError(UsageError):
    """A dataset file is missing, truncated, corrupt or fails its checksum."""


class ProviderUnavailableError(MnistBenchError):
    """A requested execution provider or device cannot really be used here."""


class ExportError(MnistBenchError):
    """ONNX export or its parity check against PyTorch failed."""
