"""Curricula as closed-form functions of the step: stages, layouts and optimizer resets."""

import pytest
import torch

from latentrun.core.registry import CURRICULA
from latentrun.task.chains import RunningSumChain
from latentrun.task.multiplication import MultiplicationTask
from latentrun.train.curriculum import Coconut, ExplicitChain, Layout, StepwiseInternalization
from latentrun.train.trainer import TrainerState


def chain(operand_width: int = 3) -> RunningSumChain:
    task = MultiplicationTask(1, operand_width, None, None, True, True, "value", 0.1, 10, 10, (), seed=0)
    return RunningSumChain(task)  # widths (4, 5) for 3-digit operands


def internalization(**params) -> StepwiseInternalization:
    options = dict(examples_per_token=None, removal_smoothing=None, batch_size=8, seed=0)
    return StepwiseInternalization(**{**options, **params}, chain=chain())


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
    curriculum = internalization(stage_steps=5, tokens_per_stage=4, reset_optimizer=False)
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
    runtime = {"batch_size": 8, "seed": 0} if name == "internalize" else {}
    if name == "internalize":
        params.update(examples_per_token=None, removal_smoothing=None)
    curriculum = CURRICULA.build({"name": name, **params}, chain=chain(), **runtime)
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


def test_deng_rate_removes_one_token_per_examples_per_token_examples_seen():
    """20 examples per token at batch 8: update s has seen (s - 1) × 8 examples before it."""
    curriculum = internalization(examples_per_token=20, stage_steps=5, tokens_per_stage=4, reset_optimizer=True)
    removed = [curriculum.layout(step).removed for step in range(1, 26)]
    # (s-1)*8 // 20 for s = 1..25, worked out by hand: 0,0,0,1,1,2,2,2,3,3,4,4,4,5,5,6,6,6,7,7,8,8,8,9,9
    assert removed == [0, 0, 0, 1, 1, 2, 2, 2, 3, 3, 4, 4, 4, 5, 5, 6, 6, 6, 7, 7, 8, 8, 8, 9, 9]
    assert curriculum.last_stage == 9 and curriculum.final_stage_step == 24
    assert [step for step in range(1, 30) if curriculum.resets_optimizer(step)] == [4, 6, 9, 11, 14, 16, 19, 21, 24]


def test_removal_smoothing_draws_deng_offsets_from_the_step_alone():
    curriculum = internalization(removal_smoothing=1.0, stage_steps=5, tokens_per_stage=4, reset_optimizer=True)
    assert curriculum.extra_removed(3, 8) is not None
    assert torch.equal(curriculum.extra_removed(3, 4000), curriculum.extra_removed(3, 4000))  # nothing to save
    assert not torch.equal(curriculum.extra_removed(3, 4000), curriculum.extra_removed(4, 4000))
    draws = torch.cat([curriculum.extra_removed(step, 4000) for step in range(1, 6)]).double()  # stage 0: room for 9
    # p(o) = (1 - e^-1) e^-o: p(0) = 0.632, p(1) = 0.233, p(2) = 0.086
    for offset, p in ((0, 0.6321), (1, 0.2325), (2, 0.0855)):
        assert abs(float((draws == offset).double().mean()) - p) < 0.015
    # Never past the whole chain: in the last stage nothing is left to remove.
    assert int(curriculum.extra_removed(16, 4000).max()) == 0
    assert int(curriculum.extra_removed(11, 4000).max()) <= 1  # 8 removed, 1 left


def test_without_smoothing_every_example_has_its_stage_layout():
    assert internalization(stage_steps=5, tokens_per_stage=4, reset_optimizer=True).extra_removed(3, 8) is None
    assert Coconut(stage_steps=10, thoughts_per_step=1, reset_optimizer=True, chain=chain()).extra_removed(3, 8) is None
