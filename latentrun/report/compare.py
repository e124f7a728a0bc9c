"""`compare`: the efficiency analysis of runs side by side.

Every number is read back from what the runs left: parameters and validation metrics from the best
checkpoint (the weights `predict` uses), its test-split figures (the figure of record, graded once
when the run finished), curves, time and throughput from the TensorBoard events,
steps from meta.json, and FLOPs counted on the model the config builds. Runs whose configs differ
only in seed (and in settings that don't change what is computed) form one group, reported as
mean ± sample standard deviation. Time to a target accuracy is read from the validation curve:
the test split is graded only at the end, so it has no curve.
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
import struct
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from latentrun import config as config_module
from latentrun.config.build import build_curriculum
from latentrun.core.atomic import atomic_write, atomic_write_json
from latentrun.models import flops
from latentrun.report import probe
from latentrun.runs import inference
from latentrun.runs import run_files as runs
from latentrun.runs.run_dir import RunDir

CURVES = ("val/exact_match", "val/digit_accuracy", "val/loss")
# Run-control keys that leave the trained weights unchanged; train.max_steps is not one of them.
_NOT_COMPUTATION = frozenset(config_module.RUN_CONTROL_KEYS - {"train.max_steps"}) | {"seed"}


class _Metric:
    """A row of the comparison: its key in compare.json, its label, and how to print a value."""

    def __init__(self, key: str, label: str, show: Callable[[float], str]) -> None:
        self.key, self.label, self.show = key, label, show


def _metrics(target: float) -> list[_Metric]:
    return [
        _Metric("parameters", "parameters", lambda v: f"{v:,.0f}"),
        _Metric("best_step", "best checkpoint step", lambda v: f"{v:,.0f}"),
        _Metric("val_loss", "val/loss", lambda v: f"{v:.4f}"),
        _Metric("test_exact_match", "test/exact_match (record)", lambda v: f"{v:.4f}"),
        _Metric("test_digit_accuracy", "test/digit_accuracy", lambda v: f"{v:.4f}"),
        _Metric("exact_match", "val/exact_match", lambda v: f"{v:.4f}"),
        _Metric("digit_accuracy", "val/digit_accuracy", lambda v: f"{v:.4f}"),
        _Metric("exact_match_per_million_params", "exact match per M params", lambda v: f"{v:.4g}"),
        _Metric("loss_x_params", "val/loss x params", lambda v: f"{v:,.0f}"),
        _Metric("generated_tokens", "generated tokens per problem", lambda v: f"{v:,.0f}"),
        _Metric("steps_to_target", f"steps to val exact match {target:g}", lambda v: f"{v:,.0f}"),
        _Metric("seconds_to_target", f"train s to val exact match {target:g}", lambda v: f"{v:.1f}"),
        _Metric("steps", "steps trained", lambda v: f"{v:,.0f}"),
        _Metric("elapsed_seconds", "train wall time (s)", lambda v: f"{v:.1f}"),
        _Metric("train_flops", "training FLOPs", lambda v: f"{v:.3g}"),
        _Metric("flops_per_second", "training FLOP/s", lambda v: f"{v:.3g}"),
        _Metric("samples_per_second", "samples/s (median)", lambda v: f"{v:,.0f}"),
    ]


def summarize_run(run_dir: Path, target: float) -> dict[str, Any]:
    """One run's efficiency figures; a figure the run cannot give yet (no evaluation so far, target
    never reached) is None."""
    run = RunDir(run_dir)
    config, meta = run.config(), run.meta()
    best = run.checkpointer().best()
    task, model = inference.build_model(run, best)
    parameters = model.num_parameters()  # type: ignore[operator]  # nn.Module's __getattr__ hides the model's own methods
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
    metric_list = _metrics(target)
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
    plot_curves(groups, out / "compare.png")
    written = [out / "compare.json", out / "compare.png"]
    if probes:
        written.append(probe.write_side_by_side(probe_documents, out / "probes.png"))
    lines = [format_table(groups, metric_list), ""]
    for group in groups:
        lines.append(f"{group['label']}: {', '.join(run['id'] for run in group['runs'])}")
    notes = [note for group in groups for note in unfinished_notes(group)]
    if notes:
        lines += ["", *notes]
    if decision:
        lines += ["", decision["text"]]
    lines += ["", f"wrote {', '.join(map(str, written[:-1]))} and {written[-1]}"]
    return document, "\n".join(lines)


def unfinished_notes(group: dict[str, Any]) -> list[str]:
    """A line for a group whose runs did not all finish: its mean ± std then mixes runs stopped at
    different steps, which a reader must be told rather than left to find out."""
    unfinished = [run for run in group["runs"] if run["status"] != "finished"]
    if not unfinished:
        return []
    which = ", ".join(f"{run['id']} {run['status']} at step {run['steps']}" for run in unfinished)
    if len(unfinished) == len(group["runs"]):
        return [f"note: {group['label']}: no run finished ({which})"]
    return [f"note: {group['label']} mixes finished and unfinished runs ({which}); its figures are not all at one step"]


_CSV_FIELDS = ("id", "experiment", "model", "seed", "status", "group")


def to_csv(document: dict[str, Any]) -> str:
    """`compare --csv`: one row per run with every efficiency figure (curves left out) and its group."""
    group_of = {run_id: group["label"] for group in document["groups"] for run_id in group["runs"]}
    runs_ = document["runs"]
    figures = [key for key in (runs_[0] if runs_ else {}) if key not in (*_CSV_FIELDS, "path", "curves")]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*_CSV_FIELDS, *figures])
    for run in runs_:
        row = {**run, "group": group_of.get(run["id"])}
        writer.writerow([_csv_value(row.get(key)) for key in (*_CSV_FIELDS, *figures)])
    return out.getvalue()


def _csv_value(value: Any) -> Any:
    """A figure as the CSV writes it: a float that is a float32 (the metrics torch computed) by the
    shortest decimals that read back as that float32 (0.015, not 0.014999999664723873), any other
    float by Python's shortest repr."""
    if value is None:
        return ""
    if not isinstance(value, float) or not math.isfinite(value):
        return value
    single = struct.unpack("f", struct.pack("f", value))[0] if abs(value) < 3.4e38 else None
    if single != value:
        return repr(value)
    for digits in range(1, 10):
        text = f"{value:.{digits}g}"
        if struct.unpack("f", struct.pack("f", float(text)))[0] == value:
            return text
    return repr(value)


def format_table(groups: Sequence[dict[str, Any]], metric_list: Sequence[_Metric]) -> str:
    """Metrics as rows, groups as columns; `mean ± std` where a group has several runs that differ."""
    header = ["", *(g["label"] for g in groups)]
    rows = [header, ["model", *(g["model"] for g in groups)], ["runs", *(str(len(g["runs"])) for g in groups)]]
    for metric in metric_list:
        rows.append([metric.label, *(_show(g["metrics"][metric.key], metric) for g in groups)])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths))).rstrip()
        for row in rows
    )


def plot_curves(groups: Sequence[dict[str, Any]], path: Path) -> None:
    """Validation curves side by side, one panel per metric, one colour per group, one line per run."""
    from matplotlib.figure import Figure  # no pyplot: no global state, no display needed

    figure = Figure(figsize=(5 * len(CURVES), 4), layout="constrained")
    axes = figure.subplots(1, len(CURVES))
    colours = [f"C{i % 10}" for i in range(len(groups))]
    for ax, tag in zip(axes, CURVES):
        for colour, group in zip(colours, groups):
            for index, run in enumerate(group["runs"]):
                points = run["curves"][tag]
                if points:
                    ax.plot(
                        [s for s, _ in points],
                        [v for _, v in points],
                        color=colour,
                        alpha=0.8,
                        marker=".",
                        label=group["label"] if index == 0 else None,
                    )
        ax.set_title(tag)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    if any(run["curves"][CURVES[0]] for group in groups for run in group["runs"]):
        axes[0].legend(fontsize="small")  # without a curve there is nothing to label (matplotlib warns)
    image = io.BytesIO()
    figure.savefig(image, format="png", dpi=100)
    atomic_write(path, image.getvalue())


def _show(stats: dict[str, Any], metric: _Metric) -> str:
    if stats["mean"] is None:
        return "-"
    text = metric.show(stats["mean"])
    if stats["std"]:  # None for one run, 0 when every run agrees (parameters, steps): no ± then
        text += f" ± {metric.show(stats['std'])}"
    if stats["n"] < stats["of"]:
        text += f" ({stats['n']}/{stats['of']})"
    return text


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
