"""Curricula over the written chain: what a `chain_transformer` writes, or thinks, at each step.

Every curriculum is a closed-form function of the step, like the LR and teacher-forcing schedules:
update number `step` (1-based) belongs to stage min(last, (step - 1) // stage_steps), and a stage
fixes the model's layout (continuous thoughts, chain tokens removed). The optimizer reset that both
papers apply when a stage begins is decided from the step alone too (stage(step) != stage(step-1)),
so a run stopped anywhere, a stage change included, resumes bitwise equal to one that never stopped:
nothing about the curriculum needs saving.

- `none`: explicit chain of thought, every step written, one stage.
- `coconut` (Hao et al. 2024): stage k replaces the first k written steps by k × thoughts_per_step
  continuous thoughts; the last stage has no written step left, and nothing supervises the thoughts.
- `internalize` (Deng et al. 2024): stage k removes the first k × tokens_per_stage chain tokens; the
  last stage has removed them all and the model answers directly. With `examples_per_token` the
  rate is Deng's instead: one more token removed each time that many training examples have been
  seen. With `removal_smoothing` λ each example removes o tokens more, o drawn from
  p(o) ∝ exp(-λ o) (o = 0..99, as Deng's `compute_lambda_distribution`), so that a few examples
  already meet the next removal. The offsets come from a generator seeded by (seed, step, rank),
  like the batch itself: still nothing to save.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from latentrun.core.registry import CURRICULA
from latentrun.models.chain import ChainTransformer
from latentrun.task.chains import Chain
from latentrun.task.multiplication import stream_generator

_REMOVAL_STREAM = 3  # beside the task's train/val/test streams (0, 1, 2): the smoothing offsets
_SMOOTHING_SUPPORT = 100  # offsets 0..99, the rest of the tail mass on the last, as Deng's code


@dataclass(frozen=True)
class Layout:
    """Continuous thoughts before the written chain, and chain tokens removed from its front."""

    thoughts: int
    removed: int


class Curriculum:
    """A chain and a step schedule of layouts; subclasses say how many stages and what each holds."""

    def __init__(self, chain: Chain, stage_steps: int, reset_optimizer: bool) -> None:
        if stage_steps < 1:
            raise ValueError(f"stage_steps must be >= 1, got {stage_steps}")
        self.chain = chain
        self.stage_steps = stage_steps
        self.reset_optimizer = reset_optimizer

    @property
    def last_stage(self) -> int:
        """Index of the final stage, the one the method is judged at."""
        return 0

    def stage_layout(self, stage: int) -> Layout:
        return Layout(0, 0)

    def stage(self, step: int) -> int:
        """Stage of update number `step`; step 0 (before any update) is stage 0."""
        return min(self.last_stage, max(0, step - 1) // self.stage_steps)

    def layout(self, step: int) -> Layout:
        return self.stage_layout(self.stage(step))

    @property
    def final_stage_step(self) -> int:
        """First update of the final stage: time-to-accuracy counts from here."""
        return self.last_stage * self.stage_steps + 1

    def extra_removed(self, step: int, batch_size: int, rank: int = 0) -> Tensor | None:
        """(B,) chain tokens each example of update `step` removes beyond its stage's layout, or
        None when every example has the stage's layout (all curricula but a smoothed removal)."""
        return None

    def begins_stage(self, step: int) -> bool:
        """Whether update `step` is the first of a stage after the first one: where the loss jumps
        by design, as the model meets a layout it was not trained on."""
        return step > 1 and self.stage(step) != self.stage(step - 1)

    def resets_optimizer(self, step: int) -> bool:
        """Whether update `step` starts from a fresh optimizer state (it begins a new stage)."""
        return self.reset_optimizer and self.begins_stage(step)

    def begin_step(self, step: int, model: ChainTransformer, optimizer: torch.optim.Optimizer) -> None:
        """Put the model in the layout of update `step`, resetting the optimizer if the step begins a stage.

        A reset empties the optimizer's per-parameter state (AdamW's moments and step count), which
        is exactly the state of a freshly built optimizer: the learning-rate schedule goes on.
        """
        layout = self.layout(step)
        model.set_layout(layout.thoughts, layout.removed)
        if self.resets_optimizer(step):
            optimizer.state.clear()


@CURRICULA.register("none")
class ExplicitChain(Curriculum):
    """Every written step, all run long: explicit chain of thought."""

    def __init__(self, *, chain: Chain) -> None:
        super().__init__(chain, stage_steps=1, reset_optimizer=False)


@CURRICULA.register("coconut")
class Coconut(Curriculum):
    """Stage k: the first k written steps become k × thoughts_per_step continuous thoughts."""

    def __init__(self, stage_steps: int, thoughts_per_step: int, reset_optimizer: bool, *, chain: Chain) -> None:
        super().__init__(chain, stage_steps, reset_optimizer)
        self.thoughts_per_step = thoughts_per_step

    @property
    def last_stage(self) -> int:
        return len(self.chain.widths)

    def stage_layout(self, stage: int) -> Layout:
        return Layout(stage * self.thoughts_per_step, self.chain.tokens_before(stage))


@CURRICULA.register("internalize")
class StepwiseInternalization(Curriculum):
    """Stage k: the first k × tokens_per_stage chain tokens removed, until none is left."""

    def __init__(
        self,
        stage_steps: int,
        tokens_per_stage: int,
        reset_optimizer: bool,
        examples_per_token: int | None,
        removal_smoothing: float | None,
        *,
        chain: Chain,
        batch_size: int,
        seed: int,
    ) -> None:
        super().__init__(chain, stage_steps, reset_optimizer)
        # Deng's rate: a stage per token, `examples_per_token` examples long, counted over the global batch.
        self.tokens_per_stage = 1 if examples_per_token else tokens_per_stage
        self.examples_per_token = examples_per_token
        self.batch_size = batch_size
        self.seed = seed
        self.offset_weights: Tensor | None = None
        if removal_smoothing is not None:
            places = torch.arange(_SMOOTHING_SUPPORT, dtype=torch.float64)
            weights = (1 - math.exp(-removal_smoothing)) * torch.exp(-removal_smoothing * places)
            weights[-1] += 1 - weights.sum()
            self.offset_weights = weights  # (100,) p(o)

    @property
    def last_stage(self) -> int:
        return -(-self.chain.length // self.tokens_per_stage)  # ceil: the last removal may take fewer

    def stage(self, step: int) -> int:
        if self.examples_per_token is None:
            return super().stage(step)
        return min(self.last_stage, max(0, step - 1) * self.batch_size // self.examples_per_token)

    @property
    def final_stage_step(self) -> int:
        if self.examples_per_token is None:
            return super().final_stage_step
        # The first update s with (s - 1) × batch_size >= last_stage × examples_per_token.
        return -(-self.last_stage * self.examples_per_token // self.batch_size) + 1

    def stage_layout(self, stage: int) -> Layout:
        return Layout(0, min(self.chain.length, stage * self.tokens_per_stage))

    def extra_removed(self, step: int, batch_size: int, rank: int = 0) -> Tensor | None:
        if self.offset_weights is None:
            return None
        generator = stream_generator(self.seed, _REMOVAL_STREAM, step, rank)
        offsets = torch.multinomial(self.offset_weights, batch_size, replacement=True, generator=generator)
        room = self.chain.length - self.layout(step).removed  # never past the whole chain
        return offsets.clamp(max=room)  # (B,)
