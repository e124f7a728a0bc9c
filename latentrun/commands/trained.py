"""`eval`, `predict` and `probe`: the commands that load a run's trained model and ask it something."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from latentrun.commands import UsageError, configure_console_logging
from latentrun.commands.arguments import (
    add_runs_dir,
    checkpoint_name,
    complete_runs,
    complete_with,
    operand_digits,
    positive_int,
)
from latentrun.core.errors import ProblemError
from latentrun.core.status import EXIT_OK

# probe_targets.TARGETS and probe_states.POSITION_CLASSES, written out so that building the parser
# imports no torch (a test pins them)
PROBE_TARGETS = ("running_sum", "column_sum", "carry", "partial_product")
PROBE_POSITIONS = ("prompt", "latent", "chain", "answer")


def add_eval_arguments(parser: argparse.ArgumentParser, prog: str) -> None:
    parser.description = (
        "Grade the run's best checkpoint on a held-out split (test, the figure of record, or val, which "
        "chose the checkpoint), then exact match for every (digits of a, digits of b) up to --max-digits; "
        "writes eval/<split>.json, eval/grid.json and eval/grid.png in the run dir and logs the image to "
        "TensorBoard."
    )
    complete_with(parser.add_argument("runs", nargs="+", metavar="RUN", help="run directory or run id"), complete_runs)
    parser.add_argument(
        "--split", choices=("test", "val"), default="test", help="held-out split to grade (default: test)"
    )
    parser.add_argument(
        "--max-digits",
        type=operand_digits,
        metavar="N",
        help="largest operand length (default: one more than trained)",
    )
    parser.add_argument(
        "--samples", type=positive_int, default=1000, metavar="K", help="pairs graded per cell (default: 1000)"
    )
    parser.add_argument(
        "--file",
        type=Path,
        metavar="PATH",
        help="grade on the problems of a file instead (ICoT lines 'a_0 a_1 ... * b_0 ...||chain #### p_0 ...' "
        "or 'a*b' lines), e.g. ../shared/data/icot/4x4_test.txt; writes eval/file-NAME.json",
    )
    _add_checkpoint_argument(parser, "grade", "; other than best, the files written end in -WHICH")
    add_runs_dir(parser)


def _add_checkpoint_argument(parser: argparse.ArgumentParser, verb: str, more: str = "") -> None:
    """eval's and predict's --checkpoint, the names init.checkpoint takes."""
    parser.add_argument(
        "--checkpoint",
        type=checkpoint_name,
        default="best",
        metavar="WHICH",
        help=f"the weights to {verb}: best (default: best.pt, chosen on the validation split), latest or step_N "
        f"(a kept step checkpoint's live weights){more}",
    )


def evaluate(options: argparse.Namespace) -> int:
    """Each run graded on its held-out split, then on the grid of operand lengths (or on --file's problems)."""
    configure_console_logging()  # before any import that might log
    from latentrun.core.atomic import atomic_write_json
    from latentrun.report import grid
    from latentrun.runs import inference
    from latentrun.runs import run_files as runs
    from latentrun.runs.run_dir import RunDir

    run_dirs = [runs.resolve_run_dir(text, options.runs_dir) for text in options.runs]
    if options.file is not None:
        return _evaluate_file(run_dirs, options.file, options.checkpoint)
    suffix = _record_suffix(options.checkpoint)
    for run_dir in run_dirs:
        graded = inference.evaluate_split(run_dir, options.split, which=options.checkpoint)
        split_path = run_dir / "eval" / f"{options.split}{suffix}.json"
        split_path.parent.mkdir(exist_ok=True)
        atomic_write_json(split_path, {"run": run_dir.name, "split": options.split, **graded})
        print(
            f"{run_dir.name} {options.split} split ({graded['pairs']} pairs, step {graded['step']}): "
            f"exact_match {graded['exact_match']:.4f} digit_accuracy {graded['digit_accuracy']:.4f}"
        )
        _print_latents(graded)
        task, model, state = inference.trained_model(RunDir(run_dir), which=options.checkpoint)
        max_digits = options.max_digits or task.max_digits + 1
        cells = grid.accuracy_grid(task, model, max_digits, options.samples)
        record = grid.grid_record(
            cells, run=run_dir.name, step=state["step"], max_digits=max_digits, samples=options.samples, task=task
        )
        json_path, png_path = grid.write_grid(run_dir, record, cells, suffix)
        print(f"{run_dir.name} (step {state['step']})")
        print(grid.format_grid(cells, max_digits))
        print(f"wrote {split_path}, {json_path} and {png_path}")
    return EXIT_OK


def _evaluate_file(run_dirs: list[Path], path: Path, which: str) -> int:
    """`eval RUN --file PATH`: each run graded on a file of problems, written to eval/file-STEM.json
    (file-STEM-WHICH.json for a --checkpoint other than best)."""
    from latentrun.core.atomic import atomic_write_json
    from latentrun.runs import inference
    from latentrun.task.problems import read_problems

    read_problems(path)  # a malformed file is reported before any run is loaded
    for run_dir in run_dirs:
        graded = inference.evaluate_file(run_dir, path, which=which)
        record_path = run_dir / "eval" / f"file-{path.stem}{_record_suffix(which)}.json"
        record_path.parent.mkdir(exist_ok=True)
        atomic_write_json(record_path, {"run": run_dir.name, **graded})
        print(
            f"{run_dir.name} {path.name} ({graded['problems']} problems, step {graded['step']}): "
            f"exact_match {graded['exact_match']:.4f} digit_accuracy {graded['digit_accuracy']:.4f}"
        )
        _print_latents(graded)
        print(f"wrote {record_path}")
    return EXIT_OK


def _record_suffix(which: str) -> str:
    """What eval's files end in: nothing for best.pt, whose records came first, else -WHICH, so
    grading another checkpoint never overwrites best.pt's figures."""
    return "" if which == "best" else f"-{which}"


def _print_latents(graded: dict) -> None:
    """For a step-supervised model, how often the probe reads each latent's step right: where the misses are."""
    per_latent = {key.split("/", 1)[1]: value for key, value in graded.items() if key.startswith("latent_accuracy/")}
    if per_latent:
        rates = " ".join(f"{name.split('_', 1)[1]} {rate:.4f}" for name, rate in sorted(per_latent.items()))
        print(f"  latents read right (latent_accuracy {graded['latent_accuracy']:.4f}): {rates}")


def add_predict_arguments(parser: argparse.ArgumentParser, prog: str) -> None:
    parser.description = (
        "Print what each run's best checkpoint (or --checkpoint's) predicts, one `A*B = PRODUCT` line per problem "
        "(AxB is read the same). Several runs (a shell glob) each get a heading."
    )
    parser.usage = f"{prog} predict [-h] [--bare] [--file PATH] [--checkpoint WHICH] [--runs-dir RUNS_DIR] RUN [RUN ...] [A*B ... | -]"
    complete_with(
        parser.add_argument(
            "items",
            nargs="+",
            metavar="RUN A*B",
            help="one or more runs (a path, id or latest), then the problems; - reads them from stdin, one a line",
        ),
        complete_runs,
    )
    parser.add_argument("--bare", action="store_true", help="print only the products, one per line")
    parser.add_argument("--file", type=Path, metavar="PATH", help="also predict the problems of PATH, one a line")
    _add_checkpoint_argument(parser, "predict with")
    add_runs_dir(parser)


def predict(options: argparse.Namespace) -> int:
    """One predicted product per problem and run, from each run's best checkpoint (or --checkpoint's)."""
    configure_console_logging()  # before any import that might log
    from latentrun.runs import inference
    from latentrun.runs.run_dir import RunDir

    run_dirs, problems = _runs_then_problems(options.items, options.runs_dir)
    problems = _read_problems(problems, options.file)
    if not problems:
        raise UsageError(
            "give one or more problems after the run(s), like 37*45, - to read them from stdin, or --file PATH"
        )
    for index, run_dir in enumerate(run_dirs):
        task, model, _ = inference.trained_model(RunDir(run_dir), which=options.checkpoint)
        products = inference.predict(task, model, problems)
        if len(run_dirs) > 1:
            print(("\n" if index else "") + f"== {run_dir.name}")
        for problem, product in zip(problems, products):
            print(product if options.bare else f"{problem.strip()} = {product}")
    return EXIT_OK


def _read_problems(given: list[str], file: Path | None) -> list[str]:
    """The problems of the command line, `-` replaced by stdin's lines and --file's lines after them:
    one problem per line, blank lines skipped; ProblemError when the file cannot be read."""

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


def add_probe_arguments(parser: argparse.ArgumentParser, prog: str) -> None:
    parser.description = (
        "Fit linear probes (closed-form ridge least squares) to the hidden states of the run's best checkpoint "
        "on held-out problems, at every layer (0 = embeddings) and position, for the running sums a*(b mod 10^k), "
        "the column sums c_k (R^2), the carries and the partial products a*b_j; scores on problems the probes "
        "never saw. Writes probe.json and probe.png in the run dir and logs the image to TensorBoard."
    )
    complete_with(parser.add_argument("run", metavar="RUN", help="run directory, run id or latest"), complete_runs)
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
    add_runs_dir(parser)


def probe_run(options: argparse.Namespace) -> int:
    """Linear probes of the run's hidden states, written as probe.json and probe.png and summarised."""
    configure_console_logging()  # before any import that might log
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
