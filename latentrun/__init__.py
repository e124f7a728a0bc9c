"""latentrun: YAML-driven experiments on whether latent tokens help small transformers multiply.

`latentrun.load(run)` and `latentrun.runs()` are the Python API (`latentrun.api`); they are looked up
on first use, so that importing latentrun (as every command does) imports no torch.
"""

from __future__ import annotations

import importlib
import types
from typing import Any

__version__ = "0.1.0"


class _CallableRunsPackage(types.ModuleType):
    """The subpackage latentrun.runs, which is what `latentrun.runs` names once anything imported it,
    called as the API's `runs(...)`."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return importlib.import_module("latentrun.api").runs(*args, **kwargs)


def __getattr__(name: str) -> Any:
    if name == "load":
        return importlib.import_module("latentrun.api").load
    raise AttributeError(f"module 'latentrun' has no attribute {name!r}")


# The runs package imports nothing heavy at its top, so making it callable here costs nothing and
# holds however it was first imported (`import latentrun.runs.run_dir` also runs this file first).
from latentrun import runs  # noqa: E402

runs.__class__ = _CallableRunsPackage
