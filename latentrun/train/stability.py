"""Loss-explosion handling: notice a bad step, cut the learning rate, and know when to roll back.

A step is bad when its loss is not finite, when its loss is more than `spike_factor` times the
running average of recent good losses (or of `spike_floor`, when the average is below it), or
(reported by the trainer) when its gradient norm is not finite. The floor is there for a model that
has learned its task: at a running loss of 1e-7 a step at 1e-5 is 100x the average and harmless,
and judging it a spike would roll a finished model back until the run stops as diverged. A bad step's update is skipped. Each one multiplies an emergency learning-rate scale by
`lr_factor`; the scale then recovers geometrically to 1 over `recovery_steps` steps, so training
creeps back to its schedule rather than jumping. After `rollback_after` bad steps in a row the
weights themselves are suspect, and the trainer goes back to the last checkpoint written before the
streak began, keeping the reduced scale so the replay does not walk into the same explosion; after
`max_rollbacks` such returns it gives up with `TrainingDiverged`.

A training curriculum changes the task at fixed steps, and the loss jumps there by design: the
trainer restarts the average at each stage change (`restart_average`), at a step the step number
alone decides, so a resumed run judges its steps exactly as an uninterrupted one does.

Every number here is part of the checkpoint's `trainer` dict: whether the next step counts as a
spike, and the rate it runs at, depend on them.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from latentrun.core.errors import TrainingDiverged as TrainingDiverged  # defined there, still importable from here


@contextmanager
def scaled_learning_rate(optimizer: torch.optim.Optimizer, scale: float) -> Iterator[None]:
    """Run the optimizer step at `scale` times each group's scheduled rate, then put the scheduled
    rate back, so the scheduler and the checkpointed optimizer never see the emergency factor."""
    if scale == 1.0:  # the common case touches nothing, so a run without explosions is unchanged
        yield
        return
    scheduled = [group["lr"] for group in optimizer.param_groups]
    for group, lr in zip(optimizer.param_groups, scheduled):
        group["lr"] = lr * scale
    try:
        yield
    finally:
        for group, lr in zip(optimizer.param_groups, scheduled):
            group["lr"] = lr


class LossGuard:
    """Running loss average, emergency learning-rate scale, and the bad-step streak."""

    def __init__(
        self,
        spike_factor: float | None,
        average_decay: float,
        lr_factor: float,
        recovery_steps: int,
        rollback_after: int,
        max_rollbacks: int,
        spike_floor: float,
    ) -> None:
        if spike_factor is not None and spike_factor <= 1:
            raise ValueError(f"spike_factor must be > 1 or None, got {spike_factor}")
        if not 0 <= average_decay < 1:
            raise ValueError(f"average_decay must be in [0, 1), got {average_decay}")
        if spike_floor < 0:
            raise ValueError(f"spike_floor must be >= 0, got {spike_floor}")
        if not 0 < lr_factor < 1:
            raise ValueError(f"lr_factor must be in (0, 1), got {lr_factor}")
        self.spike_factor = spike_factor
        self.spike_floor = spike_floor
        self.average_decay = average_decay
        self.lr_factor = lr_factor
        self.recovery_steps = recovery_steps
        self.rollback_after = rollback_after
        self.max_rollbacks = max_rollbacks
        # The average only judges spikes once it has seen as many good steps as its time constant:
        # before that it still remembers the first, much higher, losses of the run.
        self.trusted_after = math.ceil(1 / (1 - average_decay))
        self.loss_ema = 0.0
        self.good_steps = 0
        self.lr_floor = 1.0  # the scale right after the latest bad step
        self.steps_since_bad = 0
        self.consecutive_bad = 0
        self.streak_start: int | None = None
        self.bad_steps = 0
        self.rollbacks = 0

    # ---- judging a step -------------------------------------------------------------------
    def running_average(self) -> float | None:
        """The bias-corrected average of good losses, or None while it is too young to judge by."""
        if self.good_steps < self.trusted_after:
            return None
        return self.loss_ema / (1 - self.average_decay**self.good_steps)

    def check_loss(self, loss: float) -> str | None:
        """Why a step with this loss must be skipped, or None when it may update the weights."""
        if not math.isfinite(loss):
            return f"non-finite loss ({loss})"
        average = self.running_average()
        if self.spike_factor is None or average is None:
            return None
        if loss > self.spike_factor * max(average, self.spike_floor):
            # A task learned to a loss of exactly 0 (with no floor) has no ratio to show.
            ratio = f"{loss / average:.1f}x" if average > 0 else f"over {self.spike_factor:g}x"
            return f"loss {loss:.4g} is {ratio} its running average {average:.4g}"
        return None

    def lr_scale(self) -> float:
        """The factor the scheduled learning rate is multiplied by at the next update."""
        if self.lr_floor >= 1.0:
            return 1.0
        return self.lr_floor ** (1 - self.steps_since_bad / self.recovery_steps)

    def restart_average(self) -> None:
        """Forget the running average, as at the start of a run: the losses of another phase of
        training (a curriculum's earlier stage) say nothing about what is a spike in this one, and
        until the new average has seen enough steps to be trusted only non-finite losses are bad.
        The learning-rate scale and the bad-step streak are left as they are."""
        self.loss_ema = 0.0
        self.good_steps = 0

    # ---- recording a step -----------------------------------------------------------------
    def record_good(self, loss: float) -> None:
        self.loss_ema = self.average_decay * self.loss_ema + (1 - self.average_decay) * loss
        self.good_steps += 1
        self.consecutive_bad = 0
        self.streak_start = None
        self._advance()

    def record_bad(self, step: int) -> bool:
        """Cut the learning-rate scale for a skipped step; True when the streak calls for a rollback."""
        self.lr_floor = self.lr_scale() * self.lr_factor
        self.steps_since_bad = 0
        self.bad_steps += 1
        self.consecutive_bad += 1
        if self.streak_start is None:
            self.streak_start = step
        return self.consecutive_bad >= self.rollback_after

    def _advance(self) -> None:
        self.steps_since_bad += 1
        if self.steps_since_bad >= self.recovery_steps:
            self.lr_floor, self.steps_since_bad = 1.0, 0

    def begin_rollback(self) -> int:
        """Count a rollback and end the streak; returns the first step of the streak, which the
        checkpoint to return to must precede. TrainingDiverged once rollbacks are used up."""
        if self.rollbacks >= self.max_rollbacks:
            raise TrainingDiverged(
                f"{self.consecutive_bad} bad steps in a row from step {self.streak_start} after "
                f"{self.rollbacks} rollbacks (train.max_rollbacks); training has diverged"
            )
        first_bad = self.streak_start if self.streak_start is not None else 0
        self.rollbacks += 1
        self.consecutive_bad = 0
        self.streak_start = None
        return first_bad

    # ---- checkpoint -----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Plain floats, ints and None: loadable with weights_only and exact on reload."""
        return {
            "loss_ema": self.loss_ema,
            "good_steps": self.good_steps,
            "lr_floor": self.lr_floor,
            "steps_since_bad": self.steps_since_bad,
            "consecutive_bad": self.consecutive_bad,
            "streak_start": self.streak_start,
            "bad_steps": self.bad_steps,
            "rollbacks": self.rollbacks,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            if key not in self.state_dict():
                raise KeyError(f"unknown loss-guard state {key!r}")
            setattr(self, key, value)
