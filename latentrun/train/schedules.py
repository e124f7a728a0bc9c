"""Learning-rate and teacher-forcing schedules as closed-form functions of the step.

Closed forms (rather than recursive updates) give the same rate at a step however the run got
there, and LambdaLR keeps no state beyond the step count, so a resumed run follows the same curve.
Plain closures are used on purpose: LambdaLR does not save closures in its state_dict, so a resume
that changes train.max_steps gets the new span instead of the saved one.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.optim.lr_scheduler import LambdaLR

from latentrun.core.registry import SCHEDULERS


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


@SCHEDULERS.register("warmup_cosine")
def warmup_cosine(
    warmup_steps: int, min_lr_ratio: float, *, optimizer: torch.optim.Optimizer, max_steps: int
) -> LambdaLR:
    """Linear warmup then cosine decay over the whole run."""
    return LambdaLR(optimizer, warmup_cosine_factor(warmup_steps, min_lr_ratio, max_steps))


@SCHEDULERS.register("constant")
def constant(warmup_steps: int, *, optimizer: torch.optim.Optimizer, max_steps: int) -> LambdaLR:
    """Linear warmup then the peak rate."""

    def factor(step: int) -> float:
        return warmup_factor(step, warmup_steps)

    return LambdaLR(optimizer, factor)


TEACHER_FORCING_SCHEDULES = ("linear", "cosine", "step")


@dataclass(frozen=True)
class TeacherForcing:
    """The scheduled-sampling ratio (probability of feeding a true product digit) as a closed-form
    function of the step, like the LR schedules: a resumed run gets the same ratio at every step.
    Fields follow `$defs/train.teacher_forcing`."""

    schedule: str
    start_step: int
    end_step: int
    min_ratio: float

    def __post_init__(self) -> None:
        if self.schedule not in TEACHER_FORCING_SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(TEACHER_FORCING_SCHEDULES)}, got {self.schedule!r}")
        if self.end_step < self.start_step:
            raise ValueError(f"end_step ({self.end_step}) must be >= start_step ({self.start_step})")

    def __call__(self, step: int) -> float:
        """Ratio used by update number `step`: 1 up to start_step, min_ratio from end_step on."""
        if step <= self.start_step:
            return 1.0
        if step >= self.end_step:
            return self.min_ratio
        progress = (step - self.start_step) / (self.end_step - self.start_step)
        if self.schedule == "linear":
            return 1.0 - (1.0 - self.min_ratio) * progress
        if self.schedule == "cosine":
            return self.min_ratio + (1.0 - self.min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))
        return 1.0 if progress < 0.5 else self.min_ratio
