"""Load a trained run's model back for prediction and evaluation."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from latentrun import config as config_module
from latentrun.config.build import build_model, build_task
from latentrun.core.registry import LOSSES
from latentrun.runs import checkpoint
from latentrun.runs import rundir as runs
from latentrun.task.multiplication import MultiplicationTask, ProblemError
from latentrun.train.metrics import evaluate

SPLITS = ("test", "val")


def load_trained(run_dir: Path, device: torch.device | str = "cpu") -> tuple[MultiplicationTask, nn.Module, dict]:
    """(task, model in eval mode, checkpoint) from best.pt, or the newest step checkpoint before any evaluation."""
    config = config_module.load(run_dir / runs.CONFIG_FILE)
    best = run_dir / runs.CHECKPOINT_DIR / checkpoint.BEST_FILE
    if best.is_file():
        state = checkpoint.load(best)
    else:
        found = checkpoint.step_checkpoints(run_dir / runs.CHECKPOINT_DIR)
        if not found:
            raise checkpoint.CheckpointError(f"{run_dir}: no checkpoint yet; train the run first")
        state = checkpoint.load(found[-1][1])
    task = build_task(config)
    model = build_model(config, task)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as error:
        raise checkpoint.CheckpointError(f"{run_dir}: checkpoint does not fit its config: {str(error).splitlines()[0]}") from None
    return task, model.to(device).eval(), state


def predict(task: MultiplicationTask, model: nn.Module, problems: Sequence[str]) -> list[int]:
    """Greedy products for texts like '37*45'; ProblemError (naming every bad one) before any compute."""
    pairs, problems_found = [], []
    for text in problems:
        try:
            pairs.append(task.parse_problem(text))
        except ValueError as error:
            problems_found.append(str(error))
    if problems_found:
        raise ProblemError("\n".join(problems_found))
    device = next(model.parameters()).device
    a, b = (torch.tensor(values, dtype=torch.int64) for values in zip(*pairs))
    batch = task.encode(a, b).to(device)
    with torch.no_grad():
        return task.decode(model.generate(batch.prompt)).tolist()


def evaluate_split(run_dir: Path, split: str, batch_size: int = 1000) -> dict[str, float | int]:
    """The run's best checkpoint graded on its `test` or `val` split: exact match, digit accuracy
    and loss (latent accuracy with a probe), with the step of the weights and the number of pairs.

    The test split is the figure of record; val is what chose the checkpoint, so its figure is optimistic.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    task, model, state = load_trained(run_dir)
    config = config_module.load(run_dir / runs.CONFIG_FILE)
    pairs = task.split(split)
    device = next(model.parameters()).device
    metrics = evaluate(model, pairs, LOSSES.build(config["loss"]), batch_size, device, task.operand_width, split)
    return {**{tag.split("/", 1)[1]: value for tag, value in metrics.items()}, "step": state["step"], "pairs": len(pairs)}
