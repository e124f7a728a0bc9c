"""latentrun.train.rng: every global random stream a step draws on survives a checkpoint round trip."""

import random

import numpy as np
import torch

from latentrun.runs import checkpoint_file
from latentrun.train.rng import capture_rng, restore_rng


def test_rng_capture_restore_round_trips_every_stream(tmp_path):
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    random.random(), np.random.rand(), torch.rand(1)
    path = tmp_path / "state.pt"
    checkpoint_file.save(path, {"step": 1, "model": {}, "rng": capture_rng()})
    expected = (random.random(), np.random.rand(), torch.rand(3))
    random.seed(99), np.random.seed(99), torch.manual_seed(99)
    restore_rng(checkpoint_file.load(path)["rng"])
    again = (random.random(), np.random.rand(), torch.rand(3))
    assert expected[0] == again[0] and expected[1] == again[1] and torch.equal(expected[2], again[2])
