import os
import pickle
import random

import numpy as np
import pytest
import torch

from latentrun import checkpoint


def test_rng_capture_restore_round_trips_every_stream(tmp_path):
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    random.random(), np.random.rand(), torch.rand(1)
    path = tmp_path / "state.pt"
    checkpoint.save(path, {"step": 1, "model": {}, "rng": checkpoint.capture_rng()})
    expected = (random.random(), np.random.rand(), torch.rand(3))
    random.seed(99), np.random.seed(99), torch.manual_seed(99)
    checkpoint.restore_rng(checkpoint.load(path)["rng"])
    again = (random.random(), np.random.rand(), torch.rand(3))
    assert expected[0] == again[0] and expected[1] == again[1] and torch.equal(expected[2], again[2])


def test_save_is_atomic_and_leaves_no_temporary_files(tmp_path, monkeypatch):
    path = tmp_path / checkpoint.step_file_name(10)
    checkpoint.save(path, {"step": 10, "model": {"w": torch.ones(2)}})

    def broken_save(obj, handle):
        handle.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError):
        checkpoint.save(tmp_path / checkpoint.step_file_name(20), {"step": 20, "model": {}})
    assert sorted(os.listdir(tmp_path)) == ["step_00000010.pt"]
    assert checkpoint.load(path)["step"] == 10


class Payload:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_pickle_payloads_are_refused_not_executed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "step_00000001.pt"
    with open(path, "wb") as handle:
        pickle.dump({"step": 1, "model": Payload()}, handle)
    with pytest.raises(checkpoint.CheckpointError, match="unreadable"):
        checkpoint.load(path)
    assert not (tmp_path / "pwned").exists()


def test_truncated_and_foreign_files_are_checkpoint_errors(tmp_path):
    good = tmp_path / "step_00000001.pt"
    checkpoint.save(good, {"step": 1, "model": {"w": torch.ones(100)}})
    truncated = tmp_path / "step_00000002.pt"
    truncated.write_bytes(good.read_bytes()[:50])
    foreign = tmp_path / "step_00000003.pt"
    torch.save({"weights": 1}, foreign)
    for path in (truncated, foreign):
        with pytest.raises(checkpoint.CheckpointError):
            checkpoint.load(path)


def test_listing_and_pruning(tmp_path):
    for step in (50, 100, 150, 200):
        checkpoint.save(tmp_path / checkpoint.step_file_name(step), {"step": step, "model": {}})
    (tmp_path / checkpoint.BEST_FILE).write_bytes(b"")
    (tmp_path / ".step_00000250.pt.123.tmp").write_bytes(b"")
    assert [step for step, _ in checkpoint.step_checkpoints(tmp_path)] == [50, 100, 150, 200]
    checkpoint.prune(tmp_path, keep_last=2)
    assert [step for step, _ in checkpoint.step_checkpoints(tmp_path)] == [150, 200]
    assert (tmp_path / checkpoint.BEST_FILE).exists()
