"""latentrun: YAML-driven experiments on whether latent tokens help small transformers multiply."""

__version__ = "0.1.0"
