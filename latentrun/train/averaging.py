"""An exponential moving average of the weights (`train.weight_average`): from `start_step` on,
after each update, average ← decay · average + (1 − decay) · weights.

A model whose validation accuracy wanders by a point from one evaluation to the next at the end of
its schedule is graded, with this on, on the average of its last ~1/(1 − decay) updates instead of
on whichever draw the last update left. The average is a copy of the model that the optimizer
never sees; the trainer evaluates it, keeps it in best.pt when it wins, and checkpoints it beside
the live weights so that a resume continues it bitwise.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn


class WeightAverage:
    """The running average of `model`'s parameters (its buffers are copied, not averaged)."""

    def __init__(self, model: nn.Module, decay: float, start_step: int) -> None:
        self.model = model
        self.decay = decay
        self.start_step = start_step
        self.module: nn.Module | None = None  # the averaged copy; None until the first update it folds in

    @property
    def enabled(self) -> bool:
        return self.decay > 0

    def update(self, step: int) -> None:
        """Fold the weights left by update `step` into the average: the first update at or past
        start_step (or after a restart) starts it as a copy."""
        if not self.enabled or step < self.start_step:
            return
        if self.module is None:
            self.module = self._copy()
            return
        with torch.no_grad():
            for averaged, live in zip(self.module.parameters(), self.model.parameters(), strict=True):
                averaged.lerp_(live, 1.0 - self.decay)
            for kept, current in zip(self.module.buffers(), self.model.buffers(), strict=True):
                kept.copy_(current)

    def restart(self) -> None:
        """Drop the average: the next update starts it again (a curriculum stage changes the task,
        and weights from before the change would only pull the average back to the old one)."""
        self.module = None

    def state_dict(self) -> dict[str, Any] | None:
        """The averaged weights (checkpoint key `weight_average`); None while there is no average."""
        return None if self.module is None else self.module.state_dict()

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        """Continue from `state_dict`'s output; None (or a checkpoint from before averaging) means no average yet."""
        if state is None:
            self.module = None
            return
        module = self._copy()
        module.load_state_dict(state)
        self.module = module

    def _copy(self) -> nn.Module:
        module = copy.deepcopy(self.model)
        for parameter in module.parameters():
            parameter.grad = None
            parameter.requires_grad_(False)
        return module
