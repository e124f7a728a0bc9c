"""Pictures of probe.json: layers × positions heatmaps, one panel per target, one run or several.

Each cell is the mean held-out score over the target's components (accuracy for digits and carries,
R² for ĉ_k, shown from 0: a negative R² reads nothing); per-component scores stay in probe.json.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.image import AxesImage

_METRIC_NAMES = {"accuracy": "accuracy", "r2": "R²"}
_ANNOTATE_UP_TO = 600  # cells per panel that still take a printed value


def run_title(document: dict[str, Any]) -> str:
    """`run id · test exact match 0.9990 (step 5000)`, the line that says which run a picture is of."""
    exact = document.get("test_exact_match")
    shown = f"{exact:.4f}" if exact is not None else "n/a (not graded)"
    return f"{document['run']} · test exact match {shown} (step {document['step']})"


def heatmap(document: dict[str, Any]) -> Figure:
    """The picture of one probe.json: a panel per target, layers down, positions across."""
    return side_by_side([document])


def side_by_side(documents: Sequence[dict[str, Any]]) -> Figure:
    """Several runs' probes in columns (one per run, titled by it), a row per target any of them probed."""
    from matplotlib.figure import Figure  # no pyplot: no global state, no display needed

    names = list(dict.fromkeys(t["name"] for doc in documents for t in doc["targets"]))
    widths = [max(6.0, 0.26 * len(doc["positions"]) + 2.5) for doc in documents]
    heights = [0.34 * max(len(doc["layers"]) for doc in documents) + 1.5 for _ in names]
    figure = Figure(figsize=(sum(widths) + 1.2, sum(heights) + 1.3), layout="constrained")
    columns = figure.subfigures(1, len(documents), width_ratios=widths, squeeze=False)[0]
    image, every_axes = None, []
    for column, document in zip(columns, documents):
        column.suptitle(run_title(document) + "\n" + _subtitle(document), fontsize=10)
        by_name = {t["name"]: t for t in document["targets"]}
        panels = column.subplots(len(names), 1, squeeze=False, gridspec_kw={"height_ratios": heights})[:, 0]
        for row, (axes, name) in enumerate(zip(panels, names)):
            if name not in by_name:
                axes.set_axis_off()
                axes.text(
                    0.5, 0.5, f"{name}: not probed in this run", ha="center", va="center", transform=axes.transAxes
                )
                continue
            image = _panel(axes, document, by_name[name], bottom=row == len(names) - 1)
            every_axes.append(axes)
    if image is not None:
        columns[-1].colorbar(
            image, ax=[a for a in every_axes if a.get_figure() is columns[-1]] or every_axes, shrink=0.8,
            label="held-out accuracy or R² (mean over components)",
        )  # fmt: skip
    return figure


def _subtitle(document: dict[str, Any]) -> str:
    return (
        f"linear probes trained on {document['probe_train_problems']} and scored on "
        f"{document['held_out_problems']} other {document['split']}-split problems;\n"
        "a cell is the mean held-out score over the target's components"
    )


def _panel(axes: Axes, document: dict[str, Any], target: dict[str, Any], bottom: bool) -> AxesImage:
    """One target's heatmap on `axes`: layers (embeddings at the top) × positions."""
    values = [[_shown(v) for v in row] for row in target["mean"]]  # (Ly, T)
    image = axes.imshow(values, vmin=0.0, vmax=1.0, cmap="viridis", aspect="auto", interpolation="nearest")
    positions, layers = document["positions"], document["layers"]
    if len(positions) * len(layers) <= _ANNOTATE_UP_TO:
        for row, line in enumerate(values):
            for column, value in enumerate(line):
                if not math.isnan(value):
                    colour = "black" if value > 0.6 else "white"
                    axes.text(column, row, f"{100 * value:.0f}", ha="center", va="center", fontsize=6, color=colour)
    axes.set_xticks(range(len(positions)), [p["label"] for p in positions], rotation=90, fontsize=7)
    axes.set_yticks(range(len(layers)), [layer["name"] for layer in layers], fontsize=8)
    if bottom:
        axes.set_xlabel("position, named by the input read there (a state predicts the next token)", fontsize=8)
    axes.set_ylabel("layer", fontsize=8)
    edges = _class_edges(positions)
    for edge, _ in edges[1:]:
        axes.axvline(edge - 0.5, color="white", linewidth=1.5)
    ends = [edge for edge, _ in edges[1:]] + [len(positions)]
    classes = axes.secondary_xaxis("top")  # the position classes, centred over their columns
    classes.set_xticks([(edge + end - 1) / 2 for (edge, _), end in zip(edges, ends)], [kind for _, kind in edges])
    classes.tick_params(length=0, labelsize=8)
    chance = [c for c in target["chance"] if c is not None]
    metric = _METRIC_NAMES[target["metric"]]
    axes.set_title(
        f"{target['name']}: {metric} over {len(target['components'])} components "
        f"(chance {sum(chance) / max(1, len(chance)):.2f})",
        fontsize=9,
    )
    return image


def _class_edges(positions: Sequence[dict[str, Any]]) -> list[tuple[int, str]]:
    """(column, class) where each run of same-class positions starts."""
    edges: list[tuple[int, str]] = []
    for column, position in enumerate(positions):
        if not edges or edges[-1][1] != position["class"]:
            edges.append((column, position["class"]))
    return edges


def _shown(value: float | None) -> float:
    """A score as coloured: missing is blank (NaN), a negative R² is 0."""
    return math.nan if value is None else max(0.0, value)
