"""What `--resume --launch ID` does with each point of a launch, read from its sweep.yaml, the runs'
meta.json and the launch folder: finished points are recorded and left alone, unfinished runs go on,
points never started start (with the resume's `--set` replacing the launch's own for the same keys),
points a live process of an earlier launcher still trains are waited for, and a point whose run is
damaged is reported, never trained again as a new run."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from latentrun.launch import record
from latentrun.launch.jobs import Job, Outcome
from latentrun.report import listing
from latentrun.runs import lock
from latentrun.runs import run_files as runs


def plan(
    document: dict[str, Any],
    runs_dir: Path,
    overrides: Sequence[str],
    force: bool,
    stop_at: int | None,
) -> tuple[list[Job], list[Outcome]]:
    """(jobs to run or wait for, outcomes of damaged points); finished points get their run id and
    status written into `document`'s jobs."""
    launch_id = document["launch"]
    existing = record.launch_runs(runs_dir, launch_id)
    extra = [arg for text in overrides for arg in ("--set", text)]
    stop = ["--stop-at", str(stop_at)] if stop_at is not None else []
    todo: list[Job] = []
    damaged: list[Outcome] = []
    for entry in document["jobs"]:
        index, label = entry["index"], entry.get("label", str(entry["index"]))
        run_dir = existing.get(index)
        if run_dir is None:
            broken = _damaged_run(runs_dir, launch_id, entry)
            if broken is not None:
                damaged.append(
                    Outcome(Job(index, label, (), run_dir=broken[0]), "damaged", {"id": broken[0].name}, broken[1])
                )
                continue
            if record.job_holder(runs_dir, launch_id, index) is not None:
                todo.append(Job(index, label, (), adopt=True))
                continue
            own = replace_overrides(entry["overrides"], overrides)
            args = [entry["experiment"], *(a for t in own for a in ("--set", t)), "--runs-dir", str(runs_dir), *stop]
            todo.append(
                Job(
                    index,
                    label,
                    tuple(args),
                    overrides=tuple(own),
                    experiment=entry["experiment"],
                    threads=_threads(own),
                )
            )
            continue
        status = listing.summarize(run_dir)["status"]
        if status == "finished":
            entry.update(run=run_dir.name, status=status)
        elif lock.holder(run_dir) is not None:
            todo.append(Job(index, label, (), run_dir=run_dir, adopt=True))
        else:
            resume = ("--resume", str(run_dir), *extra, *stop, *(["--force"] if force else []))
            todo.append(Job(index, label, resume, run_dir=run_dir))
    return todo, damaged


def replace_overrides(own: Sequence[str], given: Sequence[str]) -> list[str]:
    """The launch's `--set` texts for a point, with those of the keys `given` again replaced: a
    resume's `--set train.max_steps=200` wins over the launch's own max_steps."""
    keys = {text.partition("=")[0].strip() for text in given}
    return [text for text in own if text.partition("=")[0].strip() not in keys] + list(given)


def _threads(overrides: Sequence[str]) -> int | None:
    """The thread count a point's `--set` texts fix (the launch's split of the cores, or the user's
    own), None when they leave it to the config file."""
    for text in overrides:
        key, _, value = text.partition("=")
        if key.strip() == "train.num_threads" and value.strip().isdigit() and int(value) > 0:
            return int(value)
    return None


def _damaged_run(runs_dir: Path, launch_id: str, entry: dict[str, Any]) -> tuple[Path, str] | None:
    """(run dir, why) when the point became a run whose meta.json no longer names it, else None."""
    for run_id in (entry.get("run"), record.noted_run(runs_dir, launch_id, entry["index"])):
        if not isinstance(run_id, str) or not runs.is_plain_id(run_id):
            continue
        run_dir = runs_dir / run_id
        if not (run_dir / runs.CONFIG_FILE).is_file():
            continue  # deleted: the point is started again
        try:
            meta = runs.read_meta(run_dir)
        except runs.RunError as error:
            return run_dir, f"{error}; repair or delete {run_dir} to train the point again"
        return run_dir, (
            f"{run_dir / runs.META_FILE} names launch {meta.get('launch')!r} point {meta.get('launch_index')!r}, "
            f"not {launch_id} point {entry['index']}; repair or delete the run to train the point again"
        )
    return None
