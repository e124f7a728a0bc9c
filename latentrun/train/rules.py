"""Config rules of training (the loss and the `train` section) that span several keys. Torch-free:
validating a config imports this, not the training loop."""

from __future__ import annotations

from latentrun.core.rules import CrossProblem, Sections
from latentrun.models.rules import CHAIN_MODELS


def cross_problems(sections: Sections) -> list[CrossProblem]:
    """Step supervision has latents to supervise; a curriculum has a written chain to move along;
    teacher forcing's schedule does not run backwards."""
    found = []
    model, loss, train = sections.get("model"), sections.get("loss"), sections.get("train")
    curriculum = sections.get("curriculum")
    if model is not None and loss is not None:
        if loss.get("latent_supervision_weight", 0) > 0 and model.get("num_latent", 0) < 1:
            found.append(
                CrossProblem(
                    [("loss", "latent_supervision_weight"), ("model", "num_latent"), ("model", "name")],
                    f"step supervision needs latent tokens: a latent_transformer with num_latent >= 1 "
                    f"(model is {model['name']}{', num_latent 0' if 'num_latent' in model else ''})",
                )
            )
    if model is not None and curriculum is not None:
        if curriculum["name"] != "none" and model["name"] not in CHAIN_MODELS:
            found.append(
                CrossProblem(
                    [("curriculum", "name"), ("model", "name")],
                    f"curriculum {curriculum['name']} moves along a written chain: it needs model "
                    f"{' or '.join(CHAIN_MODELS)} (model is {model['name']})",
                )
            )
    if train is not None:
        tf = train["teacher_forcing"]
        if tf["end_step"] < tf["start_step"]:
            found.append(
                CrossProblem(
                    [
                        ("train", "teacher_forcing", "end_step"),
                        ("train", "teacher_forcing", "start_step"),
                        ("train", "teacher_forcing"),
                    ],
                    f"end_step ({tf['end_step']}) must be >= start_step ({tf['start_step']})",
                )
            )
    return found
