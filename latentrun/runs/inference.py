"""Predict with a trained run's model (rebuilt by RunDir.trained_model)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from latentrun.task.multiplication import MultiplicationTask, ProblemError


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
        return task.decode(model.generate(batch.prompt)).tolist()  # type: ignore[operator]  # nn.Module's __getattr__ hides the model's own methods
