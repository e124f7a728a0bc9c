"""Configs as a resume sees them: `--set KEY=VALUE` overrides, the dotted-key view and the diff
that decides what needs `--force`, and the frozen YAML copy a run keeps."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from latentrun.config.errors import ConfigError, Origins, describe, fmt
from latentrun.config.reader import YAMLProblem, parse_scalar, scalar_text
from latentrun.config.validator import SCHEMA_PATH, default_name, load_schema

# Keys that only steer how a run proceeds, not what it computes: a resume may change them freely.
RUN_CONTROL_KEYS: frozenset[str] = frozenset(
    {
        "train.max_steps",
        "train.save_every",
        "train.eval_every",
        "train.device",
        "train.log_every",
        "train.loggers",  # where metrics are sent, not what is computed
        "train.keep_last",
        "train.eval_batch_size",
        "train.num_threads",
        "train.gradient_checkpointing",  # recomputes activations bit for bit (tests/models/test_gradient_checkpointing.py)
    }
)


def parse_override(text: str) -> tuple[str, Any]:
    """Split one `--set KEY=VALUE` into the dotted key and its value, read by the same YAML 1.2
    rules as files so `--set optimizer.lr=3e-4` means what it would in the file."""
    at = f"--set {text}"
    key, eq, value_text = text.partition("=")
    key = key.strip()
    if not eq:
        raise ConfigError([f"{at}: expected KEY=VALUE, e.g. --set optimizer.lr=3e-4"])
    if "" in key.split("."):
        raise ConfigError([f"{at}: empty key; expected a dotted key such as optimizer.lr"])
    try:
        return key, _parse_value(value_text)
    except YAMLProblem as p:
        raise ConfigError([f"{at}: {p.msg}"]) from None


def _parse_value(text: str) -> Any:
    """A YAML scalar, or a flow list of them (`[tensorboard, mlflow]`, for train.loggers): what a
    config's keys take, read item by item by the same rules."""
    stripped = text.strip()
    if not (stripped.startswith("[") and stripped.endswith("]")):
        return parse_scalar(text)
    inner = stripped[1:-1]
    return [parse_scalar(item) for item in split_values(inner)] if inner.strip() else []


def split_values(text: str) -> list[str]:
    """The comma-separated values of a `--set` value, commas inside quotes or brackets kept."""
    parts: list[str] = []
    current: list[str] = []
    quote, depth = "", 0
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char in "[{(":
            depth += 1
        elif char in "]})":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts


def apply_overrides(config: dict, overrides: Sequence[str], origins: Origins | None = None) -> dict:
    """Return a copy of `config` with `--set` overrides applied, for a fresh file or a resolved config
    on resume; validation is left to `resolve`, which also catches unknown keys. `origins`, when
    given, is updated so that each overridden key is blamed on its `--set`."""
    origins = {} if origins is None else origins
    out = copy.deepcopy(dict(config))
    problems = []
    for text in overrides:
        try:
            key, value = parse_override(text)
        except ConfigError as e:
            problems += e.problems
            continue
        path, node = tuple(key.split(".")), out
        for i, part in enumerate(path[:-1]):
            if part not in node:
                # A section missing from the file starts as its default entry, so that
                # `--set model.d_model=128` works without also spelling out model.name.
                default = default_name(part) if i == 0 else None
                node[part] = {"name": default} if default else {}
                origins[path[: i + 1]] = (f"--set {text}", None)
            node = node[part]
            if not isinstance(node, dict):
                msg = f"is {describe(node)}, not a section; cannot set {path[i + 1]!r} inside it"
                problems.append(fmt(f"--set {text}", None, path[: i + 1], msg))
                break
        else:
            node[path[-1]] = value
            for stale in [k for k in origins if k[: len(path)] == path]:
                del origins[stale]
            origins[path] = (f"--set {text}", None)
    if problems:
        raise ConfigError(problems)
    return out


def diff(old: Mapping, new: Mapping) -> dict[str, tuple[Any, Any]]:
    """Dotted key -> (old, new) for every leaf that differs, so a resume can tell which changes need
    --force and record them; a key absent on one side shows as None there."""
    a, b = flatten(old), flatten(new)
    changed = {}
    for key in {**a, **b}:
        x, y = a.get(key), b.get(key)
        if type(x) is not type(y) or x != y:  # True == 1 in Python, but not in a config
            changed[key] = (x, y)
    return changed


def flatten(config: Mapping, prefix: str = "") -> dict[str, Any]:
    """Dotted key -> leaf value (`optimizer.lr`: 0.001), the form `--set` and `diff` speak, for
    code that compares or tabulates configs."""
    flat = {}
    for key, value in config.items():
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def dump(config: Mapping) -> str:
    """YAML text of a resolved config for the frozen runs/<id>/config.yaml; it re-loads through
    `load()` to an identical dict, so a resumed run sees exactly what the original saw."""
    order = list(load_schema()["properties"])
    keys = sorted(config, key=lambda k: order.index(k) if k in order else len(order))
    # An absolute URI: the frozen copy may live under any --runs-dir.
    out = [f"# yaml-language-server: $schema={SCHEMA_PATH.as_uri()}"]
    _emit({k: config[k] for k in keys}, "", out)
    return "\n".join(out) + "\n"


def _emit(mapping: Mapping, indent: str, out: list[str]) -> None:
    for key, value in mapping.items():
        if isinstance(value, Mapping) and value:
            out.append(f"{indent}{scalar_text(key)}:")
            _emit(value, indent + "  ", out)
        else:
            if isinstance(value, Mapping):
                text = "{}"
            elif isinstance(value, list):  # a list of scalars (train.loggers), in flow style
                text = "[" + ", ".join(scalar_text(item) for item in value) + "]"
            else:
                text = scalar_text(value)
            out.append(f"{indent}{scalar_text(key)}: {text}")
