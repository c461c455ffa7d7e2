"""The command line's surface as text: the ``--help`` page of every command and the CSV header of a
``run``. ``tests/test_golden_cli.py`` compares them with the copies stored in ``tests/golden/``;
a change that is meant (a new option, a new column) regenerates them in its own commit::

    python tests/golden_cli.py    # rewrites tests/golden/
"""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

GOLDEN = Path(__file__).with_name("golden")
# The help pages are rendered at a fixed width, without colour, so they do not depend on the terminal.
ENV = {"COLUMNS": "100", "LINES": "50", "NO_COLOR": "1", "TERM": "dumb"}


def commands() -> list[str]:
    """Every command name of the Typer app, in the order ``mnistbench --help`` lists them."""
    from mnistbench.bench.cli import app

    return [c.name or c.callback.__name__.replace("_", "-") for c in app.registered_commands]


def help_page(command: str | None) -> str:
    """The ``--help`` text of ``command`` (the top-level page for ``None``)."""
    from mnistbench.bench.cli import app

    args = ([command] if command else []) + ["--help"]
    res = CliRunner().invoke(app, args, env=ENV)
    assert res.exit_code == 0, res.output
    return res.stdout


def csv_header() -> str:
    """The header line of a results CSV, as ``run`` writes it."""
    from mnistbench.bench.measure.records import COLUMNS

    return ",".join(COLUMNS) + "\n"


def pages() -> dict[str, str]:
    """File name -> text of every stored page."""
    out = {"help-mnistbench.txt": help_page(None), "csv-header.txt": csv_header()}
    for name in commands():
        out[f"help-{name}.txt"] = help_page(name)
    return out


if __name__ == "__main__":
    GOLDEN.mkdir(exist_ok=True)
    for name, text in pages().items():
        (GOLDEN / name).write_text(text)
    print(f"wrote {len(pages())} files to {GOLDEN}")
