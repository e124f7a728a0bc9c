"""What the step loop is set up with, carries from one step to the next, and reports per step.

Plain data, kept apart from the loop: `TrainerState` goes into every checkpoint under `trainer`
(its field names are checkpoint keys), and the session reads it after a run without a Trainer.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import torch

from latentrun.train.rules import latent_forcing_active
from latentrun.train.schedules import TeacherForcing


@dataclass(frozen=True)
class WeightAverageSettings:
    """`train.weight_average`: decay 0 keeps no average."""

    decay: float = 0.0
    start_step: int = 0


@dataclass(frozen=True)
class TrainSettings:
    """The `train` section's loop settings; field names match the schema's keys."""

    max_steps: int
    batch_size: int
    eval_every: int
    eval_batch_size: int
    log_every: int
    compile: bool
    teacher_forcing: TeacherForcing
    latent_forcing: TeacherForcing  # the same closed form, for recurrent latents' inputs
    weight_average: WeightAverageSettings

    @classmethod
    def from_section(cls, section: dict[str, Any]) -> TrainSettings:
        values = {field.name: section[field.name] for field in dataclasses.fields(cls)}
        values["teacher_forcing"] = TeacherForcing(**section["teacher_forcing"])
        values["latent_forcing"] = TeacherForcing(**section["latent_forcing"])
        values["weight_average"] = WeightAverageSettings(**section["weight_average"])
        return cls(**values)

    @property
    def forces_latents(self) -> bool:
        """Whether latent forcing ever forces a latent: the model then has its teacher embedding."""
        return latent_forcing_active({"latent_forcing": dataclasses.asdict(self.latent_forcing)})


@dataclass
class TrainerState:
    """Everything besides model, optimizer, scheduler and RNG that the next step depends on or reports."""

    step: int = 0
    loss_sum: float = 0.0
    loss_count: int = 0
    latent_loss_sum: float = 0.0
    best_exact_match: float = -1.0
    best_val_loss: float = math.inf
    best_step: int = 0
    best_stage: int = 0  # curriculum stage of the best evaluation: a later stage beats any earlier one
    elapsed_seconds: float = 0.0
    last_loss: float | None = None  # the most recent logged train/loss, reported in meta.json by `list`

    def improves_on_best(self, metrics: dict[str, float], stage: int = 0) -> bool:
        """Better exact match (then loss) at the same curriculum stage, or any result at a later one:
        a curriculum is judged at its final stage, not at the written chain it starts from."""
        best = (self.best_stage, self.best_exact_match, -self.best_val_loss)
        return (stage, metrics["val/exact_match"], -metrics["val/loss"]) > best


@dataclass(frozen=True)
class StepResult:
    """What one step did: its loss, and the clipping it applied, or why its update was skipped."""

    loss: torch.Tensor
    latent_loss: torch.Tensor | None  # the step-supervision part of an update that was made, if any
    grad_norm: torch.Tensor | None  # None when the loss stopped the step before backward
    clip_threshold: float
    problem: str | None  # why the update was skipped; None for a normal step
