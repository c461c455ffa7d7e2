"""``python -m mnistbench.bench.cli``: the same as the ``mnistbench`` command."""

from .app import main

main()
