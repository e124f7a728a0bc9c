"""Run directories on disk: RunDir (run_dir.py) over the primitives of run_files.py, the lock,
checkpoint files (checkpoint_file.py) and their manifest, the Checkpointer (checkpoint_policy.py),
and rebuilding a trained model from a run (inference.py).

Calling the package, `latentrun.runs(...)`, is the API's list table: the top-level package makes it
callable (latentrun/__init__.py), so that nothing here imports upward.
"""
