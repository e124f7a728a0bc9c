"""The wording every config problem shares: where it is (`FILE:LINE: KEY:`) and how a received
value is shown, so the reader, the validator and `--set` speak alike (ConfigError lives in core.errors)."""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Sequence
from typing import Any

from latentrun.core.errors import ConfigError as ConfigError  # defined there, still importable from here

Key = tuple[Any, ...]  # path of keys (and list indices) from the top of the document
Origins = dict[Key, tuple[str, "int | None"]]  # where a value was written: (file or '--set ...', line)


def fmt(source: str, line: int | None, key: Key, msg: str) -> str:
    """One problem line: `source[:line]: dotted.key: msg`, the key left out when it is the top."""
    where = source if line is None else f"{source}:{line}"
    dotted = ".".join(map(str, key))
    return f"{where}: {dotted}: {msg}" if dotted else f"{where}: {msg}"


def where(origins: Origins, key: Key) -> tuple[str, int | None]:
    """Source and line of `key`, or of the nearest enclosing key that was written somewhere."""
    for n in range(len(key), -1, -1):
        if key[:n] in origins:
            return origins[key[:n]]
    return "<config>", None


def did_you_mean(word: Any, choices: Sequence[Any]) -> str:
    """` (did you mean 'x'?)` for the closest string choice, or nothing when none is close."""
    strings = [c for c in choices if isinstance(c, str)]
    close = difflib.get_close_matches(word, strings, n=1) if isinstance(word, str) else []
    return f" (did you mean {close[0]!r}?)" if close else ""


def describe(value: Any) -> str:
    """What a received value is, in the user's terms: `integer 3`, `string 'x'`, `a list`."""
    if value is None:
        return "null"
    for kind, name in ((bool, "boolean"), (int, "integer"), (float, "float"), (str, "string")):
        if isinstance(value, kind):
            return f"{name} {show(value)}"
    containers: dict[type, str] = {dict: "a mapping", list: "a list"}
    return containers.get(type(value), type(value).__name__)


def show(value: Any) -> str:
    """A value as YAML would write it, cut short so that a problem stays one readable line."""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, float) and not math.isfinite(value):
        return float_text(value)
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def float_text(value: float) -> str:
    """YAML 1.2 text of a float that reads back as the same float (and stays a float)."""
    if math.isnan(value):
        return ".nan"
    if math.isinf(value):
        return ".inf" if value > 0 else "-.inf"
    text = repr(value)  # shortest text that round-trips; 1e-08 needs a dot to stay a float in YAML
    return text.replace("e", ".0e") if "e" in text and "." not in text else text
