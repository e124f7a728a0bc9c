"""Parallel launches: several experiments and/or seeds, N runs at a time, each in its own process.

joblib schedules the runs on N threads, and each thread supervises one child process running the
ordinary single-run command (`python -m latentrun EXP.yaml --set seed=S ...`). The runs are
separate processes rather than joblib's own loky workers on purpose: a worker that dies (segfault,
out-of-memory killer) makes loky abort every other job with TerminatedWorkerError, while a child
that dies ends only its own run. It also means each run's meta.json records a command that
reproduces that run on its own. Every configuration is validated before anything starts.
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from joblib import Parallel, delayed

from latentrun import config as config_module
from latentrun.config import ConfigError, sweep
from latentrun.core.status import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK
from latentrun.core.text import plural, program_name
from latentrun.launch import record, relaunch
from latentrun.launch.jobs import FAILED, Job, Outcome
from latentrun.launch.supervisor import Supervisor
from latentrun.runs import run_files as runs

__all__ = ["Job", "Outcome", "launch", "plan", "resume_launch"]


def cores() -> int:
    """CPU cores this process may use (its affinity mask, which containers and taskset narrow)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def plan(
    experiments: Sequence[str],
    seeds: Sequence[int] | None,
    overrides: Sequence[str],
    runs_dir: Path,
    jobs: int,
    stop_at: int | None,
    split_threads: bool = True,
) -> list[Job]:
    """One Job per (experiment, point of the sweep, seed), every config validated first: ConfigError
    lists every problem of every file and point at once, so a typo in the fifth file does not surface
    after four runs are done."""
    axes = sweep.parse(overrides)  # a repeated key, a bad list or range: refused before anything else
    _check_request(experiments, seeds, axes)
    problems: list[str] = []
    swept = [axis.key for axis in axes if axis.swept]
    seed_choices: list[int | None] = list(seeds) if seeds else [None]
    combos = [
        (experiment, point, seed) for experiment in experiments for point in sweep.points(axes) for seed in seed_choices
    ]
    threads = max(1, cores() // min(jobs, len(combos)))
    planned = []
    for index, (experiment, point, seed) in enumerate(combos):
        run_overrides = [*point, *([f"seed={seed}"] if seed is not None else [])]
        try:
            resolved = config_module.load(experiment, run_overrides)
            _check_device(resolved["train"]["device"])
        except ConfigError as error:
            problems += [p for p in error.problems if p not in problems]
            continue
        run_threads = resolved["train"]["num_threads"] or None  # 0: torch's default
        if split_threads and run_threads is None:  # split the cores; an explicit count is kept
            run_overrides = [text for text in run_overrides if not text.startswith("train.num_threads=")]
            run_overrides.append(f"train.num_threads={threads}")
            run_threads = threads
        args = [experiment, *(arg for text in run_overrides for arg in ("--set", text)), "--runs-dir", str(runs_dir)]
        if stop_at is not None:
            args += ["--stop-at", str(stop_at)]
        values = dict(text.split("=", 1) for text in point)
        label = " ".join(
            [resolved["experiment"], *(f"{key}={values[key]}" for key in swept)]
            + ([f"seed={seed}"] if seed is not None else [])
        )
        planned.append(
            Job(index, label, tuple(args), overrides=tuple(run_overrides), experiment=experiment, threads=run_threads)
        )
    if problems:
        raise ConfigError(problems)
    return planned


def _check_request(experiments: Sequence[str], seeds: Sequence[int] | None, axes: Sequence[sweep.Axis]) -> None:
    """ConfigError for a launch asked for badly (seeds given two ways, a file twice, too many points),
    before a config is read: the cap is what keeps planning quick."""
    problems: list[str] = []
    if seeds and any(axis.key == "seed" for axis in axes):
        problems.append("--seeds and --set seed=...: give the seeds one way")
    paths = [str(Path(text).resolve()) for text in experiments]
    problems += [
        f"{text}: given twice; use --seeds for repeated runs"
        for i, text in enumerate(experiments)
        if paths[i] in paths[:i]
    ]
    if problems:
        raise ConfigError(problems)
    size = len(experiments) * len(seeds or [None]) * math.prod(len(axis.values) for axis in axes)
    if size > sweep.MAX_POINTS:
        raise ConfigError(
            [f"the launch has {size:,} runs (files x sweep points x seeds); at most {sweep.MAX_POINTS:,}"]
        )


def _check_device(name: str) -> None:
    """ConfigError when the device a point asks for is not here. Only cuda and mps can be missing, and
    only they need torch imported to ask: a launch of CPU runs spares its launcher that import
    (about 1.5 s of CPU, more under load) on top of every run's own."""
    if name in ("cuda", "mps"):
        from latentrun.config.build import resolve_device

        resolve_device(name)


def launch(
    experiments: Sequence[str],
    seeds: Sequence[int] | None,
    overrides: Sequence[str],
    runs_dir: Path,
    jobs: int,
    stop_at: int | None,
    launcher: str = "local",
    launcher_options: dict[str, Any] | None = None,
) -> int:
    """Train every (experiment, sweep point, seed) run, `jobs` at a time (locally) or one SLURM job
    each; record the launch in runs_dir/launches/ID/sweep.yaml and tag every run with its id. A line
    says when each run starts and one when it ends. Returns 1 if any run failed, else 130 if any was
    interrupted (or never started because of the interrupt), else 0."""
    # On a cluster each run has a node of its own: its threads are not this machine's cores to split.
    planned = plan(experiments, seeds, overrides, runs_dir, jobs, stop_at, split_threads=launcher == "local")
    if launcher == "slurm":  # before anything is written
        from latentrun.launch import slurm

        slurm.check_available(launcher_options)
    launch_id = record.new_launch_id()
    axes = sweep.parse(overrides)
    document: dict[str, Any] = {
        "launch": launch_id,
        "created": runs.now(),
        "command": runs.command_line(),
        "runs_dir": str(runs_dir.resolve()),
        "launcher": launcher,
        "experiments": [str(Path(text).resolve()) for text in experiments],
        "seeds": list(seeds) if seeds else None,
        "overrides": list(overrides),
        "sweep": {axis.key: list(axis.values) for axis in axes if axis.swept},
        "stop_at": stop_at,
        "jobs": [
            {"index": job.index, "label": job.label, "experiment": job.experiment, "overrides": list(job.overrides)}
            for job in planned
        ],
    }
    with record.hold_launch(runs_dir, launch_id):
        path = record.write_record(runs_dir, launch_id, document)
        print(f"launch {launch_id}: {plural(len(planned), 'run')}, recorded in {path}", file=sys.stderr)
        outcomes = _run_all(planned, runs_dir, launch_id, jobs, launcher, launcher_options)
        _record_outcomes(runs_dir, document, outcomes)
    return _finish(outcomes, runs_dir, launch_id)


def resume_launch(
    launch_id: str,
    runs_dir: Path,
    overrides: Sequence[str],
    force: bool,
    stop_at: int | None,
    jobs: int,
    launcher: str = "local",
    launcher_options: dict[str, Any] | None = None,
) -> int:
    """Continue every unfinished run of a launch, start the ones it never got to and wait for those a
    killed launcher's children still train, `jobs` at a time; a damaged point is named, not redone."""
    if overrides:  # checked once here rather than failing in every child
        sweep.parse(overrides)
    with record.hold_launch(runs_dir, launch_id):
        document = record.read_record(runs_dir, launch_id)
        todo, damaged = relaunch.plan(document, runs_dir, overrides, force, stop_at)
        for outcome in damaged:
            _report_end(outcome)
        if not todo:
            _record_outcomes(runs_dir, document, damaged)
            what = "finished" if not damaged else "finished or damaged"
            print(f"launch {launch_id}: all {len(document['jobs'])} runs {what}; nothing to resume", file=sys.stderr)
            return _finish(damaged, runs_dir, launch_id) if damaged else EXIT_OK
        print(f"launch {launch_id}: {len(todo)} of {plural(len(document['jobs']), 'run')} to go on", file=sys.stderr)
        outcomes = _run_all(todo, runs_dir, launch_id, jobs, launcher, launcher_options)
        _record_outcomes(runs_dir, document, damaged + outcomes)
    return _finish(damaged + outcomes, runs_dir, launch_id)


def _record_outcomes(runs_dir: Path, document: dict[str, Any], outcomes: list[Outcome]) -> None:
    by_index = {outcome.job.index: outcome for outcome in outcomes}
    for entry in document["jobs"]:
        if entry["index"] in by_index:
            outcome = by_index[entry["index"]]
            entry.update(run=outcome.run.get("id"), status=outcome.status)
    record.write_record(runs_dir, document["launch"], document)


def _run_all(
    planned: list[Job],
    runs_dir: Path,
    launch_id: str,
    jobs: int,
    launcher: str,
    launcher_options: dict[str, Any] | None = None,
) -> list[Outcome]:
    """Every job's Outcome in plan order, each printed once on stdout as it ends."""
    if launcher == "slurm":
        from latentrun.launch import slurm

        return slurm.run_jobs(planned, runs_dir, launch_id, report=_report_end, parameters=launcher_options)
    n_jobs = min(jobs, len(planned))
    print(banner(planned, n_jobs, launch_id, runs_dir), file=sys.stderr)
    supervisor = Supervisor(runs_dir, launch_id, len(planned))
    outcomes: dict[int, Outcome] = {}
    previous = supervisor.install_signal_handlers()
    try:
        with tempfile.TemporaryDirectory(prefix="latentrun-launch-") as logs:
            results = Parallel(n_jobs=n_jobs, prefer="threads", return_as="generator_unordered")(
                delayed(supervisor.run)(job, Path(logs)) for job in planned
            )
            for outcome in results:
                outcomes[outcome.job.index] = outcome
                _report_end(outcome)
    finally:
        supervisor.restore_signal_handlers(previous)
    return [outcomes[job.index] for job in planned]


def banner(planned: Sequence[Job], n_jobs: int, launch_id: str, runs_dir: Path) -> str:
    """The line a local launch starts with: how many runs, how many at a time, the threads each
    really uses (the split of the cores, or the count a config or --set fixed), and how to follow."""
    counts = sorted({job.threads for job in planned if job.threads is not None})
    if not counts:
        threads = "each with the threads its config sets"
    elif len(counts) == 1:
        threads = f"each with {plural(counts[0], 'thread')}"
    else:
        threads = f"each with {counts[0]} to {counts[-1]} threads"
    if counts and any(job.threads is None for job in planned):
        threads += " (resumed runs: as their config sets)"
    return (
        f"launching {plural(len(planned), 'run')}, {n_jobs} at a time, {threads} on {plural(cores(), 'core')}; "
        f"follow them with: {program_name()} list --launch {launch_id} --runs-dir {runs_dir}"
    )


def _report_end(outcome: Outcome) -> None:
    print(format_outcome(outcome), flush=True)


def _finish(ordered: list[Outcome], runs_dir: Path, launch_id: str) -> int:
    for outcome in ordered:
        if outcome.status in FAILED and outcome.output_tail:
            print(f"--- {outcome.job.label}: last lines of its output ---\n{outcome.output_tail}", file=sys.stderr)
    counts: dict[str, int] = {}
    for outcome in ordered:
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    print(f"{plural(len(ordered), 'run')}: " + ", ".join(f"{count} {status}" for status, count in counts.items()))
    where = "" if runs_dir == Path("runs") else f" --runs-dir {runs_dir}"
    program = program_name()
    next_steps = f"{program} list --launch {launch_id}{where}, {program} compare --launch {launch_id}{where}"
    if any(outcome.status not in ("finished",) for outcome in ordered):
        next_steps += f", {program} --resume --launch {launch_id}{where}"
    print(f"next: {next_steps}", file=sys.stderr)
    if any(outcome.status in FAILED for outcome in ordered):
        return EXIT_FAILURE
    if any(outcome.status in ("interrupted", "skipped") for outcome in ordered):
        return EXIT_INTERRUPTED
    return EXIT_OK


def format_outcome(outcome: Outcome) -> str:
    """One summary line: status, which run, and how far and how well it got (or why it failed)."""
    run = outcome.run
    head = f"{outcome.status:<11}  {outcome.job.label:<24}  {run.get('id', '-')}"
    if outcome.status in FAILED + ("skipped",):
        return f"{head}  {outcome.message}".rstrip()
    best = run.get("best_exact_match")
    elapsed = run.get("elapsed_seconds")
    return (
        f"{head}  step {run.get('step')}/{run.get('max_steps')}  best val/exact_match "
        + (f"{best:.4f}" if best is not None else "-")
        + (f"  {elapsed:.1f} s" if elapsed is not None else "")
    )
