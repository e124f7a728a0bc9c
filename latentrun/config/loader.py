"""Experiment configs: read YAML 1.2 with line numbers, apply `--set` overrides, validate against
the schema, fill its defaults, and write the frozen copy a run keeps.

Every user mistake becomes one `ConfigError` listing every problem as `FILE:LINE: KEY: problem`;
yaml, jsonschema and Python exceptions never reach the user for a bad config.
"""

from __future__ import annotations

import copy
import difflib
import functools
import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jsonschema
import yaml

SCHEMA_PATH: Path = Path(__file__).resolve().parents[2] / "schemas" / "experiment.schema.json"

# Keys that only steer how a run proceeds, not what it computes: a resume may change them freely.
RUN_CONTROL_KEYS: frozenset[str] = frozenset(
    {
        "train.max_steps",
        "train.save_every",
        "train.eval_every",
        "train.device",
        "train.log_every",
        "train.keep_last",
        "train.eval_batch_size",
        "train.num_threads",
        "train.gradient_checkpointing",  # recomputes activations bit for bit (tests/models/test_gradient_checkpointing.py)
    }
)

_MAX_BYTES = 1 << 20  # a config is a few hundred bytes; don't slurp a checkpoint passed by mistake
_MAX_DEPTH = 32  # configs nest two levels; stop long before Python's recursion limit would
# A full config is ~60 values. Pure-Python YAML takes tens of seconds over a 1 MiB flow list, so stop
# composing (and scanning, which is lazy) at a bound no real config comes near.
_MAX_NODES = 10_000
_MISSING = object()
_STD = "tag:yaml.org,2002:"
_PLAIN = "tag:latentrun,plain"  # untagged plain scalar, typed below by YAML 1.2 rather than PyYAML's 1.1
_TAGS = {
    yaml.ScalarNode: {_PLAIN} | {_STD + t for t in ("str", "int", "float", "bool", "null")},
    yaml.MappingNode: {_STD + "map"},
    yaml.SequenceNode: {_STD + "seq"},
}
_BOOLS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_NULL = re.compile(r"null|Null|NULL|~|")
_INT = re.compile(r"[-+]?[0-9]+")
_OCT = re.compile(r"0o[0-7]+")
_HEX = re.compile(r"0x[0-9a-fA-F]+")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_INF = re.compile(r"[-+]?\.(inf|Inf|INF)")
_NAN = re.compile(r"\.(nan|NaN|NAN)")
_SAFE_PLAIN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./-]*")

_Key = tuple[Any, ...]  # path of keys (and list indices) from the top of the document
_Origins = dict[_Key, tuple[str, "int | None"]]  # where a value was written: (file or '--set ...', line)


class ConfigError(Exception):
    """One or more problems with a config, caught once by the CLI and shown without a traceback.

    `.problems` holds one line per problem, 'FILE:LINE: KEY: problem' (or 'FILE: KEY: problem' /
    'FILE: problem' when no line is known); str(err) is the problems joined by newlines.
    """

    def __init__(self, problems: Sequence[str]) -> None:
        # One problem per line is what the CLI prints and tools grep, so no problem may span two.
        self.problems = [p.replace("\r", "\\r").replace("\n", "\\n") for p in problems]
        super().__init__(self.problems)

    def __str__(self) -> str:
        return "\n".join(self.problems)


class _Problem(Exception):
    def __init__(self, line: int | None, msg: str) -> None:
        super().__init__(msg)
        self.line, self.msg = line, msg


class _Loader(yaml.SafeLoader):
    """SafeLoader's composer with PyYAML's YAML 1.1 typing switched off, anchors refused (no alias
    bombs or cycles; configs are small enough to write out) and nesting bounded."""

    _depth = 0
    _nodes = 0

    def resolve(self, kind: type, value: Any, implicit: Any) -> str:
        if kind is yaml.ScalarNode:
            return _PLAIN if implicit[0] else _STD + "str"
        return super().resolve(kind, value, implicit)

    def compose_node(self, parent: Any, index: Any) -> yaml.Node:
        event = self.peek_event()
        line = event.start_mark.line + 1
        if isinstance(event, yaml.AliasEvent) or event.anchor is not None:
            raise _Problem(line, "anchors and aliases (&a, *a) are not allowed; write the value out")
        if self._depth >= _MAX_DEPTH:
            raise _Problem(line, "document is nested too deeply")
        self._nodes += 1
        if self._nodes > _MAX_NODES:
            raise _Problem(line, f"document holds more than {_MAX_NODES} values; not an experiment config")
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


@functools.cache
def load_schema() -> dict:
    """The experiment JSON schema, read once: every check, default and description comes from it."""
    with open(SCHEMA_PATH, encoding="utf-8") as f:
        return json.load(f)


def load(path: str | os.PathLike, overrides: Sequence[str] = ()) -> dict:
    """Read a YAML experiment, apply `--set` overrides, validate everything, fill defaults; return the
    fully resolved plain dict (every key of every section present). `experiment: null` becomes the
    file's stem. This is the one door through which a config reaches a run."""
    source = str(path)
    raw, lines = _parse(_read(path, source), source)
    origins: _Origins = {key: (source, line) for key, line in lines.items()}
    raw = _apply(raw, overrides, origins)
    if raw.get("experiment") is None:
        raw["experiment"] = Path(path).stem
        origins.setdefault(("experiment",), (source, None))  # blame the file name, not line 1
    return _resolve(raw, origins)


def parse_override(text: str) -> tuple[str, Any]:
    """Split one `--set KEY=VALUE` into the dotted key and its value, read by the same YAML 1.2
    rules as files so `--set optimizer.lr=3e-4` means what it would in the file."""
    where = f"--set {text}"
    key, eq, value_text = text.partition("=")
    key = key.strip()
    if not eq:
        raise ConfigError([f"{where}: expected KEY=VALUE, e.g. --set optimizer.lr=3e-4"])
    if "" in key.split("."):
        raise ConfigError([f"{where}: empty key; expected a dotted key such as optimizer.lr"])
    try:
        node = _compose(value_text)
    except _Problem as p:
        raise ConfigError([f"{where}: cannot parse value {value_text.strip()!r}: {p.msg}"]) from None
    if node is None:
        return key, None
    if not isinstance(node, yaml.ScalarNode):
        raise ConfigError([f"{where}: value must be a single YAML scalar, got {value_text.strip()!r}"])
    found: list[tuple[int, _Key, str]] = []
    value = _build(node, (), {}, found)
    if found:
        raise ConfigError([f"{where}: {found[0][2]}"])
    return key, value


def apply_overrides(config: dict, overrides: Sequence[str]) -> dict:
    """Return a copy of `config` with `--set` overrides applied, for a fresh file or a resolved config
    on resume; validation is left to `resolve`, which also catches unknown keys."""
    return _apply(config, overrides, {})


def resolve(raw: dict, source: str = "<config>", lines: Mapping[_Key, int] | None = None) -> dict:
    """Validate a raw config (all problems collected, then raised together) and fill defaults from
    the schema. `lines` maps key paths to the 1-based lines that `source` wrote them on."""
    origins: _Origins = {key: (source, line) for key, line in (lines or {}).items()}
    origins.setdefault((), (source, None))
    return _resolve(raw, origins)


def dump(config: Mapping) -> str:
    """YAML text of a resolved config for the frozen runs/<id>/config.yaml; it re-loads through
    `load()` to an identical dict, so a resumed run sees exactly what the original saw."""
    order = list(load_schema()["properties"])
    keys = sorted(config, key=lambda k: order.index(k) if k in order else len(order))
    # An absolute URI: the frozen copy may live under any --runs-dir.
    out = [f"# yaml-language-server: $schema={SCHEMA_PATH.as_uri()}"]
    _emit({k: config[k] for k in keys}, "", out)
    return "\n".join(out) + "\n"


def diff(old: Mapping, new: Mapping) -> dict[str, tuple[Any, Any]]:
    """Dotted key -> (old, new) for every leaf that differs, so a resume can tell which changes need
    --force and record them; a key absent on one side shows as None there."""
    a, b = _flatten(old), _flatten(new)
    changed = {}
    for key in {**a, **b}:
        x, y = a.get(key), b.get(key)
        if type(x) is not type(y) or x != y:  # True == 1 in Python, but not in a config
            changed[key] = (x, y)
    return changed


def flatten(config: Mapping) -> dict[str, Any]:
    """Dotted key -> leaf value (`optimizer.lr`: 0.001), the form `--set` and `diff` speak, for
    code that compares or tabulates configs."""
    return _flatten(config)


# --- reading -------------------------------------------------------------------------------------


def _read(path: str | os.PathLike, source: str) -> str:
    try:
        with open(path, "rb") as f:
            data = f.read(_MAX_BYTES + 1)
    except OSError as e:
        reasons = {
            FileNotFoundError: "file not found",
            PermissionError: "permission denied",
            IsADirectoryError: "is a directory, not a YAML file",
        }
        reason = reasons.get(type(e), f"cannot read file: {e.strerror or e}")
        raise ConfigError([_fmt(source, None, (), reason)]) from None
    if len(data) > _MAX_BYTES:
        raise ConfigError([_fmt(source, None, (), "file is over 1 MiB; not an experiment config")])
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line, msg = data[: e.start].count(b"\n") + 1, f"file is not UTF-8 text (byte 0x{data[e.start]:02x})"
        raise ConfigError([_fmt(source, line, (), msg)]) from None


def _parse(text: str, source: str) -> tuple[dict, dict[_Key, int]]:
    try:
        node = _compose(text)
    except _Problem as p:
        raise ConfigError([_fmt(source, p.line, (), p.msg)]) from None
    if node is None or (node.tag == _PLAIN and node.value == ""):
        raise ConfigError([_fmt(source, None, (), "file is empty: expected a mapping of sections")])
    lines = {(): node.start_mark.line + 1}
    found: list[tuple[int, _Key, str]] = []
    raw = _build(node, (), lines, found)
    if found:
        raise ConfigError([_fmt(source, *f) for f in sorted(found, key=lambda f: f[0])])
    if not isinstance(raw, dict):
        msg = f"expected a mapping of sections at the top level, got {_describe(raw)}"
        raise ConfigError([_fmt(source, lines[()], (), msg)])
    return raw, lines


def _compose(text: str) -> yaml.Node | None:
    """yaml.compose with every way PyYAML can fail turned into a _Problem a user can act on."""
    try:
        return yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else None
        if "'\\t'" in (e.problem or ""):
            raise _Problem(line, "tab character in indentation; use spaces") from None
        if "single document" in (e.context or ""):
            raise _Problem(line, "more than one YAML document (---) in the file; expected one") from None
        context = f" ({e.context})" if e.context else ""
        raise _Problem(line, f"invalid YAML: {e.problem}{context}") from None
    except yaml.reader.ReaderError as e:
        line = text[: e.position].count("\n") + 1
        raise _Problem(line, f"character #x{e.character:04x} is not allowed in YAML") from None
    except yaml.YAMLError as e:
        raise _Problem(None, f"invalid YAML: {' '.join(str(e).split())}") from None
    except RecursionError:
        raise _Problem(None, "document is nested too deeply") from None


def _build(node: yaml.Node, key: _Key, lines: dict[_Key, int], found: list) -> Any:
    """Python value of a composed node, recording the line of every key and list item."""
    line = node.start_mark.line + 1
    if node.tag not in _TAGS[type(node)]:
        tag = node.tag.replace(_STD, "!!")
        found.append((line, key, f"Python/custom tags are not allowed (found {tag})"))
        return None
    if isinstance(node, yaml.ScalarNode):
        try:
            return _scalar(node)
        except ValueError as e:
            found.append((line, key, str(e)))
            return None
    if isinstance(node, yaml.SequenceNode):
        items = []
        for i, item in enumerate(node.value):
            lines[key + (i,)] = item.start_mark.line + 1
            items.append(_build(item, key + (i,), lines, found))
        return items
    mapping = {}
    for key_node, value_node in node.value:
        key_line, before = key_node.start_mark.line + 1, len(found)
        name = _build(key_node, key, {}, found)
        if len(found) > before:
            continue
        if not isinstance(name, str):
            found.append((key_line, key, f"keys must be strings, got {_describe(name)}"))
            continue
        child = key + (name,)
        if child in lines:
            found.append((key_line, child, f"duplicate key {name!r} (first on line {lines[child]})"))
            continue
        lines[child] = key_line
        mapping[name] = _build(value_node, child, lines, found)
    return mapping


def _scalar(node: yaml.ScalarNode) -> Any:
    if node.tag == _PLAIN:
        return _plain(node.value)
    kind = node.tag[len(_STD) :]
    if kind == "str":
        return node.value
    value = _plain(node.value)
    if kind == "float" and type(value) is int:
        value = float(value)
    if type(value) is not {"int": int, "float": float, "bool": bool, "null": type(None)}[kind]:
        raise ValueError(f"{node.value!r} is not a valid !!{kind}")
    return value


def _plain(text: str) -> Any:
    """Type of an untagged plain scalar under the YAML 1.2 core schema."""
    if _NULL.fullmatch(text):
        return None
    if text in _BOOLS:
        return _BOOLS[text]
    try:
        if _INT.fullmatch(text):
            return int(text, 10)
        if _OCT.fullmatch(text) or _HEX.fullmatch(text):
            return int(text[2:], 8 if text[1] == "o" else 16)
    except ValueError:  # Python refuses int() of more than 4300 digits
        raise ValueError(f"integer {text[:20]}... has too many digits") from None
    if _FLOAT.fullmatch(text):
        return float(text)
    if _INF.fullmatch(text):
        return -math.inf if text.startswith("-") else math.inf
    if _NAN.fullmatch(text):
        return math.nan
    return text


# --- overrides -----------------------------------------------------------------------------------


def _apply(config: dict, overrides: Sequence[str], origins: _Origins) -> dict:
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
                default = _default_name(part) if i == 0 else None
                node[part] = {"name": default} if default else {}
                origins[path[: i + 1]] = (f"--set {text}", None)
            node = node[part]
            if not isinstance(node, dict):
                msg = f"is {_describe(node)}, not a section; cannot set {path[i + 1]!r} inside it"
                problems.append(_fmt(f"--set {text}", None, path[: i + 1], msg))
                break
        else:
            node[path[-1]] = value
            for stale in [k for k in origins if k[: len(path)] == path]:
                del origins[stale]
            origins[path] = (f"--set {text}", None)
    if problems:
        raise ConfigError(problems)
    return out


# --- validation ----------------------------------------------------------------------------------


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


def _default_name(section: str) -> str | None:
    if section not in load_schema()["properties"] or _entries(section) is None:
        return None
    return _deref(load_schema()["properties"][section])["properties"]["name"]["default"]


def _allowed_keys(key: _Key, instance: dict) -> list[str] | None:
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
    name = instance.get("name", _MISSING)
    if name is _MISSING:
        chosen = list(entries.values())
    elif isinstance(name, str) and name in entries:
        chosen = [entries[name]]
    else:
        return None
    return list(dict.fromkeys(["name", *(k for e in chosen for k in e.get("properties", {}))]))


def _resolve(raw: Any, origins: _Origins) -> dict:
    if not isinstance(raw, dict):
        msg = f"expected a mapping of sections, got {_describe(raw)}"
        raise ConfigError([_fmt(*_where(origins, ()), (), msg)])
    found = _schema_problems(raw)
    broken = {key[0] for key, _ in found if key}
    for candidates, msg in _cross_problems(raw, broken):
        found.append((next((c for c in candidates if c in origins), candidates[0]), msg))
    if found:
        # File problems by line, then each --set's problems in the order the flags were given.
        order = {source: i for i, source in enumerate(dict.fromkeys(s for s, _ in origins.values()))}
        located = sorted(
            ((*_where(origins, key), key, msg) for key, msg in found),
            key=lambda p: (p[1] is None, order.get(p[0], 0), p[1] or 0),
        )
        raise ConfigError(list(dict.fromkeys(_fmt(*p) for p in located)))
    schema_order = load_schema()["properties"]
    return copy.deepcopy({key: _fill(key, raw.get(key, _MISSING)) for key in schema_order})


def _schema_problems(raw: dict) -> list[tuple[_Key, str]]:
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
                (key, f"unknown {key[0]} {_show(value)}{_did_you_mean(value, known)}; known: {', '.join(known)}")
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
        return f"expected {wanted}, got {_describe(value)}{note}"
    bounds = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}
    if kind in bounds:
        return f"must be {bounds[kind]} {_show(limit)}, got {_show(value)}"
    if kind == "enum":
        choices = ", ".join(map(_show, limit))
        return f"must be one of {choices}, got {_show(value)}{_did_you_mean(value, limit)}"
    if kind == "pattern":
        return f"must match {limit}, got {_show(value)}"
    return " ".join(err.message.split())


def _cross_problems(raw: dict, broken: set[str]) -> list[tuple[list[_Key], str]]:
    """Checks that span several keys, run on sections that passed the schema. Each lists its keys in
    order of blame; the first one the user actually wrote is the one reported."""
    found = []
    if "dataset" not in broken:
        d = _fill("dataset", raw.get("dataset", _MISSING))
        if d["name"] == "multiplication":
            lo, hi, ow, pw = d["min_digits"], d["max_digits"], d["operand_width"], d["product_width"]
            if lo > hi:
                found.append(
                    (
                        [("dataset", "min_digits"), ("dataset", "max_digits")],
                        f"min_digits ({lo}) must be <= max_digits ({hi})",
                    )
                )
            if ow is not None and ow < hi:
                found.append(
                    (
                        [("dataset", "operand_width"), ("dataset", "max_digits")],
                        f"operand_width ({ow}) must be >= max_digits ({hi})",
                    )
                )
            what, width = ("operand_width", ow) if ow is not None else ("max_digits", hi)
            if pw is not None and pw < 2 * width:
                found.append(
                    (
                        [("dataset", "product_width"), ("dataset", what)],
                        f"product_width ({pw}) must be >= 2 * {what} ({2 * width})",
                    )
                )
    if "model" not in broken:
        m = _fill("model", raw.get("model", _MISSING))
        if "num_heads" in m and m["d_model"] % m["num_heads"]:
            found.append(
                (
                    [("model", "num_heads"), ("model", "d_model")],
                    f"num_heads ({m['num_heads']}) must divide d_model ({m['d_model']})",
                )
            )
    if not broken & {"model", "loss"}:
        m, loss = _fill("model", raw.get("model", _MISSING)), _fill("loss", raw.get("loss", _MISSING))
        if loss.get("latent_supervision_weight", 0) > 0 and m.get("num_latent", 0) < 1:
            found.append(
                (
                    [("loss", "latent_supervision_weight"), ("model", "num_latent"), ("model", "name")],
                    f"step supervision needs latent tokens: a latent_transformer with num_latent >= 1 "
                    f"(model is {m['name']}{', num_latent 0' if 'num_latent' in m else ''})",
                )
            )
    if not broken & {"model", "curriculum"}:
        m, c = _fill("model", raw.get("model", _MISSING)), _fill("curriculum", raw.get("curriculum", _MISSING))
        if c["name"] != "none" and m["name"] != "chain_transformer":
            found.append(
                (
                    [("curriculum", "name"), ("model", "name")],
                    f"curriculum {c['name']} moves along a written chain: it needs model chain_transformer "
                    f"(model is {m['name']})",
                )
            )
    if "train" not in broken:
        tf = _fill("train", raw.get("train", _MISSING))["teacher_forcing"]
        if tf["end_step"] < tf["start_step"]:
            found.append(
                (
                    [
                        ("train", "teacher_forcing", "end_step"),
                        ("train", "teacher_forcing", "start_step"),
                        ("train", "teacher_forcing"),
                    ],
                    f"end_step ({tf['end_step']}) must be >= start_step ({tf['start_step']})",
                )
            )
    return found


def _fill(section: str, value: Any) -> Any:
    """A top-level entry with the schema's defaults filled in; `value` must already be valid."""
    prop = _deref(load_schema()["properties"][section])
    entries = _entries(section)
    if entries is not None:
        value = {"name": _default_name(section)} if value is _MISSING else value
        params = entries[value["name"]].get("properties", {})
        return {"name": value["name"], **{k: _leaf(p, value.get(k, _MISSING)) for k, p in params.items()}}
    if "properties" in prop:
        value = {} if value is _MISSING else value
        return {k: _leaf(p, value.get(k, _MISSING)) for k, p in prop["properties"].items()}
    return _leaf(prop, value)


def _leaf(spec: dict, value: Any) -> Any:
    spec = _deref(spec)
    if "properties" in spec:  # a nested object: fill its own keys' defaults
        value = {} if value is _MISSING else value
        return {k: _leaf(p, value.get(k, _MISSING)) for k, p in spec["properties"].items()}
    value = spec.get("default") if value is _MISSING else value
    # An int is a valid number, but one type per key keeps diff() and the frozen file stable.
    return float(value) if spec.get("type") == "number" and isinstance(value, int) else value


# --- wording -------------------------------------------------------------------------------------


def _where(origins: _Origins, key: _Key) -> tuple[str, int | None]:
    """Source and line of `key`, or of the nearest enclosing key that was written somewhere."""
    for n in range(len(key), -1, -1):
        if key[:n] in origins:
            return origins[key[:n]]
    return "<config>", None


def _fmt(source: str, line: int | None, key: _Key, msg: str) -> str:
    where = source if line is None else f"{source}:{line}"
    dotted = ".".join(map(str, key))
    return f"{where}: {dotted}: {msg}" if dotted else f"{where}: {msg}"


def _did_you_mean(word: Any, choices: Sequence[Any]) -> str:
    strings = [c for c in choices if isinstance(c, str)]
    close = difflib.get_close_matches(word, strings, n=1) if isinstance(word, str) else []
    return f" (did you mean {close[0]!r}?)" if close else ""


def _hint(key: Any, allowed: list[str], where: _Key) -> str:
    entries = _entries(where[0]) if len(where) == 1 and where[0] in load_schema()["properties"] else None
    owners = [name for name, entry in (entries or {}).items() if key in entry.get("properties", {})]
    if owners:  # a difflib guess would mislead here: the key is right, the entry is another
        return f" (a parameter of {' and '.join(owners)} only)"
    hint = _did_you_mean(key, allowed)
    if not hint and not where:  # a section's parameter written at the top level
        homes = [f"{s}.{key}" for s in load_schema()["properties"] if key in _allowed_keys((s,), {})]
        hint = f" (did you mean {homes[0]!r}?)" if homes else ""
    return hint or (f"; known keys: {', '.join(allowed)}" if allowed else "")


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    for kind, name in ((bool, "boolean"), (int, "integer"), (float, "float"), (str, "string")):
        if isinstance(value, kind):
            return f"{name} {_show(value)}"
    return {dict: "a mapping", list: "a list"}.get(type(value), type(value).__name__)


def _show(value: Any) -> str:
    """A value as YAML would write it, cut short so that a problem stays one readable line."""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, float) and not math.isfinite(value):
        return _float_text(value)
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


# --- writing -------------------------------------------------------------------------------------


def _emit(mapping: Mapping, indent: str, out: list[str]) -> None:
    for key, value in mapping.items():
        if isinstance(value, Mapping) and value:
            out.append(f"{indent}{_scalar_text(key)}:")
            _emit(value, indent + "  ", out)
        else:
            text = "{}" if isinstance(value, Mapping) else _scalar_text(value)
            out.append(f"{indent}{_scalar_text(key)}: {text}")


def _scalar_text(value: Any) -> str:
    """YAML for a scalar that reads back, under the 1.2 rules above, as the same type and value."""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _float_text(value)
    if isinstance(value, str):
        # Quote whatever YAML 1.2 or PyYAML's 1.1 would read as something else (012, 1e-3, yes,
        # 2020-01-01), so the frozen file means the same to any YAML reader.
        plain = _SAFE_PLAIN.fullmatch(value) and _plain(value) == value == yaml.safe_load(value)
        return value if plain else json.dumps(value)  # a JSON string is a valid double-quoted YAML one
    raise TypeError(f"cannot write {type(value).__name__} into a config")


def _float_text(value: float) -> str:
    if math.isnan(value):
        return ".nan"
    if math.isinf(value):
        return ".inf" if value > 0 else "-.inf"
    text = repr(value)  # shortest text that round-trips; 1e-08 needs a dot to stay a float in YAML
    return text.replace("e", ".0e") if "e" in text and "." not in text else text


def _flatten(mapping: Mapping, prefix: str = "") -> dict[str, Any]:
    flat = {}
    for key, value in mapping.items():
        if isinstance(value, Mapping) and value:
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat
