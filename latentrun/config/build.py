"""Turn a resolved config into the objects a run needs, each from its own section."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from typing import Any

import torch

import latentrun.config.components  # noqa: F401  (registers every component)
from latentrun.config import ConfigError
from latentrun.core.registry import CURRICULA, DATASETS, LOSSES, MODELS, OPTIMIZERS, SCHEDULERS
from latentrun.models.chain import ChainTransformer
from latentrun.models.latent import LatentTransformer
from latentrun.models.layers import set_gradient_checkpointing
from latentrun.models.rules import CHAIN_MODELS
from latentrun.task.chains import RunningSumChain
from latentrun.task.multiplication import MultiplicationTask
from latentrun.train import distributed, precision
from latentrun.train.checkpoints_protocol import Checkpoints
from latentrun.train.clipping import GradClipper
from latentrun.train.components import Components
from latentrun.train.curriculum import Curriculum
from latentrun.train.loggers import MetricLogger
from latentrun.train.objective import step_loss
from latentrun.train.rules import latent_forcing_active
from latentrun.train.stability import LossGuard
from latentrun.train.trainer import Trainer, TrainSettings

__all__ = ["Components", "build_components", "build_curriculum", "build_trainer", "choose_precision", "resolve_device"]


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
        chain = RunningSumChain(task)
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
    runtime: dict[str, Any] = {"chain": RunningSumChain(task)}
    if config["curriculum"]["name"] == "internalize":  # counts examples and draws smoothing offsets
        runtime.update(batch_size=config["train"]["batch_size"], seed=config["seed"])
    return CURRICULA.build(config["curriculum"], **runtime)


def build_components(config: dict[str, Any], device: torch.device) -> Components:
    """Every object the `Trainer` trains with, each from its own section."""
    task = build_task(config)
    model = build_model(config, task).to(device)
    set_gradient_checkpointing(model, config["train"]["gradient_checkpointing"])
    optimizer = OPTIMIZERS.build(config["optimizer"], model=model)
    scheduler = SCHEDULERS.build(config["scheduler"], optimizer=optimizer, max_steps=config["train"]["max_steps"])
    loss_fn = LOSSES.build(config["loss"])
    clipper, guard = build_clipper(config["train"]), build_loss_guard(config["train"])
    return Components(task, model, loss_fn, optimizer, scheduler, clipper, guard, build_curriculum(config, task))


def build_trainer(
    config: dict[str, Any],
    components: Components,
    device: torch.device,
    precision_name: str,
    checkpointer: Checkpoints,
    metric_logger: MetricLogger | None = None,
) -> Trainer:
    """The Trainer of a run, wired the one way every run (and every benchmark) wires it: under
    torchrun the model becomes this rank's DDP replica and the batch this rank's share of it."""
    world = distributed.context()
    settings = TrainSettings.from_section(config["train"])
    return Trainer(
        dataclasses.replace(components, model=distributed.wrap(components.model, device)),
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
    settings = TrainSettings.from_section(config["train"])
    chain = components.curriculum.chain if components.curriculum is not None else None

    def run_pass(name: str) -> None:
        # The loss of the first training step, as the Trainer computes it: a chain model reads its
        # written chain (a model called without one would time greedy decoding instead), latent
        # supervision runs its probe, scheduled sampling and latent forcing their first ratio.
        with torch.random.fork_rng(devices=[]):
            with torch.autocast(device.type, dtype=precision.DTYPES[name], enabled=name != "fp32"):
                loss = step_loss(
                    model,
                    components.loss_fn,
                    batch,
                    teacher_forcing=settings.teacher_forcing(1),
                    operand_width=components.task.operand_width,
                    latent_forcing=settings.latent_forcing(1),
                    chain=chain,
                ).loss
            loss.backward()
        model.zero_grad(set_to_none=True)

    return run_pass
