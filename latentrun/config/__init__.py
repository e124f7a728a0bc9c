"""Experiment configs, read through this package's top level by the rest of latentrun.

`reader` turns YAML 1.2 text into values with their lines, `validator` checks them against the
schema (and the cross-key rules beside each component) and fills defaults, `overrides` applies
`--set`, diffs configs and writes the frozen copy, `errors` words every problem. None of them
imports torch. `build` and `components` do (they make the run's objects), so they are imported by
name where needed.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from latentrun.config.errors import ConfigError, Origins
from latentrun.config.overrides import RUN_CONTROL_KEYS, apply_overrides, diff, dump, flatten, parse_override
from latentrun.config.reader import parse, read_text
from latentrun.config.validator import SCHEMA_PATH, load_schema, resolve, validate


def load(path: str | os.PathLike, overrides: Sequence[str] = ()) -> dict:
    """Read a YAML experiment, apply `--set` overrides, validate everything, fill defaults; return the
    fully resolved plain dict (every key of every section present). `experiment: null` becomes the
    file's stem. This is the one door through which a config reaches a run."""
    source = str(path)
    raw, lines = parse(read_text(path, source), source)
    origins: Origins = {key: (source, line) for key, line in lines.items()}
    raw = apply_overrides(raw, overrides, origins)
    if raw.get("experiment") is None:
        raw["experiment"] = Path(path).stem
        origins.setdefault(("experiment",), (source, None))  # blame the file name, not line 1
    return validate(raw, origins)


__all__ = [
    "RUN_CONTROL_KEYS",
    "SCHEMA_PATH",
    "ConfigError",
    "apply_overrides",
    "diff",
    "dump",
    "flatten",
    "load",
    "load_schema",
    "parse_override",
    "resolve",
]
