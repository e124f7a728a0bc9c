"""The one place that imports every component module, so that each registers itself."""
from latentrun import data, losses, optim, schedules  # noqa: F401  (imported for registration)
from latentrun import models  # noqa: F401

__all__ = ["data", "losses", "models", "optim", "schedules"]
