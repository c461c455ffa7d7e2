"""``python -m mnistbench.bench.cli``: the same as the ``mnistbench`` command."""

from .app import main

if __name__ == "__main__":  # not when a spawned worker process imports the main module again
    main()
