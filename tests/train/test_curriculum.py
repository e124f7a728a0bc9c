"""Curricula as closed-form functions of the step: stages, layouts and optimizer resets."""

import pytest
import torch

from latentrun.core.registry import CURRICULA
from latentrun.task.chains import RunningSumChain
from latentrun.task.multiplication import MultiplicationTask
from latentrun.train.curriculum import Coconut, ExplicitChain, Layout, StepwiseInternalization
from latentrun.train.trainer import TrainerState


def chain(operand_width: int = 3) -> RunningSumChain:
    task = MultiplicationTask(1, operand_width, None, None, True, True, "value", 0.1, 10, 10, seed=0)
    return RunningSumChain(task)  # widths (4, 5) for 3-digit operands


def test_explicit_chain_writes_everything_always():
    curriculum = ExplicitChain(chain=chain())
    assert curriculum.last_stage == 0 and curriculum.final_stage_step == 1
    assert {curriculum.layout(step) for step in range(0, 1000, 37)} == {Layout(0, 0)}
    assert not any(curriculum.resets_optimizer(step) for step in range(1000))


def test_coconut_replaces_one_written_step_per_stage():
    curriculum = Coconut(stage_steps=10, thoughts_per_step=2, reset_optimizer=True, chain=chain())
    stages = [curriculum.stage(step) for step in range(0, 41)]
    assert stages == [0] * 11 + [1] * 10 + [2] * 20  # updates 1-10, 11-20, then 21 to the end
    assert [curriculum.stage_layout(k) for k in range(3)] == [Layout(0, 0), Layout(2, 4), Layout(4, 9)]
    assert curriculum.last_stage == 2 and curriculum.final_stage_step == 21
    assert [step for step in range(100) if curriculum.resets_optimizer(step)] == [11, 21]


def test_internalization_removes_tokens_until_none_is_left():
    curriculum = StepwiseInternalization(stage_steps=5, tokens_per_stage=4, reset_optimizer=False, chain=chain())
    assert curriculum.last_stage == 3  # 9 tokens: 4, 8, then the last one
    assert [curriculum.layout(step).removed for step in (1, 5, 6, 10, 11, 15, 16, 500)] == [0, 0, 4, 4, 8, 8, 9, 9]
    assert curriculum.final_stage_step == 16
    assert not any(curriculum.resets_optimizer(step) for step in range(100))
    # Stage starts are a fact of the schedule whether or not the optimizer resets at them.
    assert [step for step in range(100) if curriculum.begins_stage(step)] == [6, 11, 16]


def test_a_chain_of_no_steps_has_one_stage():
    curriculum = Coconut(stage_steps=10, thoughts_per_step=1, reset_optimizer=True, chain=chain(1))
    assert curriculum.last_stage == 0 and curriculum.layout(500) == Layout(0, 0)


@pytest.mark.parametrize("name", CURRICULA.names())
def test_every_curriculum_starts_from_the_whole_written_chain(name):
    params = {"stage_steps": 10, "reset_optimizer": True}
    params.update({"coconut": {"thoughts_per_step": 1}, "internalize": {"tokens_per_stage": 2}}.get(name, {}))
    if name == "none":
        params = {}
    curriculum = CURRICULA.build({"name": name, **params}, chain=chain())
    assert curriculum.layout(0) == curriculum.layout(1) == Layout(0, 0)


class RecordingModel(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(3))
        self.layouts = []

    def set_layout(self, thoughts: int, removed: int) -> None:
        self.layouts.append((thoughts, removed))


def test_begin_step_sets_the_layout_and_empties_the_optimizer_at_a_stage_start():
    model = RecordingModel()
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    curriculum = Coconut(stage_steps=2, thoughts_per_step=1, reset_optimizer=True, chain=chain())
    emptied = []
    for step in range(1, 7):
        curriculum.begin_step(step, model, optimizer)
        emptied.append(len(optimizer.state) == 0)
        model.weight.grad = torch.ones(3)
        optimizer.step()
    assert model.layouts == [(0, 0), (0, 0), (1, 4), (1, 4), (2, 9), (2, 9)]
    assert emptied == [True, False, True, False, True, False]
    assert int(optimizer.state[model.weight]["step"]) == 2  # counting again from the reset at step 5


def test_a_later_stage_beats_any_result_of_an_earlier_one():
    state = TrainerState(best_exact_match=1.0, best_val_loss=0.01, best_stage=0)
    worse = {"val/exact_match": 0.2, "val/loss": 3.0}
    assert not state.improves_on_best(worse, stage=0)
    assert state.improves_on_best(worse, stage=1)
    state = TrainerState(best_exact_match=0.2, best_val_loss=3.0, best_stage=1)
    assert not state.improves_on_best({"val/exact_match": 1.0, "val/loss": 0.0}, stage=0)
