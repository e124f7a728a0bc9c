"""`compare`: the efficiency analysis of runs side by side.

Every number is read back from what the runs left: parameters and validation metrics from the best
checkpoint (the weights `predict` uses), its test-split figures (the figure of record, graded once
when the run finished), curves, time and throughput from the TensorBoard events,
steps from meta.json, and FLOPs counted on the model the config builds. Runs whose configs differ
only in seed (and in settings that don't change what is computed) form one group, reported as
mean ± sample standard deviation. Time to a target accuracy is read from the validation curve:
the test split is graded only at the end, so it has no curve.

This module reads and decides (summaries, groups, the verdict, compare.json); `report.compare_output`
prints and draws what it found.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from latentrun import config as config_module
from latentrun.config.build import build_curriculum
from latentrun.core.atomic import atomic_write_json
from latentrun.models import flops
from latentrun.report import compare_output, probe
from latentrun.report.compare_output import CURVES
from latentrun.runs import inference
from latentrun.runs import run_files as runs
from latentrun.runs.run_dir import RunDir

# Run-control keys that leave the trained weights unchanged; train.max_steps is not one of them.
_NOT_COMPUTATION = frozenset(config_module.RUN_CONTROL_KEYS - {"train.max_steps"}) | {"seed"}


def summarize_run(run_dir: Path, target: float) -> dict[str, Any]:
    """One run's efficiency figures; a figure the run cannot give yet (no evaluation so far, target
    never reached) is None."""
    run = RunDir(run_dir)
    config, meta = run.config(), run.meta()
    best = run.checkpointer().best()
    task, model = inference.build_model(run, best)
    parameters = model.num_parameters()
    batch = task.train_batch(1, 2)
    per_example = flops.training_flops_per_example(model, batch.prompt, batch.answer)
    scalars = _read_scalars(run_dir)
    metrics = best["metrics"] if best is not None else {}
    steps = meta.get("step", 0)
    elapsed = meta.get("elapsed_seconds")
    # A curriculum starts from the written chain: only its final stage answers the way it is judged.
    curriculum = build_curriculum(config, task)
    first_counted = curriculum.final_stage_step if curriculum is not None else 0
    reached = next(
        (step for step, value in scalars.get("val/exact_match", []) if value >= target and step >= first_counted),
        None,
    )
    elapsed_at = dict(scalars.get("perf/elapsed_seconds", []))
    train_flops = per_example * config["train"]["batch_size"] * steps
    speeds = [value for _, value in scalars.get("perf/samples_per_sec", [])]
    val_loss, exact = metrics.get("val/loss"), metrics.get("val/exact_match")
    return {
        "id": run_dir.name,
        "path": str(run_dir),
        "experiment": config["experiment"],
        "model": config["model"]["name"],
        "seed": config["seed"],
        "status": meta.get("status"),
        "parameters": parameters,
        # Written chain tokens and product digits of greedy decoding, in the best checkpoint's layout.
        "generated_tokens": getattr(model, "generated_tokens", task.answer_len),
        "best_step": best["step"] if best is not None else None,
        "val_loss": val_loss,
        "test_exact_match": _last(scalars, "test/exact_match"),
        "test_digit_accuracy": _last(scalars, "test/digit_accuracy"),
        "exact_match": exact,
        "digit_accuracy": metrics.get("val/digit_accuracy"),
        "exact_match_per_million_params": exact / (parameters / 1e6) if exact is not None else None,
        "loss_x_params": val_loss * parameters if val_loss is not None else None,
        "steps_to_target": reached,
        "seconds_to_target": elapsed_at.get(reached) if reached is not None else None,
        "steps": steps,
        "elapsed_seconds": elapsed,
        "train_flops_per_example": per_example,
        "train_flops": train_flops,
        "flops_per_second": train_flops / elapsed if elapsed else None,
        "samples_per_second": statistics.median(speeds) if speeds else None,
        "curves": {tag: scalars.get(tag, []) for tag in CURVES},
        "_config": config,
    }


def group_runs(summaries: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Runs whose configs agree on everything that changes what is computed, except the seed,
    in order of first appearance, each labelled by its experiment (plus what sets it apart from
    another group of the same experiment)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for summary in summaries:
        flat = config_module.flatten(summary["_config"])
        key = json.dumps({k: v for k, v in flat.items() if k not in _NOT_COMPUTATION}, sort_keys=True)
        groups.setdefault(key, []).append(summary)
    result = [
        {
            "experiment": members[0]["experiment"],
            "model": members[0]["model"],
            "runs": members,
            "config": members[0]["_config"],
        }
        for members in groups.values()
    ]
    for group in result:
        namesakes = [other for other in result if other["experiment"] == group["experiment"]]
        distinct = sorted(
            {key for other in namesakes for key in config_module.diff(group["config"], other["config"])}
            - _NOT_COMPUTATION
        )
        flat = config_module.flatten(group["config"])
        group["label"] = group["experiment"] + (
            " [" + ", ".join(f"{k}={flat.get(k)}" for k in distinct) + "]" if distinct else ""
        )
    return result


def aggregate(values: Sequence[float | None]) -> dict[str, Any]:
    """mean, sample std (None for a single value) and n over the values that exist."""
    present = [float(v) for v in values if v is not None]
    return {
        "mean": statistics.fmean(present) if present else None,
        "std": statistics.stdev(present) if len(present) > 1 else None,
        "n": len(present),
        "of": len(values),
    }


def verdict(groups: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """Which group is more parameter-efficient and by how much: val/exact_match per parameter,
    or, while the leaders have no exact matches to compare, val/loss x parameters (lower is better).
    With several seeds a side, a lead smaller than the seed-to-seed spread is said to be one."""
    if len(groups) < 2:
        return None

    def stats(group: dict[str, Any], key: str) -> dict[str, Any]:
        return group["metrics"][key]

    key = "exact_match_per_million_params"
    ranked = sorted((g for g in groups if stats(g, key)["mean"] is not None), key=lambda g: -stats(g, key)["mean"])
    if len(ranked) >= 2 and stats(ranked[1], key)["mean"] > 0:
        best, other = ranked[:2]
        ratio = stats(best, key)["mean"] / stats(other, key)["mean"]
        text = (
            f"{_name(best)} is more parameter-efficient: {_times(ratio)} the val/exact_match per parameter "
            f"of {_name(other)}"
        )
    else:
        key = "loss_x_params"
        ranked = sorted((g for g in groups if stats(g, key)["mean"] is not None), key=lambda g: stats(g, key)["mean"])
        if len(ranked) < 2:
            return None
        best, other = ranked[:2]
        ratio = stats(other, key)["mean"] / stats(best, key)["mean"]
        text = (
            f"{_name(best)} is more parameter-efficient (too few exact matches to compare, so by val/loss x "
            f"parameters): {_name(other)} has {_times(ratio)} as much"
        )
    spread = max(stats(best, key)["std"] or 0.0, stats(other, key)["std"] or 0.0)
    within_noise = spread > 0 and abs(stats(best, key)["mean"] - stats(other, key)["mean"]) <= spread
    if ratio == 1.0:
        text = f"{_name(best)} and {_name(other)} are equally parameter-efficient by {key}"
    elif within_noise:
        text += ", a difference within the seed-to-seed spread"
    return {
        "winner": best["label"],
        "runner_up": other["label"],
        "metric": key,
        "ratio": ratio,
        "within_seed_spread": within_noise,
        "text": text,
    }


def compare(run_dirs: Sequence[Path], target: float, out: Path, probes: bool = False) -> tuple[dict[str, Any], str]:
    """Summarize, group and compare the runs; write out/compare.json and out/compare.png (and with
    `probes`, out/probes.png: the runs' probe pictures side by side); return the document written to
    compare.json and the table (with notes) for the terminal."""
    if len({path.resolve() for path in run_dirs}) != len(run_dirs):
        raise runs.RunError("a run is given twice")
    probe_documents = probe.read_probes(run_dirs) if probes else []  # a run not probed yet is said first
    summaries = [summarize_run(path, target) for path in run_dirs]
    groups = group_runs(summaries)
    metric_list = compare_output.metrics(target)
    for group in groups:
        group["metrics"] = {m.key: aggregate([run[m.key] for run in group["runs"]]) for m in metric_list}
    decision = verdict(groups)
    out.mkdir(parents=True, exist_ok=True)
    document = {
        "target_exact_match": target,
        "groups": [
            {
                "label": g["label"],
                "experiment": g["experiment"],
                "model": g["model"],
                "runs": [run["id"] for run in g["runs"]],
                "metrics": g["metrics"],
            }
            for g in groups
        ],
        "runs": [{k: v for k, v in run.items() if not k.startswith("_")} for run in summaries],
        "verdict": decision,
    }
    atomic_write_json(out / "compare.json", document)
    compare_output.plot_curves(groups, out / "compare.png")
    written = [out / "compare.json", out / "compare.png"]
    if probes:
        written.append(probe.write_side_by_side(probe_documents, out / "probes.png"))
    return document, compare_output.terminal_text(groups, metric_list, decision, written)


def _times(ratio: float) -> str:
    """'2.50x', or '1.005x' for a close race, where two decimals would print a misleading 1.00x."""
    return f"{ratio:.2f}x" if ratio >= 1.1 else f"{ratio:.3f}x"


def _name(group: dict[str, Any]) -> str:
    return f"{group['label']} ({group['model']})"


def _last(scalars: dict[str, list[tuple[int, float]]], tag: str) -> float | None:
    """The latest value of a tag, None when the run never logged it (test/* before it finished)."""
    points = scalars.get(tag)
    return points[-1][1] if points else None


def _read_scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar series of the run, read with TensorBoard's own reader (which applies the purge
    a resume writes, so a resumed run's curve has no duplicate steps)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    accumulator.Reload()
    return {
        tag: [(event.step, event.value) for event in accumulator.Scalars(tag)] for tag in accumulator.Tags()["scalars"]
    }
