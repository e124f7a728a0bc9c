"""Held-out evaluation: teacher-forced loss, greedy exact match and digit accuracy."""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from latentrun.data import Batch


@torch.no_grad()
def evaluate(model: nn.Module, split: Batch, loss_fn: Callable, batch_size: int, device: torch.device) -> dict[str, float]:
    """Metrics of `model` on a split, in eval mode; restores the model's train/eval mode after."""
    was_training = model.training
    model.eval()
    loss_total, exact, digits_right, digits_total = 0.0, 0, 0, 0
    try:
        for start in range(0, len(split), batch_size):
            batch = split.slice(start, start + batch_size).to(device)
            loss_total += float(loss_fn(model(batch.prompt, batch.answer), batch.answer).loss) * len(batch)
            correct = model.generate(batch.prompt) == batch.answer  # (B, P)
            exact += int(correct.all(dim=1).sum())
            digits_right += int(correct.sum())
            digits_total += correct.numel()
    finally:
        model.train(was_training)
    return {
        "val/loss": loss_total / len(split),
        "val/exact_match": exact / len(split),
        "val/digit_accuracy": digits_right / digits_total,
    }
