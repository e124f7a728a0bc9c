"""Turn a resolved config into the objects a run needs, each from its own section."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

import latentrun.config.components  # noqa: F401  (registers every component)
from latentrun.config import ConfigError
from latentrun.core.registry import CURRICULA, DATASETS, LOSSES, MODELS, OPTIMIZERS, SCHEDULERS
from latentrun.models.layers import set_gradient_checkpointing
from latentrun.task.chains import RunningSumChain
from latentrun.task.multiplication import MultiplicationTask
from latentrun.train import precision
from latentrun.train.clipping import GradClipper
from latentrun.train.curriculum import Curriculum
from latentrun.train.stability import LossGuard


@dataclass
class Components:
    """A run's task, model, loss and optimization objects."""

    task: MultiplicationTask
    model: nn.Module
    loss_fn: Callable
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    curriculum: Curriculum | None = None  # what a chain model writes at each step; None for other models


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
    if "chain_len" in MODELS.runtime_args(config["model"]["name"]):
        runtime["chain_len"] = RunningSumChain(task).length
        # Only Coconut thinks; a projection nothing trains would be dead weight in the others.
        runtime["continuous_thoughts"] = config["curriculum"]["name"] == "coconut"
    return MODELS.build(config["model"], **runtime)


def build_curriculum(config: dict[str, Any], task: MultiplicationTask) -> Curriculum | None:
    """The chain curriculum of a chain model (explicit chain of thought when the section says none);
    None for models that write no chain. A new model's layout, (0, 0), is every curriculum's stage 0."""
    if "chain_len" not in MODELS.runtime_args(config["model"]["name"]):
        return None
    return CURRICULA.build(config["curriculum"], chain=RunningSumChain(task))


def build_components(config: dict[str, Any], device: torch.device) -> Components:
    """Everything `Trainer` needs besides the run directory and writer."""
    task = build_task(config)
    model = build_model(config, task).to(device)
    set_gradient_checkpointing(model, config["train"]["gradient_checkpointing"])
    optimizer = OPTIMIZERS.build(config["optimizer"], model=model)
    scheduler = SCHEDULERS.build(config["scheduler"], optimizer=optimizer, max_steps=config["train"]["max_steps"])
    curriculum = build_curriculum(config, task)
    return Components(task, model, LOSSES.build(config["loss"]), optimizer, scheduler, curriculum)


def build_clipper(train: dict[str, Any]) -> GradClipper:
    """Gradient clipping from the `train` section."""
    return GradClipper(train["clip_mode"], train["max_grad_norm"], train["clip_percentile"], train["clip_window"])


def build_loss_guard(train: dict[str, Any]) -> LossGuard:
    """Loss-explosion handling from the `train` section."""
    return LossGuard(
        train["loss_spike_factor"],
        train["loss_average_decay"],
        train["emergency_lr_factor"],
        train["emergency_recovery_steps"],
        train["rollback_after"],
        train["max_rollbacks"],
    )


def choose_precision(config: dict[str, Any], components: Components, device: torch.device) -> precision.Choice:
    """Resolve `train.precision` for a new run, timing the configured model when `auto` needs to."""

    def probe() -> dict[str, float]:
        return precision.probe_seconds(_training_pass(config, components, device))

    return precision.resolve(config["train"]["precision"], device, probe)


def _training_pass(config: dict[str, Any], components: Components, device: torch.device) -> Callable[[str], None]:
    """A forward and backward pass of a copy of the model on the first training batch, in a given
    precision; the optimizer step is left out because it runs in fp32 whatever the precision.

    The copy and a forked RNG leave the run's own weights and random streams untouched, so a run
    whose precision is fixed in the config computes exactly what a probed one does.
    """
    model = copy.deepcopy(components.model).train()
    batch = components.task.train_batch(1, config["train"]["batch_size"]).to(device)

    def run_pass(name: str) -> None:
        with torch.random.fork_rng(devices=[]):
            with torch.autocast(device.type, dtype=precision.DTYPES[name], enabled=name != "fp32"):
                loss = components.loss_fn(model(batch.prompt, batch.answer), batch.answer).loss
            loss.backward()
        model.zero_grad(set_to_none=True)

    return run_pass
