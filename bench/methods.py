"""The methods table of the README: test-split figures of record for trained runs, grouped by experiment.

For each run: parameters, generated tokens per problem, exact match on the TEST split from the
best checkpoint (the validation split only picked it), the first evaluation at 99% validation exact
match in the curriculum's final stage with its training seconds, and, where `dataset.operand_width`
leaves room, exact match on d×d operands beyond the trained lengths (the `eval` grid's cells).

    python bench/methods.py runs/compare_2digit_* [--max-digits 5] [--samples 1000] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from latentrun.config.build import build_curriculum  # noqa: E402
from latentrun.core.registry import LOSSES  # noqa: E402
from latentrun.report.compare import _read_scalars  # noqa: E402
from latentrun.report.grid import accuracy_grid  # noqa: E402
from latentrun.runs import inference  # noqa: E402
from latentrun.runs.run_dir import RunDir  # noqa: E402
from latentrun.train.metrics import evaluate  # noqa: E402

TARGET = 0.99


def run_figures(run_dir: Path, max_digits: int, samples: int) -> dict:
    """One run's row: everything measured on the best checkpoint, plus time to TARGET from its curves."""
    run = RunDir(run_dir)
    config = run.config()
    task, model, state = inference.trained_model(run)
    test = evaluate(
        model, task.split("test"), LOSSES.build(config["loss"]), 1000, torch.device("cpu"), task.operand_width
    )
    curriculum = build_curriculum(config, task)
    first_counted = curriculum.final_stage_step if curriculum is not None else 0
    scalars = _read_scalars(run_dir)
    elapsed = dict(scalars.get("perf/elapsed_seconds", []))
    reached = next((s for s, v in scalars.get("val/exact_match", []) if v >= TARGET and s >= first_counted), None)
    meta = run.meta()
    longer = {}
    if task.operand_width > task.max_digits:
        cells = accuracy_grid(task, model, min(max_digits, task.operand_width), samples)
        longer = {c.digits_a: c.exact_match for c in cells if c.digits_a == c.digits_b and c.digits_a > task.max_digits}
    return {
        "run": run_dir.name,
        "experiment": config["experiment"],
        "seed": config["seed"],
        "parameters": model.num_parameters(),
        "generated_tokens": getattr(model, "generated_tokens", task.answer_len),
        "thoughts": getattr(model, "thoughts", 0),
        "best_step": state["step"],
        "test_exact_match": test["val/exact_match"],
        "test_size": len(task.split("test")),
        "steps_to_99": reached,
        "seconds_to_99": elapsed.get(reached) if reached is not None else None,
        "steps": meta.get("step"),
        "train_seconds": meta.get("elapsed_seconds"),
        "status": meta.get("status"),
        "longer_exact_match": longer,
    }


def _mean_std(values: list[float]) -> str:
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--max-digits", type=int, default=5)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = [run_figures(run, args.max_digits, args.samples) for run in args.runs]
    for row in rows:
        print(json.dumps(row))
    print()
    print(
        "| experiment | seeds | params | generated tokens | thoughts | seeds at 99% (final stage) | steps, train s to 99% | test exact match (per seed) | worst | train s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(row["experiment"], []).append(row)
    for name, members in groups.items():
        tests = [m["test_exact_match"] for m in members]
        hit = [m for m in members if m["steps_to_99"] is not None]
        to99 = (
            f"{statistics.mean(m['steps_to_99'] for m in hit):,.0f}, {statistics.mean(m['seconds_to_99'] for m in hit):.0f} s"
            if hit
            else "–"
        )
        per_seed = ", ".join(f"{m['seed']}: {m['test_exact_match']:.4f}" for m in members)
        seconds = [m["train_seconds"] for m in members if m["train_seconds"] is not None]
        print(
            f"| `{name}` | {len(members)} | {members[0]['parameters']:,} | {members[0]['generated_tokens']} | "
            f"{members[0]['thoughts']} | {len(hit)} of {len(members)} | {to99} | {_mean_std(tests)} ({per_seed}) | "
            f"{min(tests):.4f} | {statistics.mean(seconds):.0f} |"
        )
        longer = sorted({d for m in members for d in m["longer_exact_match"]})
        for digits in longer:
            values = [m["longer_exact_match"][digits] for m in members if digits in m["longer_exact_match"]]
            print(f"|   ↳ {digits}×{digits} operands | | | | | | | {_mean_std(values)} | {min(values):.4f} | |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
