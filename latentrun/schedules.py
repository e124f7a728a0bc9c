"""Learning-rate schedules as closed-form functions of the step.

Closed forms (rather than recursive updates) give the same rate at a step however the run got
there, and LambdaLR keeps no state beyond the step count, so a resumed run follows the same curve.
Plain closures are used on purpose: LambdaLR does not save closures in its state_dict, so a resume
that changes train.max_steps gets the new span instead of the saved one.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch.optim.lr_scheduler import LambdaLR

from latentrun.registry import SCHEDULERS


def warmup_factor(step: int, warmup_steps: int) -> float:
    """Linear ramp: update number step+1 uses (step+1)/warmup_steps of the peak rate."""
    return min(1.0, (step + 1) / warmup_steps) if warmup_steps > 0 else 1.0


def warmup_cosine_factor(warmup_steps: int, min_lr_ratio: float, max_steps: int) -> Callable[[int], float]:
    """Warmup, then cosine from 1 down to min_lr_ratio at max_steps."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return warmup_factor(step, warmup_steps)
        progress = min(1.0, (step - warmup_steps) / max(1, max_steps - warmup_steps))
        return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


@SCHEDULERS.register("warmup_cosine", runtime_args=("optimizer", "max_steps"))
def warmup_cosine(warmup_steps: int, min_lr_ratio: float, *, optimizer: torch.optim.Optimizer, max_steps: int) -> LambdaLR:
    """Linear warmup then cosine decay over the whole run."""
    return LambdaLR(optimizer, warmup_cosine_factor(warmup_steps, min_lr_ratio, max_steps))


@SCHEDULERS.register("constant", runtime_args=("optimizer", "max_steps"))
def constant(warmup_steps: int, *, optimizer: torch.optim.Optimizer, max_steps: int) -> LambdaLR:
    """Linear warmup then the peak rate."""

    def factor(step: int) -> float:
        return warmup_factor(step, warmup_steps)

    return LambdaLR(optimizer, factor)
