"""`probe`: what a trained run's hidden states hold, layer by layer and position by position.

The hidden states of the run's best checkpoint on held-out problems (probe_states.py) are read by
linear probes (probe_fit.py) for the intermediate quantities of long multiplication
(probe_targets.py); the scores go to probe.json in the run dir, a heatmap to probe.png
(probe_plot.py) and to TensorBoard (tag `probe/heatmap`). Bai et al. 2025 read ĉ_k this way from
the model that learned 4×4 multiplication and not from the one that failed; this puts the same
question to any run.
"""

from __future__ import annotations

import difflib
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from latentrun.core.atomic import atomic_write, atomic_write_json
from latentrun.core.errors import ProbeError as ProbeError  # defined there, still importable from here
from latentrun.report import probe_plot
from latentrun.report.probe_fit import HELD_OUT_FRACTION, SOLVER, TargetScores, fit_probes, split_problems
from latentrun.report.probe_states import (
    POSITION_CLASSES,
    Position,
    backbone_blocks,
    collect_states,
    model_kind,
    positions,
)
from latentrun.report.probe_targets import TARGETS, build_targets
from latentrun.runs import checkpoint_file as checkpoint
from latentrun.runs import inference
from latentrun.runs.run_dir import RunDir
from latentrun.train.checkpoints_protocol import State

PROBE_JSON, PROBE_PNG, PROBE_TAG = "probe.json", "probe.png", "probe/heatmap"
SPLITS = ("test", "val")
MIN_PROBLEMS = 10
_DPI = 110


@dataclass(frozen=True)
class Request:
    """What to probe; None means everything the model has."""

    targets: tuple[str, ...] = TARGETS
    layers: tuple[int, ...] | None = None
    positions: tuple[str, ...] | None = None
    samples: int = 2000
    split: str = "test"
    seed: int = 0


def check_request(request: Request) -> None:
    """Refuse names and sizes that cannot work, before any checkpoint is read."""
    _check_names("target", request.targets, TARGETS)
    _check_names("position class", request.positions or (), POSITION_CLASSES)
    if request.split not in SPLITS:
        raise ProbeError(f"--split must be one of {', '.join(SPLITS)}, got {request.split!r}")
    if request.samples < MIN_PROBLEMS:
        raise ProbeError(f"--samples {request.samples}: probing needs at least {MIN_PROBLEMS} problems")


def probe_run(run_dir: Path, request: Request) -> dict[str, Any]:
    """Probe the run's best checkpoint; returns the document probe.json holds."""
    check_request(request)
    run = RunDir(run_dir)
    state, which = _weights(run)
    task, model = inference.build_model(run, state)
    model.eval()
    kind = model_kind(model)
    layers = _layers(request.layers, len(backbone_blocks(model)))
    layout = _positions(positions(model, task), request.positions, run.config()["model"]["name"], kind)
    split = task.split(request.split)
    pairs = split.slice(0, min(request.samples, len(split)))
    if len(pairs) < MIN_PROBLEMS:
        raise ProbeError(
            f"{run_dir}: its {request.split} split has {len(pairs)} problems; probing needs {MIN_PROBLEMS}"
        )
    with torch.no_grad():
        states = collect_states(model, task, pairs, layers)[:, :, [p.index for p in layout]]  # (N, Ly, T, D)
    targets = build_targets(pairs.a, pairs.b, task.operand_width, request.targets)
    scored = fit_probes(states, targets, request.seed)
    train, held_out = split_problems(len(pairs), request.seed)
    return {
        "run": run.name,
        "experiment": run.config()["experiment"],
        "model": run.config()["model"]["name"],
        "checkpoint": which,
        "step": state["step"],
        "test_exact_match": (run.meta().get("test") or {}).get("exact_match"),
        "split": request.split,
        "problems": len(pairs),
        "probe_train_problems": len(train),
        "held_out_problems": len(held_out),
        "held_out_fraction": HELD_OUT_FRACTION,
        "seed": request.seed,
        "solver": SOLVER,
        "layers": [{"index": layer, "name": layer_name(layer)} for layer in layers],
        "positions": [{"index": p.index, "class": p.kind, "label": p.label} for p in layout],
        "targets": [_target_record(result) for result in scored],
    }


def write_probe(run_dir: Path, document: dict[str, Any]) -> tuple[Path, Path]:
    """probe.json and probe.png in the run dir, and the image in TensorBoard at the checkpoint's step."""
    from torch.utils.tensorboard import SummaryWriter

    json_path, png_path = run_dir / PROBE_JSON, run_dir / PROBE_PNG
    atomic_write_json(json_path, document)
    png, pixels = _render(probe_plot.heatmap(document))
    atomic_write(png_path, png)
    writer = SummaryWriter(str(run_dir))
    try:
        writer.add_image(PROBE_TAG, pixels, global_step=document["step"], dataformats="HWC")
    finally:
        writer.close()
    return json_path, png_path


def read_probes(run_dirs: Sequence[Path]) -> list[dict[str, Any]]:
    """The probe.json of each run; ProbeError naming the first run that has none."""
    documents = []
    for run_dir in run_dirs:
        try:
            documents.append(json.loads((run_dir / PROBE_JSON).read_text()))
        except (OSError, ValueError):
            raise ProbeError(f"{run_dir}: no readable {PROBE_JSON}; run `probe {run_dir.name}` first") from None
    return documents


def write_side_by_side(documents: Sequence[dict[str, Any]], path: Path) -> Path:
    """Several runs' probe pictures in one image (a column each), from their probe.json documents."""
    atomic_write(path, _render(probe_plot.side_by_side(documents))[0])
    return path


def format_summary(document: dict[str, Any]) -> str:
    """A text table per target: the best held-out score in each position class, per layer."""
    kinds = list(dict.fromkeys(p["class"] for p in document["positions"]))
    lines = [probe_plot.run_title(document)]
    for target in document["targets"]:
        chance = [c for c in target["chance"] if c is not None]
        lines.append(
            f"\n{target['name']} ({target['metric']}, best position of each class; "
            f"chance {sum(chance) / max(1, len(chance)):.2f})"
        )
        lines.append(f"{'':<12}" + "".join(f"{kind:>9}" for kind in kinds))
        for layer, row in zip(document["layers"], target["mean"]):
            cells = []
            for kind in kinds:
                scores = [v for p, v in zip(document["positions"], row) if p["class"] == kind and v is not None]
                cells.append(f"{max(scores):>9.3f}" if scores else f"{'-':>9}")
            lines.append(f"{layer['name']:<12}" + "".join(cells))
    return "\n".join(lines)


def layer_name(layer: int) -> str:
    return "embeddings" if layer == 0 else f"block {layer}"


def _weights(run: RunDir) -> tuple[State, str]:
    """best.pt, or before any evaluation the newest step checkpoint (as predict and eval use)."""
    best = run.checkpointer().best()
    if best is not None:
        return best, "best.pt"
    found = checkpoint.step_checkpoints(run.checkpoint_dir)
    if not found:
        raise ProbeError(f"{run.path}: no checkpoint yet; train the run first")
    return checkpoint.load(found[-1][1]), found[-1][1].name


def _layers(asked: tuple[int, ...] | None, blocks: int) -> list[int]:
    if asked is None:
        return list(range(blocks + 1))
    wrong = [layer for layer in asked if not 0 <= layer <= blocks]
    if wrong:
        raise ProbeError(f"--layers {wrong[0]}: this model has layers 0 (embeddings) to {blocks}")
    return sorted(set(asked))


def _positions(layout: list[Position], asked: tuple[str, ...] | None, model: str, kind: str) -> list[Position]:
    present = list(dict.fromkeys(p.kind for p in layout))
    missing = [name for name in asked or () if name not in present]
    if missing:
        what = "thought" if kind == "chain" and missing[0] == "latent" else missing[0]
        raise ProbeError(
            f"--positions {missing[0]}: this {model} has no {what} positions (it has {', '.join(present)})"
        )
    return [p for p in layout if asked is None or p.kind in asked]


def _check_names(what: str, given: Sequence[str], known: Sequence[str]) -> None:
    for name in given:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ProbeError(f"unknown {what} {name!r}{hint}; known: {', '.join(known)}")


def _target_record(result: TargetScores) -> dict[str, Any]:
    scores = result.scores  # (Ly, T, C)
    return {
        "name": result.target.name,
        "metric": result.target.metric,
        "components": list(result.target.components),
        "chance": _plain(result.chance),
        "mean": _plain(scores.nanmean(dim=-1)),
        "scores": _plain(scores),
    }


def _plain(values: torch.Tensor) -> Any:
    """A tensor as nested lists of floats rounded to 5 places, NaN as null (JSON has no NaN)."""
    rounded = values.double().round(decimals=5)
    nested = rounded.tolist()

    def clean(item: Any) -> Any:
        if isinstance(item, list):
            return [clean(x) for x in item]
        return None if item != item else item

    return clean(nested)


def _render(figure: Any) -> tuple[bytes, Any]:
    """The figure drawn once: PNG bytes and its RGB pixels (H, W, 3) uint8 for TensorBoard (whose
    add_figure would lay the figure out and draw it a second time)."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.image import imsave

    figure.set_dpi(_DPI)
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    pixels = np.asarray(canvas.buffer_rgba())[..., :3].copy()
    image = io.BytesIO()
    imsave(image, pixels, format="png")
    return image.getvalue(), pixels
