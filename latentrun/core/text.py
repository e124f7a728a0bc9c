"""Text from files and command lines that we did not write, made safe to put in a one-line message."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any


def printable(value: Any, limit: int = 80) -> str:
    """`value` as one short line: control characters escaped (a newline must not split an error
    line, a terminal escape must not reach the terminal), cut to `limit` characters."""
    text = str(value)
    if not text.isprintable():
        text = text.encode("unicode_escape", errors="backslashreplace").decode("ascii")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def plural(count: int, noun: str) -> str:
    """`count noun` in English: "1 run", "2 runs" (for nouns whose plural adds an s)."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def program_name() -> str:
    """How the user started latentrun, for usage lines and the commands we suggest: what they typed
    is what they can type again."""
    path = Path(sys.argv[0])
    if path.name == "run.py":
        return "python run.py"
    if path.name == "__main__.py" and path.parent.name == "latentrun":
        return "python -m latentrun"
    return "latentrun"
