"""Experiment configs: the line-aware YAML 1.2 reader, schema validation with defaults, `--set`
overrides, and (in `build`) the registry-resolved objects a run is made of.

This package's top level is what the rest of latentrun reads configs through; `build` and
`components` import torch and every component, so they are imported by name where needed.
"""

from latentrun.config.loader import (
    RUN_CONTROL_KEYS,
    SCHEMA_PATH,
    ConfigError,
    apply_overrides,
    diff,
    dump,
    flatten,
    load,
    load_schema,
    parse_override,
    resolve,
)

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
