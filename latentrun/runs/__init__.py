"""Run directories on disk: RunDir (run_dir.py) over the primitives of run_files.py, the lock,
checkpoint files (checkpoint_file.py) and their manifest, the Checkpointer (checkpoint_policy.py),
and rebuilding a trained model from a run.

The package is also the API's `latentrun.runs(...)`: a subpackage named `runs` is what
`latentrun.runs` means once anything imported it, so calling the package calls `latentrun.api.runs`.
"""

import sys
import types
from typing import Any


class _CallablePackage(types.ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from latentrun.api import runs

        return runs(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
