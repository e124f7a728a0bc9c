"""The one place that imports every component module, so that each registers itself."""

from latentrun.models import chain, latent  # noqa: F401  (imported for registration)
from latentrun.task import multiplication as data  # noqa: F401  (imported for registration)
from latentrun.train import (
    curriculum,  # noqa: F401  (imported for registration)
    losses,  # noqa: F401  (imported for registration)
    optim,  # noqa: F401  (imported for registration)
    schedules,  # noqa: F401  (imported for registration)
)

__all__ = ["chain", "curriculum", "data", "latent", "losses", "optim", "schedules"]
