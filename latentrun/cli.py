# PYTHON_ARGCOMPLETE_OK  (argcomplete reads this marker to offer completion for the `latentrun` script)
"""Command line: parse arguments, call into the package, turn known errors into exit statuses.

Exit statuses (contract): 0 success, 2 bad config or usage, 1 runtime failure, 130 interrupted
after a clean checkpoint. Only the named errors of core.errors are user mistakes or runtime
failures; anything else is a bug and keeps its traceback. Nothing here imports torch: the commands
that need it import it when they run, so `--help`, `validate`, `keys` and `list` start in a
fraction of a second.
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from latentrun import __version__
from latentrun.commands import UsageError, configs, runs, train, trained
from latentrun.commands.arguments import complete_with
from latentrun.commands.runs import LIST_SORTS
from latentrun.commands.trained import PROBE_POSITIONS, PROBE_TARGETS
from latentrun.core.errors import RUNTIME_ERRORS, USAGE_ERRORS
from latentrun.core.status import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from latentrun.core.text import program_name

__all__ = [
    "COMMANDS",
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "LIST_SORTS",
    "PROBE_POSITIONS",
    "PROBE_TARGETS",
    "build_parser",
    "main",
    "parse_args",
]


@dataclass(frozen=True)
class Command:
    """One command: its line in usage (PROG stands for the program's name), the function that adds
    its arguments to its subparser, and the function that runs it and returns the exit status."""

    summary: str
    add_arguments: Callable[[argparse.ArgumentParser, str], None]
    run: Callable[[argparse.Namespace], int]


def _add_help_arguments(parser: argparse.ArgumentParser, prog: str) -> None:
    topics = [c for c in COMMANDS if c != "help"]
    # No argparse choices: a mistyped command gets a did-you-mean from the help command instead.
    complete_with(
        parser.add_argument("topic", nargs="?", metavar="COMMAND", help=f"one of {', '.join(topics)}"),
        lambda prefix, **_: [c for c in topics if c.startswith(prefix)],
    )


def _help(options: argparse.Namespace) -> int:
    """Usage of the program, or of the command named."""
    parser = build_parser()
    if options.topic is None:
        parser.print_help()
        return EXIT_OK
    topics = [name for name in COMMANDS if name != "help"]
    if options.topic not in topics:
        from latentrun.config.errors import did_you_mean

        hint = did_you_mean(options.topic, topics) or f"; one of {', '.join(topics)}"
        raise UsageError(f"unknown command {options.topic!r}{hint}")
    _subparser(parser, options.topic).print_help()
    return EXIT_OK


# The commands in the order usage lists them.
COMMANDS = {
    "train": Command(
        "train a new run or resume one (the word may be left out: PROG EXPERIMENT.yaml)",
        train.add_train_arguments,
        train.train,
    ),
    "validate": Command(
        "check an experiment file and print the resolved config", configs.add_validate_arguments, configs.validate
    ),
    "keys": Command(
        "every config key with its type, default, bounds and description", configs.add_keys_arguments, configs.show_keys
    ),
    "list": Command(
        "find runs: filter, sort, choose columns, export as CSV or JSON", runs.add_list_arguments, runs.list_runs
    ),
    "compare": Command(
        "efficiency of runs side by side (runs differing only in seed grouped as mean ± std)",
        runs.add_compare_arguments,
        runs.compare_runs,
    ),
    "eval": Command(
        "exact match of a run per pair of operand lengths, as a grid", trained.add_eval_arguments, trained.evaluate
    ),
    "predict": Command("products predicted by a run's best checkpoint", trained.add_predict_arguments, trained.predict),
    "probe": Command(
        "what a run's hidden states hold, per layer and position: linear probes of long multiplication",
        trained.add_probe_arguments,
        trained.probe_run,
    ),
    "help": Command("help on PROG or one of its commands", _add_help_arguments, _help),
}
_GLOBAL_FLAGS = ("-h", "--help", "--version")


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The whole command line: one subparser per command, `train` also reached without its word."""
    prog = prog or program_name()
    parser = argparse.ArgumentParser(
        prog=prog,
        usage=f"{prog} [train] EXPERIMENT.yaml [options] | {prog} --resume RUN | {prog} COMMAND ...",
        description="Train small transformers to multiply from YAML experiments; every run exact and resumable.",
        epilog=f"Every config key, with type, default, bounds and description: {prog} keys [SECTION]. "
        f"Help on one command: {prog} help COMMAND (or {prog} COMMAND --help).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"latentrun {__version__}")
    sub = parser.add_subparsers(dest="command", title="commands", metavar="COMMAND")
    for name, command in COMMANDS.items():
        summary = command.summary.replace("PROG", prog)
        command.add_arguments(
            sub.add_parser(
                name, prog=f"{prog} {name}", help=summary, description=summary[0].upper() + summary[1:] + "."
            ),
            prog,
        )
    return parser


def parse_args(parser: argparse.ArgumentParser, args: Sequence[str]) -> argparse.Namespace:
    """`args` parsed by `parser`, with `train` implied where the first word names no command."""
    return parser.parse_args(_with_command(parser, list(args)))


def _with_command(parser: argparse.ArgumentParser, args: list[str]) -> list[str]:
    """`args` with the command word in front: `train` unless the first argument names a command.

    A first word that is no file but close to a command is a typo, said so with the closest command,
    rather than being read as an experiment file that does not exist.
    """
    if not args:
        parser.error(f"give an experiment file to train, --resume RUN, or a command: {', '.join(COMMANDS)}")
    first = args[0]
    if first in COMMANDS or first in _GLOBAL_FLAGS:
        return args
    looks_like_file = Path(first).exists() or first.endswith((".yaml", ".yml")) or os.sep in first or "=" in first
    if not first.startswith("-") and not looks_like_file:
        close = difflib.get_close_matches(first, list(COMMANDS), n=1, cutoff=0.6)
        if close:
            parser.error(f"unknown command {first!r} (did you mean {close[0]!r}?)")
    return ["train", *args]


def _autocomplete(parser: argparse.ArgumentParser) -> None:
    """Shell completion through argcomplete (the `completion` extra) when the shell asks for it."""
    if "_ARGCOMPLETE" not in os.environ:
        return
    try:
        import argcomplete
    except ImportError:
        return
    _imply_train_for_completion(os.environ)
    argcomplete.autocomplete(parser)


def _imply_train_for_completion(environ: Any) -> None:
    """Complete `PROG experiments/smo` and `PROG --resume l` as the train command they are: argcomplete
    reads the line from COMP_LINE, so `train` is written into it where the first word is no command
    (a path, or a flag other than --help/--version), as `_with_command` does for a real run."""
    line, point = environ.get("COMP_LINE", ""), int(environ.get("COMP_POINT", 0))
    words = line[:point].split(" ")
    if len(words) < 2:  # still typing the program's name
        return
    first = words[1]
    if any(command.startswith(first) for command in COMMANDS) and not first.startswith("-") and first:
        return
    if not first or first in _GLOBAL_FLAGS or (first.startswith("-") and len(words) == 2):
        return  # `PROG <TAB>` offers the commands; `PROG --<TAB>` the global flags
    at = len(words[0]) + 1
    environ["COMP_LINE"] = line[:at] + "train " + line[at:]
    environ["COMP_POINT"] = str(point + len("train "))


def _thread_error(args: threading.ExceptHookArgs) -> None:
    """A background thread's OSError (TensorBoard's event writer when the run dir vanished or the
    disk filled) is one line: the main thread meets the same fault and ends with its own status."""
    if isinstance(args.exc_value, OSError):
        name = args.thread.name if args.thread is not None else "a background thread"
        print(f"error: {name}: {args.exc_value}", file=sys.stderr)
        return
    threading.__excepthook__(args)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `python run.py` and the `latentrun` console script."""
    args = list(sys.argv[1:] if argv is None else argv)
    threading.excepthook = _thread_error
    try:
        parser = build_parser()
        _autocomplete(parser)
        options = parse_args(parser, args)
        if options.command is None:
            parser.print_help()
            return EXIT_USAGE
        return _run(parser, options)
    except BrokenPipeError:
        _close_quietly()  # `list --json | head -1`: the reader had enough; that is no failure
        return EXIT_OK
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except SystemExit as exit_request:  # argparse's usage errors, --help and --version
        return exit_request.code if isinstance(exit_request.code, int) else EXIT_USAGE
    except Exception as error:
        status = _known_status(error)
        if status is None and isinstance(error, OSError):
            # The disk or the system refused (full, read-only, ...): not a bug, not a usage error.
            print(f"error: {error}", file=sys.stderr)
            return EXIT_FAILURE
        if status is None:
            raise
        _report(error)
        return status


def _run(parser: argparse.ArgumentParser, options: argparse.Namespace) -> int:
    """The parsed command run; arguments that cannot go together are its usage error, as argparse's own."""
    try:
        return COMMANDS[options.command].run(options)
    except UsageError as error:
        _subparser(parser, options.command).error(str(error))


def _subparser(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser:
    """The parser of one command, for its own help and its own usage errors."""
    for action in parser._actions:  # noqa: SLF001  (argparse keeps its subparsers only there)
        if isinstance(action, argparse._SubParsersAction):
            found: argparse.ArgumentParser = action.choices[command]
            return found
    raise AssertionError("no commands")


def _known_status(error: Exception) -> int | None:
    """EXIT_USAGE or EXIT_FAILURE for the named errors, None for anything else (a bug)."""
    if isinstance(error, USAGE_ERRORS):
        return EXIT_USAGE
    if isinstance(error, RUNTIME_ERRORS):
        return EXIT_FAILURE
    return None


def _report(error: Exception) -> None:
    """One `error:` line per problem, unless rank 0 of a torchrun job already printed the same lines."""
    if getattr(error, "reported_by_main", False):
        return
    for line in str(error).splitlines():
        print(f"error: {line}", file=sys.stderr)


def _close_quietly() -> None:
    """Point stdout at /dev/null so that the interpreter's final flush does not fail on the closed pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is no real file (captured by a test): nothing to flush
        pass
