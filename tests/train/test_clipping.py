"""latentrun.train.clipping: fixed and AutoClip thresholds, the norm history, and its checkpoint state."""

import numpy as np
import pytest
import torch

from latentrun.train.clipping import GradClipper


def params_with_grad_norm(norm: float) -> list[torch.nn.Parameter]:
    """Two parameters whose gradients have global L2 norm `norm`."""
    a, b = torch.nn.Parameter(torch.zeros(3)), torch.nn.Parameter(torch.zeros(4))
    a.grad = torch.tensor([3.0, 0.0, 0.0]) * norm / 5
    b.grad = torch.tensor([4.0, 0.0, 0.0, 0.0]) * norm / 5
    return [a, b]


def total_norm(params) -> float:
    return float(torch.cat([p.grad for p in params]).norm())


def test_fixed_mode_clips_to_max_norm_and_keeps_no_history():
    clipper = GradClipper("fixed", max_norm=1.0, percentile=10, window=5)
    params = params_with_grad_norm(10.0)
    norm, threshold = clipper.clip(params)
    assert float(norm) == pytest.approx(10.0) and threshold == 1.0
    assert total_norm(params) == pytest.approx(1.0, rel=1e-5)
    assert clipper.state_dict() == {"history": []}


def test_autoclip_threshold_is_a_percentile_of_the_recent_window_capped_by_max_norm():
    clipper = GradClipper("autoclip", max_norm=100.0, percentile=50, window=3)
    thresholds = [clipper.clip(params_with_grad_norm(norm))[1] for norm in (4.0, 2.0, 6.0, 8.0)]
    # The window keeps the last three norms, this step's included: medians of [4], [4,2], [4,2,6], [2,6,8].
    assert thresholds == pytest.approx([4.0, 3.0, 4.0, 6.0], rel=1e-6)
    assert clipper.state_dict()["history"] == pytest.approx([2.0, 6.0, 8.0], rel=1e-6)
    capped = GradClipper("autoclip", max_norm=1.5, percentile=50, window=3)
    params = params_with_grad_norm(4.0)
    assert capped.clip(params)[1] == 1.5
    assert total_norm(params) == pytest.approx(1.5, rel=1e-5)


def test_autoclip_clips_gradients_to_the_threshold():
    clipper = GradClipper("autoclip", max_norm=100.0, percentile=10, window=100)
    for norm in (1.0, 1.0, 1.0):
        clipper.clip(params_with_grad_norm(norm))
    params = params_with_grad_norm(50.0)
    _, threshold = clipper.clip(params)
    expected = np.percentile([1.0, 1.0, 1.0, 50.0], 10)
    assert threshold == pytest.approx(expected, rel=1e-6)
    assert total_norm(params) == pytest.approx(expected, rel=1e-5)


def test_nonfinite_norms_stay_out_of_the_history():
    clipper = GradClipper("autoclip", max_norm=10.0, percentile=50, window=10)
    clipper.clip(params_with_grad_norm(2.0))
    clipper.clip(params_with_grad_norm(float("inf")))
    assert clipper.state_dict()["history"] == pytest.approx([2.0])


def test_state_round_trips_exactly_and_keeps_the_window():
    clipper = GradClipper("autoclip", max_norm=10.0, percentile=10, window=4)
    for norm in (0.3, 0.7, 1.1, 0.2, 0.9):
        clipper.clip(params_with_grad_norm(norm))
    restored = GradClipper("autoclip", max_norm=10.0, percentile=10, window=4)
    restored.load_state_dict(clipper.state_dict())
    assert restored.state_dict() == clipper.state_dict() and len(restored.history) == 4
    assert restored.threshold() == clipper.threshold()
    params_a, params_b = params_with_grad_norm(3.0), params_with_grad_norm(3.0)
    assert clipper.clip(params_a)[1] == restored.clip(params_b)[1]


@pytest.mark.parametrize("kwargs", [dict(mode="sometimes"), dict(percentile=0), dict(percentile=101), dict(window=0)])
def test_bad_arguments_are_refused(kwargs):
    with pytest.raises(ValueError):
        GradClipper(**{**dict(mode="autoclip", max_norm=1.0, percentile=10, window=10), **kwargs})
