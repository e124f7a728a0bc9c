"""What several commands' arguments share: the argparse types that check one value as it is parsed,
the `--set` and `--runs-dir` flags, and the shell completers argcomplete calls.

A type raises argparse.ArgumentTypeError, so that a bad value is the command's usage error (exit 2)
before anything runs; checks of arguments that cannot go together belong to the command itself.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

DEFAULT_RUNS_DIR = Path("runs")
_CHECKPOINT_NAME = re.compile(r"best|latest|step_([0-9]+)")  # the schema's init.checkpoint pattern


def positive_int(text: str) -> int:
    """A count: --jobs, --limit, eval's --samples."""
    return _whole_number(text, 1, None, "a positive whole number")


def step_number(text: str) -> int:
    """--stop-at: a step a run can stop at (step 0 has trained nothing)."""
    return _whole_number(text, 1, None, "a positive step number")


def operand_digits(text: str) -> int:
    """eval's --max-digits: the task encodes operands of 1 to 9 digits."""
    return _whole_number(text, 1, 9, "a number of digits from 1 to 9")


def checkpoint_name(text: str) -> str:
    """eval's and predict's --checkpoint: best, latest or step_N, as init.checkpoint names them (step_007 is step_7)."""
    named = _CHECKPOINT_NAME.fullmatch(text)
    if named is not None:
        return f"step_{int(named[1])}" if named[1] is not None else text
    raise argparse.ArgumentTypeError(f"expected best, latest or step_N (N an update number), got {text!r}")


def fraction(text: str) -> float:
    """compare's --target: an exact-match rate."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, got {text!r}")
    return value


def seeds(text: str) -> list[int]:
    """--seeds S1,S2,...: distinct whole numbers, one run each."""
    try:
        found = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers like 1,2,3, got {text!r}") from None
    if len(set(found)) != len(found):
        raise argparse.ArgumentTypeError(f"a seed is repeated in {text!r}")
    return found


def _whole_number(text: str, low: int, high: int | None, expected: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = low - 1
    if value < low or (high is not None and value > high):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def add_set(parser: argparse.ArgumentParser, prog: str, sweeps: bool) -> None:
    """--set KEY=VALUE, repeatable; `train` also sweeps with it."""
    sweep = " KEY=A,B or KEY=range(START,STOP,STEP) sweeps (quote a value holding a comma);" if sweeps else ""
    complete_with(
        parser.add_argument(
            "--set",
            dest="overrides",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help=f"override a config value, e.g. --set optimizer.lr=3e-4;{sweep} one per key; keys: {prog} keys",
        ),
        complete_keys,
    )


def add_runs_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--runs-dir", type=Path, default=DEFAULT_RUNS_DIR, help="where run directories live (default: runs)"
    )


def complete_with(action: argparse.Action, completer: Callable[..., list[str]]) -> None:
    """Attach an argcomplete completer: argcomplete reads the action's `completer` attribute, which
    argparse does not declare."""
    action.completer = completer  # type: ignore[attr-defined]


def complete_runs(prefix: str, parsed_args: argparse.Namespace, **_: Any) -> list[str]:
    """`latest` and the run ids under --runs-dir, for shell completion."""
    from latentrun.runs import run_files

    runs_dir = getattr(parsed_args, "runs_dir", None) or DEFAULT_RUNS_DIR
    ids = [run_files.LATEST, *(path.name for path in run_files.run_dirs(runs_dir))]
    return [run for run in ids if run.startswith(prefix)]


def complete_keys(prefix: str, **_: Any) -> list[str]:
    """`KEY=` for every config key, for shell completion of --set and --where."""
    from latentrun.core import keys

    return [f"{key.key}=" for key in keys.schema_keys() if key.key.startswith(prefix)]


def complete_columns(prefix: str, **_: Any) -> list[str]:
    """Config keys for `--columns KEY,KEY`: the key after the last comma, with no `=`."""
    from latentrun.core import keys

    given, comma, last = prefix.rpartition(",")
    return [f"{given}{comma}{key.key}" for key in keys.schema_keys() if key.key.startswith(last)]
