"""What each command does once its arguments are parsed; `cli` builds the parser and maps errors.

Every heavy import (torch, TensorBoard, matplotlib) happens inside the command that needs it.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from latentrun.core import status as run_status
from latentrun.core.status import EXIT_OK
from latentrun.core.text import program_name

RESUME_LAUNCH = "\0launch"  # what a bare `--resume` parses to: the runs come from --launch ID
_DEFAULT_RUNS_DIR = Path("runs")


def dispatch(parser: argparse.ArgumentParser, options: argparse.Namespace) -> int:
    """Run the parsed command; returns its exit status."""
    command_parser = subparser(parser, options.command)
    if options.command in ("train", "eval", "predict", "compare", "probe"):
        configure_console_logging()
    handlers: dict[str, Callable[..., int]] = {
        "train": _train,
        "validate": _validate,
        "keys": _keys,
        "list": _list,
        "compare": _compare,
        "eval": _eval,
        "predict": _predict,
        "probe": _probe,
        "help": lambda sub, opts: _help(parser, opts),
    }
    return handlers[options.command](command_parser, options)


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


# ---- train and resume ---------------------------------------------------------------------------


def _train(parser: argparse.ArgumentParser, options: argparse.Namespace) -> int:
    from latentrun.config import sweep

    if options.stop_at is not None and options.stop_at < 1:
        parser.error("--stop-at must be a positive step number")
    axes = sweep.parse(options.overrides)  # a repeated key is refused here, before anything else
    if options.slurm_options and options.launcher != "slurm":
        parser.error("--slurm sets a parameter of --launcher slurm")
    if options.resume is not None:
        return _resume(parser, options, sweep.is_sweep(axes))
    if options.launch:
        parser.error("--launch ID goes with --resume (list --launch ID and compare --launch ID select a launch)")
    if not options.experiments:
        parser.error("give experiment file(s) to train or --resume RUN")
    if options.force:
        parser.error("--force only applies to --resume")
    for text in options.experiments:
        if "=" in text and not Path(text).exists():
            parser.error(f"{text}: no such experiment file; to override a config value write --set {text}")
    several = len(options.experiments) > 1 or options.seeds or sweep.is_sweep(axes) or options.launcher != "local"
    if several:
        from latentrun.launch import parallel

        if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # torchrun's own variable: a launcher needs no torch
            parser.error("several experiments, --seeds or a sweep launch separate runs; under torchrun give one")
        return parallel.launch(
            options.experiments,
            options.seeds,
            options.overrides,
            options.runs_dir,
            options.jobs or 1,
            options.stop_at,
            launcher=options.launcher,
            launcher_options=_launcher_options(parser, options),
        )
    return _in_process_group(lambda: _train_one(options))


def _launcher_options(parser: argparse.ArgumentParser, options: argparse.Namespace) -> dict[str, Any]:
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


def _resume(parser: argparse.ArgumentParser, options: argparse.Namespace, swept: bool) -> int:
    if options.experiments:
        parser.error("give experiment file(s) to train or --resume RUN, not both")
    if swept:
        parser.error("--resume continues runs with their own config; a swept --set starts new runs")
    if options.seeds:
        parser.error("--seeds launches new runs; --resume continues one")
    if options.resume == RESUME_LAUNCH or options.launch:
        if options.resume != RESUME_LAUNCH:
            parser.error("--resume --launch ID continues a whole launch; give no RUN with it")
        if not options.launch:
            parser.error("--resume needs a RUN (or --launch ID)")
        from latentrun.launch import parallel

        return parallel.resume_launch(
            options.launch,
            options.runs_dir,
            options.overrides,
            options.force,
            options.stop_at,
            options.jobs or 1,
            launcher=options.launcher,
            launcher_options=_launcher_options(parser, options),
        )
    if options.jobs:
        parser.error("--jobs launches runs in parallel; --resume continues one (or a launch: --resume --launch ID)")
    from latentrun.runs import run_files as runs

    run_dir = runs.resolve_run_dir(options.resume, options.runs_dir)

    def resume() -> int:
        from latentrun.launch import session

        status = session.resume(run_dir, options.overrides, options.force, options.stop_at)
        _suggest_next(run_dir, options.runs_dir, status)
        _print_run_dir(run_dir)
        return status

    return _in_process_group(resume)


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
    where = "" if runs_dir == _DEFAULT_RUNS_DIR or not by_id else f" --runs-dir {runs_dir}"
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


# ---- configs --------------------------------------------------------------------------------------


def _validate(parser: argparse.ArgumentParser, options: argparse.Namespace) -> int:
    from latentrun import config
    from latentrun.config import sweep

    sweep.parse(options.overrides)
    print(config.dump(config.load(options.experiment, options.overrides)), end="")
    return EXIT_OK


def _keys(parser: argparse.ArgumentParser, options: argparse.Namespace) -> int:
    from latentrun.core import keys

    found = keys.schema_keys()
    if options.section:
        found = [k for k in found if k.key == options.section or k.key.startswith(options.section + ".")]
    print(keys.format_keys(found))
    return EXIT_OK


def _help(parser: argparse.ArgumentParser, options: argparse.Namespace) -> int:
    if options.topic is None:
        parser.print_help()
        return EXIT_OK
    topics = [name for name in _subparsers(parser).choices if name != "help"]
    if options.topic not in topics:
        from latentrun.config.errors import did_you_mean

        hint = did_you_mean(options.topic, topics) or f"; one of {', '.join(topics)}"
        subparser(parser, "help").error(f"unknown command {options.topic!r}{hint}")
    subparser(parser, options.topic).print_help()
    return EXIT_OK


# ---- runs -----------------------------------------------------------------------------------------


def _list(parser: argparse.ArgumentParser, options: argparse.Namespace) -> int:
    from latentrun.report import listing
    from latentrun.runs import run_files as runs

    columns = [c.strip() for c in options.columns.split(",") if c.strip()] if options.columns else []
    if options.id is not None:
        if options.limit is not None or options.sort != "date":
            raise runs.RunError("--id shows one run; --sort and --limit apply to the table of all runs")
        info = listing.details(runs.resolve_run_dir(options.id, options.runs_dir))
        print(listing.to_json(info) if options.json else listing.format_details(info))
        return EXIT_OK
    listing.check_status(options.status)
    selection = listing.Selection(
        experiment=options.experiment,
        status=options.status,
        launch=options.launch,
        where=listing.parse_where(options.where),
    )
    listing.check_columns(columns)
    rows = listing.list_runs(options.runs_dir, options.sort, options.limit, selection, columns)
    if options.json:
        print(listing.to_json(rows))
    elif options.csv:
        print(listing.to_csv(rows, columns), end="")
    elif rows:
        print(listing.format_table(rows, columns))
    else:
        what = " matching the filters" if selection.active() else ""
        print(f"no runs{what} under {options.runs_dir}/", file=sys.stderr)
    return EXIT_OK


def _compare(parser: argparse.ArgumentParser, options: argparse.Namespace) -> int:
    from latentrun.launch import record
    from latentrun.report import compare as report
    from latentrun.runs import run_files as runs

    run_dirs = [runs.resolve_run_dir(text, options.runs_dir) for text in options.runs]
    if options.launch:
        record.read_record(options.runs_dir, options.launch)  # a launch id that does not exist is a typo
        given = {path.resolve() for path in run_dirs}
        in_launch = record.launch_runs(options.runs_dir, options.launch)
        run_dirs += [path for _, path in sorted(in_launch.items()) if path.resolve() not in given]
    if not run_dirs:
        parser.error("give runs to compare, or --launch ID")
    document, text = report.compare(run_dirs, options.target, options.out, options.probes)
    if options.csv:
        print(report.to_csv(document), end="")
        print(text.splitlines()[-1], file=sys.stderr)  # where compare.json and compare.png went
    else:
        print(text)
    return EXIT_OK


def _eval(parser: argparse.ArgumentParser, options: argparse.Namespace) -> int:
    from latentrun.core.atomic import atomic_write_json
    from latentrun.report import grid
    from latentrun.runs import inference
    from latentrun.runs import run_files as runs
    from latentrun.runs.run_dir import RunDir

    if options.max_digits is not None and not 1 <= options.max_digits <= 9:
        parser.error("--max-digits must be between 1 and 9")
    if options.samples < 1:
        parser.error("--samples must be a positive number")
    run_dirs = [runs.resolve_run_dir(text, options.runs_dir) for text in options.runs]
    if options.file is not None:
        return _eval_file(run_dirs, options.file)
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


def _eval_file(run_dirs: list[Path], path: Path) -> int:
    """`eval RUN --file PATH`: each run graded on a file of problems, written to eval/file-STEM.json."""
    from latentrun.core.atomic import atomic_write_json
    from latentrun.runs import inference
    from latentrun.task.problems import read_problems

    read_problems(path)  # a malformed file is reported before any run is loaded
    for run_dir in run_dirs:
        graded = inference.evaluate_file(run_dir, path)
        record_path = run_dir / "eval" / f"file-{path.stem}.json"
        record_path.parent.mkdir(exist_ok=True)
        atomic_write_json(record_path, {"run": run_dir.name, **graded})
        print(
            f"{run_dir.name} {path.name} ({graded['problems']} problems, step {graded['step']}): "
            f"exact_match {graded['exact_match']:.4f} digit_accuracy {graded['digit_accuracy']:.4f}"
        )
        print(f"wrote {record_path}")
    return EXIT_OK


def _predict(parser: argparse.ArgumentParser, options: argparse.Namespace) -> int:
    from latentrun.runs import inference
    from latentrun.runs.run_dir import RunDir

    run_dirs, problems = _runs_then_problems(options.items, options.runs_dir)
    problems = _read_problems(problems, options.file)
    if not problems:
        parser.error(
            "give one or more problems after the run(s), like 37*45, - to read them from stdin, or --file PATH"
        )
    for index, run_dir in enumerate(run_dirs):
        task, model, _ = RunDir(run_dir).trained_model()
        products = inference.predict(task, model, problems)
        if len(run_dirs) > 1:
            print(("\n" if index else "") + f"== {run_dir.name}")
        for problem, product in zip(problems, products):
            print(product if options.bare else f"{problem.strip()} = {product}")
    return EXIT_OK


def _probe(parser: argparse.ArgumentParser, options: argparse.Namespace) -> int:
    from latentrun.report import probe
    from latentrun.runs import run_files as runs

    request = probe.Request(
        targets=tuple(options.targets) if options.targets else probe.TARGETS,
        layers=tuple(options.layers) if options.layers is not None else None,
        positions=tuple(options.positions) if options.positions else None,
        samples=options.samples,
        split=options.split,
        seed=options.seed,
    )
    probe.check_request(request)  # a typo in a name is said before the run is looked up
    run_dir = runs.resolve_run_dir(options.run, options.runs_dir)
    document = probe.probe_run(run_dir, request)
    json_path, png_path = probe.write_probe(run_dir, document)
    print(probe.format_summary(document))
    print(f"wrote {json_path} and {png_path}")
    return EXIT_OK


def _read_problems(given: list[str], file: Path | None) -> list[str]:
    """The problems of the command line, `-` replaced by stdin's lines and --file's lines after them:
    one problem per line, blank lines skipped; ProblemError when the file cannot be read."""
    from latentrun.task.multiplication import ProblemError

    def lines(text: str) -> list[str]:
        return [line.strip() for line in text.splitlines() if line.strip()]

    problems = [line for item in given for line in (lines(sys.stdin.read()) if item == "-" else [item])]
    if file is not None:
        try:
            problems += lines(file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as error:
            reason = error.strerror if isinstance(error, OSError) and error.strerror else "not UTF-8 text"
            raise ProblemError(f"--file {file}: cannot read problems: {reason}") from None
    return problems


def _runs_then_problems(items: list[str], runs_dir: Path) -> tuple[list[Path], list[str]]:
    """Split `predict`'s arguments: the leading ones that name runs (a shell glob gives several),
    then the problems. The first must be a run; its RunError says why not."""
    from latentrun.runs import run_files as runs

    run_dirs = [runs.resolve_run_dir(items[0], runs_dir)]
    rest = items[1:]
    while rest:
        try:
            run_dirs.append(runs.resolve_run_dir(rest[0], runs_dir))
        except runs.RunError:
            break
        rest = rest[1:]
    return run_dirs, rest


def subparser(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser:
    """The parser of one command."""
    return _subparsers(parser).choices[command]


def _subparsers(parser: argparse.ArgumentParser) -> argparse._SubParsersAction:
    for action in parser._actions:  # noqa: SLF001  (argparse keeps its subparsers only there)
        if isinstance(action, argparse._SubParsersAction):
            return action
    raise AssertionError("no commands")
