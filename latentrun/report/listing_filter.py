"""Which runs `list` (and `latentrun.runs()`) shows: the Selection of `--experiment`, `--status`,
`--launch` and `--where KEY=VALUE`, and the checks that turn a mistyped status, key or column into
one ConfigError naming the closest valid one, before any run is read."""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field
from typing import Any

from latentrun import config as config_module
from latentrun.config import ConfigError
from latentrun.config.errors import did_you_mean
from latentrun.core import status


@dataclass(frozen=True)
class Selection:
    """Which runs `list` shows: every condition given must hold. `where` maps a dotted config key to
    the values (any of them) the run's frozen config must have there."""

    experiment: str | None = None
    status: str | None = None
    launch: str | None = None
    where: dict[str, list[Any]] = field(default_factory=dict)

    def active(self) -> bool:
        return bool(self.experiment or self.status or self.launch or self.where)

    def admits(self, row: dict[str, Any], flat_config: dict[str, Any] | None) -> bool:
        """Whether the run (its summary row and flattened frozen config) is selected."""
        if self.experiment is not None and row.get("experiment") != self.experiment:
            return False
        if self.status is not None and row.get("status") != self.status:
            return False
        if self.launch is not None and row.get("launch") != self.launch:
            return False
        if not self.where:
            return True
        if flat_config is None:
            return False
        return all(any(_same(flat_config.get(key), v) for v in values) for key, values in self.where.items())


def parse_where(texts: list[str]) -> dict[str, list[Any]]:
    """`--where KEY=VALUE` (or KEY=A,B for any of them) to key -> values, values read by the YAML 1.2
    rules of `--set`; ConfigError for a key the schema does not know, with the closest one."""
    from latentrun.config import sweep

    where: dict[str, list[Any]] = {}
    for text in texts:
        key, eq, value_text = text.partition("=")
        key = key.strip()
        if not eq:
            raise ConfigError([f"--where {text}: expected KEY=VALUE, e.g. --where optimizer.lr=0.001"])
        _check_key(key, f"--where {text}")
        values = [config_module.parse_override(f"{key}={v.strip()}")[1] for v in sweep.split_values(value_text)]
        where.setdefault(key, []).extend(values)
    return where


STATUSES = (*status.LIVE, status.FINISHED, status.STOPPED, status.INTERRUPTED, status.CRASHED, "unreadable", "unknown")


def check_status(wanted: str | None) -> None:
    """ConfigError for a `--status` no run can have, naming the ones there are."""
    if wanted is not None and wanted not in STATUSES:
        hint = did_you_mean(wanted, STATUSES)
        raise ConfigError([f"--status {wanted}: unknown status{hint}; one of {', '.join(STATUSES)}"])


def check_columns(columns: list[str]) -> None:
    """ConfigError for a `--columns` key the schema does not know."""
    for key in columns:
        _check_key(key, f"--columns {key}")


def _check_key(key: str, where: str) -> None:
    from latentrun.core import keys

    known = [k.key for k in keys.schema_keys()]
    if key not in known:
        close = difflib.get_close_matches(key, known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else "; the keys command lists them all"
        raise ConfigError([f"{where}: unknown config key {key!r}{hint}"])


def _same(value: Any, wanted: Any) -> bool:
    """Config equality as a user means it: 1 and 1.0 agree, true and 1 do not."""
    if isinstance(value, bool) or isinstance(wanted, bool):
        return type(value) is type(wanted) and value == wanted
    if isinstance(value, (int, float)) and isinstance(wanted, (int, float)):
        return math.isclose(value, wanted, rel_tol=1e-12, abs_tol=0.0) or value == wanted
    return value == wanted
