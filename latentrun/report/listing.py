"""`list`: read run directories back into summaries and details.

There is no index file: every call reads each run's meta.json (kept current at every checkpoint by
the training process) and, for one run's details, its config and checkpoint folder, so what `list`
shows cannot fall out of step with the runs themselves.
"""

from __future__ import annotations

import csv
import datetime as dt
import difflib
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from latentrun import config as config_module
from latentrun.config import ConfigError
from latentrun.config.errors import did_you_mean
from latentrun.core import status
from latentrun.runs import checkpoint_names as checkpoint
from latentrun.runs import lock
from latentrun.runs import run_files as runs

SORTS = ("date", "step", "loss", "acc")


def summarize(run_dir: Path) -> dict[str, Any]:
    """One run's row: what it is, how far it got, how well it does, and whether it is still running."""
    try:
        meta = runs.read_meta(run_dir)
        if not isinstance(meta, dict):
            raise runs.RunError(f"{run_dir / runs.META_FILE}: not a JSON object")
    except runs.RunError as error:
        return {"id": run_dir.name, "path": str(run_dir), "status": "unreadable", "error": str(error)}
    best = _number(meta, "best_exact_match")
    return {
        "id": run_dir.name,
        "path": str(run_dir),
        "experiment": meta.get("experiment"),
        "model": meta.get("model") or _model_name(run_dir),
        "seed": meta.get("seed"),
        "parameters": _number(meta, "parameters"),
        "step": _number(meta, "step") or 0,
        "max_steps": _number(meta, "max_steps"),
        "best_exact_match": best if best is not None and best >= 0 else None,  # -1 until the first evaluation
        "best_step": _number(meta, "best_step"),
        "last_loss": _number(meta, "last_loss"),
        "elapsed_seconds": _number(meta, "elapsed_seconds"),
        "created": meta.get("created"),
        "status": run_status(run_dir, meta),
        "launch": meta.get("launch"),
    }


def run_status(run_dir: Path, meta: dict[str, Any]) -> str:
    """running / finished / stopped / interrupted / crashed, from the lock file and meta.json.

    A live lock holder (asked of the lock itself: its flock, not its JSON) means running. meta.json saying running (or created) is only believed while
    the process it names is alive: a process killed outright never gets to write `crashed`.
    """
    if lock.holder(run_dir) is not None:  # the primitive under RunDir.holder, which would import torch
        return status.RUNNING
    recorded = str(meta.get("status", "unknown"))
    if recorded in status.LIVE and "pid" in meta:
        return status.CRASHED if runs.owner_alive(meta) is False else status.RUNNING
    return recorded


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


def _flat_config(run_dir: Path) -> dict[str, Any] | None:
    try:
        return config_module.flatten(config_module.load(run_dir / runs.CONFIG_FILE))
    except ConfigError:
        return None


def list_runs(
    runs_dir: Path,
    sort: str = "date",
    limit: int | None = None,
    selection: Selection | None = None,
    columns: list[str] | None = None,
) -> list[dict[str, Any]]:
    """Summaries of the runs under `runs_dir` that `selection` admits, sorted (best first) and cut to
    `limit`; each row carries `config`, its values of the `columns` keys, when columns are asked for."""
    selection = selection or Selection()
    rows = []
    for path in runs.run_dirs(runs_dir):
        row = summarize(path)
        flat = _flat_config(path) if selection.where or columns else None
        if not selection.admits(row, flat):
            continue
        if columns:
            row["config"] = {key: (flat or {}).get(key) for key in columns}
        rows.append(row)
    rows.sort(key=lambda row: (_created(row), row["id"]), reverse=True)
    # Stable sorts: within equal keys, the newest run comes first; runs lacking the key go last.
    if sort == "step":
        rows.sort(key=lambda row: -(row.get("step") or 0))
    elif sort == "loss":
        rows.sort(key=lambda row: (row.get("last_loss") is None, row.get("last_loss") or 0.0))
    elif sort == "acc":
        rows.sort(key=lambda row: (row.get("best_exact_match") is None, -(row.get("best_exact_match") or 0.0)))
    elif sort != "date":
        raise ValueError(f"unknown sort {sort!r}")
    return rows if limit is None else rows[:limit]


def details(run_dir: Path) -> dict[str, Any]:
    """Everything `list --id` shows: the summary, the command and code, the config's differences from
    its experiment file, the start/resume history, and the checkpoints on disk."""
    row = summarize(run_dir)
    meta = runs.read_meta(run_dir)
    folder = run_dir / runs.CHECKPOINT_DIR
    files = [
        {"file": path.name, "step": step, "bytes": path.stat().st_size}
        for step, path in checkpoint.step_checkpoints(folder)
    ]
    best = folder / checkpoint.BEST_FILE
    if best.is_file():
        files.append({"file": best.name, "step": meta.get("best_step"), "bytes": best.stat().st_size})
    return {
        **row,
        "command": meta.get("command"),
        "environment": meta.get("environment"),
        "error": meta.get("error"),
        "experiment_file": meta.get("experiment_file"),
        "init": meta.get("init"),
        "config_diff": config_diff(run_dir, meta.get("experiment_file")),
        "history": meta.get("history", []),
        "checkpoints": files,
    }


def config_diff(run_dir: Path, experiment_file: str | None) -> dict[str, Any]:
    """How the run's frozen config differs from its experiment file as that file reads now: the
    `--set` overrides, resume changes, and any later edit of the file. `problem` says why there is
    no comparison."""
    if not experiment_file:
        return {"changes": None, "problem": "the run did not record its experiment file"}
    if not Path(experiment_file).is_file():
        return {"changes": None, "problem": f"{experiment_file} no longer exists"}
    try:
        in_file = config_module.load(experiment_file)
        in_run = config_module.load(run_dir / runs.CONFIG_FILE)
    except ConfigError as error:
        return {"changes": None, "problem": f"cannot compare: {error.problems[0]}"}
    changes = config_module.diff(in_file, in_run)
    return {
        "changes": [{"key": key, "file": changes[key][0], "run": changes[key][1]} for key in sorted(changes)],
        "problem": None,
    }


# ---- text output ---------------------------------------------------------------------------------

_COLUMNS = ("id", "experiment", "model", "params", "step", "best_exact", "last_loss", "created", "status")
_RIGHT = {"params", "step", "best_exact", "last_loss"}


def format_table(rows: list[dict[str, Any]], config_columns: list[str] | None = None) -> str:
    """The `list` table: one line per run, columns aligned; config keys asked for go before the status."""
    extra = list(config_columns or [])
    names = [*_COLUMNS[:-1], *extra, _COLUMNS[-1]]
    right = _RIGHT | set(extra)
    cells = [
        [_cell(row, column) if column not in extra else _config_cell(row, column) for column in names] for row in rows
    ]
    widths = [max(len(column), *(len(line[i]) for line in cells)) for i, column in enumerate(names)]

    def line(values: list[str]) -> str:
        return "  ".join(v.rjust(w) if c in right else v.ljust(w) for c, v, w in zip(names, values, widths)).rstrip()

    return "\n".join([line(names), *map(line, cells)])


_CSV_FIELDS = (
    "id",
    "experiment",
    "model",
    "seed",
    "parameters",
    "step",
    "max_steps",
    "best_exact_match",
    "best_step",
    "last_loss",
    "elapsed_seconds",
    "created",
    "status",
    "launch",
)


def to_csv(rows: list[dict[str, Any]], config_columns: list[str] | None = None) -> str:
    """`list --csv`: a header and one row per run, full-precision numbers, config columns by their key."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    extra = [key for key in dict.fromkeys(config_columns or []) if key not in _CSV_FIELDS]  # seed is a field already
    writer.writerow([*_CSV_FIELDS, *extra])
    for row in rows:
        config = row.get("config") or {}
        writer.writerow(
            [_csv_value(row.get(name)) for name in _CSV_FIELDS] + [_csv_value(config.get(key)) for key in extra]
        )
    return out.getvalue()


def _csv_value(value: Any) -> Any:
    return "" if value is None else json.dumps(value) if isinstance(value, bool) else value


def _config_cell(row: dict[str, Any], key: str) -> str:
    value = (row.get("config") or {}).get(key)
    return "-" if value is None else json.dumps(value) if isinstance(value, bool) else str(value)


def format_details(info: dict[str, Any]) -> str:
    """`list --id`: one run, in sections."""
    lines = [
        f"run         {info['id']}",
        f"path        {info['path']}",
        f"experiment  {info.get('experiment')}"
        + (f"  ({info['experiment_file']})" if info.get("experiment_file") else ""),
        f"model       {info.get('model')}, {_cell(info, 'params')} parameters, seed {info.get('seed')}",
        f"status      {info['status']} at step {_cell(info, 'step')}"
        + (f" after {info['elapsed_seconds']:.1f} s" if info.get("elapsed_seconds") is not None else ""),
        f"best        val/exact_match {_cell(info, 'best_exact')}"
        + (f" at step {info['best_step']}" if info.get("best_exact_match") is not None else "")
        + f"; last train/loss {_cell(info, 'last_loss')}",
        f"created     {info.get('created')}",
        f"command     {' '.join(info.get('command') or [])}",
    ]
    git = (info.get("environment") or {}).get("git")
    if git:
        lines.append(f"code        git {git['commit'][:12]}" + (" (uncommitted changes)" if git.get("dirty") else ""))
    init = info.get("init")
    if isinstance(init, dict):  # a warm start: where the first weights came from
        lines.append(
            f"warm start  {init.get('run')} ({init.get('checkpoint')}, step {init.get('step')}, "
            f"sha256 {str(init.get('sha256'))[:12]}) from {init.get('from')}"
        )
    if info.get("error"):
        lines.append(f"error       {info['error']}")
    diff = info["config_diff"]
    lines += ["", f"config vs {info.get('experiment_file') or 'experiment file'}:"]
    if diff["problem"]:
        lines.append(f"  ({diff['problem']})")
    elif not diff["changes"]:
        lines.append("  (identical)")
    lines += [f"  {c['key']}: {_value(c['file'])} -> {_value(c['run'])}" for c in diff["changes"] or []]
    lines += ["", "history:"]
    for event in info["history"]:
        changes = ", ".join(
            f"{key} {_value(old)} -> {_value(new)}" for key, (old, new) in (event.get("changes") or {}).items()
        )
        lines.append(
            f"  {event.get('time')}  {event.get('event', '?'):<6}  step {event.get('step', '?'):<6}  "
            f"{' '.join(event.get('command') or [])}"
            + (f"  [{changes}]" if changes else "")
            + ("  (--force)" if event.get("forced") else "")
        )
    lines += ["", "checkpoints:"]
    lines += [f"  {c['file']:<18}  step {c['step']!s:<8}  {_size(c['bytes'])}" for c in info["checkpoints"]] or [
        "  (none)"
    ]
    return "\n".join(lines)


def to_json(data: Any) -> str:
    return json.dumps(data, indent=2)


def _cell(row: dict[str, Any], column: str) -> str:
    if column == "params":
        return f"{row['parameters']:,}" if row.get("parameters") is not None else "-"
    if column == "step":
        return f"{row.get('step', 0)}/{row.get('max_steps') or '?'}"
    if column == "best_exact":
        return f"{row['best_exact_match']:.4f}" if row.get("best_exact_match") is not None else "-"
    if column == "last_loss":
        return f"{row['last_loss']:.4f}" if row.get("last_loss") is not None else "-"
    if column == "created":
        created = _created(row)
        return created.strftime("%Y-%m-%d %H:%M") if created != _NEVER else "-"
    value = row.get(column)
    return "-" if value is None else str(value)


_NEVER = dt.datetime.min.replace(tzinfo=dt.timezone.utc)


def _created(row: dict[str, Any]) -> dt.datetime:
    try:
        created = dt.datetime.fromisoformat(row["created"])
    except (KeyError, TypeError, ValueError):
        return _NEVER
    return created if created.tzinfo else created.astimezone()  # naive means local time


def _number(meta: dict[str, Any], key: str) -> int | float | None:
    """A numeric meta.json field, or None when absent or not a number (a hand-edited file, say)."""
    value = meta.get(key)
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _model_name(run_dir: Path) -> str | None:
    """The model of a run from before meta.json recorded it."""
    try:
        return config_module.load(run_dir / runs.CONFIG_FILE)["model"]["name"]
    except ConfigError:
        return None


def _value(value: Any) -> str:
    return "(absent)" if value is None else json.dumps(value)


def _size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    value, unit = size / 1024, "KiB"
    for bigger in ("MiB", "GiB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{value:.1f} {unit}"
