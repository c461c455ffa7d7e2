"""MkDocs hooks (``hooks:`` in mkdocs.yml): what must follow the code is generated at build time,
never stored, so it cannot go stale. A marker line in a page is replaced by the generated markdown:

- ``<!-- generated: cli -->`` (``reference/cli.md``): every command of the Typer app with its full
  ``--help``, rendered the way ``tests/golden_cli.py`` renders the golden copies (fixed width, no colour).
- ``<!-- generated: api -->`` (``reference/api.md``): one mkdocstrings entry for every public name of
  ``mnistbench.bench.api`` (its ``__all__``), at the module that defines it.
- ``<!-- table: NAME -->`` on its own line in any page: replaced by the table ``NAME`` of
  ``scripts/docs_tables.py``, drawn now from the committed files under ``results/``.
- ``<!-- modules -->``: every module of the code folders with its docstring's first sentence.
- ``schema.md`` must name every column of ``records.COLUMNS`` and ``load.rows.COLUMNS`` (a warning otherwise, so ``--strict`` fails).
- Sphinx roles in docstrings (``:func:`train```) are shown as plain code.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import logging
import re
import sys
from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.plugins import event_priority

ROOT = Path(__file__).resolve().parents[1]
TABLE = re.compile(r"^<!-- table: ([a-z0-9-]+) -->$", re.M)
MODULES = "<!-- modules -->"
PACKAGES = ("models", "exporters", "bench")  # the code folders of the package, in layer order bottom-up
ROLE = re.compile(r":(?:func|class|mod|meth|attr|data|exc|obj|const):(?=<code>)")

GENERATED = {"cli": lambda: cli_markdown(), "api": lambda: api_markdown()}  # <!-- generated: NAME -->
_tables: dict[str, str] = {}
log = logging.getLogger("mkdocs.hooks.mnistbench")  # under "mkdocs": a warning fails `--strict`


def _load(name: str, path: Path):
    """A standalone file of the repository (tests/golden_cli.py, scripts/docs_tables.py) as a module."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def cli_markdown() -> str:
    golden = _load("mnistbench_golden_cli", ROOT / "tests" / "golden_cli.py")
    names = golden.commands()
    out = ["| command | what it does |", "|---|---|"]
    from mnistbench.bench.cli import app

    docs = {(c.name or c.callback.__name__.replace("_", "-")): (inspect.getdoc(c.callback) or "")
            for c in app.registered_commands}
    for name in names:
        para = " ".join(docs.get(name, "").split("\n\n")[0].split())
        first = re.split(r"(?<=[.!?])\s+(?=[A-Z])", para)[0].replace("|", "\\|")
        out.append(f"| [`{name}`](#mnistbench-{name}) | {first} |")
    out += ["", "## mnistbench", "", "```text", golden.help_page(None).rstrip(), "```", ""]
    for name in names:
        out += [f"## mnistbench {name}", "", "```text",
                "\n".join(line.rstrip() for line in golden.help_page(name).rstrip().splitlines()), "```", ""]
    return "\n".join(out)


def api_markdown() -> str:
    from mnistbench.bench import api

    functions, classes, other = [], [], []
    for name in api.__all__:
        obj = getattr(api, name)
        module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
        defined_here = (module and qualname and module.startswith("mnistbench.")
                        and getattr(sys.modules.get(module), qualname, None) is obj)
        if defined_here and inspect.isfunction(obj):
            functions.append((name, f"{module}.{qualname}"))
        elif defined_here and inspect.isclass(obj):
            classes.append((name, f"{module}.{qualname}"))
        else:
            other.append((name, obj))
    out = ["::: mnistbench.bench.api", "    options:", "      members: false", "      show_root_heading: false", "",
           "## Functions", ""]
    for name, path in functions:
        out += [f"::: {path}", ""]
    out += ["## Configuration and result types", ""]
    for name, path in classes:
        out += [f"::: {path}", ""]
    if other:
        out += ["## Constants and type aliases", "", "| name | value |", "|---|---|"]
        out += [f"| `{name}` | `{obj!r}` |" for name, obj in other]
        out.append("")
    out += ["## The runtime interface", "",
            "::: mnistbench.bench.runtimes.base", "    options:", "      show_root_heading: false",
            "      heading_level: 3", "",
            "## Results records", "",
            "::: mnistbench.bench.measure.records", "    options:", "      show_root_heading: false",
            "      heading_level: 3", "",
            "## Load records", "",
            "::: mnistbench.bench.load.rows", "    options:", "      show_root_heading: false",
            "      heading_level: 3", ""]
    return "\n".join(out)


@event_priority(100)  # before mkdocstrings' on_config, which creates the handler
def on_config(config, **kwargs):
    # `mkdocs` runs as a console script, so its bin folder is on sys.path, and there griffe (mkdocstrings)
    # would take the `mnistbench` console script for the package: leave such a folder out (before the
    # handler copies sys.path).
    sys.path[:] = [p for p in sys.path if not Path(p or ".", "mnistbench").is_file()]
    return config


def _summary(path: Path) -> str:
    """The first sentence of a module's docstring, read without importing it."""
    try:
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    except SyntaxError as exc:
        raise PluginError(f"{path.relative_to(ROOT)}: {exc}") from exc
    para = " ".join(doc.split("\n\n")[0].split())
    para = re.sub(r":[a-z]+:`~?\.*([^`]+)`", r"`\1`", para).replace("``", "`")  # reST roles and literals
    first = re.split(r"(?<=[.!?])\s+(?=[A-Z`(])", para)[0]
    if len(first) > 200:
        first = first[:200].rsplit(" ", 1)[0] + " ..."
    return first.replace("|", "\\|")


def modules_markdown() -> str:
    """A table of every module of the code folders with its docstring's first sentence."""
    rows = ["| module | what |", "|---|---|"]
    for top in PACKAGES:
        order = lambda p: (p.parent.as_posix(), p.name != "__init__.py", p.name)  # noqa: E731  (a package first)
        for path in sorted((ROOT / top).rglob("*.py"), key=order):
            if "__pycache__" in path.parts:
                continue
            rel = path.relative_to(ROOT).as_posix()
            rows.append(f"| `{rel}` | {_summary(path) or '-'} |")
    return "\n".join(rows)


def _check_schema(markdown: str) -> None:
    """Warn (a failure under ``--strict``) about every results column the schema page does not name."""
    from mnistbench.bench.load.rows import COLUMNS as LOAD_COLUMNS
    from mnistbench.bench.measure.records import COLUMNS

    named = set()
    for word in re.findall(r"`([a-z0-9_{},]+)`", markdown):
        m = re.fullmatch(r"([a-z0-9_]*)\{([a-z0-9_,]+)\}([a-z0-9_]*)", word)
        named |= {m.group(1) + x + m.group(3) for x in m.group(2).split(",")} if m else {word}
    missing = [c for c in (*COLUMNS, *LOAD_COLUMNS) if c not in named]
    if missing:
        log.warning("docs/schema.md does not describe the results column(s) %s", ", ".join(missing))


def on_pre_build(config, **kwargs) -> None:
    _tables.clear()  # `mkdocs serve`: draw the tables again on every rebuild


def _table(match: re.Match) -> str:
    name = match.group(1)
    if name not in _tables:
        tables = _load("mnistbench_docs_tables", ROOT / "scripts" / "docs_tables.py")
        if name not in tables.TABLES:
            raise PluginError(f"unknown table {name!r}; scripts/docs_tables.py has {', '.join(tables.TABLES)}")
        try:
            _tables[name] = tables.render(name)
        except Exception as exc:
            raise PluginError(f"table {name!r}: {exc}") from exc
    return _tables[name]


def on_page_markdown(markdown, page, config, files, **kwargs):
    for name, make in GENERATED.items():
        marker = f"<!-- generated: {name} -->"
        if marker in markdown:
            try:
                markdown = markdown.replace(marker, make())
            except Exception as exc:  # a broken import in the package: say which page, not a bare traceback
                raise PluginError(f"cannot generate {page.file.src_uri}: {type(exc).__name__}: {exc}") from exc
    if page.file.src_uri == "schema.md":
        _check_schema(markdown)
    if MODULES in markdown:
        markdown = markdown.replace(MODULES, modules_markdown())
    return TABLE.sub(_table, markdown)


def on_page_content(html, page, config, files, **kwargs):
    return ROLE.sub("", html)
