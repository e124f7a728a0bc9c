"""Run directories on disk: paths, meta.json and history, the lock, checkpoints and their manifest,
and rebuilding a trained model from a run."""
