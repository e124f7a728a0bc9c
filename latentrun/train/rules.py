"""Config rules of training (the loss and the `train` section) that span several keys. Torch-free:
validating a config imports this, not the training loop."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from latentrun.core.rules import CrossProblem, Sections
from latentrun.models.rules import CHAIN_MODELS


def cross_problems(sections: Sections) -> list[CrossProblem]:
    """Step supervision has latents to supervise; a curriculum has a written chain to move along;
    teacher forcing's schedule does not run backwards."""
    model, loss, train = sections.get("model"), sections.get("loss"), sections.get("train")
    curriculum, dataset = sections.get("curriculum"), sections.get("dataset")
    found = []
    if model is not None and loss is not None:
        found += _loss_problems(model, loss)
    if model is not None and curriculum is not None:
        found += _curriculum_problems(model, curriculum)
    if loss is not None and dataset is not None and loss.get("column_sum_weight", 0) > 0 and not dataset["lsb_first"]:
        found.append(
            CrossProblem(
                [("loss", "column_sum_weight"), ("dataset", "lsb_first")],
                "the column-sum loss needs the product written least significant digit first (dataset.lsb_first: true)",
            )
        )
    if train is not None:
        found += _schedule_problems(train)
        if model is not None and loss is not None:
            found += _latent_forcing_problems(model, loss, train)
    return found


def _loss_problems(model: Mapping[str, Any], loss: Mapping[str, Any]) -> list[CrossProblem]:
    found = []
    if loss.get("latent_supervision_weight", 0) > 0 and model.get("num_latent", 0) < 1:
        found.append(
            CrossProblem(
                [("loss", "latent_supervision_weight"), ("model", "num_latent"), ("model", "name")],
                f"step supervision needs latent tokens: a latent_transformer with num_latent >= 1 "
                f"(model is {model['name']}{', num_latent 0' if 'num_latent' in model else ''})",
            )
        )
    if model["name"] not in CHAIN_MODELS and model.get("chain", "running_sums") != "running_sums":
        if loss.get("latent_supervision_weight", 0) <= 0:
            found.append(
                CrossProblem(
                    [("model", "chain"), ("loss", "latent_supervision_weight")],
                    f"{model['chain']} names the steps supervised latents hold: it needs "
                    f"loss.latent_supervision_weight > 0",
                )
            )
    if loss.get("column_sum_weight", 0) > 0 and model["name"] in CHAIN_MODELS:
        found.append(
            CrossProblem(
                [("loss", "column_sum_weight"), ("model", "name")],
                f"the column-sum loss reads the answer positions of a model that writes nothing else: "
                f"simple_transformer or latent_transformer (model is {model['name']})",
            )
        )
    return found


def _curriculum_problems(model: Mapping[str, Any], curriculum: Mapping[str, Any]) -> list[CrossProblem]:
    found = []
    if curriculum["name"] != "none" and model["name"] not in CHAIN_MODELS:
        found.append(
            CrossProblem(
                [("curriculum", "name"), ("model", "name")],
                f"curriculum {curriculum['name']} moves along a written chain: it needs model "
                f"{' or '.join(CHAIN_MODELS)} (model is {model['name']})",
            )
        )
    if curriculum.get("removal_smoothing") is not None and model.get("position") == "abacus":
        found.append(
            CrossProblem(
                [("curriculum", "removal_smoothing"), ("model", "position")],
                "removal smoothing gives each example its own removal, which Abacus place ids "
                "(one layout per batch) cannot follow; use position: learned or removal_smoothing: null",
            )
        )
    return found


def _schedule_problems(train: Mapping[str, Any]) -> list[CrossProblem]:
    found = []
    average = train.get("weight_average", {"decay": 0.0})
    if average["decay"] > 0 and average["start_step"] >= train["max_steps"]:
        found.append(
            CrossProblem(
                [("train", "weight_average", "start_step"), ("train", "max_steps"), ("train", "weight_average")],
                f"the average starts at update {average['start_step']} and training ends at update "
                f"{train['max_steps']}: it would average nothing (start_step must be < max_steps)",
            )
        )
    for schedule in ("teacher_forcing", "latent_forcing"):
        tf = train[schedule]
        if tf["end_step"] < tf["start_step"]:
            found.append(
                CrossProblem(
                    [("train", schedule, "end_step"), ("train", schedule, "start_step"), ("train", schedule)],
                    f"end_step ({tf['end_step']}) must be >= start_step ({tf['start_step']})",
                )
            )
    return found


def latent_forcing_active(train: Mapping[str, Any]) -> bool:
    """Whether `train.latent_forcing` ever forces a latent (its defaults, all 0, never do)."""
    lf = train["latent_forcing"]
    return lf["start_step"] > 0 or lf["end_step"] > 0 or lf["min_ratio"] > 0


def _latent_forcing_problems(model: Mapping, loss: Mapping, train: Mapping) -> list[CrossProblem]:
    """Latent forcing feeds a latent its true running sum: only recurrent latents have an input to
    replace, only step supervision makes a latent hold a running sum, and latent 0 has none before it."""
    if not latent_forcing_active(train):
        return []
    needs = []
    if model.get("latent_mode") != "recurrent":
        needs.append(("model", "latent_mode"))
    if model.get("num_latent", 0) < 2:
        needs.append(("model", "num_latent"))
    if loss.get("latent_supervision_weight", 0) <= 0:
        needs.append(("loss", "latent_supervision_weight"))
    if not needs:
        return []
    shown = "".join(f", {key[1]} {model.get(key[1], loss.get(key[1]))}" for key in needs)
    return [
        CrossProblem(
            [("train", "latent_forcing"), *needs, ("model", "name")],
            "latent forcing needs a latent_transformer with latent_mode recurrent, num_latent >= 2 and "
            f"loss.latent_supervision_weight > 0 (model is {model['name']}{shown})",
        )
    ]
