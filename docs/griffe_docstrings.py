"""A griffe extension (mkdocstrings-python ``extensions:`` in mkdocs.yml) for the project's docstring style.

mnistbench's Google-style sections continue an entry on the next line at the entry's own indentation::

    Raises:
        UsageError: unknown model, profile, device or amp mode; StorageError: the artifacts
        folder is not writable or lacks room for every checkpoint (checked before any training).

Griffe reads such a continuation as a new entry, fails to split it into name and description, warns
and drops the line. This extension indents those continuation lines before griffe parses the docstring,
so every line is kept and rendered as part of the entry above it; a ``Returns:`` entry in prose gets an
empty name and type (griffe would split ``one :class:`BestConfig``` at the role's colon). The source
is not changed.
"""

from __future__ import annotations

import re

import griffe

# sections whose body is a list of entries, and what a line that starts a new entry looks like
_NAMED = re.compile(r"^\*{0,2}[A-Za-z_]\w*(\s*\([^)]*\))?\s*:(\s|$)")  # name (type): description
_EXCEPTION = re.compile(r"^[A-Za-z_][\w.]*\s*:(\s|$)")  # Error: description
_RETURN = re.compile(r"^(\w+\s*)?(\([^)]*\))?\s*:(\s|$)")  # (type): description, name (type): description
SECTIONS = {
    **dict.fromkeys(["args", "arguments", "params", "parameters", "keyword args", "keyword arguments",
                     "other args", "other arguments", "other params", "other parameters", "attributes"], _NAMED),
    **dict.fromkeys(["raises", "exceptions", "warns", "warnings"], _EXCEPTION),
    **dict.fromkeys(["returns", "yields", "receives"], _RETURN),
}
_TITLE = re.compile(r"^\s*([A-Za-z][A-Za-z ]*):\s*$")


def indent_continuations(text: str) -> str:
    """``text`` with each continuation line of a section entry indented under its entry."""
    out, entry, base = [], None, None
    for line in text.splitlines():
        title = _TITLE.match(line)
        if title and title.group(1).strip().lower() in SECTIONS:
            entry, base = SECTIONS[title.group(1).strip().lower()], None
        elif entry is not None:
            indent = len(line) - len(line.lstrip())
            if not line.strip() or (base is not None and indent < base):
                entry = None  # a blank line or a dedent ends the section
            elif base is None:
                base = indent
                if entry is _RETURN and not _RETURN.match(line.lstrip()):
                    # prose ("a :class:`Reproduction`; ..."): an empty name and type, or griffe would take
                    # the first word for the name and the rest after the role's colon for the text
                    line = line[:indent] + ": " + line[indent:]
            elif indent == base and not entry.match(line.lstrip()):
                line = " " * 4 + line
        out.append(line)
    return "\n".join(out)


class IndentContinuations(griffe.Extension):
    """Indent the continuation lines of section entries in every docstring griffe loads."""

    def on_instance(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = indent_continuations(obj.docstring.value)
