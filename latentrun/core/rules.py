"""The shape of a config rule that spans several keys, which the schema (one key at a time) cannot
state: the components declare such rules beside themselves, the config validator runs them.

Nothing here or in a rules module imports torch, so checking a config stays fast and light.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

# The sections of a config that passed the schema, each with its defaults filled in.
Sections = Mapping[str, Any]


class CrossProblem(NamedTuple):
    """A broken rule: the keys involved in order of blame (the first one the user actually wrote
    is the one reported) and what is wrong, naming the values received."""

    keys: list[tuple[str, ...]]
    message: str
