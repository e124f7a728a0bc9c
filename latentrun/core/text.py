"""Text from files and command lines that we did not write, made safe to put in a one-line message."""

from __future__ import annotations

from typing import Any


def printable(value: Any, limit: int = 80) -> str:
    """`value` as one short line: control characters escaped (a newline must not split an error
    line, a terminal escape must not reach the terminal), cut to `limit` characters."""
    text = str(value)
    if not text.isprintable():
        text = text.encode("unicode_escape", errors="backslashreplace").decode("ascii")
    return text if len(text) <= limit else text[: limit - 3] + "..."
