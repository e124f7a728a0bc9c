"""Turn a resolved config into the objects a run needs, each from its own section."""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch.optim.lr_scheduler import LambdaLR

import latentrun.config.components  # noqa: F401  (registers every component)
from latentrun.core.errors import ConfigError
from latentrun.core.registry import CURRICULA, DATASETS, LOSSES, MODELS, OPTIMIZERS, SCHEDULERS
from latentrun.models.chain import ChainTransformer
from latentrun.models.latent import LatentTransformer
from latentrun.models.layers import set_gradient_checkpointing
from latentrun.models.rules import CHAIN_MODELS
from latentrun.task.chains import build_chain
from latentrun.task.multiplication import MultiplicationTask
from latentrun.train import distributed, precision
from latentrun.train.checkpoints_protocol import Checkpoints
from latentrun.train.clipping import GradClipper
from latentrun.train.components import Components
from latentrun.train.curriculum import Curriculum
from latentrun.train.loggers import MetricLogger
from latentrun.train.rules import latent_forcing_active
from latentrun.train.stability import LossGuard
from latentrun.train.trainer import Trainer, TrainSettings

__all__ = ["Components", "build_components", "build_curriculum", "build_trainer", "resolve_device"]


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


def build_model(config: dict[str, Any], task: MultiplicationTask) -> LatentTransformer | ChainTransformer:
    """The model, initialised from the run's seed so that equal configs give equal weights."""
    torch.manual_seed(config["seed"])
    runtime: dict[str, Any] = dict(vocab_size=task.vocab_size, prompt_len=task.prompt_len, answer_len=task.answer_len)
    if config["model"]["name"] in CHAIN_MODELS:
        chain = build_chain(task, config["model"]["chain"])
        runtime["chain_len"] = chain.length
        runtime["chain_places"] = chain.places()  # read only by position: abacus
        # Only Coconut thinks; a projection nothing trains would be dead weight in the others.
        runtime["continuous_thoughts"] = config["curriculum"]["name"] == "coconut"
    else:
        # The probe exists only to be trained by step supervision; without it, it would be dead weight.
        runtime["latent_probe"] = config["loss"]["latent_supervision_weight"] > 0
        runtime["column_head"] = config["loss"]["column_sum_weight"] > 0  # likewise: only its loss trains it
        # Likewise the running-sum embedding: only latent forcing reads it.
        runtime["latent_teacher"] = latent_forcing_active(config["train"])
    runtime["digit_places"] = task.digit_places()  # read only by position: abacus
    return MODELS.build(config["model"], **runtime)


def build_curriculum(config: dict[str, Any], task: MultiplicationTask) -> Curriculum | None:
    """The chain curriculum of a chain model (explicit chain of thought when the section says none);
    None for models that write no chain. A new model's layout, (0, 0), is every curriculum's stage 0."""
    if config["model"]["name"] not in CHAIN_MODELS:
        return None
    runtime: dict[str, Any] = {"chain": build_chain(task, config["model"]["chain"])}
    if config["curriculum"]["name"] == "internalize":  # counts examples and draws smoothing offsets
        runtime.update(batch_size=config["train"]["batch_size"], seed=config["seed"])
    return CURRICULA.build(config["curriculum"], **runtime)


def build_components(config: dict[str, Any], device: torch.device) -> Components:
    """Every object the `Trainer` trains with, each from its own section."""
    task = build_task(config)
    model = build_model(config, task).to(device)
    set_gradient_checkpointing(model, config["train"]["gradient_checkpointing"])
    optimizer = OPTIMIZERS.build(config["optimizer"], model=model)
    scheduler = build_scheduler(config, optimizer)
    loss_fn = LOSSES.build(config["loss"])
    clipper, guard = build_clipper(config["train"]), build_loss_guard(config["train"])
    return Components(task, model, loss_fn, optimizer, scheduler, clipper, guard, build_curriculum(config, task))


def schedule_span(config: dict[str, Any]) -> int:
    """Steps the learning-rate schedule spans: train.schedule_steps, or else the whole run."""
    return config["train"]["schedule_steps"] or config["train"]["max_steps"]


def build_scheduler(config: dict[str, Any], optimizer: torch.optim.Optimizer) -> LambdaLR:
    """The learning-rate schedule over `schedule_span` steps; past its end the rate stays where it ended."""
    return SCHEDULERS.build(config["scheduler"], optimizer=optimizer, max_steps=schedule_span(config))


def learning_rate_factor(config: dict[str, Any], step: int) -> float:
    """The schedule's multiple of optimizer.lr after `step` updates (the rate of update `step` + 1),
    read from the closed form every registered schedule is (a LambdaLR), without building a run."""
    stand_in = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    return float(build_scheduler(config, stand_in).lr_lambdas[0](max(step, 0)))


def build_trainer(
    config: dict[str, Any],
    components: Components,
    device: torch.device,
    precision_name: str,
    checkpointer: Checkpoints,
    metric_logger: MetricLogger | None = None,
) -> Trainer:
    """The Trainer of a run, wired the one way every run (and every benchmark) wires it: under
    torchrun the Trainer trains this rank's DDP replica of the model on this rank's share of the batch."""
    world = distributed.context()
    settings = TrainSettings.from_section(config["train"])
    return Trainer(
        components,
        dataclasses.replace(settings, batch_size=settings.batch_size // world.world_size),
        precision.MixedPrecision(precision_name, device),
        checkpointer=checkpointer,
        device=device,
        config=config,
        metric_logger=metric_logger,
        world=world,
    )


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
        train["loss_spike_floor"],
    )
