"""What each command does once its arguments are parsed, one module per family of commands:
`train` (train and resume), `configs` (validate, keys), `runs` (list, compare) and `trained`
(eval, predict, probe: the commands that load a run's model). Each module gives its commands'
arguments (`add_*_arguments`) and the plain functions that run them; `cli` puts them in its table.

Every heavy import (torch, TensorBoard, matplotlib) happens inside the command that needs it.
"""

from __future__ import annotations

import sys


class UsageError(Exception):
    """Arguments that parse one by one but cannot go together (`--force` without `--resume`, ...):
    cli says it through the command's own usage line and exits 2, as argparse does for its own."""


def configure_console_logging(level: str = "INFO") -> None:
    """loguru to stderr through tqdm.write, so that log lines don't tear a progress bar."""
    from loguru import logger
    from tqdm import tqdm

    logger.remove()
    logger.add(
        lambda message: tqdm.write(message, end="", file=sys.stderr),
        level=level,
        format="{time:HH:mm:ss} | {level: <7} | {message}",
        colorize=sys.stderr.isatty(),
    )
