"""Command line: parse arguments, call into the package, turn known errors into exit statuses.

Exit statuses (contract): 0 success, 2 bad config or usage, 1 runtime failure, 130 interrupted
after a clean checkpoint. Only the error types below are user mistakes; anything else is a bug
and keeps its traceback.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from loguru import logger
from tqdm import tqdm

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
COMMANDS = ("validate", "predict")


def _train_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="run.py",
        description="Train a model from a YAML experiment, or resume a run exactly. "
        f"Other commands: {', '.join(COMMANDS)} (run.py COMMAND --help).",
    )
    parser.add_argument("experiment", nargs="?", help="experiment YAML file to train")
    parser.add_argument("--resume", metavar="RUN", help="run directory (or run id under --runs-dir) to continue")
    _add_set(parser)
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"), help="where run directories live (default: runs)")
    parser.add_argument("--stop-at", type=int, metavar="STEP", help="checkpoint and exit cleanly at STEP")
    parser.add_argument("--force", action="store_true", help="allow --resume to change keys that alter what is computed")
    return parser


def _add_set(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set optimizer.lr=3e-4 (repeatable)")


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
    return parser


def _configure_console_logging(level: str = "INFO") -> None:
    logger.remove()
    # Through tqdm.write so that log lines don't tear the progress bar.
    logger.add(lambda message: tqdm.write(message, end="", file=sys.stderr), level=level,
               format="{time:HH:mm:ss} | {level: <7} | {message}", colorize=sys.stderr.isatty())


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `python run.py` and the `latentrun` console script."""
    from latentrun.checkpoint import CheckpointError
    from latentrun.config import ConfigError
    from latentrun.data import ProblemError
    from latentrun.distributed import PeerError
    from latentrun.runs import RunError

    args = list(sys.argv[1:] if argv is None else argv)
    _configure_console_logging()
    try:
        if args and args[0] in COMMANDS:
            return _run_command(args[0], _command_parser(args[0]).parse_args(args[1:]))
        return _in_process_group(_train, _train_parser(), args)
    except (ConfigError, RunError, ProblemError) as error:
        _report(error)
        return EXIT_USAGE
    except (CheckpointError, PeerError) as error:
        _report(error)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
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
    from latentrun import distributed

    if not distributed.init().is_main:
        _configure_console_logging("WARNING")  # rank 0 tells the story; the others speak up only when wrong
    try:
        return train(*args)
    finally:
        distributed.shutdown()


def _train(parser: argparse.ArgumentParser, args: list[str]) -> int:
    from latentrun import config, runs, session

    options = parser.parse_args(args)
    if bool(options.experiment) == bool(options.resume):
        parser.error("give an experiment file to train or --resume RUN, not both or neither")
    if options.stop_at is not None and options.stop_at < 1:
        parser.error("--stop-at must be a positive step number")
    if options.resume:
        run_dir = runs.resolve_run_dir(options.resume, options.runs_dir)
        return session.resume(run_dir, options.overrides, options.force, options.stop_at)
    if options.force:
        parser.error("--force only applies to --resume")
    resolved = config.load(options.experiment, options.overrides)
    _, status = session.start(resolved, options.runs_dir, options.stop_at)
    return status


def _run_command(command: str, options: argparse.Namespace) -> int:
    if command == "validate":
        from latentrun import config

        print(config.dump(config.load(options.experiment, options.overrides)), end="")
        return EXIT_OK
    if command == "predict":
        from latentrun import inference, runs

        task, model, _ = inference.load_trained(runs.resolve_run_dir(options.run, options.runs_dir))
        for product in inference.predict(task, model, options.problems):
            print(product)
        return EXIT_OK
    raise AssertionError(command)
