"""The command line: the Typer app (:mod:`.app`), its option declarations (:mod:`.options`), the
printing (:mod:`.console`) and how the process ends (:mod:`.entrypoint`). Top layer: nothing else in
mnistbench imports it."""

from .app import app, main

__all__ = ["app", "main"]
