"""Experiment configs, read through this package's top level by the rest of latentrun.

`reader` turns YAML 1.2 text into values with their lines, `compose` merges a file onto the
files it `extends`, `validator` checks them against the schema (and the cross-key rules beside
each component) and fills defaults, `overrides` applies `--set`, diffs configs and writes the
frozen copy, `errors` words every problem. None of them
imports torch. `build` and `components` do (they make the run's objects), so they are imported by
name where needed.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from latentrun.config import compose
from latentrun.config.errors import ConfigError, Origins, fmt, where
from latentrun.config.overrides import RUN_CONTROL_KEYS, apply_overrides, diff, dump, flatten, parse_override
from latentrun.config.validator import SCHEMA_PATH, load_schema, resolve, validate

EXPERIMENT_SUFFIXES = (".yaml", ".yml")  # init.from names an experiment file, not a run, when it ends so


def load(path: str | os.PathLike, overrides: Sequence[str] = ()) -> dict:
    """Read a YAML experiment (merged onto the files it `extends`), apply `--set` overrides, validate
    everything, fill defaults; return the fully resolved plain dict (every key of every section
    present). `experiment: null` becomes the file's stem. This is the one door through which a
    config reaches a run."""
    source = str(path)
    raw, origins = compose.read(path)
    files = {file for file, _ in origins.values()}
    raw = apply_overrides(raw, overrides, origins)
    if raw.get("experiment") is None:
        raw["experiment"] = Path(path).stem
        origins.setdefault(("experiment",), (source, None))  # blame the file name, not line 1
    return _resolve_paths(validate(raw, origins), Path(path).parent, origins, files)


def _resolve_paths(config: dict, base: Path, origins: Origins, files: set[str]) -> dict:
    """Make the config's file paths absolute, relative to the folder of the experiment file that
    wrote them (a base file's paths to the base's folder; a --set's to the experiment's), so that the
    frozen copy in a run dir means the same files from anywhere; a missing file is a ConfigError.
    Runs named in init.from stay as written: they are looked up in the runs dir when the run starts."""
    missing = []

    def absolute(written: str, key: tuple[str, ...], what: str) -> str:
        writer = where(origins, key)[0]
        folder = Path(writer).parent if writer in files else base
        file = Path(os.path.abspath(Path(written) if Path(written).is_absolute() else folder / written))
        if not file.is_file():
            missing.append(fmt(*where(origins, key), key, f"no such {what}: {file}"))
        return str(file)

    dataset = config["dataset"]
    if "exclude" in dataset:
        dataset["exclude"] = [absolute(path, ("dataset", "exclude"), "problem file") for path in dataset["exclude"]]
    source = config["init"]["from"]
    if source is not None and source.endswith(EXPERIMENT_SUFFIXES):
        config["init"]["from"] = absolute(source, ("init", "from"), "experiment file")
    if missing:
        raise ConfigError(missing)
    return config


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
