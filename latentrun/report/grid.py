"""Accuracy grids: exact match for every (digits of a, digits of b) pair, written as JSON and a heatmap.

Held-out exact match over the whole operand range hides where a model fails; the grid shows it per
operand length, including one digit beyond training, which is where length generalisation shows.
A cell's pairs are drawn from a stream of their own, a pure function of (seed, cell), so two runs
with the same seed are graded on the same pairs. A pair can only have been trained on when both of
its lengths lie in the trained range and it is not held out; each cell reports that share, and the
exact match on its held-out (never trained) pairs separately.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from latentrun.core.atomic import atomic_write_json
from latentrun.task.multiplication import MultiplicationTask, stream_generator

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from latentrun.models.protocol import AnyModel

GRID_STREAM = 3  # after the train (0), val (1) and test (2) streams of data.py
GRID_JSON, GRID_PNG, GRID_TAG = "grid.json", "grid.png", "eval/grid"


@dataclass(frozen=True)
class Cell:
    """Exact match on pairs whose operands have exactly `digits_a` and `digits_b` digits."""

    digits_a: int
    digits_b: int
    encodable: bool  # both lengths fit the run's operand_width; otherwise nothing was measured
    samples: int  # pairs graded (every pair of the cell when it has no more than requested)
    exact_match: float | None
    trained_share: float | None  # fraction of the graded pairs that training could have drawn
    held_out_samples: int
    held_out_exact_match: float | None  # on the graded pairs training never saw


def operand_range(digits: int) -> tuple[int, int]:
    """[low, high) of operands with exactly `digits` digits; one digit includes 0, as in training."""
    return (0 if digits == 1 else 10 ** (digits - 1)), 10**digits


def cell_pairs(
    task: MultiplicationTask, digits_a: int, digits_b: int, samples: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The (a, b) operands (n,) graded in a cell: all of them when the cell has at most `samples`,
    else `samples` drawn uniformly (with replacement) from the cell's own stream."""
    (low_a, high_a), (low_b, high_b) = operand_range(digits_a), operand_range(digits_b)
    size_a, size_b = high_a - low_a, high_b - low_b
    if size_a * size_b <= samples:
        index = torch.arange(size_a * size_b)
        return low_a + index // size_b, low_b + index % size_b
    generator = stream_generator(task.seed, GRID_STREAM, digits_a, digits_b)
    a = low_a + (torch.rand(samples, dtype=torch.float64, generator=generator) * size_a).long()
    b = low_b + (torch.rand(samples, dtype=torch.float64, generator=generator) * size_b).long()
    return a, b


@torch.no_grad()
def accuracy_grid(
    task: MultiplicationTask, model: AnyModel, max_digits: int, samples: int, batch_size: int = 1000
) -> list[Cell]:
    """One Cell per (digits_a, digits_b) in 1..max_digits squared, row-major in digits_a."""
    device = next(model.parameters()).device
    cells = []
    for digits_a in range(1, max_digits + 1):
        for digits_b in range(1, max_digits + 1):
            if max(digits_a, digits_b) > task.operand_width:
                cells.append(Cell(digits_a, digits_b, False, 0, None, None, 0, None))
                continue
            a, b = cell_pairs(task, digits_a, digits_b, samples)
            right = torch.cat(
                [
                    (model.generate(batch.prompt) == batch.answer).all(dim=1).cpu()
                    for batch in (
                        task.encode(a[i : i + batch_size], b[i : i + batch_size]).to(device)
                        for i in range(0, len(a), batch_size)
                    )
                ]
            )  # (n,)
            held_out = task.is_held_out(a, b)  # (n,)
            in_range = all(task.min_digits <= d <= task.max_digits for d in (digits_a, digits_b))
            trained = ~held_out if in_range else torch.zeros_like(held_out)
            n, n_held = len(a), int(held_out.sum())
            cells.append(
                Cell(
                    digits_a,
                    digits_b,
                    True,
                    n,
                    int(right.sum()) / n,
                    int(trained.sum()) / n,
                    n_held,
                    int(right[held_out].sum()) / n_held if n_held else None,
                )
            )
    return cells


def grid_record(
    cells: list[Cell], *, run: str, step: int, max_digits: int, samples: int, task: MultiplicationTask
) -> dict[str, Any]:
    """What eval/grid.json holds: the cells plus enough context to read them without the run."""
    return {
        "run": run,
        "step": step,
        "max_digits": max_digits,
        "samples_per_cell": samples,
        "trained_digits": [task.min_digits, task.max_digits],
        "operand_width": task.operand_width,
        "cells": [asdict(cell) for cell in cells],
    }


def format_grid(cells: list[Cell], max_digits: int) -> str:
    """A text table: rows digits of a, columns digits of b; `*` marks cells that overlap training."""
    by_cell = {(c.digits_a, c.digits_b): c for c in cells}
    lines = ["a\\b " + "".join(f"{d:>9}" for d in range(1, max_digits + 1))]
    for digits_a in range(1, max_digits + 1):
        row = []
        for digits_b in range(1, max_digits + 1):
            cell = by_cell[(digits_a, digits_b)]
            row.append(
                f"{'n/a':>9}"
                if cell.exact_match is None
                else f"{100 * cell.exact_match:>7.1f}%{'*' if cell.trained_share else ' '}"
            )
        lines.append(f"{digits_a:>3} " + "".join(row))
    lines.append(
        "exact match per operand length; * = cell overlaps training (its held-out pairs are in grid.json); "
        "n/a = longer than operand_width"
    )
    return "\n".join(lines)


def heatmap(cells: list[Cell], max_digits: int, title: str) -> Figure:
    """A matplotlib figure of the grid: colour and text give exact match; cells that overlap
    training are hatched and also show the exact match on their held-out pairs."""
    from matplotlib.figure import Figure  # no pyplot: no global state, and the caller's backend stays
    from matplotlib.patches import Rectangle

    values = torch.full((max_digits, max_digits), float("nan"))
    for cell in cells:
        if cell.exact_match is not None:
            values[cell.digits_a - 1, cell.digits_b - 1] = cell.exact_match
    size = 1.2 * max_digits + 1.5
    figure = Figure(figsize=(size, size * 0.85))
    axes = figure.subplots()
    # Row 1 at the top, as in the text grid (format_grid) that eval prints beside it.
    image = axes.imshow(values.numpy(), vmin=0.0, vmax=1.0, cmap="viridis", origin="upper")
    for cell in cells:
        x, y = cell.digits_b - 1, cell.digits_a - 1
        if cell.exact_match is None:
            axes.add_patch(Rectangle((x - 0.5, y - 0.5), 1, 1, color="0.85"))
            axes.text(x, y, "n/a", ha="center", va="center", fontsize=9, color="0.3")
            continue
        text = f"{100 * cell.exact_match:.1f}%"
        if cell.trained_share:
            axes.add_patch(Rectangle((x - 0.5, y - 0.5), 1, 1, fill=False, hatch="//", edgecolor=(1, 1, 1, 0.35), lw=0))
            held = "–" if cell.held_out_exact_match is None else f"{100 * cell.held_out_exact_match:.1f}%"
            text += f"\nheld-out {held}\n(n={cell.held_out_samples})"
        axes.text(
            x,
            y,
            text,
            ha="center",
            va="center",
            fontsize=8,
            bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.8, "linewidth": 0},
        )
    ticks = list(range(max_digits))
    axes.set_xticks(ticks, [str(t + 1) for t in ticks])
    axes.set_yticks(ticks, [str(t + 1) for t in ticks])
    axes.set_xlabel("digits of b")
    axes.set_ylabel("digits of a")
    axes.set_title(title + "\nhatched: overlaps training", fontsize=9)
    figure.colorbar(image, ax=axes, label="exact match")
    figure.tight_layout()
    return figure


def write_grid(run_dir: Path, record: dict[str, Any], cells: list[Cell], suffix: str = "") -> tuple[Path, Path]:
    """Write eval/grid.json and eval/grid.png (grid-WHICH.* with suffix -WHICH, for a checkpoint
    other than best.pt) in the run dir and log the image to TensorBoard."""
    from torch.utils.tensorboard import SummaryWriter

    out = run_dir / "eval"
    out.mkdir(exist_ok=True)
    json_path = out / GRID_JSON.replace(".json", f"{suffix}.json")
    png_path = out / GRID_PNG.replace(".png", f"{suffix}.png")
    atomic_write_json(json_path, record)
    figure = heatmap(cells, record["max_digits"], f"{record['run']} (step {record['step']})")
    figure.savefig(png_path, dpi=120)
    writer = SummaryWriter(str(run_dir))
    try:
        writer.add_figure(GRID_TAG, figure, global_step=record["step"])
    finally:
        writer.close()
    return json_path, png_path
