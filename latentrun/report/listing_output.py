"""How `list` prints what `report.listing` read: the aligned table, `--csv`, `--json`, and one run's
details (`--id`) in sections. Pure formatting of rows: no file is read here."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from typing import Any

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
    lines = _summary_lines(info)
    lines += ["", f"config vs {info.get('experiment_file') or 'experiment file'}:", *_config_diff_lines(info)]
    lines += ["", "history:", *map(_history_line, info["history"])]
    lines += ["", "checkpoints:"]
    lines += [f"  {c['file']:<18}  step {c['step']!s:<8}  {_size(c['bytes'])}" for c in info["checkpoints"]] or [
        "  (none)"
    ]
    return "\n".join(lines)


def _summary_lines(info: dict[str, Any]) -> list[str]:
    """The first section of `list --id`: what the run is, how far it got, how it was started."""
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
    return lines


def _config_diff_lines(info: dict[str, Any]) -> list[str]:
    diff = info["config_diff"]
    lines = []
    if diff["problem"]:
        lines.append(f"  ({diff['problem']})")
    elif not diff["changes"]:
        lines.append("  (identical)")
    return lines + [f"  {c['key']}: {_value(c['file'])} -> {_value(c['run'])}" for c in diff["changes"] or []]


def _history_line(event: dict[str, Any]) -> str:
    changes = ", ".join(
        f"{key} {_value(old)} -> {_value(new)}" for key, (old, new) in (event.get("changes") or {}).items()
    )
    return (
        f"  {event.get('time')}  {event.get('event', '?'):<6}  step {event.get('step', '?'):<6}  "
        f"{' '.join(event.get('command') or [])}"
        + (f"  [{changes}]" if changes else "")
        + ("  (--force)" if event.get("forced") else "")
    )


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
        created = created_time(row)
        return created.strftime("%Y-%m-%d %H:%M") if created != NEVER else "-"
    value = row.get(column)
    return "-" if value is None else str(value)


NEVER = dt.datetime.min.replace(tzinfo=dt.timezone.utc)  # the creation time of a row that does not say


def created_time(row: dict[str, Any]) -> dt.datetime:
    """When a row's run was created (its meta.json `created`), NEVER when the row does not say."""
    try:
        created = dt.datetime.fromisoformat(row["created"])
    except (KeyError, TypeError, ValueError):
        return NEVER
    return created if created.tzinfo else created.astimezone()  # naive means local time


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
