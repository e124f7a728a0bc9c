"""The built objects one run trains with, handed to the Trainer as one."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from latentrun.models.protocol import TaskModel
from latentrun.task.multiplication import MultiplicationTask
from latentrun.train.clipping import GradClipper
from latentrun.train.curriculum import Curriculum
from latentrun.train.losses import ProductLoss
from latentrun.train.stability import LossGuard


@dataclass
class Components:
    """A run's task, model, loss and optimization objects, built by `config.build.build_components`."""

    task: MultiplicationTask
    model: TaskModel
    loss_fn: ProductLoss
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    clipper: GradClipper
    guard: LossGuard
    curriculum: Curriculum | None = None  # what a chain model writes at each step; None for other models
