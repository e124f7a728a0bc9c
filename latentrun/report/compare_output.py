"""How `compare` shows what `report.compare` found: the metric rows and the terminal table, the
notes on unfinished runs, `--csv`, and compare.png (the validation curves side by side). Nothing
here reads a run; it formats the summaries and groups it is handed."""

from __future__ import annotations

import csv
import io
import math
import struct
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from latentrun.core.atomic import atomic_write

CURVES = ("val/exact_match", "val/digit_accuracy", "val/loss")


class Metric:
    """A row of the comparison: its key in compare.json, its label, and how to print a value."""

    def __init__(self, key: str, label: str, show: Callable[[float], str]) -> None:
        self.key, self.label, self.show = key, label, show


def metrics(target: float) -> list[Metric]:
    """The rows of the comparison, in the order the table prints them."""
    return [
        Metric("parameters", "parameters", lambda v: f"{v:,.0f}"),
        Metric("best_step", "best checkpoint step", lambda v: f"{v:,.0f}"),
        Metric("val_loss", "val/loss", lambda v: f"{v:.4f}"),
        Metric("test_exact_match", "test/exact_match (record)", lambda v: f"{v:.4f}"),
        Metric("test_digit_accuracy", "test/digit_accuracy", lambda v: f"{v:.4f}"),
        Metric("exact_match", "val/exact_match", lambda v: f"{v:.4f}"),
        Metric("digit_accuracy", "val/digit_accuracy", lambda v: f"{v:.4f}"),
        Metric("exact_match_per_million_params", "exact match per M params", lambda v: f"{v:.4g}"),
        Metric("loss_x_params", "val/loss x params", lambda v: f"{v:,.0f}"),
        Metric("generated_tokens", "generated tokens per problem", lambda v: f"{v:,.0f}"),
        Metric("steps_to_target", f"steps to val exact match {target:g}", lambda v: f"{v:,.0f}"),
        Metric("seconds_to_target", f"train s to val exact match {target:g}", lambda v: f"{v:.1f}"),
        Metric("steps", "steps trained", lambda v: f"{v:,.0f}"),
        Metric("elapsed_seconds", "train wall time (s)", lambda v: f"{v:.1f}"),
        Metric("train_flops", "training FLOPs", lambda v: f"{v:.3g}"),
        Metric("flops_per_second", "training FLOP/s", lambda v: f"{v:.3g}"),
        Metric("samples_per_second", "samples/s (median)", lambda v: f"{v:,.0f}"),
    ]


def terminal_text(
    groups: Sequence[dict[str, Any]],
    metric_list: Sequence[Metric],
    decision: dict[str, Any] | None,
    written: Sequence[Path],
) -> str:
    """What `compare` prints: the table, which runs make up each group, notes on unfinished runs,
    the verdict, and the files written."""
    lines = [format_table(groups, metric_list), ""]
    for group in groups:
        lines.append(f"{group['label']}: {', '.join(run['id'] for run in group['runs'])}")
    notes = [note for group in groups for note in unfinished_notes(group)]
    if notes:
        lines += ["", *notes]
    if decision:
        lines += ["", decision["text"]]
    lines += ["", f"wrote {', '.join(map(str, written[:-1]))} and {written[-1]}"]
    return "\n".join(lines)


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


def format_table(groups: Sequence[dict[str, Any]], metric_list: Sequence[Metric]) -> str:
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


def _show(stats: dict[str, Any], metric: Metric) -> str:
    if stats["mean"] is None:
        return "-"
    text = metric.show(stats["mean"])
    if stats["std"]:  # None for one run, 0 when every run agrees (parameters, steps): no ± then
        text += f" ± {metric.show(stats['std'])}"
    if stats["n"] < stats["of"]:
        text += f" ({stats['n']}/{stats['of']})"
    return text
