"""The one place that imports every component module, so that each registers itself."""

from latentrun.models import latent as models  # noqa: F401  (imported for registration)
from latentrun.task import multiplication as data  # noqa: F401  (imported for registration)
from latentrun.train import (
    losses,  # noqa: F401  (imported for registration)
    optim,  # noqa: F401  (imported for registration)
    schedules,  # noqa: F401  (imported for registration)
)

__all__ = ["data", "losses", "models", "optim", "schedules"]
