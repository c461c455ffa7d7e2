"""``torch.compile`` as a runtime (``run --runtime torch.compile``): the eager session of
:mod:`.torch_eager` compiled per cell (static shapes, inductor; see :class:`.torch_eager.TorchRuntime`)."""

from __future__ import annotations

from .base import register
from .torch_eager import TorchEager


@register
class TorchCompile(TorchEager):
    """PyTorch's compiled baseline: the same checkpoint, variants and providers as ``torch``."""

    name = "torch.compile"
    graph_optimization = "compiled"
    compile = True
