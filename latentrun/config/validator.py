"""Schema validation: every problem of a raw config at once, worded for the user, then the
schema's defaults filled in. The schema (schemas/experiment.schema.json) is the one source of the
config's shape; rules spanning several keys come from the components they concern.
"""

from __future__ import annotations

import copy
import functools
import json
import math
from collections.abc import Callable, Mapping
from typing import Any

import jsonschema

from latentrun.config.errors import ConfigError, Key, Origins, describe, did_you_mean, fmt, show, where
from latentrun.core.keys import SCHEMA_PATH
from latentrun.core.rules import CrossProblem, Sections
from latentrun.models import rules as model_rules
from latentrun.task import rules as task_rules
from latentrun.train import rules as train_rules

EXTENDS = "extends"  # compose.EXTENDS: the key that names a base file
MISSING: Any = object()  # a key the config does not write, as opposed to one written as null

# Rules that span keys, kept beside the components they check; torch-free, like this module.
CROSS_RULES: tuple[Callable[[Sections], list[CrossProblem]], ...] = (
    task_rules.cross_problems,
    model_rules.cross_problems,
    train_rules.cross_problems,
)


@functools.cache
def load_schema() -> dict:
    """The experiment JSON schema, read once: every check, default and description comes from it."""
    with open(SCHEMA_PATH, encoding="utf-8") as f:
        return json.load(f)


def resolve(raw: dict, source: str = "<config>", lines: Mapping[Key, int] | None = None) -> dict:
    """Validate a raw config (all problems collected, then raised together) and fill defaults from
    the schema. `lines` maps key paths to the 1-based lines that `source` wrote them on."""
    origins: Origins = {key: (source, line) for key, line in (lines or {}).items()}
    origins.setdefault((), (source, None))
    return validate(raw, origins)


def validate(raw: Any, origins: Origins) -> dict:
    """`resolve` for a config whose values may come from several places (a file and `--set`s):
    each problem is reported where its key was written."""
    if not isinstance(raw, dict):
        msg = f"expected a mapping of sections, got {describe(raw)}"
        raise ConfigError([fmt(*where(origins, ()), (), msg)])
    found = _schema_problems(raw)
    if EXTENDS in raw:  # compose.read takes it out of every file; only --set can bring it back
        found.append(((EXTENDS,), "names a base file, which an experiment file does; --set cannot"))
    broken = {key[0] for key, _ in found if key} | {EXTENDS}  # a resolved config is whole: no base left to name
    sections = {name: fill(name, raw.get(name, MISSING)) for name in load_schema()["properties"] if name not in broken}
    for rule in CROSS_RULES:
        for candidates, msg in rule(sections):
            found.append((_blame(candidates, origins), msg))
    if found:
        # File problems by line, then each --set's problems in the order the flags were given.
        order = {source: i for i, source in enumerate(dict.fromkeys(s for s, _ in origins.values()))}
        located = sorted(
            ((*where(origins, key), key, msg) for key, msg in found),
            key=lambda p: (p[1] is None, order.get(p[0], 0), p[1] or 0),
        )
        raise ConfigError(list(dict.fromkeys(fmt(*p) for p in located)))
    return copy.deepcopy(sections)


def default_name(section: str) -> str | None:
    """The registry name a section gets when the config leaves it out; None for a plain section."""
    if section not in load_schema()["properties"] or _entries(section) is None:
        return None
    return _deref(load_schema()["properties"][section])["properties"]["name"]["default"]


def fill(section: str, value: Any) -> Any:
    """A top-level entry with the schema's defaults filled in; `value` must already be valid."""
    prop = _deref(load_schema()["properties"][section])
    entries = _entries(section)
    if entries is not None:
        value = {"name": default_name(section)} if value is MISSING else value
        params = entries[value["name"]].get("properties", {})
        return {"name": value["name"], **{k: _leaf(p, value.get(k, MISSING)) for k, p in params.items()}}
    if "properties" in prop:
        value = {} if value is MISSING else value
        return {k: _leaf(p, value.get(k, MISSING)) for k, p in prop["properties"].items()}
    return _leaf(prop, value)


def _leaf(spec: dict, value: Any) -> Any:
    spec = _deref(spec)
    if "properties" in spec:  # a nested object: fill its own keys' defaults
        value = {} if value is MISSING else value
        return {k: _leaf(p, value.get(k, MISSING)) for k, p in spec["properties"].items()}
    value = spec.get("default") if value is MISSING else value
    # An int is a valid number, but one type per key keeps diff() and the frozen file stable.
    return float(value) if spec.get("type") == "number" and isinstance(value, int) else value


# --- the schema's structure ----------------------------------------------------------------------


@functools.cache
def _validator() -> jsonschema.protocols.Validator:
    # Stricter than JSON: 1.0 is not an integer (jsonschema says it is) and nan/inf are not numbers
    # (nan slips past every minimum/maximum).
    checker = jsonschema.Draft202012Validator.TYPE_CHECKER.redefine_many(
        {
            "integer": lambda _, v: isinstance(v, int) and not isinstance(v, bool),
            "number": lambda _, v: (
                (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and math.isfinite(v))
            ),
        }
    )
    cls = jsonschema.validators.extend(jsonschema.Draft202012Validator, type_checker=checker)
    return cls(load_schema())


def _deref(node: dict) -> dict:
    ref = node.get("$ref")
    return load_schema()["$defs"][ref.removeprefix("#/$defs/")] if ref else node


@functools.cache
def _entries(section: str) -> dict[str, dict] | None:
    """Registry entry definitions of a section by name (its `allOf` of `if name == X then $ref`), or
    None for a plain section."""
    branches = _deref(load_schema()["properties"][section]).get("allOf")
    if not branches:
        return None
    return {b["if"]["properties"]["name"]["const"]: _deref(b["then"]) for b in branches}


def _allowed_keys(key: Key, instance: dict) -> list[str] | None:
    """Keys the schema accepts in the mapping at `key`; None when the section's name is unknown,
    since its parameters then cannot be judged."""
    props = load_schema()["properties"]
    if not key:
        return list(props)
    if key[0] not in props:
        return []
    entries = _entries(key[0])
    if entries is None:
        spec = _deref(props[key[0]])
        for part in key[1:]:  # a plain section's nested object, such as train.teacher_forcing
            spec = _deref(spec.get("properties", {}).get(part, {}))
        return list(spec.get("properties", {}))
    if len(key) > 1:
        return []
    name = instance.get("name", MISSING)
    if name is MISSING:
        chosen = list(entries.values())
    elif isinstance(name, str) and name in entries:
        chosen = [entries[name]]
    else:
        return None
    return list(dict.fromkeys(["name", *(k for e in chosen for k in e.get("properties", {}))]))


# --- wording -------------------------------------------------------------------------------------


def _schema_problems(raw: dict) -> list[tuple[Key, str]]:
    found = []
    for err in _validator().iter_errors(raw):
        key, kind, limit, value = tuple(err.absolute_path), err.validator, err.validator_value, err.instance
        if kind in ("additionalProperties", "unevaluatedProperties"):
            # Recomputed from the schema rather than taken from jsonschema, which also calls a
            # registry parameter "unevaluated" when its own value failed validation.
            allowed = _allowed_keys(key, value)
            found += [
                (key + (k,), f"unknown key {k!r}{_hint(k, allowed, key)}")
                for k in value
                if allowed is not None and k not in allowed
            ]
        elif kind == "required":
            found += [(key, f"missing required key {k!r}") for k in limit if k not in value]
        elif kind == "enum" and key[1:] == ("name",) and _entries(key[0]) is not None:
            known = sorted(limit)
            found.append(
                (key, f"unknown {key[0]} {show(value)}{did_you_mean(value, known)}; known: {', '.join(known)}")
            )
        else:
            found.append((key, _message(err)))
    return found


def _message(err: jsonschema.ValidationError) -> str:
    kind, limit, value = err.validator, err.validator_value, err.instance
    if kind == "type":
        words = {
            "integer": "an integer",
            "number": "a number",
            "string": "a string",
            "null": "null",
            "boolean": "a boolean (true or false)",
            "object": "a mapping",
            "array": "a list",
        }
        wanted = " or ".join(words[t] for t in ([limit] if isinstance(limit, str) else limit))
        if isinstance(value, float) and not math.isfinite(value):
            wanted = wanted.replace("a number", "a finite number")
        yaml11 = "boolean" in limit and str(value).lower() in ("yes", "no", "on", "off", "y", "n")
        note = " (YAML 1.2: only true/false are booleans)" if yaml11 else ""
        return f"expected {wanted}, got {describe(value)}{note}"
    bounds = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}
    if kind in bounds:
        return f"must be {bounds[kind]} {show(limit)}, got {show(value)}"
    if kind == "enum":
        choices = ", ".join(map(show, limit))
        return f"must be one of {choices}, got {show(value)}{did_you_mean(value, limit)}"
    if kind == "pattern":
        return f"must match {limit}, got {show(value)}"
    return " ".join(err.message.split())


def _hint(key: Any, allowed: list[str], at: Key) -> str:
    entries = _entries(at[0]) if len(at) == 1 and at[0] in load_schema()["properties"] else None
    owners = [name for name, entry in (entries or {}).items() if key in entry.get("properties", {})]
    if owners:  # a difflib guess would mislead here: the key is right, the entry is another
        return f" (a parameter of {' and '.join(owners)} only)"
    hint = did_you_mean(key, allowed)
    if not hint and not at:  # a section's parameter written at the top level
        homes = [f"{s}.{key}" for s in load_schema()["properties"] if key in (_allowed_keys((s,), {}) or [])]
        hint = f" (did you mean {homes[0]!r}?)" if homes else ""
    return hint or (f"; known keys: {', '.join(allowed)}" if allowed else "")


def _blame(candidates: list, origins: Origins) -> Any:
    """Where a cross-key problem is reported: at a key a `--set` gave (the user's latest word, so
    `--set model.d_model=33` is blamed rather than num_heads in the file), else at the first key
    the user wrote anywhere, else at the first candidate."""
    written = [key for key in candidates if key in origins]
    from_set = [key for key in written if origins[key][0].startswith("--set ")]
    return (from_set or written or candidates)[0]
