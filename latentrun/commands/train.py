"""`train`: a new run, several at once (files, --seeds, a swept --set, SLURM), or a resumed one."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from latentrun.commands import UsageError, configure_console_logging
from latentrun.commands.arguments import (
    DEFAULT_RUNS_DIR,
    add_runs_dir,
    add_set,
    complete_runs,
    complete_with,
    positive_int,
    seeds,
    step_number,
)
from latentrun.core import status as run_status
from latentrun.core.status import EXIT_OK
from latentrun.core.text import program_name

RESUME_LAUNCH = "\0launch"  # what a bare `--resume` parses to: the runs come from --launch ID


def add_train_arguments(parser: argparse.ArgumentParser, prog: str) -> None:
    parser.description = (
        f"Train a new run from an experiment file (`{prog} EXPERIMENT.yaml`, the word train may be left out), "
        f"or continue one exactly (`{prog} --resume RUN`). Several files, --seeds or a swept --set "
        "(KEY=A,B or KEY=range(START,STOP,STEP)) launch the Cartesian product, one run each."
    )
    parser.add_argument(
        "experiments",
        nargs="*",
        metavar="EXPERIMENT",
        help="experiment YAML file(s) to train; several, --seeds or a sweep launch runs in parallel",
    )
    complete_with(
        parser.add_argument(
            "--resume",
            nargs="?",
            const=RESUME_LAUNCH,
            metavar="RUN",
            help="run directory (or run id under --runs-dir, or latest) to continue; bare with --launch ID",
        ),
        complete_runs,
    )
    parser.add_argument(
        "--launch",
        metavar="ID",
        help="with --resume: continue every unfinished run of launch ID (and start its runs that never did)",
    )
    add_set(parser, prog, sweeps=True)
    add_runs_dir(parser)
    parser.add_argument("--stop-at", type=step_number, metavar="STEP", help="checkpoint and exit cleanly at STEP")
    parser.add_argument(
        "--force", action="store_true", help="allow --resume to change keys that alter what is computed"
    )
    parser.add_argument(
        "--jobs",
        type=positive_int,
        metavar="N",
        help="runs to train at once, each its own process with cores/N threads (default: 1)",
    )
    parser.add_argument(
        "--seeds", type=seeds, metavar="S1,S2,...", help="train each experiment once per seed, overriding its seed"
    )
    parser.add_argument(
        "--launcher",
        choices=("local", "slurm"),
        default="local",
        help="where a launch's runs train: child processes here (local) or one SLURM job each (slurm, "
        "through submitit: pip install -e '.[slurm]')",
    )
    parser.add_argument(
        "--slurm",
        dest="slurm_options",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a submitit parameter for --launcher slurm, e.g. --slurm slurm_partition=gpu --slurm timeout_min=120",
    )


def train(options: argparse.Namespace) -> int:
    """Train what the arguments name, in this process (one run) or as a launch (several)."""
    configure_console_logging()  # before any import that might log
    from latentrun.config import sweep

    swept = sweep.is_sweep(sweep.parse(options.overrides))  # a repeated key is refused here, before anything else
    if options.slurm_options and options.launcher != "slurm":
        raise UsageError("--slurm sets a parameter of --launcher slurm")
    if options.resume is not None:
        return _resume(options, swept)
    _check_new_runs(options)
    if len(options.experiments) > 1 or options.seeds or swept or options.launcher != "local":
        return _launch(options)
    return _in_process_group(lambda: _train_one(options))


def _check_new_runs(options: argparse.Namespace) -> None:
    """UsageError for the flags that only --resume takes, and for a Hydra-style `KEY=VALUE`."""
    if options.launch:
        raise UsageError("--launch ID goes with --resume (list --launch ID and compare --launch ID select a launch)")
    if not options.experiments:
        raise UsageError("give experiment file(s) to train or --resume RUN")
    if options.force:
        raise UsageError("--force only applies to --resume")
    for text in options.experiments:
        if "=" in text and not Path(text).exists():
            raise UsageError(f"{text}: no such experiment file; to override a config value write --set {text}")


def _launch(options: argparse.Namespace) -> int:
    """Several runs, each its own process (or SLURM job), all tagged with one launch id."""
    from latentrun.launch import parallel

    if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # torchrun's own variable: a launcher needs no torch
        raise UsageError("several experiments, --seeds or a sweep launch separate runs; under torchrun give one")
    return parallel.launch(
        options.experiments,
        options.seeds,
        options.overrides,
        options.runs_dir,
        options.jobs or 1,
        options.stop_at,
        launcher=options.launcher,
        launcher_options=_launcher_options(options),
    )


def _launcher_options(options: argparse.Namespace) -> dict[str, Any]:
    """`--slurm KEY=VALUE` flags as submitit parameters, values read as YAML scalars."""
    from latentrun import config

    return dict(config.parse_override(text) for text in options.slurm_options)


def _train_one(options: argparse.Namespace) -> int:
    from latentrun import config
    from latentrun.launch import record, session

    resolved = config.load(options.experiments[0], options.overrides)
    run_dir, status = session.start(
        resolved,
        options.runs_dir,
        options.stop_at,
        experiment_file=options.experiments[0],
        launch=record.from_environment(),
    )
    _suggest_next(run_dir, options.runs_dir, status)
    _print_run_dir(run_dir)
    return status


def _print_run_dir(run_dir: Path) -> None:
    """The run dir as stdout's last line, so that a script can do RUN=$(python run.py exp.yaml | tail -1)."""
    from latentrun.train import distributed

    if distributed.context().is_main:
        print(run_dir, flush=True)


def _resume(options: argparse.Namespace, swept: bool) -> int:
    """Continue one run (`--resume RUN`) or a whole launch (`--resume --launch ID`)."""
    _check_resume(options, swept)
    if options.launch:
        from latentrun.launch import parallel

        return parallel.resume_launch(
            options.launch,
            options.runs_dir,
            options.overrides,
            options.force,
            options.stop_at,
            options.jobs or 1,
            launcher=options.launcher,
            launcher_options=_launcher_options(options),
        )
    from latentrun.runs import run_files as runs

    run_dir = runs.resolve_run_dir(options.resume, options.runs_dir)

    def resume() -> int:
        from latentrun.launch import session

        status = session.resume(run_dir, options.overrides, options.force, options.stop_at)
        _suggest_next(run_dir, options.runs_dir, status)
        _print_run_dir(run_dir)
        return status

    return _in_process_group(resume)


def _check_resume(options: argparse.Namespace, swept: bool) -> None:
    """UsageError for what starts new runs, and for a RUN and a launch given together (or neither)."""
    if options.experiments:
        raise UsageError("give experiment file(s) to train or --resume RUN, not both")
    if swept:
        raise UsageError("--resume continues runs with their own config; a swept --set starts new runs")
    if options.seeds:
        raise UsageError("--seeds launches new runs; --resume continues one")
    if options.resume == RESUME_LAUNCH or options.launch:
        if options.resume != RESUME_LAUNCH:
            raise UsageError("--resume --launch ID continues a whole launch; give no RUN with it")
        if not options.launch:
            raise UsageError("--resume needs a RUN (or --launch ID)")
    elif options.jobs:
        raise UsageError("--jobs launches runs in parallel; --resume continues one (or a launch: --resume --launch ID)")


def _in_process_group(train: Callable[[], int]) -> int:
    """Run `train` inside the torchrun process group (a world of one without torchrun), leaving it after."""
    from latentrun.train import distributed

    if not distributed.init().is_main:
        configure_console_logging("WARNING")  # rank 0 tells the story; the others speak up only when wrong
    finished = False
    try:
        status = train()
        finished = True
        return status
    finally:
        distributed.shutdown(finished)


def _suggest_next(run_dir: Path, runs_dir: Path, status: int) -> None:
    """After a run: the commands a user reaches for next, with this run's id filled in."""
    from latentrun.train import distributed

    if not distributed.context().is_main:
        return
    prog = program_name()
    by_id = run_dir.parent.resolve() == runs_dir.resolve()  # else the run was given by a path elsewhere
    where = "" if runs_dir == DEFAULT_RUNS_DIR or not by_id else f" --runs-dir {runs_dir}"
    run = run_dir.name if by_id else str(run_dir)
    lines = []
    if status != EXIT_OK or _unfinished(run_dir):
        lines.append(f"  {prog} --resume {run}{where}        # continue it")
    lines += [
        f"  {prog} predict {run} 12*34{where}   # a product from its best checkpoint",
        f"  {prog} eval {run}{where}            # exact match per operand length",
        f"  tensorboard --logdir {run_dir}      # its curves",
    ]
    print("next:\n" + "\n".join(lines), file=sys.stderr)


def _unfinished(run_dir: Path) -> bool:
    from latentrun.runs import run_files as runs

    try:
        return runs.read_meta(run_dir).get("status") != run_status.FINISHED
    except runs.RunError:
        return False
