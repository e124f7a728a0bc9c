"""`validate` and `keys`: an experiment file checked and resolved, and the keys a config may hold."""

from __future__ import annotations

import argparse

from latentrun.commands.arguments import add_set
from latentrun.core.status import EXIT_OK


def add_validate_arguments(parser: argparse.ArgumentParser, prog: str) -> None:
    parser.add_argument("experiment", help="experiment YAML file")
    add_set(parser, prog, sweeps=False)


def validate(options: argparse.Namespace) -> int:
    """Print the resolved config: what a run of this file would freeze as its config.yaml."""
    from latentrun import config
    from latentrun.config import sweep

    sweep.parse(options.overrides)
    print(config.dump(config.load(options.experiment, options.overrides)), end="")
    return EXIT_OK


def add_keys_arguments(parser: argparse.ArgumentParser, prog: str) -> None:
    from latentrun.core import keys

    parser.add_argument(
        "section",
        nargs="?",
        choices=keys.sections(),
        metavar="SECTION",
        help=f"only this section: {', '.join(keys.sections())}",
    )


def show_keys(options: argparse.Namespace) -> int:
    """Every config key (or one section's) with type, default, bounds and description."""
    from latentrun.core import keys

    found = keys.schema_keys()
    if options.section:
        found = [k for k in found if k.key == options.section or k.key.startswith(options.section + ".")]
    print(keys.format_keys(found))
    return EXIT_OK
