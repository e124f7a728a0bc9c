"""Every shipped experiment validates, builds, and runs a forward and backward pass."""

import pathlib

import pytest
import torch
from support import EXPERIMENTS

from latentrun import config
from latentrun.config.build import build_components
from latentrun.train.objective import step_loss
from latentrun.train.schedules import TeacherForcing

# One recipe per size, one model or method each: the latent models and the chain-of-thought methods.
COMPARED = ("simple", "pause", "recurrent", "supervised", "bai", "cot", "coconut", "internalized")
# Length generalization: one per method, trained on 1-3 digits with room for 5.
LENGEN = ("simple", "supervised", "cot", "coconut", "internalized")
EXPERIMENT_FILES = sorted(EXPERIMENTS.glob("*.yaml"))
SCHEMA_LINE = "# yaml-language-server: $schema=../schemas/experiment.schema.json"


def test_the_expected_experiments_ship():
    names = {path.stem for path in EXPERIMENT_FILES}
    assert {"smoke", "simple_2digit", "latent_2digit", "simple_3digit", "latent_3digit"} <= names
    compared = {f"compare_{digits}digit_{kind}" for digits in (2, 3) for kind in COMPARED}
    assert compared | {"latent_4digit_gpu", "simple_4digit_gpu"} <= names
    assert {f"lengen_3digit_{kind}" for kind in LENGEN} <= names


FAMILIES = {
    "compare_2digit": [f"compare_2digit_{kind}" for kind in COMPARED],
    "compare_3digit": [f"compare_3digit_{kind}" for kind in COMPARED],
    "gpu_4digit": ["simple_4digit_gpu", "latent_4digit_gpu"],
    "lengen_3digit": [f"lengen_3digit_{kind}" for kind in LENGEN],
}


@pytest.mark.parametrize("family", FAMILIES)
def test_compared_experiments_differ_only_in_the_model_and_supervision(family):
    """Equal data, optimizer, schedule and step budget; parameter counts within 10%. The chain
    methods differ besides in their curriculum, which says what they write at each step."""
    names = FAMILIES[family]
    resolved = [config.load(EXPERIMENTS / f"{name}.yaml") for name in names]
    for other in resolved[1:]:
        # Latent forcing exists only for supervised recurrent latents, so a plain twin cannot share it.
        changed = {
            key.split(".")[0] for key in config.diff(resolved[0], other) if not key.startswith("train.latent_forcing")
        }
        assert changed <= {"experiment", "model", "loss", "curriculum"}, changed
        assert {k for k in config.diff(resolved[0]["loss"], other["loss"])} <= {
            "latent_supervision_weight",
            "column_sum_weight",
        }
    counts = [build_components(c, torch.device("cpu")).model.num_parameters() for c in resolved]
    assert max(counts) / min(counts) < 1.1, counts


def test_the_length_generalization_family_leaves_room_and_reads_places():
    """Trained on at most 3 digits, with operand fields of 5, so that eval --max-digits 5 can write
    the longer operands; every model reads Abacus places, the option made for reading them."""
    for kind in LENGEN:
        resolved = config.load(EXPERIMENTS / f"lengen_3digit_{kind}.yaml")
        assert (resolved["dataset"]["max_digits"], resolved["dataset"]["operand_width"]) == (3, 5), kind
        assert resolved["model"]["position"] == "abacus" and resolved["model"]["abacus_max_offset"] > 0, kind


def test_best_4digit_twins_share_data_optimizer_and_budget():
    """best_4digit_simple is best_4digit answering directly: same data, optimizer, schedule and steps."""
    chain, simple = (config.load(EXPERIMENTS / f"{name}.yaml") for name in ("best_4digit", "best_4digit_simple"))
    for section in ("dataset", "optimizer", "scheduler"):
        assert chain[section] == simple[section], section
    assert chain["train"] == simple["train"]
    counts = [build_components(c, torch.device("cpu")).model.num_parameters() for c in (chain, simple)]
    assert max(counts) <= 1_000_000, counts


def test_the_icot_chain_stage_differs_from_the_running_sum_stage_in_its_chain_and_length_only():
    running_sums = config.load(EXPERIMENTS / "best_4digit_cot_4layer.yaml")
    icot = config.load(EXPERIMENTS / "best_4digit_cot_icot.yaml")
    assert (running_sums["model"].pop("chain"), icot["model"].pop("chain")) == ("running_sums", "partial_products")
    assert (running_sums["train"].pop("max_steps"), icot["train"].pop("max_steps")) == (8000, 3000)
    for key in ("experiment", "experiment_file"):
        running_sums.pop(key, None), icot.pop(key, None)
    assert running_sums == icot


def test_best_4digit_latent_supervises_each_latent_with_an_icot_step_on_exactly_4_digits():
    latent = config.load(EXPERIMENTS / "best_4digit_latent.yaml")
    # ICoT's chain at 4 digits with each sum and the product held twice: p0 p1 s2 s2 p2 s3 s3 p3
    # product product, one latent each, none idle.
    assert (latent["model"]["chain"], latent["model"]["num_latent"]) == ("partial_products_twice", 10)
    assert latent["loss"]["latent_supervision_weight"] > 0
    assert (latent["dataset"]["min_digits"], latent["dataset"]["max_digits"]) == (4, 4)
    assert sorted(pathlib.Path(p).name for p in latent["dataset"]["exclude"]) == ["4x4_test.txt", "5x5_test.txt"]
    assert build_components(latent, torch.device("cpu")).model.num_parameters() == 439_120  # docs/results.md
    # graded on the average of its weights from the end of latent forcing on, the cosine down to 0
    assert latent["train"]["weight_average"] == {"decay": 0.999, "start_step": 16_000}
    assert latent["train"]["latent_forcing"]["end_step"] == 16_000 and latent["scheduler"]["min_lr_ratio"] == 0.0


def test_best_4digit_direct_is_the_latent_recipe_under_its_own_name():
    """Target 1 (nothing written but the product) is met by the latent recipe: the same config, bar the name."""
    direct = config.load(EXPERIMENTS / "best_4digit_direct.yaml")
    latent = config.load(EXPERIMENTS / "best_4digit_latent.yaml")
    assert direct["experiment"] == "best_4digit_direct"
    assert {**direct, "experiment": "best_4digit_latent"} == latent
    assert direct["model"]["name"] == "latent_transformer"  # writes only the answer; latents are not written


def test_best_5digit_direct_is_the_latent_recipe_one_digit_up():
    """Target 3's attempt: the 4-digit latent recipe at exactly 5 digits, its schedule stretched 1.5x."""
    direct = config.load(EXPERIMENTS / "best_5digit_direct.yaml")
    latent = config.load(EXPERIMENTS / "best_4digit_latent.yaml")
    # p0 p1 s2 s2 p2 s3 s3 p3 s4 s4 p4 product product: 13 steps, one latent each, none idle
    assert (direct["model"]["chain"], direct["model"]["num_latent"]) == ("partial_products_twice", 13)
    assert (direct["dataset"]["min_digits"], direct["dataset"]["max_digits"]) == (5, 5)
    assert direct["dataset"]["exclude"] == latent["dataset"]["exclude"]
    assert direct["train"]["max_steps"] == 60_000 and direct["train"]["weight_average"]["start_step"] == 24_000
    assert (
        direct["train"]["latent_forcing"] | {"start_step": 4000, "end_step": 16000} == latent["train"]["latent_forcing"]
    )
    assert build_components(direct, torch.device("cpu")).model.num_parameters() == 445_156  # docs/results.md
    unchanged = ("loss", "optimizer", "scheduler")
    assert {k: direct[k] for k in unchanged} == {k: latent[k] for k in unchanged}


@pytest.mark.parametrize("path", EXPERIMENT_FILES, ids=lambda p: p.name)
def test_experiment_validates_and_builds(path):
    assert path.read_text().splitlines()[0] == SCHEMA_LINE
    resolved = config.load(path)
    assert resolved["experiment"] == path.stem
    parts = build_components(resolved, torch.device("cpu"))
    batch = parts.task.train_batch(1, 2)
    train = resolved["train"]
    ratio = TeacherForcing(**train["teacher_forcing"])(train["max_steps"])  # scheduled sampling too, if any
    chain = parts.curriculum.chain if parts.curriculum is not None else None
    if parts.curriculum is not None:  # the final stage's layout, where a curriculum thinks or writes least
        parts.curriculum.begin_step(train["max_steps"], parts.model, parts.optimizer)
    output = step_loss(
        parts.model,
        parts.loss_fn,
        batch,
        teacher_forcing=ratio,
        operand_width=parts.task.operand_width,
        chain=chain,
    )
    output.loss.backward()
    parts.optimizer.step()
    parts.scheduler.step()
    assert torch.isfinite(output.loss)


def test_latent_3digit_keeps_the_original_defaults():
    resolved = config.load(EXPERIMENTS / "latent_3digit.yaml")
    model, train = resolved["model"], resolved["train"]
    assert (model["d_model"], model["num_layers"], model["num_latent"]) == (384, 4, 8)
    assert (train["batch_size"], train["max_steps"], train["save_every"]) == (256, 10000, 50)
    assert resolved["loss"] == {
        "name": "combined",
        "accuracy_weight": 0.5,
        "latent_supervision_weight": 0.0,
        "column_sum_weight": 0.0,
    }
    assert resolved["scheduler"]["name"] == "warmup_cosine"
