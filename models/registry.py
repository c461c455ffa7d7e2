"""The model registry: paper models filed by name.

Modelled on torchvision's ``models/_api.py``: a decorator-free ``register``,
a duplicate name raises, unknown names raise with the valid ones listed, and
``list_models`` filters with shell-style wildcards.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: the registry is read without torch (`mnistbench list`)
    from torch import nn

from .errors import UsageError
from .spec import ModelSpec

_REGISTRY: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    """File ``spec`` under ``spec.name``.

    Raises:
        ValueError: a model of that name is already registered (a programming error).
    """
    if spec.name in _REGISTRY:
        raise ValueError(f"model {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec
    return spec


def _load_zoo() -> None:
    # Importing the paper modules registers their specs (once).
    # Order of PAPERS.md: seeds 000-004, then the 1998 reference; then speed-cnn (outside the papers).
    from . import xiao, rich, fan, swapan, zhu, lenet, speed  # noqa: F401,I001


def list_models(include: str | Iterable[str] | None = None, exclude: str | Iterable[str] | None = None) -> list[str]:
    """Registered names in registry order, filtered by wildcard patterns.

    Args:
        include: pattern(s) a name must match (``"zhu-*"``); None keeps all.
        exclude: pattern(s) that drop a name.
    """
    _load_zoo()
    names = list(_REGISTRY)
    if include is not None:
        pats = [include] if isinstance(include, str) else list(include)
        names = [n for n in names if any(fnmatch.fnmatch(n, p) for p in pats)]
    if exclude is not None:
        pats = [exclude] if isinstance(exclude, str) else list(exclude)
        names = [n for n in names if not any(fnmatch.fnmatch(n, p) for p in pats)]
    return names


def get_spec(name: str) -> ModelSpec:
    """The spec registered as ``name``.

    Raises:
        UsageError: no such model; the message lists the valid names.
    """
    _load_zoo()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UsageError(f"unknown model {name!r}; valid models: {', '.join(_REGISTRY)}") from None


def select(names: Iterable[str] | None) -> list[ModelSpec]:
    """Specs for names or wildcard patterns (None or empty: every model).

    Raises:
        UsageError: a name or pattern that matches nothing.
    """
    if not names:
        return [get_spec(n) for n in list_models()]
    out: list[ModelSpec] = []
    for pat in names:
        hits = list_models(include=pat) if any(c in pat for c in "*?[") else [get_spec(pat).name]
        if not hits:
            raise UsageError(f"pattern {pat!r} matches no model; valid models: {', '.join(list_models())}")
        out.extend(get_spec(h) for h in hits if all(h != s.name for s in out))
    return out


def build_model(name: str) -> nn.Module:
    """A fresh, untrained module of model ``name`` (see :func:`get_spec`)."""
    return get_spec(name).build()
