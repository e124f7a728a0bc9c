"""dataset.exclude: the pairs of other people's test sets are never trained on and never drawn
into a split, so that grading on those files measures held-out skill."""

import pytest
import torch

from latentrun import config
from latentrun.config import ConfigError
from latentrun.core.registry import DATASETS
from latentrun.task.multiplication import MultiplicationTask

# Every fifth pair of 1-digit operands, written by hand the way a user would: 20 of the 100 pairs.
EXCLUDED = {(a, b) for a in range(10) for b in range(10) if (a * 10 + b) % 5 == 0}


def task(tmp_path, **overrides) -> MultiplicationTask:
    """1-digit operands, the schema's defaults for the rest, excluding the pairs above."""
    path = tmp_path / "theirs.txt"
    path.write_text("".join(f"{a}*{b} = {a * b}\n" for a, b in sorted(EXCLUDED)))
    section = {"name": "multiplication", "max_digits": 1, "holdout_fraction": 0.2, "val_size": 5, "test_size": 5}
    resolved = config.resolve({"dataset": {**section, "exclude": [str(path)], **overrides}})["dataset"]
    return DATASETS.build(resolved, seed=0)


def pairs(a: torch.Tensor, b: torch.Tensor) -> set[tuple[int, int]]:
    return set(zip(a.tolist(), b.tolist()))


def test_training_never_draws_an_excluded_pair_but_draws_the_others(tmp_path):
    multiplication = task(tmp_path)
    seen: set[tuple[int, int]] = set()
    for step in range(1, 200):
        batch = multiplication.train_batch(step, 64)
        seen |= pairs(batch.a, batch.b)
    assert not seen & EXCLUDED
    # Every other pair that is not held out shows up: the filter removes those 20 pairs and no more.
    assert len(seen) >= 100 - len(EXCLUDED) - 20


def test_no_split_holds_an_excluded_pair(tmp_path):
    multiplication = task(tmp_path, val_size=100, test_size=100)  # asks for more than there are: takes all
    for name in ("val", "test"):
        split = multiplication.split(name)
        assert len(split) > 0 and not pairs(split.a, split.b) & EXCLUDED


def test_without_exclude_the_batches_are_what_they_were(tmp_path):
    """An empty exclude list draws the very batches a run drew before the key existed."""
    plain, with_empty = task(tmp_path, exclude=[]), task(tmp_path, exclude=[])
    reference = plain.train_batch(7, 32)
    assert torch.equal(with_empty.train_batch(7, 32).prompt, reference.prompt)
    assert plain.excluded.size == 0


def test_exclude_paths_are_relative_to_the_experiment_file(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "theirs.txt").write_text("3*4\n")
    experiment = tmp_path / "exp.yaml"
    experiment.write_text("experiment: x\ndataset:\n  name: multiplication\n  exclude: [data/theirs.txt]\n")
    resolved = config.load(experiment)
    assert resolved["dataset"]["exclude"] == [str(tmp_path / "data" / "theirs.txt")]


def test_a_missing_exclude_file_is_a_config_error_at_its_line(tmp_path):
    experiment = tmp_path / "exp.yaml"
    experiment.write_text("experiment: x\ndataset:\n  name: multiplication\n  exclude: [nowhere.txt]\n")
    with pytest.raises(ConfigError, match=r"exp\.yaml:4: dataset\.exclude: no such problem file"):
        config.load(experiment)
