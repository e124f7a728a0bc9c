"""Load a trained run's model back for prediction and evaluation."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from latentrun import config as config_module
from latentrun.config.build import build_model, build_task
from latentrun.runs import checkpoint
from latentrun.runs import rundir as runs
from latentrun.task.multiplication import MultiplicationTask, ProblemError


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
