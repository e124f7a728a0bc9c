"""Command line: parse arguments, call into the package, turn known errors into exit statuses.

Exit statuses (contract): 0 success, 2 bad config or usage, 1 runtime failure, 130 interrupted
after a clean checkpoint. Only the error types below are user mistakes; anything else is a bug
and keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from loguru import logger
from tqdm import tqdm

from latentrun.core.status import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE

COMMANDS = ("validate", "predict", "eval", "list", "compare")


def _train_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="run.py",
        description="Train a model from a YAML experiment, or resume a run exactly. "
        f"Other commands: {', '.join(COMMANDS)} (run.py COMMAND --help).",
    )
    parser.add_argument(
        "experiments",
        nargs="*",
        metavar="EXPERIMENT",
        help="experiment YAML file(s) to train; several, or --seeds, launch runs in parallel",
    )
    parser.add_argument("--resume", metavar="RUN", help="run directory (or run id under --runs-dir) to continue")
    _add_set(parser)
    parser.add_argument(
        "--runs-dir", type=Path, default=Path("runs"), help="where run directories live (default: runs)"
    )
    parser.add_argument("--stop-at", type=int, metavar="STEP", help="checkpoint and exit cleanly at STEP")
    parser.add_argument(
        "--force", action="store_true", help="allow --resume to change keys that alter what is computed"
    )
    parser.add_argument(
        "--jobs",
        type=_positive_int,
        metavar="N",
        help="runs to train at once, each its own process with cores/N threads (default: 1)",
    )
    parser.add_argument(
        "--seeds", type=_seeds, metavar="S1,S2,...", help="train each experiment once per seed, overriding its seed"
    )
    return parser


def _seeds(text: str) -> list[int]:
    try:
        seeds = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers like 1,2,3, got {text!r}") from None
    if len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"a seed is repeated in {text!r}")
    return seeds


def _add_set(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set optimizer.lr=3e-4 (repeatable)",
    )


def _command_parser(command: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"run.py {command}")
    if command == "validate":
        parser.description = "Check an experiment file and print the resolved config."
        parser.add_argument("experiment")
        _add_set(parser)
    elif command == "predict":
        parser.description = "Print the product the run's best checkpoint predicts, one per line."
        parser.add_argument("run", help="run directory or run id")
        parser.add_argument("problems", nargs="+", metavar="A*B")
        parser.add_argument("--runs-dir", type=Path, default=Path("runs"))
    elif command == "eval":
        parser.description = (
            "Grade the run's best checkpoint on a held-out split (test, the figure of record, or "
            "val, which chose the checkpoint), then exact match for every (digits of a, digits of b) "
            "up to --max-digits; writes eval/<split>.json, eval/grid.json and eval/grid.png in the "
            "run dir and logs the image to TensorBoard."
        )
        parser.add_argument("runs", nargs="+", metavar="RUN", help="run directory or run id")
        parser.add_argument(
            "--split", choices=("test", "val"), default="test", help="held-out split to grade (default: test)"
        )
        parser.add_argument(
            "--max-digits", type=int, metavar="N", help="largest operand length (default: one more than trained)"
        )
        parser.add_argument(
            "--samples", type=int, default=1000, metavar="K", help="pairs graded per cell (default: 1000)"
        )
        parser.add_argument("--runs-dir", type=Path, default=Path("runs"))
    elif command == "list":
        from latentrun.report.listing import SORTS

        parser.description = "List the runs under the runs dir, read from the run directories themselves."
        parser.add_argument(
            "--runs-dir", type=Path, default=Path("runs"), help="where run directories live (default: runs)"
        )
        parser.add_argument(
            "--sort",
            choices=SORTS,
            default="date",
            help="newest first (date), most steps, lowest last train loss, or best val/exact_match (acc)",
        )
        parser.add_argument("--limit", type=_positive_int, metavar="N", help="show only the first N runs")
        parser.add_argument("--id", metavar="ID", help="full details of one run (id, path or latest)")
        parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    elif command == "compare":
        parser.description = (
            "Efficiency analysis of runs side by side: a table here, compare.json and "
            "compare.png (validation curves) in --out. Runs differing only in seed are "
            "grouped and reported as mean ± std."
        )
        parser.add_argument("runs", nargs="+", metavar="RUN", help="run directories, ids, or latest")
        parser.add_argument("--runs-dir", type=Path, default=Path("runs"))
        parser.add_argument(
            "--target",
            type=_fraction,
            default=0.99,
            metavar="ACC",
            help="val/exact_match whose first reaching is timed, read from the validation curve "
            "(the test split is graded once, at the end) (default: 0.99)",
        )
        parser.add_argument(
            "--out",
            type=Path,
            default=Path("compare"),
            metavar="DIR",
            help="folder for compare.json and compare.png (default: compare)",
        )
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, got {text!r}")
    return value


def _configure_console_logging(level: str = "INFO") -> None:
    logger.remove()
    # Through tqdm.write so that log lines don't tear the progress bar.
    logger.add(
        lambda message: tqdm.write(message, end="", file=sys.stderr),
        level=level,
        format="{time:HH:mm:ss} | {level: <7} | {message}",
        colorize=sys.stderr.isatty(),
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `python run.py` and the `latentrun` console script."""
    from latentrun.config import ConfigError
    from latentrun.runs.checkpoint import CheckpointError
    from latentrun.runs.rundir import RunError
    from latentrun.task.multiplication import ProblemError
    from latentrun.train.distributed import PeerError
    from latentrun.train.stability import TrainingDiverged

    args = list(sys.argv[1:] if argv is None else argv)
    _configure_console_logging()
    try:
        if args and args[0] in COMMANDS:
            return _run_command(args[0], _command_parser(args[0]).parse_args(args[1:]))
        return _in_process_group(_train, _train_parser(), args)
    except (ConfigError, RunError, ProblemError) as error:
        _report(error)
        return EXIT_USAGE
    except (CheckpointError, PeerError, TrainingDiverged) as error:
        _report(error)
        return EXIT_FAILURE
    except OSError as error:  # the disk or the system refused (full, read-only, ...): not a bug, not a usage error
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except SystemExit as exit_request:  # argparse's usage errors and --help
        return exit_request.code if isinstance(exit_request.code, int) else EXIT_USAGE


def _report(error: Exception) -> None:
    """One `error:` line per problem, unless rank 0 of a torchrun job already printed the same lines."""
    if getattr(error, "reported_by_main", False):
        return
    for line in str(error).splitlines():
        print(f"error: {line}", file=sys.stderr)


def _in_process_group(train: Callable[..., int], *args: Any) -> int:
    """Run `train` inside the torchrun process group (a world of one without torchrun), leaving it after."""
    from latentrun.train import distributed

    if not distributed.init().is_main:
        _configure_console_logging("WARNING")  # rank 0 tells the story; the others speak up only when wrong
    try:
        return train(*args)
    finally:
        distributed.shutdown()


def _train(parser: argparse.ArgumentParser, args: list[str]) -> int:
    from latentrun import config
    from latentrun.launch import parallel, session
    from latentrun.runs import rundir as runs
    from latentrun.train import distributed

    options = parser.parse_args(args)
    if bool(options.experiments) == bool(options.resume):
        parser.error("give experiment file(s) to train or --resume RUN, not both or neither")
    if options.stop_at is not None and options.stop_at < 1:
        parser.error("--stop-at must be a positive step number")
    if options.resume:
        if options.jobs or options.seeds:
            parser.error("--jobs and --seeds launch new runs; --resume continues one")
        run_dir = runs.resolve_run_dir(options.resume, options.runs_dir)
        return session.resume(run_dir, options.overrides, options.force, options.stop_at)
    if options.force:
        parser.error("--force only applies to --resume")
    if len(options.experiments) > 1 or options.seeds:
        if distributed.context().world_size > 1:
            parser.error("several experiments or --seeds launch separate runs; under torchrun give one experiment")
        return parallel.launch(
            options.experiments, options.seeds, options.overrides, options.runs_dir, options.jobs or 1, options.stop_at
        )
    resolved = config.load(options.experiments[0], options.overrides)
    _, status = session.start(resolved, options.runs_dir, options.stop_at, experiment_file=options.experiments[0])
    return status


def _run_command(command: str, options: argparse.Namespace) -> int:
    if command == "validate":
        from latentrun import config

        print(config.dump(config.load(options.experiment, options.overrides)), end="")
        return EXIT_OK
    if command == "predict":
        from latentrun.runs import inference
        from latentrun.runs import rundir as runs
        from latentrun.runs.directory import RunDir

        task, model, _ = RunDir(runs.resolve_run_dir(options.run, options.runs_dir)).trained_model()
        for product in inference.predict(task, model, options.problems):
            print(product)
        return EXIT_OK
    if command == "eval":
        return _eval(options)
    if command == "list":
        return _list(options)
    if command == "compare":
        from latentrun.report import compare as report
        from latentrun.runs import rundir as runs

        run_dirs = [runs.resolve_run_dir(text, options.runs_dir) for text in options.runs]
        print(report.compare(run_dirs, options.target, options.out))
        return EXIT_OK
    raise AssertionError(command)


def _eval(options: argparse.Namespace) -> int:
    from latentrun.core.atomic import atomic_write_json
    from latentrun.report import grid
    from latentrun.runs import inference
    from latentrun.runs import rundir as runs
    from latentrun.runs.directory import RunDir

    parser = _command_parser("eval")
    if options.max_digits is not None and not 1 <= options.max_digits <= 9:
        parser.error("--max-digits must be between 1 and 9")
    if options.samples < 1:
        parser.error("--samples must be a positive number")
    run_dirs = [runs.resolve_run_dir(text, options.runs_dir) for text in options.runs]
    for run_dir in run_dirs:
        graded = inference.evaluate_split(run_dir, options.split)
        split_path = run_dir / "eval" / f"{options.split}.json"
        split_path.parent.mkdir(exist_ok=True)
        atomic_write_json(split_path, {"run": run_dir.name, "split": options.split, **graded})
        print(
            f"{run_dir.name} {options.split} split ({graded['pairs']} pairs, step {graded['step']}): "
            f"exact_match {graded['exact_match']:.4f} digit_accuracy {graded['digit_accuracy']:.4f}"
        )
        task, model, state = RunDir(run_dir).trained_model()
        max_digits = options.max_digits or task.max_digits + 1
        cells = grid.accuracy_grid(task, model, max_digits, options.samples)
        record = grid.grid_record(
            cells, run=run_dir.name, step=state["step"], max_digits=max_digits, samples=options.samples, task=task
        )
        json_path, png_path = grid.write_grid(run_dir, record, cells)
        print(f"{run_dir.name} (step {state['step']})")
        print(grid.format_grid(cells, max_digits))
        print(f"wrote {split_path}, {json_path} and {png_path}")
    return EXIT_OK


def _list(options: argparse.Namespace) -> int:
    from latentrun.report import listing
    from latentrun.runs import rundir as runs

    if options.id is not None:
        if options.limit is not None or options.sort != "date":
            raise runs.RunError("--id shows one run; --sort and --limit apply to the table of all runs")
        info = listing.details(runs.resolve_run_dir(options.id, options.runs_dir))
        print(listing.to_json(info) if options.json else listing.format_details(info))
        return EXIT_OK
    rows = listing.list_runs(options.runs_dir, options.sort, options.limit)
    if options.json:
        print(listing.to_json(rows))
    elif rows:
        print(listing.format_table(rows))
    else:
        print(f"no runs under {options.runs_dir}/", file=sys.stderr)
    return EXIT_OK
