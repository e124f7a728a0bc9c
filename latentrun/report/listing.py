"""`list`: read run directories back, through RunDir, into summaries and details.

There is no index file: every call reads each run's meta.json (kept current at every checkpoint by
the training process) and, for one run's details, its config and checkpoint folder, so what `list`
shows cannot fall out of step with the runs themselves. Which runs are shown is
`report.listing_filter`'s business, how they are printed `report.listing_output`'s; both are
importable from here, where the commands and the API look for them. Torch-free: `list` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from latentrun import config as config_module
from latentrun.config import ConfigError
from latentrun.core import status
from latentrun.report.listing_filter import Selection
from latentrun.report.listing_output import created_time
from latentrun.runs import checkpoint_names
from latentrun.runs import run_files as runs
from latentrun.runs.run_dir import RunDir

SORTS = ("date", "step", "loss", "acc")


def summarize(run_dir: Path) -> dict[str, Any]:
    """One run's row: what it is, how far it got, how well it does, and whether it is still running."""
    run = RunDir(run_dir)
    try:
        meta = run.meta()
        if not isinstance(meta, dict):
            raise runs.RunError(f"{run_dir / runs.META_FILE}: not a JSON object")
    except runs.RunError as error:
        return {"id": run_dir.name, "path": str(run_dir), "status": "unreadable", "error": str(error)}
    best = _number(meta, "best_exact_match")
    return {
        "id": run_dir.name,
        "path": str(run_dir),
        "experiment": meta.get("experiment"),
        "model": meta.get("model") or _model_name(run),
        "seed": meta.get("seed"),
        "parameters": _number(meta, "parameters"),
        "step": _number(meta, "step") or 0,
        "max_steps": _number(meta, "max_steps"),
        "best_exact_match": best if best is not None and best >= 0 else None,  # -1 until the first evaluation
        "best_step": _number(meta, "best_step"),
        "last_loss": _number(meta, "last_loss"),
        "elapsed_seconds": _number(meta, "elapsed_seconds"),
        "created": meta.get("created"),
        "status": run_status(run, meta),
        "launch": meta.get("launch"),
    }


def run_status(run: RunDir, meta: dict[str, Any]) -> str:
    """running / finished / stopped / interrupted / crashed, from the lock file and meta.json.

    A live lock holder (asked of the lock itself: its flock, not its JSON) means running. meta.json saying running (or created) is only believed while
    the process it names is alive: a process killed outright never gets to write `crashed`.
    """
    if run.holder() is not None:
        return status.RUNNING
    recorded = str(meta.get("status", "unknown"))
    if recorded in status.LIVE and "pid" in meta:
        return status.CRASHED if runs.owner_alive(meta) is False else status.RUNNING
    return recorded


def _flat_config(run: RunDir) -> dict[str, Any] | None:
    try:
        return config_module.flatten(run.config())
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
        flat = _flat_config(RunDir(path)) if selection.where or columns else None
        if not selection.admits(row, flat):
            continue
        if columns:
            row["config"] = {key: (flat or {}).get(key) for key in columns}
        rows.append(row)
    rows.sort(key=lambda row: (created_time(row), row["id"]), reverse=True)
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
    run = RunDir(run_dir)
    row = summarize(run_dir)
    meta = run.meta()
    files = [
        {"file": path.name, "step": step, "bytes": path.stat().st_size}
        for step, path in checkpoint_names.step_checkpoints(run.checkpoint_dir)
    ]
    best = run.checkpoint_dir / checkpoint_names.BEST_FILE
    if best.is_file():
        files.append({"file": best.name, "step": meta.get("best_step"), "bytes": best.stat().st_size})
    return {
        **row,
        "command": meta.get("command"),
        "environment": meta.get("environment"),
        "error": meta.get("error"),
        "experiment_file": meta.get("experiment_file"),
        "init": meta.get("init"),
        "config_diff": config_diff(run, meta.get("experiment_file")),
        "history": meta.get("history", []),
        "checkpoints": files,
    }


def config_diff(run: RunDir, experiment_file: str | None) -> dict[str, Any]:
    """How the run's frozen config differs from its experiment file as that file reads now: the
    `--set` overrides, resume changes, and any later edit of the file. `problem` says why there is
    no comparison."""
    if not experiment_file:
        return {"changes": None, "problem": "the run did not record its experiment file"}
    if not Path(experiment_file).is_file():
        return {"changes": None, "problem": f"{experiment_file} no longer exists"}
    try:
        in_file = config_module.load(experiment_file)
        in_run = run.config()
    except ConfigError as error:
        return {"changes": None, "problem": f"cannot compare: {error.problems[0]}"}
    changes = config_module.diff(in_file, in_run)
    return {
        "changes": [{"key": key, "file": changes[key][0], "run": changes[key][1]} for key in sorted(changes)],
        "problem": None,
    }


def _number(meta: dict[str, Any], key: str) -> int | float | None:
    """A numeric meta.json field, or None when absent or not a number (a hand-edited file, say)."""
    value = meta.get(key)
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _model_name(run: RunDir) -> str | None:
    """The model of a run from before meta.json recorded it."""
    try:
        return run.config()["model"]["name"]
    except ConfigError:
        return None
