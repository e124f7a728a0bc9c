"""The weight average against values worked out by hand (decays and weights chosen so that every
intermediate is exact in fp32)."""

import torch
from torch import nn

from latentrun.train.averaging import WeightAverage


class OneWeight(nn.Module):
    """One parameter and one buffer, set by hand between updates."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(2))
        self.register_buffer("count", torch.zeros(()))

    def set(self, *values: float, count: float = 0.0) -> None:
        with torch.no_grad():
            self.weight.copy_(torch.tensor(values))
            self.count.fill_(count)


def fed(decay: float, *weights: tuple[float, float]) -> tuple[OneWeight, WeightAverage]:
    """A model and its average (from update 1) after updates that left `weights`, one pair an update."""
    model = OneWeight()
    average = WeightAverage(model, decay=decay, start_step=0)
    for step, values in enumerate(weights, start=1):
        model.set(*values)
        average.update(step)
    return model, average


def averaged(average: WeightAverage) -> list[float]:
    assert average.module is not None
    return average.module.weight.tolist()


def test_the_average_starts_as_a_copy_at_start_step_then_moves_by_one_minus_decay():
    model = OneWeight()
    average = WeightAverage(model, decay=0.75, start_step=3)
    model.set(100.0, -100.0)
    average.update(1)
    average.update(2)
    assert average.module is None and average.state_dict() is None  # before start_step: nothing kept
    model.set(4.0, 8.0, count=3)
    average.update(3)
    assert averaged(average) == [4.0, 8.0]
    model.set(8.0, 0.0, count=4)
    average.update(4)
    assert averaged(average) == [5.0, 6.0]  # 0.75 * 4 + 0.25 * 8, 0.75 * 8 + 0.25 * 0
    model.set(0.0, 2.0, count=5)
    average.update(5)
    assert averaged(average) == [3.75, 5.0]  # 0.75 * 5 + 0, 0.75 * 6 + 0.25 * 2
    assert average.module is not None and float(average.module.count) == 5.0  # buffers follow the model
    assert model.weight.tolist() == [0.0, 2.0]  # the live weights are untouched
    assert not any(p.requires_grad for p in average.module.parameters())


def test_a_restart_drops_the_average_and_the_next_update_starts_it_again():
    model, average = fed(0.5, (2.0, 2.0), (4.0, 0.0))
    assert averaged(average) == [3.0, 1.0]
    average.restart()
    assert average.module is None
    model.set(10.0, 20.0)
    average.update(3)
    assert averaged(average) == [10.0, 20.0]


def test_decay_zero_keeps_no_average():
    _, average = fed(0.0, (1.0, 0.0), (2.0, 0.0), (3.0, 0.0))
    assert not average.enabled and average.module is None and average.state_dict() is None


def test_state_dict_round_trip_continues_the_same_average():
    model, average = fed(0.5, (2.0, 6.0), (4.0, 2.0))
    saved = average.state_dict()
    assert saved is not None
    resumed = WeightAverage(model, decay=0.5, start_step=0)
    resumed.load_state_dict({name: tensor.clone() for name, tensor in saved.items()})
    model.set(7.0, 0.0)
    average.update(3)
    resumed.update(3)
    assert averaged(resumed) == averaged(average) == [5.0, 2.0]  # 0.5 * (3, 4) + 0.5 * (7, 0)
    resumed.load_state_dict(None)
    assert resumed.module is None
