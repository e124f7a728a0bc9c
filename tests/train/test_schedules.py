import math

import pytest
import torch

from latentrun.train.schedules import TeacherForcing, constant, warmup_cosine


def lrs(scheduler, optimizer, steps):
    values = []
    for _ in range(steps):
        values.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return values


def make_optimizer():
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)


def test_warmup_then_cosine_to_min_ratio():
    optimizer = make_optimizer()
    values = lrs(warmup_cosine(4, 0.1, optimizer=optimizer, max_steps=14), optimizer, 15)
    assert values[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert values[4] == pytest.approx(1.0)
    assert values[9] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert values[14] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(values[4:], values[5:]))


def test_constant_with_and_without_warmup():
    optimizer = make_optimizer()
    assert lrs(constant(2, optimizer=optimizer, max_steps=10), optimizer, 4) == pytest.approx([0.5, 1, 1, 1])
    optimizer = make_optimizer()
    assert lrs(constant(0, optimizer=optimizer, max_steps=10), optimizer, 3) == pytest.approx([1, 1, 1])


def test_schedule_state_round_trip_continues_the_same_curve():
    optimizer = make_optimizer()
    scheduler = warmup_cosine(3, 0.0, optimizer=optimizer, max_steps=20)
    straight = lrs(scheduler, optimizer, 20)
    optimizer = make_optimizer()
    scheduler = warmup_cosine(3, 0.0, optimizer=optimizer, max_steps=20)
    first = lrs(scheduler, optimizer, 8)
    saved = (optimizer.state_dict(), scheduler.state_dict())
    optimizer = make_optimizer()
    scheduler = warmup_cosine(3, 0.0, optimizer=optimizer, max_steps=20)
    optimizer.load_state_dict(saved[0])
    scheduler.load_state_dict(saved[1])
    assert first + lrs(scheduler, optimizer, 12) == straight


def test_teacher_forcing_ratio_at_given_steps():
    linear = TeacherForcing("linear", start_step=100, end_step=300, min_ratio=0.2)
    assert [linear(s) for s in (1, 100, 150, 200, 250, 300, 1000)] == pytest.approx([1, 1, 0.8, 0.6, 0.4, 0.2, 0.2])
    cosine = TeacherForcing("cosine", start_step=100, end_step=300, min_ratio=0.2)
    assert [cosine(s) for s in (100, 150, 200, 300)] == pytest.approx(
        [1, 0.2 + 0.8 * 0.5 * (1 + math.cos(math.pi / 4)), 0.6, 0.2]
    )
    step = TeacherForcing("step", start_step=100, end_step=300, min_ratio=0.2)
    assert [step(s) for s in (100, 199, 200, 300)] == [1, 1, 0.2, 0.2]


def test_teacher_forcing_defaults_feed_true_digits_always():
    default = TeacherForcing("linear", start_step=0, end_step=0, min_ratio=1.0)
    assert all(default(s) == 1.0 for s in range(1, 1000))
    jump = TeacherForcing("cosine", start_step=10, end_step=10, min_ratio=0.5)  # an empty window is a jump
    assert (jump(10), jump(11)) == (1.0, 0.5)


def test_teacher_forcing_refuses_bad_settings():
    with pytest.raises(ValueError, match="schedule"):
        TeacherForcing("exponential", 0, 10, 0.5)
    with pytest.raises(ValueError, match="end_step"):
        TeacherForcing("linear", 10, 5, 0.5)
