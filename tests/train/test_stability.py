"""latentrun.train.stability: bad-step detection, the emergency learning-rate scale, rollback decisions."""

import math

import pytest
import torch

from latentrun.train.stability import LossGuard, TrainingDiverged, scaled_learning_rate


def guard(**overrides) -> LossGuard:
    params = dict(
        spike_factor=4.0,
        average_decay=0.5,
        lr_factor=0.5,
        recovery_steps=4,
        rollback_after=3,
        max_rollbacks=1,
        spike_floor=0.0,
    )
    return LossGuard(**{**params, **overrides})


@pytest.mark.parametrize("loss", [math.nan, math.inf, -math.inf])
def test_nonfinite_losses_are_always_bad(loss):
    assert "non-finite" in guard(spike_factor=None).check_loss(loss)


def test_spikes_are_judged_only_once_the_average_has_seen_its_time_constant():
    g = guard(average_decay=0.75)  # time constant 1 / (1 - 0.75) = 4 good steps
    assert g.trusted_after == 4
    for _ in range(3):
        assert g.check_loss(100.0) is None  # too young an average to call anything a spike
        g.record_good(1.0)
    g.record_good(1.0)
    assert g.running_average() == pytest.approx(1.0)  # bias-corrected: 1.0, not (1 - 0.75**4)
    assert g.check_loss(3.9) is None
    assert "4.5x its running average" in g.check_loss(4.5)
    assert guard(spike_factor=None, average_decay=0.0).check_loss(1e9) is None


def test_a_learned_task_is_judged_against_the_floor_not_its_tiny_average():
    """At a running loss of 1e-7 a 1e-5 step is 100x the average and still harmless (a 3x3 chain
    model at convergence was rolled back three times and stopped as diverged for such steps)."""
    converged = guard(spike_floor=0.01)
    for _ in range(4):
        converged.record_good(1e-7)
    assert converged.check_loss(1e-5) is None and converged.check_loss(0.039) is None
    assert "x its running average" in converged.check_loss(0.041)  # 4 x the floor
    assert "non-finite" in converged.check_loss(math.nan)
    unfloored = guard(spike_floor=0.0)
    for _ in range(4):
        unfloored.record_good(1e-7)
    assert "x its running average" in unfloored.check_loss(1e-5)
    above = guard(spike_floor=0.01)  # an average above the floor is judged as before
    for _ in range(4):
        above.record_good(1.0)
    assert above.check_loss(3.9) is None and "x its running average" in above.check_loss(4.1)
    with pytest.raises(ValueError, match="spike_floor"):
        guard(spike_floor=-1.0)


def test_a_spike_over_a_running_average_of_zero_is_reported_not_divided_by():
    """Issue 22 item 18: a task learned to a loss of 0.0 with no floor raised ZeroDivisionError."""
    g = guard(spike_floor=0.0)
    for _ in range(4):
        g.record_good(0.0)
    assert g.running_average() == 0.0
    assert g.check_loss(0.0) is None
    assert g.check_loss(1e-3) == "loss 0.001 is over 4x its running average 0"


def test_a_restarted_average_forgets_the_old_losses_and_keeps_the_rest():
    """At a curriculum's stage change: the new stage is judged by its own losses only."""
    g = guard(average_decay=0.75)
    for _ in range(4):
        g.record_good(0.1)
    g.record_bad(step=5)
    assert "x its running average" in g.check_loss(1.0)
    g.restart_average()
    assert g.running_average() is None and g.check_loss(1.0) is None  # young again: no spikes yet
    assert g.lr_scale() == 0.5 and g.bad_steps == 1  # the emergency scale and the counts stay
    for _ in range(4):
        g.record_good(1.0)
    assert g.running_average() == pytest.approx(1.0)  # nothing of the 0.1s left
    assert "x its running average" in g.check_loss(4.5)


def test_each_bad_step_cuts_the_scale_which_recovers_geometrically_to_one():
    g = guard(recovery_steps=4)
    assert g.lr_scale() == 1.0
    g.record_bad(step=10)
    assert g.lr_scale() == 0.5
    g.record_bad(step=11)
    assert g.lr_scale() == 0.25  # cuts compound
    scales = []
    for _ in range(4):
        g.record_good(1.0)
        scales.append(g.lr_scale())
    assert scales == pytest.approx([0.25**0.75, 0.25**0.5, 0.25**0.25, 1.0])
    assert scales[-1] == 1.0 and g.state_dict()["lr_floor"] == 1.0


def test_a_streak_of_bad_steps_asks_for_a_rollback_to_before_its_first_step():
    g = guard(rollback_after=3, max_rollbacks=1)
    assert not g.record_bad(20)
    g.record_good(1.0)  # a good step ends the streak
    assert [g.record_bad(step) for step in (22, 23, 24)] == [False, False, True]
    assert g.begin_rollback() == 22
    assert g.rollbacks == 1 and g.consecutive_bad == 0
    assert g.lr_scale() == pytest.approx(0.5**0.75 * 0.5**3), "the cut survives the rollback"
    for step in (21, 22, 23):
        g.record_bad(step)
    with pytest.raises(TrainingDiverged, match="diverged"):
        g.begin_rollback()


def test_state_round_trips_into_plain_python_values():
    g = guard()
    for loss in (3.0, 2.0):
        g.record_good(loss)
    g.record_bad(7)
    state = g.state_dict()
    assert all(isinstance(value, (int, float, type(None))) for value in state.values())
    restored = guard()
    restored.load_state_dict(state)
    assert restored.state_dict() == state and restored.lr_scale() == g.lr_scale()
    with pytest.raises(KeyError):
        restored.load_state_dict({"mystery": 1})


def test_scaled_learning_rate_applies_only_inside_and_restores_the_schedule():
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    with scaled_learning_rate(optimizer, 0.25):
        assert optimizer.param_groups[0]["lr"] == 0.1 * 0.25
    assert optimizer.param_groups[0]["lr"] == 0.1
    with pytest.raises(RuntimeError):
        with scaled_learning_rate(optimizer, 0.5):
            raise RuntimeError("optimizer step failed")
    assert optimizer.param_groups[0]["lr"] == 0.1
