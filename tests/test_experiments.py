"""Every shipped experiment validates, builds, and runs a forward and backward pass."""
from pathlib import Path

import pytest
import torch

from latentrun import config
from latentrun.build import build_components

EXPERIMENTS = sorted((Path(__file__).resolve().parents[1] / "experiments").glob("*.yaml"))
SCHEMA_LINE = "# yaml-language-server: $schema=../schemas/experiment.schema.json"


def test_the_expected_experiments_ship():
    names = {path.stem for path in EXPERIMENTS}
    assert {"smoke", "simple_2digit", "latent_2digit", "simple_3digit", "latent_3digit"} <= names


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.name)
def test_experiment_validates_and_builds(path):
    assert path.read_text().splitlines()[0] == SCHEMA_LINE
    resolved = config.load(path)
    assert resolved["experiment"] == path.stem
    parts = build_components(resolved, torch.device("cpu"))
    batch = parts.task.train_batch(1, 2)
    output = parts.loss_fn(parts.model(batch.prompt, batch.answer), batch.answer)
    output.loss.backward()
    parts.optimizer.step()
    parts.scheduler.step()
    assert torch.isfinite(output.loss)


def test_latent_3digit_keeps_the_original_defaults():
    resolved = config.load(Path(__file__).resolve().parents[1] / "experiments" / "latent_3digit.yaml")
    model, train = resolved["model"], resolved["train"]
    assert (model["d_model"], model["num_layers"], model["num_latent"]) == (384, 4, 8)
    assert (train["batch_size"], train["max_steps"], train["save_every"]) == (256, 10000, 50)
    assert resolved["loss"] == {"name": "combined", "accuracy_weight": 0.5, "latent_supervision_weight": 0.0}
    assert resolved["scheduler"]["name"] == "warmup_cosine"
