"""Models for the multiplication task; importing this package registers them in `MODELS`."""

from latentrun.models.chain import ChainTransformer
from latentrun.models.latent import LatentTransformer
from latentrun.models.simple import SimpleTransformer

__all__ = ["ChainTransformer", "LatentTransformer", "SimpleTransformer"]
