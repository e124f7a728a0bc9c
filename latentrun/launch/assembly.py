"""Put a run's Trainer together: components from the config, warm-start or checkpoint weights,
the precision it trains in, and each rank's random streams; writing nothing anywhere."""

from __future__ import annotations

from typing import Any, NamedTuple, cast

import torch
from loguru import logger
from torch import nn

from latentrun.config.build import build_components, build_trainer
from latentrun.launch import warmstart
from latentrun.launch.resume_plan import Resume
from latentrun.runs.run_dir import RunDir
from latentrun.train import distributed, precision, rng
from latentrun.train.trainer import Trainer


class Built(NamedTuple):
    """A trainer ready to train, the precision it trains in, and the model's parameter count."""

    trainer: Trainer
    choice: precision.Choice
    parameters: int


def assemble(
    run: RunDir,
    config: dict[str, Any],
    device: torch.device,
    resume: Resume | None,
    source: warmstart.Source | None = None,
) -> Built:
    """The trainer with the resume's checkpoint loaded, or a new one with `source`'s weights, in the
    precision it trains in; writes nothing anywhere."""
    world = distributed.context()
    rng.seed_globals(config["seed"])
    components = build_components(config, device)
    checkpoint = resume.load_checkpoint(run) if resume is not None else None
    if checkpoint is None and source is not None:
        fit = warmstart.load_weights(components.model, source)
        logger.info(f"warm start from {source.describe()}{fit.describe()}")
    train = config["train"]
    # Each checkpoint also brings meta.json up to date, so that `list` shows a live run's progress.
    checkpointer = run.checkpointer(
        train["save_every"], train["keep_last"], lambda saved: run.record_progress(saved["trainer"])
    )
    trainer = build_trainer(config, components, device, "fp32", checkpointer)
    # Rank 0 decides (an `auto` probe could time differently on each rank) and tells the others.
    choice = distributed.from_main(
        lambda: precision.decide(
            train["precision"],
            device,
            checkpoint,
            cast(nn.Module, components.model),
            lambda model: trainer.step_output(1, model).loss,
        )
    )
    trainer.precision = precision.MixedPrecision(choice.name, device)
    if world.world_size > 1:
        rng.seed_rank_streams(config["seed"], world.rank)
    if checkpoint is not None:
        trainer.load_state_dict(checkpoint)
    parameters = components.model.num_parameters()
    return Built(trainer, choice, parameters)
