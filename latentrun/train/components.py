"""The built objects one run trains with, handed to the Trainer as one."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from latentrun.task.multiplication import MultiplicationTask
from latentrun.train.clipping import GradClipper
from latentrun.train.curriculum import Curriculum
from latentrun.train.stability import LossGuard


@dataclass
class Components:
    """A run's task, model, loss and optimization objects, built by `config.build.build_components`."""

    task: MultiplicationTask
    model: nn.Module
    loss_fn: Callable
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    clipper: GradClipper
    guard: LossGuard
    curriculum: Curriculum | None = None  # what a chain model writes at each step; None for other models
