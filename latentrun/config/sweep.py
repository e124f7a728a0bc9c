"""Sweeps on the command line: `--set key=a,b,c` and `--set key=range(start,stop,step)`.

Each `--set` is one axis; a launch is the Cartesian product of its axes (with the experiment files
and `--seeds`, which the launcher adds). Every value is read by the same YAML 1.2 rules as a single
`--set`, and a value that itself holds a comma is quoted (`--set 'experiment="a,b"'`). A key given
twice is an error: silently keeping the last value would train something the user did not ask for.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from latentrun.config import ConfigError, parse_override
from latentrun.config.overrides import split_values

MAX_POINTS = 10_000  # far beyond any launch a machine can train; a typo in a range is not a plan
_RANGE = re.compile(r"\s*range\((?P<args>[^()]*)\)\s*")


@dataclass(frozen=True)
class Axis:
    """One `--set`: its dotted key and the value texts it takes, each re-readable by `--set`."""

    key: str
    values: tuple[str, ...]
    given: str  # the `--set` text as typed, for messages and the sweep record

    @property
    def swept(self) -> bool:
        return len(self.values) > 1


def parse(overrides: Sequence[str]) -> list[Axis]:
    """The axes of a list of `--set` texts, every value checked; ConfigError lists every problem."""
    axes: list[Axis] = []
    problems: list[str] = []
    first: dict[str, str] = {}
    for text in overrides:
        key = text.partition("=")[0].strip()
        if key in first:
            problems.append(
                f"--set {text}: {key} is already set by --set {first[key]}; give a key once "
                f"(to sweep it, list its values: --set {key}=A,B)"
            )
            continue
        first[key] = text
        try:
            axes.append(_axis(text))
        except ConfigError as error:
            problems += error.problems
    if problems:
        raise ConfigError(problems)
    size = 1
    for axis in axes:
        size *= len(axis.values)
    if size > MAX_POINTS:
        raise ConfigError([f"the sweep has {size:,} points; at most {MAX_POINTS:,} are launched at once"])
    return axes


def points(axes: Sequence[Axis]) -> list[list[str]]:
    """Every combination of the axes' values as `--set` texts, the last axis varying fastest."""
    return [
        [f"{axis.key}={value}" for axis, value in zip(axes, combination)]
        for combination in itertools.product(*(axis.values for axis in axes))
    ]


def is_sweep(axes: Sequence[Axis]) -> bool:
    """Whether any axis takes more than one value."""
    return any(axis.swept for axis in axes)


def _axis(text: str) -> Axis:
    where = f"--set {text}"
    key, eq, value_text = text.partition("=")
    if not eq:
        parse_override(text)  # its message for a missing '='
    key = key.strip()
    match = _RANGE.fullmatch(value_text)
    values = _range(where, match["args"]) if match else [v.strip() for v in split_values(value_text)]
    if len(values) > 1:
        if any(v == "" for v in values):
            raise ConfigError([f"{where}: an empty value in the list; write null for a null value"])
        repeated = sorted({v for v in values if values.count(v) > 1})
        if repeated:
            raise ConfigError([f"{where}: {', '.join(repeated)} listed twice"])
    else:
        values = [value_text]
    problems = []
    for value in values:
        try:
            parse_override(f"{key}={value}")
        except ConfigError as error:
            problems += [p.replace(f"--set {key}={value}:", f"{where}:", 1) for p in error.problems]
    if problems:
        raise ConfigError(problems)
    return Axis(key, tuple(values), text)


def _range(where: str, args: str) -> list[str]:
    """The values of `range(stop)`, `range(start, stop)` or `range(start, stop, step)`, as Python's
    range but for floats too; decimal arithmetic so that range(0.1,0.4,0.1) ends at 0.3, not 0.30000000000000004."""
    usage = "range(START, STOP, STEP) takes one to three numbers"
    try:
        numbers = [Decimal(part.strip()) for part in args.split(",")]
    except InvalidOperation:
        raise ConfigError([f"{where}: {usage}, got range({args})"]) from None
    if not 1 <= len(numbers) <= 3 or not all(n.is_finite() for n in numbers):
        raise ConfigError([f"{where}: {usage}, got range({args})"])
    start, stop, step = (
        (Decimal(0), numbers[0], Decimal(1))
        if len(numbers) == 1
        else (*numbers[:2], numbers[2] if len(numbers) == 3 else Decimal(1))
    )
    if step == 0:
        raise ConfigError([f"{where}: the step of range() must not be 0"])
    too_many = f"{where}: more than {MAX_POINTS:,} values; at most {MAX_POINTS:,} are launched at once"
    try:
        span = (stop - start) / step
    except ArithmeticError:  # decimal's Overflow or InvalidOperation: bounds beyond its exponent range
        raise ConfigError([too_many]) from None
    if span > MAX_POINTS:
        raise ConfigError([too_many])
    count = max(0, int(-((start - stop) // step)))  # ceil((stop - start) / step)
    integral = all("." not in part and "e" not in part.lower() for part in args.split(","))
    values = [start + i * step for i in range(count)]
    if not values:
        raise ConfigError([f"{where}: range({args}) is empty"])
    return [str(int(v)) if integral else repr(float(v)) for v in values]
