"""Which pairs a run trains on, picks its checkpoint on and is graded on, judged by the split rule
recomputed here in plain Python integers rather than by the task's own `pair_hash`/`is_held_out`.

The rule (the contract of "held-out"): a pair's fraction is splitmix64 of (a << 32 | b), its top 53
bits over 2**53; with f = dataset.holdout_fraction, a pair with fraction < f is never trained on,
[0, f/2) is the validation split's range and [f/2, f) the test split's.
"""

from __future__ import annotations

import pytest
from helpers import FAST, run_cli
from support import SMOKE
from torch import Tensor

from latentrun.task.multiplication import MultiplicationTask
from latentrun.train import trainer as trainer_module

MASK64 = (1 << 64) - 1
SMOKE_HOLDOUT = 0.1  # smoke.yaml leaves dataset.holdout_fraction at its default
SMOKE_SPLIT_SIZE = 200  # smoke.yaml's val_size and test_size


def fraction(a: int, b: int) -> float:
    """splitmix64 (Steele et al. 2014) of the pair's 64-bit key, as a float in [0, 1)."""
    z = (((a << 32) | b) + 0x9E3779B97F4A7C15) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    z ^= z >> 31
    return (z >> 11) / 2**53


def pairs(a: Tensor, b: Tensor) -> list[tuple[int, int]]:
    return list(zip(a.tolist(), b.tolist()))


def split_of(pair: tuple[int, int], holdout: float) -> str:
    value = fraction(*pair)
    return "train" if value >= holdout else "val" if value < holdout / 2 else "test"


def test_the_oracle_is_splitmix64():
    """Key 0 gives splitmix64's first output from state 0, the published 0xE220A8397B1DCDAF."""
    assert fraction(0, 0) == (0xE220A8397B1DCDAF >> 11) / 2**53


def task(holdout: float) -> MultiplicationTask:
    sizes = dict(min_digits=1, max_digits=3, operand_width=None, product_width=None, val_size=300, test_size=300)
    return MultiplicationTask(
        **sizes, lsb_first=True, zero_pad=True, sampling="digits", holdout_fraction=holdout, exclude=(), seed=5
    )


@pytest.mark.parametrize("holdout", [0.1, 0.5])
def test_training_batches_over_many_steps_hold_no_held_out_pair(holdout):
    multiplication = task(holdout)
    batches = [multiplication.train_batch(step, 128) for step in range(200)]
    drawn = [pair for batch in batches for pair in pairs(batch.a, batch.b)]
    held_out = [pair for pair in drawn if split_of(pair, holdout) != "train"]
    assert not held_out, f"{len(held_out)} of {len(drawn)} trained pairs are held out, e.g. {held_out[:3]}"


@pytest.mark.parametrize("holdout", [0.1, 0.5])
def test_each_split_holds_only_pairs_of_its_own_range(holdout):
    multiplication = task(holdout)
    for name in ("val", "test"):
        drawn = pairs(multiplication.split(name).a, multiplication.split(name).b)
        assert len(set(drawn)) == len(drawn) == 300
        assert {split_of(pair, holdout) for pair in drawn} == {name}


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """One smoke run, with every training batch and every split the trainer grades recorded on the way."""
    seen: dict[str, list[tuple[int, int]]] = {"train": [], "val": [], "test": []}
    graded: list[str] = []
    train_batch, evaluate = MultiplicationTask.train_batch, trainer_module.evaluate

    def recording_train_batch(self, step, batch_size, rank=0):
        batch = train_batch(self, step, batch_size, rank)
        seen["train"] += pairs(batch.a, batch.b)
        return batch

    def recording_evaluate(model, split, loss_fn, batch_size, device, operand_width, prefix="val"):
        graded.append(prefix)
        seen[prefix] += pairs(split.a, split.b)
        return evaluate(model, split, loss_fn, batch_size, device, operand_width, prefix)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(MultiplicationTask, "train_batch", recording_train_batch)
        patch.setattr(trainer_module, "evaluate", recording_evaluate)
        assert run_cli(SMOKE, "--runs-dir", tmp_path_factory.mktemp("oracle"), *FAST) == 0
    return seen, graded


def test_the_final_grade_is_on_exactly_the_test_splits_pairs(recorded):
    seen, graded = recorded
    assert graded == ["val", "val", "test"]  # eval_every 20 of 40 steps, then the figure of record
    test_pairs = seen["test"]
    assert len(set(test_pairs)) == len(test_pairs) == SMOKE_SPLIT_SIZE
    outside = [pair for pair in test_pairs if split_of(pair, SMOKE_HOLDOUT) != "test"]
    assert not outside, f"{len(outside)} graded pairs are not test-split pairs, e.g. {outside[:3]}"


def test_validation_and_training_keep_to_their_own_pairs(recorded):
    seen, _ = recorded
    assert len(seen["val"]) == 2 * SMOKE_SPLIT_SIZE and {split_of(p, SMOKE_HOLDOUT) for p in seen["val"]} == {"val"}
    assert len(seen["train"]) == 40 * 32  # smoke.yaml: 40 steps of 32
    assert {split_of(pair, SMOKE_HOLDOUT) for pair in seen["train"]} == {"train"}
