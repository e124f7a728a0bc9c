"""Every config key, read from the schema: what `keys [SECTION]` prints and `--set` completion offers.

The schema is the one source of truth for a key's type, default, bounds and description, so this
module only walks it; it imports neither YAML nor jsonschema, which keeps `keys` a fast command.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The one place the schema is found: inside the package (latentrun/schemas links to the repository's
# schemas/, and a wheel holds a copy), so an installed latentrun needs no source tree.
SCHEMA_PATH: Path = Path(__file__).resolve().parents[1] / "schemas" / "experiment.schema.json"
_BOUNDS = (("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<="), ("exclusiveMaximum", "<"))


@dataclass(frozen=True)
class Key:
    """One dotted config key as the schema describes it; `entries` names the registry entries
    (models, losses, ...) that accept it when only some do, and is empty otherwise."""

    key: str
    type: str
    default: Any
    bounds: str
    description: str
    entries: tuple[str, ...] = ()


def schema_keys(schema: dict[str, Any] | None = None) -> list[Key]:
    """Every key of every section in schema order; a parameter shared by several registry entries
    (d_model of both models) is listed once, naming the entries that take it."""
    schema = schema if schema is not None else _schema()
    found: dict[str, Key] = {}
    for section, spec in schema["properties"].items():
        spec = _deref(schema, spec)
        branches = spec.get("allOf")
        if branches:
            found[f"{section}.name"] = _key(schema, f"{section}.name", spec["properties"]["name"])
            every = tuple(branch["if"]["properties"]["name"]["const"] for branch in branches)
            for branch in branches:
                entry = branch["if"]["properties"]["name"]["const"]
                for name, param in _deref(schema, branch["then"]).get("properties", {}).items():
                    key = f"{section}.{name}"
                    earlier = found.get(key)
                    entries = (*earlier.entries, entry) if earlier else (entry,)
                    found[key] = _key(schema, key, param, entries) if not earlier else _with_entries(earlier, entries)
            for key, value in found.items():  # a key every entry takes needs no "only"
                if key.startswith(f"{section}.") and value.entries == every:
                    found[key] = _with_entries(value, ())
        elif "properties" in spec:
            _walk(schema, section, spec, found)
        else:
            found[section] = _key(schema, section, spec)
    return list(found.values())


def sections(schema: dict[str, Any] | None = None) -> list[str]:
    """The top-level config sections and keys, in schema order."""
    return list((schema if schema is not None else _schema())["properties"])


def format_keys(keys: list[Key]) -> str:
    """The `keys` table: a line per key (type, default, bounds), its description indented below."""
    width = max(len(k.key) for k in keys)
    lines = []
    for k in keys:
        facts = [k.type, f"default {_show(k.default)}"] + ([k.bounds] if k.bounds else [])
        if k.entries:
            facts.append(f"{'/'.join(k.entries)} only")
        lines.append(f"{k.key:<{width}}  {', '.join(facts)}")
        lines.append(f"{'':<{width}}  {k.description}")
    return "\n".join(lines)


def _walk(schema: dict[str, Any], prefix: str, spec: dict[str, Any], found: dict[str, Key]) -> None:
    for name, param in spec["properties"].items():
        param = _deref(schema, param)
        if "properties" in param:  # a nested object such as train.teacher_forcing
            _walk(schema, f"{prefix}.{name}", param, found)
        else:
            found[f"{prefix}.{name}"] = _key(schema, f"{prefix}.{name}", param)


def _key(schema: dict[str, Any], dotted: str, spec: dict[str, Any], entries: tuple[str, ...] = ()) -> Key:
    spec = _deref(schema, spec)
    return Key(
        dotted, _type(spec), spec.get("default"), _bounds(spec), " ".join(spec.get("description", "").split()), entries
    )


def _with_entries(key: Key, entries: tuple[str, ...]) -> Key:
    return Key(key.key, key.type, key.default, key.bounds, key.description, entries)


def _type(spec: dict[str, Any]) -> str:
    if "enum" in spec:
        return "one of " + "|".join(_show(v) for v in spec["enum"])
    kinds = spec.get("type", "any")
    names = {"integer": "int", "number": "float", "string": "str", "boolean": "bool", "array": "list", "object": "map"}
    items = spec.get("items", {})
    text = " or ".join(names.get(kind, kind) for kind in ([kinds] if isinstance(kinds, str) else kinds))
    if kinds == "array" and "enum" in items:
        text += " of " + "|".join(_show(v) for v in items["enum"])
    return text


def _bounds(spec: dict[str, Any]) -> str:
    parts = [f"{sign} {_show(spec[name])}" for name, sign in _BOUNDS if name in spec]
    if "pattern" in spec:
        parts.append(f"matching {spec['pattern']}")
    return ", ".join(parts)


def _show(value: Any) -> str:
    return json.dumps(value) if value is None or isinstance(value, (bool, list)) else str(value)


def _deref(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    return schema["$defs"][ref.removeprefix("#/$defs/")] if ref else node


def _schema() -> dict[str, Any]:
    with open(SCHEMA_PATH, encoding="utf-8") as f:
        return json.load(f)
