"""`extends: base.yaml`: a config file that starts from another and writes only what differs.

The base path is relative to the file that names it. The two are merged key by key, at every depth:
a mapping in the file merges into the base's mapping, anything else replaces the base's value.
`experiment` is never inherited (a file's experiment is its own: its value or its file name). Each
key keeps the file and line it was written at, so an error still points where the bad value is.
What comes out is one plain config, with no `extends` left in it: what `validate` prints and a run
freezes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from latentrun.config.errors import ConfigError, Key, Origins, describe, fmt
from latentrun.config.reader import parse, read_text
from latentrun.config.validator import EXTENDS

MAX_DEPTH = 16  # bases of bases; far more than any family needs, few enough to stop a runaway chain


def read(path: str | os.PathLike[str]) -> tuple[dict[str, Any], Origins]:
    """A config file with its bases merged in, and where each key was written (file, line)."""
    return _read(str(path), chain=())


def _read(source: str, chain: tuple[Path, ...]) -> tuple[dict[str, Any], Origins]:
    raw, lines = parse(read_text(source, source), source)
    origins: Origins = {key: (source, line) for key, line in lines.items()}
    if EXTENDS not in raw:
        return raw, origins
    base_source = _base_source(source, raw.pop(EXTENDS), lines.get((EXTENDS,)), chain)
    base, base_origins = _read(base_source, (*chain, Path(source).resolve()))
    base.pop("experiment", None)
    base_origins = {key: at for key, at in base_origins.items() if key[:1] != ("experiment",)}
    merged = _merge(base, raw, base_origins, origins)
    base_origins[()] = origins[()]
    return merged, base_origins


def _base_source(source: str, named: Any, line: int | None, chain: tuple[Path, ...]) -> str:
    """The base file's path as the reader opens it; ConfigError for a bad, missing or cyclic base."""
    here = (source, line, (EXTENDS,))
    if not isinstance(named, str) or not named.strip():
        raise ConfigError([fmt(*here, f"expected the path of a base config file, got {describe(named)}")])
    base = Path(os.path.normpath(Path(source).parent / named))  # variants/../base.yaml reads base.yaml
    visited = (*chain, Path(source).resolve())
    if base.resolve() in visited:
        cycle = " -> ".join(str(path.name) for path in (*visited[visited.index(base.resolve()) :], base))
        raise ConfigError([fmt(*here, f"{named} is already being read: a cycle ({cycle})")])
    if len(visited) > MAX_DEPTH:
        raise ConfigError([fmt(*here, f"more than {MAX_DEPTH} files extend one another")])
    if not base.is_file():
        raise ConfigError([fmt(*here, f"no such base file {named!r} (looked for {base})")])
    return str(base)


def _merge(base: dict, over: dict, origins: Origins, over_origins: Origins, at: Key = ()) -> dict:
    """`over` merged into `base` below the key path `at`. `origins` holds the base's and is updated to
    say, for every key of the result, the file and line its value came from."""
    merged = dict(base)
    for name, value in over.items():
        key = (*at, name)
        if isinstance(value, dict) and isinstance(base.get(name), dict):
            merged[name] = _merge(base[name], value, origins, over_origins, key)
        else:
            merged[name] = value
            for stale in [k for k in origins if k[: len(key)] == key]:
                del origins[stale]
            origins.update({k: where for k, where in over_origins.items() if k[: len(key)] == key})
        origins[key] = over_origins[key]
    return merged
