"""The networks of the model zoo, one module per paper module of :mod:`mnistbench.models`. The specs
name them through :class:`network`, so that the registry (``mnistbench list``, option checks) is read
without importing torch; the network is imported when a model is first built."""

from __future__ import annotations

import importlib
from typing import Any


class network:  # noqa: N801  (used like the class it stands for: ``build=network("lenet", "LeNet5")``)
    """A spec's ``build``: calling it imports ``mnistbench.models.nets.<module>`` and returns a fresh
    ``<cls>()`` (an ``nn.Module``). Picklable (two strings), so specs travel to Ray workers."""

    def __init__(self, module: str, cls: str) -> None:
        self.module, self.cls = module, cls
        self.__name__ = self.__qualname__ = cls

    def resolve(self) -> type:
        """The network class itself (imports torch)."""
        return getattr(importlib.import_module(f"{__name__}.{self.module}"), self.cls)

    def __call__(self, *args: Any, **kwargs: Any):
        return self.resolve()(*args, **kwargs)

    def __repr__(self) -> str:
        return f"network({self.module!r}, {self.cls!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, network) and (self.module, self.cls) == (other.module, other.cls)

    def __hash__(self) -> int:
        return hash((self.module, self.cls))
