"""The Trainer on its own: fake Checkpoints and MetricLogger in memory, no run directory, no CLI.

The loop's contract with its collaborators is what these tests pin: when it asks to save, what it
logs at which step, how a stop request and a streak of bad steps end, and that a checkpoint dict
taken at a stop continues bitwise as if the run had never stopped.
"""

from __future__ import annotations

import dataclasses
import math
import signal
from typing import Any

import pytest
import torch
from fakes import CPU, MemoryCheckpoints, MemoryLogger, make_trainer
from support import SMOKE, SMOKE_CHAIN

from latentrun import config
from latentrun.config.build import build_components
from latentrun.core.status import FINISHED, INTERRUPTED, STOPPED
from latentrun.train.losses import LossOutput
from latentrun.train.precision import MixedPrecision
from latentrun.train.state import StepResult, TrainSettings
from latentrun.train.trainer import Trainer


def fakes(trainer: Trainer) -> tuple[MemoryCheckpoints, MemoryLogger]:
    assert isinstance(trainer.checkpointer, MemoryCheckpoints) and isinstance(trainer.metric_logger, MemoryLogger)
    return trainer.checkpointer, trainer.metric_logger


def test_fit_asks_to_save_every_step_and_logs_and_evaluates_on_schedule():
    trainer = make_trainer()
    assert trainer.fit() == FINISHED
    checkpoints, log = fakes(trainer)
    assert checkpoints.requests == [(1, False), (2, False), (3, False), (4, False), (5, False), (6, True)]
    assert sorted(checkpoints.saved) == [2, 4, 6] and trainer.state.step == 6
    assert log.steps("train/loss") == [2, 4, 6] and log.steps("perf/samples_per_sec") == [2, 4, 6]
    assert log.steps("val/exact_match") == [3, 6] and log.steps("perf/elapsed_seconds") == [3, 6]
    assert "train/latent_loss" not in log.scalars and "train/curriculum_stage" not in log.scalars
    assert checkpoints.best_state is not None and checkpoints.best_state["step"] == trainer.state.best_step
    # A logged window's loss is the mean of its good steps; the sums start again after it.
    assert trainer.state.loss_count == 0 and trainer.state.last_loss == log.scalars["train/loss"][-1][1]


def test_a_stop_and_its_checkpoint_continue_bitwise_as_a_straight_run():
    straight = make_trainer("model.dropout=0.1")
    straight.fit()
    first_half = make_trainer("model.dropout=0.1")
    assert first_half.fit(stop_at=3) == STOPPED
    checkpoints, _ = fakes(first_half)
    assert checkpoints.requests[-1] == (3, True)
    resumed = make_trainer("model.dropout=0.1")
    resumed.load_state_dict(checkpoints.saved[3])
    assert resumed.fit() == FINISHED
    for name, value in straight.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[name]), name
    for a, b in zip(
        straight.optimizer.state_dict()["state"].values(), resumed.optimizer.state_dict()["state"].values()
    ):
        assert all(torch.equal(a[key], b[key]) for key in a)
    # The stop closed a logging window at step 3, so the windows agree again from step 6 on.
    resumed_loss, straight_loss = fakes(resumed)[1].scalars["train/loss"], fakes(straight)[1].scalars["train/loss"]
    assert [step for step, _ in resumed_loss] == [4, 6] and resumed_loss[-1] == straight_loss[-1]


class SignalledTrainer(Trainer):
    """Receives SIGINT while it trains step 2, as a user's Ctrl-C would arrive."""

    def train_step(self, step: int) -> StepResult:
        result = super().train_step(step)
        if step == 2:
            signal.raise_signal(signal.SIGINT)
        return result


def test_a_signal_ends_the_step_it_arrives_in_with_a_checkpoint_and_restores_the_handler():
    trainer = make_trainer(every=100, trainer_class=SignalledTrainer)
    before = signal.getsignal(signal.SIGINT)
    assert trainer.fit() == INTERRUPTED
    checkpoints, log = fakes(trainer)
    assert trainer.state.step == 2 and sorted(checkpoints.saved) == [2]
    assert log.steps("train/loss") == [2]
    assert signal.getsignal(signal.SIGINT) is before


class ExplodingLoss:
    """The run's loss, made non-finite at the given training calls (evaluation's calls not counted)."""

    def __init__(self, loss_fn: Any, bad_calls: set[int]) -> None:
        self.loss_fn, self.bad_calls, self.training_calls = loss_fn, bad_calls, 0
        self.latent_supervision_weight = loss_fn.latent_supervision_weight
        self.column_sum_weight = loss_fn.column_sum_weight

    def __call__(self, *args: Any, **kwargs: Any) -> LossOutput:
        output = self.loss_fn(*args, **kwargs)
        if not torch.is_grad_enabled():
            return output
        self.training_calls += 1
        if self.training_calls in self.bad_calls:
            return dataclasses.replace(output, loss=output.loss * math.nan)
        return output


def test_a_streak_of_bad_steps_rolls_back_to_the_checkpoint_before_it_with_a_cut_learning_rate():
    trainer = make_trainer("train.rollback_after=2", "train.max_steps=8")
    loss = ExplodingLoss(trainer.loss_fn, bad_calls={4, 5})  # steps 4 and 5 the first time round
    trainer.loss_fn = loss
    assert trainer.fit() == FINISHED
    checkpoints, log = fakes(trainer)
    assert checkpoints.emergencies == [4, 5] and trainer.guard.rollbacks == 1
    # Step 4 still asks to save (one bad step is no streak); step 5 goes back to step 2's checkpoint.
    assert [step for step, _ in checkpoints.requests] == [1, 2, 3, 4, 3, 4, 5, 6, 7, 8]
    assert loss.training_calls == 5 + 6 and trainer.state.step == 8
    assert log.steps("train/loss") == [2, 4, 6, 8]  # the replay's values replace the rewound ones
    assert dict(log.scalars["train/emergency_lr_scale"])[4] < 1.0  # the replay keeps the cut rate


def test_a_curriculum_needs_a_chain_model():
    chain = build_components(config.load(SMOKE_CHAIN), CPU)
    latent = build_components(config.load(SMOKE), CPU)
    settings = TrainSettings.from_section(config.load(SMOKE)["train"])
    with pytest.raises(ValueError, match="a curriculum moves a chain model along"):
        Trainer(
            dataclasses.replace(latent, curriculum=chain.curriculum),
            settings,
            MixedPrecision("fp32", CPU),
            checkpointer=MemoryCheckpoints(2),
            device=CPU,
            config={},
        )
