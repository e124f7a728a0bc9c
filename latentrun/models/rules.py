"""Config rules of the models that span several keys. Torch-free: validating a config imports this,
not the models."""

from __future__ import annotations

from latentrun.core.rules import CrossProblem, Sections

# Models that write a chain of intermediate results before the product: the ones a curriculum
# moves along, and the ones built with the chain's length rather than a latent probe.
CHAIN_MODELS = ("chain_transformer",)


def cross_problems(sections: Sections) -> list[CrossProblem]:
    """Attention splits d_model evenly across the heads."""
    model = sections.get("model")
    if model is not None and "num_heads" in model and model["d_model"] % model["num_heads"]:
        return [
            CrossProblem(
                [("model", "num_heads"), ("model", "d_model")],
                f"num_heads ({model['num_heads']}) must divide d_model ({model['d_model']})",
            )
        ]
    return []
