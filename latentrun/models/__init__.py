"""Models for the multiplication task; importing this package registers them in `MODELS`
(`latent_transformer`, and `simple_transformer`, the same class with no latents)."""

from latentrun.models.latent import LatentTransformer, simple_transformer

__all__ = ["LatentTransformer", "simple_transformer"]
