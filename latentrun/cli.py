# PYTHON_ARGCOMPLETE_OK  (argcomplete reads this marker to offer completion for the `latentrun` script)
"""Command line: parse arguments, call into the package, turn known errors into exit statuses.

Exit statuses (contract): 0 success, 2 bad config or usage, 1 runtime failure, 130 interrupted
after a clean checkpoint. Only the error types below are user mistakes; anything else is a bug
and keeps its traceback. Nothing here imports torch: the commands that need it import it when they
run, so `--help`, `validate`, `keys` and `list` start in a fraction of a second.
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from latentrun import __version__
from latentrun.commands import RESUME_LAUNCH, dispatch, program_name, subparser
from latentrun.core.status import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE

__all__ = ["EXIT_FAILURE", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "build_parser", "main"]

# The commands in the order usage lists them, each with its line there.
COMMANDS = {
    "train": "train a new run or resume one (the word may be left out: PROG EXPERIMENT.yaml)",
    "validate": "check an experiment file and print the resolved config",
    "keys": "every config key with its type, default, bounds and description",
    "list": "find runs: filter, sort, choose columns, export as CSV or JSON",
    "compare": "efficiency of runs side by side (runs differing only in seed grouped as mean ± std)",
    "eval": "exact match of a run per pair of operand lengths, as a grid",
    "predict": "products predicted by a run's best checkpoint",
    "probe": "what a run's hidden states hold, per layer and position: linear probes of long multiplication",
    "help": "help on PROG or one of its commands",
}
_GLOBAL_FLAGS = ("-h", "--help", "--version")
# listing.SORTS, written out so that building the parser imports no config machinery (a test pins it)
LIST_SORTS = ("date", "step", "loss", "acc")
# probe_targets.TARGETS and probe_states.POSITION_CLASSES, written out for the same reason (pinned too)
PROBE_TARGETS = ("running_sum", "column_sum", "carry", "partial_product")
PROBE_POSITIONS = ("prompt", "latent", "chain", "answer")

# Error types that mean a user mistake (exit 2) or a runtime failure (exit 1), by module. An error is
# only checked against the classes of modules already imported: one that never loaded cannot have
# raised, and importing it just to name its class would cost the light commands torch's start-up.
_USAGE_ERRORS = (
    ("latentrun.config", "ConfigError"),
    ("latentrun.runs.run_files", "RunError"),
    ("latentrun.task.multiplication", "ProblemError"),
    ("latentrun.task.problems", "ProblemFileError"),
    ("latentrun.report.probe", "ProbeError"),
)
_RUNTIME_ERRORS = (
    ("latentrun.train.checkpoints_protocol", "CheckpointError"),
    ("latentrun.train.distributed", "PeerError"),
    ("latentrun.train.stability", "TrainingDiverged"),
)


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
    for name, summary in COMMANDS.items():
        summary = summary.replace("PROG", prog)
        command = sub.add_parser(
            name, prog=f"{prog} {name}", help=summary, description=summary[0].upper() + summary[1:] + "."
        )
        _ARGUMENTS[name](command, prog)
    return parser


def _add_train_arguments(parser: argparse.ArgumentParser, prog: str) -> None:
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
    _complete_with(
        parser.add_argument(
            "--resume",
            nargs="?",
            const=RESUME_LAUNCH,
            metavar="RUN",
            help="run directory (or run id under --runs-dir, or latest) to continue; bare with --launch ID",
        ),
        _complete_runs,
    )
    parser.add_argument(
        "--launch",
        metavar="ID",
        help="with --resume: continue every unfinished run of launch ID (and start its runs that never did)",
    )
    _add_set(parser, prog, sweeps=True)
    _add_runs_dir(parser)
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


def _add_validate_arguments(parser: argparse.ArgumentParser, prog: str) -> None:
    parser.add_argument("experiment", help="experiment YAML file")
    _add_set(parser, prog, sweeps=False)


def _add_keys_arguments(parser: argparse.ArgumentParser, prog: str) -> None:
    from latentrun.core import keys

    parser.add_argument(
        "section",
        nargs="?",
        choices=keys.sections(),
        metavar="SECTION",
        help=f"only this section: {', '.join(keys.sections())}",
    )


def _add_list_arguments(parser: argparse.ArgumentParser, prog: str) -> None:
    parser.description = "List the runs under the runs dir, read from the run directories themselves."
    _add_runs_dir(parser)
    parser.add_argument(
        "--sort",
        choices=LIST_SORTS,
        default="date",
        help="newest first (date), most steps, lowest last train loss, or best val/exact_match (acc)",
    )
    parser.add_argument("--limit", type=_positive_int, metavar="N", help="show only the first N runs")
    _complete_with(
        parser.add_argument("--id", metavar="ID", help="full details of one run (id, path or latest)"), _complete_runs
    )
    parser.add_argument("--experiment", metavar="NAME", help="only runs of this experiment")
    parser.add_argument("--status", metavar="S", help="only runs in this status (finished, running, crashed, ...)")
    parser.add_argument("--launch", metavar="ID", help="only the runs of this launch (a sweep, --seeds, several files)")
    _complete_with(
        parser.add_argument(
            "--where",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="only runs whose frozen config has KEY=VALUE (KEY=A,B: any of them); repeatable, all must hold",
        ),
        _complete_keys,
    )
    _complete_with(
        parser.add_argument(
            "--columns",
            metavar="KEY,KEY",
            help="add these config keys as columns, e.g. optimizer.lr,model.num_latent",
        ),
        _complete_columns,
    )
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print JSON instead of a table")
    output.add_argument("--csv", action="store_true", help="print CSV instead of a table")


def _add_compare_arguments(parser: argparse.ArgumentParser, prog: str) -> None:
    parser.description = (
        "Efficiency analysis of runs side by side: a table here, compare.json and compare.png "
        "(validation curves) in --out. Runs differing only in seed are grouped and reported as mean ± std."
    )
    _complete_with(
        parser.add_argument("runs", nargs="*", metavar="RUN", help="run directories, ids, or latest"), _complete_runs
    )
    parser.add_argument("--launch", metavar="ID", help="compare every run of this launch (with any RUNs given)")
    _add_runs_dir(parser)
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
    parser.add_argument("--csv", action="store_true", help="print one CSV row per run instead of the table")
    parser.add_argument(
        "--probes", action="store_true", help="also put the runs' probe pictures side by side in --out/probes.png"
    )


def _add_eval_arguments(parser: argparse.ArgumentParser, prog: str) -> None:
    parser.description = (
        "Grade the run's best checkpoint on a held-out split (test, the figure of record, or val, which "
        "chose the checkpoint), then exact match for every (digits of a, digits of b) up to --max-digits; "
        "writes eval/<split>.json, eval/grid.json and eval/grid.png in the run dir and logs the image to "
        "TensorBoard."
    )
    _complete_with(
        parser.add_argument("runs", nargs="+", metavar="RUN", help="run directory or run id"), _complete_runs
    )
    parser.add_argument(
        "--split", choices=("test", "val"), default="test", help="held-out split to grade (default: test)"
    )
    parser.add_argument(
        "--max-digits", type=int, metavar="N", help="largest operand length (default: one more than trained)"
    )
    parser.add_argument("--samples", type=int, default=1000, metavar="K", help="pairs graded per cell (default: 1000)")
    parser.add_argument(
        "--file",
        type=Path,
        metavar="PATH",
        help="grade on the problems of a file instead (ICoT lines 'a_0 a_1 ... * b_0 ...||chain #### p_0 ...' "
        "or 'a*b' lines), e.g. ../shared/data/icot/4x4_test.txt; writes eval/file-NAME.json",
    )
    _add_runs_dir(parser)


def _add_predict_arguments(parser: argparse.ArgumentParser, prog: str) -> None:
    parser.description = (
        "Print what each run's best checkpoint predicts, one `A*B = PRODUCT` line per problem "
        "(AxB is read the same). Several runs (a shell glob) each get a heading."
    )
    parser.usage = f"{prog} predict [-h] [--bare] [--file PATH] [--runs-dir RUNS_DIR] RUN [RUN ...] [A*B ... | -]"
    _complete_with(
        parser.add_argument(
            "items",
            nargs="+",
            metavar="RUN A*B",
            help="one or more runs (a path, id or latest), then the problems; - reads them from stdin, one a line",
        ),
        _complete_runs,
    )
    parser.add_argument("--bare", action="store_true", help="print only the products, one per line")
    parser.add_argument("--file", type=Path, metavar="PATH", help="also predict the problems of PATH, one a line")
    _add_runs_dir(parser)


def _add_probe_arguments(parser: argparse.ArgumentParser, prog: str) -> None:
    parser.description = (
        "Fit linear probes (closed-form ridge least squares) to the hidden states of the run's best checkpoint "
        "on held-out problems, at every layer (0 = embeddings) and position, for the running sums a*(b mod 10^k), "
        "the column sums c_k (R^2), the carries and the partial products a*b_j; scores on problems the probes "
        "never saw. Writes probe.json and probe.png in the run dir and logs the image to TensorBoard."
    )
    _complete_with(parser.add_argument("run", metavar="RUN", help="run directory, run id or latest"), _complete_runs)
    parser.add_argument(
        "--targets", nargs="+", metavar="TARGET", help=f"what to read (default: all): {', '.join(PROBE_TARGETS)}"
    )
    parser.add_argument(
        "--layers", nargs="+", type=int, metavar="L", help="layers to probe, 0 = embeddings (default: all)"
    )
    parser.add_argument(
        "--positions", nargs="+", metavar="CLASS", help=f"position classes (default: all): {', '.join(PROBE_POSITIONS)}"
    )
    parser.add_argument(
        "--samples",
        type=int,
        default=2000,
        metavar="N",
        help="held-out problems to probe on, at most the split (default: 2000)",
    )
    parser.add_argument(
        "--split", choices=("test", "val"), default="test", help="held-out split to draw them from (default: test)"
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the probes' train/held-out split of the problems (default: 0)"
    )
    _add_runs_dir(parser)


def _add_help_arguments(parser: argparse.ArgumentParser, prog: str) -> None:
    topics = [c for c in COMMANDS if c != "help"]
    # No argparse choices: a mistyped command gets a did-you-mean from the help command instead.
    _complete_with(
        parser.add_argument("topic", nargs="?", metavar="COMMAND", help=f"one of {', '.join(topics)}"),
        lambda prefix, **_: [c for c in topics if c.startswith(prefix)],
    )


def _add_set(parser: argparse.ArgumentParser, prog: str, sweeps: bool) -> None:
    sweep = " KEY=A,B or KEY=range(START,STOP,STEP) sweeps (quote a value holding a comma);" if sweeps else ""
    _complete_with(
        parser.add_argument(
            "--set",
            dest="overrides",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help=f"override a config value, e.g. --set optimizer.lr=3e-4;{sweep} one per key; keys: {prog} keys",
        ),
        _complete_keys,
    )


def _add_runs_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--runs-dir", type=Path, default=Path("runs"), help="where run directories live (default: runs)"
    )


_ARGUMENTS = {
    "train": _add_train_arguments,
    "validate": _add_validate_arguments,
    "keys": _add_keys_arguments,
    "list": _add_list_arguments,
    "compare": _add_compare_arguments,
    "eval": _add_eval_arguments,
    "predict": _add_predict_arguments,
    "probe": _add_probe_arguments,
    "help": _add_help_arguments,
}


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


def _seeds(text: str) -> list[int]:
    try:
        seeds = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers like 1,2,3, got {text!r}") from None
    if len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"a seed is repeated in {text!r}")
    return seeds


def _complete_with(action: argparse.Action, completer: Callable[..., list[str]]) -> None:
    """Attach an argcomplete completer: argcomplete reads the action's `completer` attribute, which
    argparse does not declare."""
    action.completer = completer  # type: ignore[attr-defined]


def _complete_runs(prefix: str, parsed_args: argparse.Namespace, **_: Any) -> list[str]:
    """`latest` and the run ids under --runs-dir, for shell completion."""
    from latentrun.runs import run_files

    runs_dir = getattr(parsed_args, "runs_dir", None) or Path("runs")
    ids = [run_files.LATEST, *(path.name for path in run_files.run_dirs(runs_dir))]
    return [run for run in ids if run.startswith(prefix)]


def _complete_keys(prefix: str, **_: Any) -> list[str]:
    """`KEY=` for every config key, for shell completion of --set and --where."""
    from latentrun.core import keys

    return [f"{key.key}=" for key in keys.schema_keys() if key.key.startswith(prefix)]


def _complete_columns(prefix: str, **_: Any) -> list[str]:
    """Config keys for `--columns KEY,KEY`: the key after the last comma, with no `=`."""
    from latentrun.core import keys

    given, comma, last = prefix.rpartition(",")
    return [f"{given}{comma}{key.key}" for key in keys.schema_keys() if key.key.startswith(last)]


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
        options = parser.parse_args(_with_command(parser, args))
        if options.command is None:
            parser.print_help()
            return EXIT_USAGE
        return dispatch(parser, options)
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


def _known_status(error: Exception) -> int | None:
    """EXIT_USAGE or EXIT_FAILURE for the known error types, None for anything else (a bug)."""
    for status, known in ((EXIT_USAGE, _USAGE_ERRORS), (EXIT_FAILURE, _RUNTIME_ERRORS)):
        for module, name in known:
            loaded = sys.modules.get(module)
            if loaded is not None and isinstance(error, getattr(loaded, name)):
                return status
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


def _command_parser(command: str) -> argparse.ArgumentParser:
    """The subparser of one command (tests pin each command's flags through it)."""
    return subparser(build_parser(), command)


def _train_parser() -> argparse.ArgumentParser:
    return _command_parser("train")
