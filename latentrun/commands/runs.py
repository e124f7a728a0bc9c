"""`list` and `compare`: runs found under the runs dir, and their efficiency side by side."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from latentrun.commands import UsageError, configure_console_logging
from latentrun.commands.arguments import (
    add_runs_dir,
    complete_columns,
    complete_keys,
    complete_runs,
    complete_with,
    fraction,
    positive_int,
)
from latentrun.core.status import EXIT_OK

# listing.SORTS, written out so that building the parser imports no config machinery (a test pins it)
LIST_SORTS = ("date", "step", "loss", "acc")


def add_list_arguments(parser: argparse.ArgumentParser, prog: str) -> None:
    parser.description = "List the runs under the runs dir, read from the run directories themselves."
    add_runs_dir(parser)
    parser.add_argument(
        "--sort",
        choices=LIST_SORTS,
        default="date",
        help="newest first (date), most steps, lowest last train loss, or best val/exact_match (acc)",
    )
    parser.add_argument("--limit", type=positive_int, metavar="N", help="show only the first N runs")
    complete_with(
        parser.add_argument("--id", metavar="ID", help="full details of one run (id, path or latest)"), complete_runs
    )
    parser.add_argument("--experiment", metavar="NAME", help="only runs of this experiment")
    parser.add_argument("--status", metavar="S", help="only runs in this status (finished, running, crashed, ...)")
    parser.add_argument("--launch", metavar="ID", help="only the runs of this launch (a sweep, --seeds, several files)")
    complete_with(
        parser.add_argument(
            "--where",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="only runs whose frozen config has KEY=VALUE (KEY=A,B: any of them); repeatable, all must hold",
        ),
        complete_keys,
    )
    complete_with(
        parser.add_argument(
            "--columns",
            metavar="KEY,KEY",
            help="add these config keys as columns, e.g. optimizer.lr,model.num_latent",
        ),
        complete_columns,
    )
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print JSON instead of a table")
    output.add_argument("--csv", action="store_true", help="print CSV instead of a table")


def list_runs(options: argparse.Namespace) -> int:
    """The table of runs (filtered, sorted, with chosen columns), or one run's details with --id."""
    from latentrun.report import listing, listing_filter, listing_output
    from latentrun.runs import run_files as runs

    columns = [c.strip() for c in options.columns.split(",") if c.strip()] if options.columns else []
    if options.id is not None:
        if options.limit is not None or options.sort != "date":
            raise runs.RunError("--id shows one run; --sort and --limit apply to the table of all runs")
        info = listing.details(runs.resolve_run_dir(options.id, options.runs_dir))
        print(listing_output.to_json(info) if options.json else listing_output.format_details(info))
        return EXIT_OK
    listing_filter.check_status(options.status)
    selection = listing_filter.Selection(
        experiment=options.experiment,
        status=options.status,
        launch=options.launch,
        where=listing_filter.parse_where(options.where),
    )
    listing_filter.check_columns(columns)
    rows = listing.list_runs(options.runs_dir, options.sort, options.limit, selection, columns)
    if options.json:
        print(listing_output.to_json(rows))
    elif options.csv:
        print(listing_output.to_csv(rows, columns), end="")
    elif rows:
        print(listing_output.format_table(rows, columns))
    else:
        what = " matching the filters" if selection.active() else ""
        print(f"no runs{what} under {options.runs_dir}/", file=sys.stderr)
    return EXIT_OK


def add_compare_arguments(parser: argparse.ArgumentParser, prog: str) -> None:
    parser.description = (
        "Efficiency analysis of runs side by side: a table here, compare.json and compare.png "
        "(validation curves) in --out. Runs differing only in seed are grouped and reported as mean ± std."
    )
    complete_with(
        parser.add_argument("runs", nargs="*", metavar="RUN", help="run directories, ids, or latest"), complete_runs
    )
    parser.add_argument("--launch", metavar="ID", help="compare every run of this launch (with any RUNs given)")
    add_runs_dir(parser)
    parser.add_argument(
        "--target",
        type=fraction,
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


def compare_runs(options: argparse.Namespace) -> int:
    """The efficiency table of the runs given and of --launch's, with compare.json and compare.png."""
    configure_console_logging()  # before any import that might log
    from latentrun.launch import record
    from latentrun.report import compare as report
    from latentrun.report import compare_output
    from latentrun.runs import run_files as runs

    run_dirs = [runs.resolve_run_dir(text, options.runs_dir) for text in options.runs]
    if options.launch:
        record.read_record(options.runs_dir, options.launch)  # a launch id that does not exist is a typo
        given = {path.resolve() for path in run_dirs}
        in_launch = record.launch_runs(options.runs_dir, options.launch)
        run_dirs += [path for _, path in sorted(in_launch.items()) if path.resolve() not in given]
    if not run_dirs:
        raise UsageError("give runs to compare, or --launch ID")
    document, text = report.compare(run_dirs, options.target, options.out, options.probes)
    if options.csv:
        print(compare_output.to_csv(document), end="")
        print(text.splitlines()[-1], file=sys.stderr)  # where compare.json and compare.png went
    else:
        print(text)
    return EXIT_OK
