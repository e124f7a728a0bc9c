"""latentrun: YAML-driven experiments on whether latent tokens help small transformers multiply.

`latentrun.load(run)` and `latentrun.runs()` are the Python API (`latentrun.api`); they are looked up
on first use, so that importing latentrun (as every command does) imports no torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "load":
        return importlib.import_module("latentrun.api").load
    if name == "runs":  # the subpackage latentrun.runs, which calls api.runs when called
        return importlib.import_module("latentrun.runs")
    raise AttributeError(f"module 'latentrun' has no attribute {name!r}")
