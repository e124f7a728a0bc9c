"""The interface the Trainer saves and reloads its state through (the `Checkpoints` protocol and
its `State`), without knowing where checkpoints live:
`runs.checkpoint_policy.Checkpointer` implements it over a run directory.

The trainer hands over its state as a callable, so that the state dict (a collective under
torchrun: it gathers every rank's RNG streams) is only built at the steps the checkpointer
decides to save; every rank calls these methods at the same steps.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from latentrun.core.errors import CheckpointError as CheckpointError  # defined there, still importable from here

State = dict[str, Any]


class Checkpoints(Protocol):
    """The run's three series of saved state: regular steps, best weights, emergencies."""

    def save(self, step: int, state: Callable[[], State], *, force: bool = False) -> bool:
        """Save `state()` as step `step`'s checkpoint when it is time (or `force`); True if saved.
        CheckpointError when the disk refuses: the run must stop, earlier checkpoints are intact."""

    def save_emergency(self, step: int, state: Callable[[], State]) -> str:
        """Save the state right after a skipped step, apart from the regular series; its file name."""

    def save_best(self, state: Callable[[], State]) -> None:
        """Keep `state()` (weights, step, metrics) as the best so far; rank 0 alone builds and
        writes it, no collective."""

    def best(self) -> State | None:
        """The best state saved so far (weights, step, metrics), or None before the first evaluation."""

    def newest_before(self, step: int) -> tuple[str, State] | None:
        """(file name, state) of the newest loadable regular checkpoint before `step`, for a
        rollback; None when there is none."""
