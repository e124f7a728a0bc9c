"""The Checkpointer, the policy over a run's checkpoint files: which ones it writes, keeps and goes back to.

It owns the three series in `RUN_DIR/checkpoints/` (regular `step_*.pt` every `save_every` steps,
`best.pt`, and `emergency_*.pt` after a skipped step), their retention (`keep_last` of each
series), and the search for the newest checkpoint that still loads, which both a resume and a
rollback need. The files themselves are written and verified by `runs.checkpoint_file`; the manifest
behind that records every one.

Under torchrun every rank holds a Checkpointer and calls it at the same steps (the state it is
handed gathers every rank's RNG streams); rank 0 alone writes.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from loguru import logger

from latentrun.runs import checkpoint_file
from latentrun.train import distributed
from latentrun.train.checkpoints_protocol import CheckpointError, State


class Checkpointer:
    """`train.checkpoints_protocol.Checkpoints` over one checkpoint folder."""

    def __init__(
        self,
        folder: Path,
        save_every: int = 1,
        keep_last: int = 1,
        on_save: Callable[[State], None] | None = None,
    ) -> None:
        self.folder = folder
        self.save_every = save_every
        self.keep_last = keep_last
        self.on_save = on_save  # rank 0, after each regular checkpoint: lets meta.json report progress

    def save(self, step: int, state: Callable[[], State], *, force: bool = False) -> bool:
        """Write step_N.pt every `save_every` steps or when `force`d (every rank calls it, rank 0
        writes); a failed write stops the run with CheckpointError, earlier checkpoints intact."""
        if not force and step % self.save_every:
            return False
        snapshot = state()
        path = self.folder / checkpoint_file.step_file_name(step)

        def write() -> None:
            try:
                checkpoint_file.save(path, snapshot)
            except CheckpointError as error:
                # Training on would leave nothing to come back to if this process died next.
                logger.error(f"step {step}: {error}; stopping the run, earlier checkpoints are intact")
                raise
            for removed in checkpoint_file.prune(self.folder, self.keep_last):
                logger.debug(f"removed old checkpoint {removed.name}")
            if self.on_save is not None:
                self.on_save(snapshot)

        distributed.from_main(write)
        return True

    def save_emergency(self, step: int, state: Callable[[], State]) -> str:
        """emergency_N.pt: the full state right after a skipped step, pruned apart from the regular series."""
        snapshot = state()
        path = self.folder / checkpoint_file.emergency_file_name(step)

        def write() -> None:
            checkpoint_file.save(path, snapshot)
            checkpoint_file.prune(self.folder, self.keep_last, checkpoint_file.EMERGENCY_FILE)

        distributed.from_main(write)
        return path.name

    def save_best(self, state: Callable[[], State]) -> None:
        """best.pt: the weights with the best validation result, for predict and eval (rank 0 writes).

        Deliberately not a collective: whether a result is the best so far is decided by each rank
        on its own evaluation, which a GPU need not reproduce bit for bit on every rank."""
        if distributed.context().is_main:
            checkpoint_file.save(self.folder / checkpoint_file.BEST_FILE, state())

    def newest_before(self, step: int) -> tuple[str, State] | None:
        """(file name, state) of the newest regular checkpoint before `step` that loads, warning
        about each one skipped; None when none does."""
        for _, path in reversed([(s, path) for s, path in checkpoint_file.step_checkpoints(self.folder) if s < step]):
            try:
                return path.name, checkpoint_file.load(path)
            except CheckpointError as error:
                logger.warning(f"skipping {error}")
        return None

    def newest(self) -> State | None:
        """The newest regular checkpoint that loads, for a resume; None when there are none at all,
        CheckpointError when there are some and none of them loads."""
        found = checkpoint_file.step_checkpoints(self.folder)
        if not found:
            return None
        loaded = self.newest_before(found[-1][0] + 1)
        if loaded is None:
            raise CheckpointError(f"{self.folder}: none of the {len(found)} checkpoints can be loaded")
        return loaded[1]

    def load(self, step: int) -> State:
        """The regular checkpoint of `step` (the one rank 0 chose and verified, read by another rank)."""
        return checkpoint_file.load(self.folder / checkpoint_file.step_file_name(step))

    def best(self) -> State | None:
        """best.pt, or None before the first evaluation."""
        path = self.folder / checkpoint_file.BEST_FILE
        return checkpoint_file.load(path) if path.is_file() else None

    def restore_best(self, step: int) -> bool:
        """Rewrite best.pt from step_<step>.pt (the same weights, saved at the best step) when
        best.pt is lost or damaged; False when that checkpoint is gone or damaged too."""
        try:
            state = checkpoint_file.load(self.folder / checkpoint_file.step_file_name(step))
        except CheckpointError:
            return False
        best = {"model": state["model"], "step": step, "metrics": {}, "config": state.get("config")}
        checkpoint_file.save(self.folder / checkpoint_file.BEST_FILE, best)
        return True

    def remove_temporaries(self) -> list[Path]:
        """Delete what writers killed mid-save left behind; only while holding the run's lock."""
        return checkpoint_file.remove_temporaries(self.folder)
