"""Fakes of the Trainer's collaborators, kept in memory: the Checkpoints and MetricLogger protocols
(latentrun.train.checkpoints_protocol, latentrun.train.loggers), and a smoke trainer built on them.

Importable as `fakes` from any folder, like `support`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
from support import SMOKE

from latentrun import config
from latentrun.config.build import build_components
from latentrun.train.precision import MixedPrecision
from latentrun.train.state import TrainSettings
from latentrun.train.trainer import Trainer

CPU = torch.device("cpu")
State = dict[str, Any]


class MemoryCheckpoints:
    """Checkpoints kept in memory: a regular one every `every` steps (or when forced), as
    runs.Checkpointer decides; every request is recorded."""

    def __init__(self, every: int) -> None:
        self.every = every
        self.requests: list[tuple[int, bool]] = []
        self.saved: dict[int, State] = {}
        self.emergencies: list[int] = []
        self.best_state: State | None = None

    def save(self, step: int, state: Callable[[], State], *, force: bool = False) -> bool:
        self.requests.append((step, force))
        if not force and step % self.every:
            return False
        self.saved[step] = copy.deepcopy(state())  # a state dict shares the live tensors, as torch.save would not
        return True

    def save_emergency(self, step: int, state: Callable[[], State]) -> str:
        self.emergencies.append(step)
        return f"emergency_{step:08d}.pt"

    def save_best(self, state: Callable[[], State]) -> None:
        self.best_state = copy.deepcopy(state())

    def best(self) -> State | None:
        return self.best_state

    def newest_before(self, step: int) -> tuple[str, State] | None:
        earlier = [saved for saved in self.saved if saved < step]
        return (f"step_{max(earlier):08d}.pt", self.saved[max(earlier)]) if earlier else None


class MemoryLogger:
    """Scalars by tag, as (step, value) in the order logged (`rewind` forgets what lies past a step);
    texts by tag; the hyperparameter sessions started and ended; whether it was closed."""

    def __init__(self) -> None:
        self.scalars: dict[str, list[tuple[int, float]]] = {}
        self.texts: dict[str, str] = {}
        self.sessions: list[tuple[str, Any]] = []  # ("start", hparams) and ("end", (status, step))
        self.closed = False

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        self.scalars.setdefault(tag, []).append((step, value))

    def steps(self, tag: str) -> list[int]:
        return [step for step, _ in self.scalars.get(tag, [])]

    def rewind(self, step: int) -> None:
        self.scalars = {tag: [(s, v) for s, v in values if s <= step] for tag, values in self.scalars.items()}

    def add_text(self, tag: str, text: str, step: int = 0) -> None:
        self.texts[tag] = text

    def start_session(self, hparams: Any) -> None:
        self.sessions.append(("start", dict(hparams)))

    def end_session(self, status: str, step: int) -> None:
        self.sessions.append(("end", (status, step)))

    def flush(self) -> None: ...

    def close(self) -> None:
        self.closed = True


def make_trainer(*overrides: str, every: int = 2, trainer_class: type[Trainer] = Trainer) -> Trainer:
    """A trainer of the smoke config (6 steps, logging every 2, evaluating every 3) on fakes."""
    defaults = ["train.max_steps=6", "train.log_every=2", "train.eval_every=3", "dataset.val_size=20"]
    resolved = config.load(SMOKE, [*defaults, *overrides])
    return trainer_class(
        build_components(resolved, CPU),
        TrainSettings.from_section(resolved["train"]),
        MixedPrecision("fp32", CPU),
        checkpointer=MemoryCheckpoints(every),
        device=CPU,
        config=resolved,
        metric_logger=MemoryLogger(),
    )
