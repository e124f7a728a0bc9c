"""The YAML 1.2 reader: config text to plain Python values, with the line every key was written on.

PyYAML alone reads YAML 1.1 (`yes` is true, `1e-3` a string, `012` octal), keeps the last of two
duplicate keys and builds Python objects from tags. Here its composer is kept and everything after
it replaced: scalars are typed by the YAML 1.2 core schema, duplicate keys, custom tags, anchors
and over-deep or over-large documents are problems, and every problem carries its line.
"""

from __future__ import annotations

import json
import math
import os
import re
from typing import Any

import yaml

from latentrun.config.errors import ConfigError, Key, describe, float_text, fmt

_MAX_BYTES = 1 << 20  # a config is a few hundred bytes; don't slurp a checkpoint passed by mistake
_MAX_DEPTH = 32  # configs nest two levels; stop long before Python's recursion limit would
# A full config is ~60 values. Pure-Python YAML takes tens of seconds over a 1 MiB flow list, so stop
# composing (and scanning, which is lazy) at a bound no real config comes near.
_MAX_NODES = 10_000
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

_Found = list[tuple[int, Key, str]]  # (line, key, problem) collected while building values


class YAMLProblem(Exception):
    """Text that is not a config the reader accepts; `line` is 1-based, or None when unknown."""

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
            raise YAMLProblem(line, "anchors and aliases (&a, *a) are not allowed; write the value out")
        if self._depth >= _MAX_DEPTH:
            raise YAMLProblem(line, "document is nested too deeply")
        self._nodes += 1
        if self._nodes > _MAX_NODES:
            raise YAMLProblem(line, f"document holds more than {_MAX_NODES} values; not an experiment config")
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def read_text(path: str | os.PathLike, source: str) -> str:
    """The text of a config file, refusing what cannot be one (missing, a directory, over 1 MiB,
    not UTF-8) with a `ConfigError` naming `source`."""
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
        raise ConfigError([fmt(source, None, (), reason)]) from None
    if len(data) > _MAX_BYTES:
        raise ConfigError([fmt(source, None, (), "file is over 1 MiB; not an experiment config")])
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line, msg = data[: e.start].count(b"\n") + 1, f"file is not UTF-8 text (byte 0x{data[e.start]:02x})"
        raise ConfigError([fmt(source, line, (), msg)]) from None


def parse(text: str, source: str) -> tuple[dict, dict[Key, int]]:
    """A config document to (mapping of sections, key path -> 1-based line); every problem in it
    is raised together as one `ConfigError`, in line order."""
    try:
        node = _compose(text)
    except YAMLProblem as p:
        raise ConfigError([fmt(source, p.line, (), p.msg)]) from None
    if node is None or (node.tag == _PLAIN and node.value == ""):
        raise ConfigError([fmt(source, None, (), "file is empty: expected a mapping of sections")])
    lines = {(): node.start_mark.line + 1}
    found: _Found = []
    raw = _build(node, (), lines, found)
    if found:
        raise ConfigError([fmt(source, *f) for f in sorted(found, key=lambda f: f[0])])
    if not isinstance(raw, dict):
        msg = f"expected a mapping of sections at the top level, got {describe(raw)}"
        raise ConfigError([fmt(source, lines[()], (), msg)])
    return raw, lines


def parse_scalar(text: str) -> Any:
    """One YAML scalar (a `--set` value) by the same rules as files; `YAMLProblem` otherwise."""
    try:
        node = _compose(text)
    except YAMLProblem as p:
        raise YAMLProblem(None, f"cannot parse value {text.strip()!r}: {p.msg}") from None
    if node is None:
        return None
    if not isinstance(node, yaml.ScalarNode):
        raise YAMLProblem(None, f"value must be a single YAML scalar, got {text.strip()!r}")
    found: _Found = []
    value = _build(node, (), {}, found)
    if found:
        raise YAMLProblem(None, found[0][2])
    return value


def scalar_text(value: Any) -> str:
    """YAML for a scalar that reads back, under the 1.2 rules above, as the same type and value."""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return float_text(value)
    if isinstance(value, str):
        # Quote whatever YAML 1.2 or PyYAML's 1.1 would read as something else (012, 1e-3, yes,
        # 2020-01-01), so the frozen file means the same to any YAML reader.
        plain = _SAFE_PLAIN.fullmatch(value) and _plain(value) == value == yaml.safe_load(value)
        return value if plain else json.dumps(value)  # a JSON string is a valid double-quoted YAML one
    raise TypeError(f"cannot write {type(value).__name__} into a config")


def _compose(text: str) -> yaml.Node | None:
    """yaml.compose with every way PyYAML can fail turned into a YAMLProblem a user can act on."""
    try:
        return yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else None
        if "'\\t'" in (e.problem or ""):
            raise YAMLProblem(line, "tab character in indentation; use spaces") from None
        if "single document" in (e.context or ""):
            raise YAMLProblem(line, "more than one YAML document (---) in the file; expected one") from None
        context = f" ({e.context})" if e.context else ""
        raise YAMLProblem(line, f"invalid YAML: {e.problem}{context}") from None
    except yaml.reader.ReaderError as e:
        line = text[: e.position].count("\n") + 1
        raise YAMLProblem(line, f"character #x{e.character:04x} is not allowed in YAML") from None
    except yaml.YAMLError as e:
        raise YAMLProblem(None, f"invalid YAML: {' '.join(str(e).split())}") from None
    except RecursionError:
        raise YAMLProblem(None, "document is nested too deeply") from None


def _build(node: yaml.Node, key: Key, lines: dict[Key, int], found: _Found) -> Any:
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
            found.append((key_line, key, f"keys must be strings, got {describe(name)}"))
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
