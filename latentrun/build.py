"""Turn a resolved config into the objects a run needs, each from its own section."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

import latentrun.components  # noqa: F401  (registers every component)
from latentrun.config import ConfigError
from latentrun.data import MultiplicationTask
from latentrun.registry import DATASETS, LOSSES, MODELS, OPTIMIZERS, SCHEDULERS


@dataclass
class Components:
    """A run's task, model, loss and optimization objects."""

    task: MultiplicationTask
    model: nn.Module
    loss_fn: Callable
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler


def resolve_device(name: str) -> torch.device:
    """`train.device` to a torch device; auto prefers cuda, then mps, then cpu."""
    mps_ok = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "mps" if mps_ok else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError(["train.device: cuda requested but torch sees no CUDA device; use auto or cpu"])
    if name == "mps" and not mps_ok:
        raise ConfigError(["train.device: mps requested but torch sees no MPS device; use auto or cpu"])
    return torch.device(name)


def build_task(config: dict[str, Any]) -> MultiplicationTask:
    return DATASETS.build(config["dataset"], seed=config["seed"])


def build_model(config: dict[str, Any], task: MultiplicationTask) -> nn.Module:
    """The model, initialised from the run's seed so that equal configs give equal weights."""
    torch.manual_seed(config["seed"])
    runtime = dict(vocab_size=task.vocab_size, prompt_len=task.prompt_len, answer_len=task.answer_len)
    if "latent_probe" in MODELS.runtime_args(config["model"]["name"]):
        # The probe exists only to be trained by step supervision; without it, it would be dead weight.
        runtime["latent_probe"] = config["loss"]["latent_supervision_weight"] > 0
    return MODELS.build(config["model"], **runtime)


def build_components(config: dict[str, Any], device: torch.device) -> Components:
    """Everything `Trainer` needs besides the run directory and writer."""
    task = build_task(config)
    model = build_model(config, task).to(device)
    optimizer = OPTIMIZERS.build(config["optimizer"], model=model)
    scheduler = SCHEDULERS.build(config["scheduler"], optimizer=optimizer, max_steps=config["train"]["max_steps"])
    return Components(task, model, LOSSES.build(config["loss"]), optimizer, scheduler)
