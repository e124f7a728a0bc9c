"""What the step loop reports about its updates: a progress bar, and at the end of each logging
window the train/* scalars, the window's throughput (perf/samples_per_sec) and one log line.

The loop says what happened; this says it, as torchtitan's MetricsProcessor does. The window's loss
sums live in `TrainerState`, since a checkpoint carries them across a resume.
"""

from __future__ import annotations

import math
import sys
import time

from loguru import logger
from tqdm import tqdm

from latentrun.train.loggers import MetricLogger
from latentrun.train.state import StepResult, TrainerState, TrainSettings


class StepReport:
    """Reports the updates of one `fit` call; `close` it when the loop ends."""

    def __init__(
        self, metric_logger: MetricLogger, settings: TrainSettings, *, first_step: int, world_size: int
    ) -> None:
        self.metric_logger = metric_logger
        self.settings = settings
        self.samples_per_step = settings.batch_size * world_size  # the global batch
        self.progress = tqdm(
            total=settings.max_steps,
            initial=first_step,
            disable=not sys.stderr.isatty(),
            dynamic_ncols=True,
            desc="train",
        )
        self._window_start, self._window_samples = time.perf_counter(), 0

    def step_done(self) -> None:
        """One more update (made or skipped) in the window and on the bar."""
        self._window_samples += self.samples_per_step
        self.progress.update(1)

    def rewound(self, step: int) -> None:
        """The loop went back to `step` (a rollback): the bar follows."""
        self.progress.reset(total=self.settings.max_steps)
        self.progress.update(step)

    def log_window(
        self,
        step: int,
        state: TrainerState,
        result: StepResult,
        *,
        lr: float,
        lr_scale: float,
        stage: int | None,
        latent_loss: bool,
    ) -> None:
        """Close the window at update `step`: log the mean loss of its good updates (and empty the
        sums), `lr` (the rate the next update will use), the last step's gradient norm and clipping,
        the curriculum `stage` if any, the step-supervision loss when `latent_loss`, and throughput."""
        samples_per_sec = self._window_samples / max(time.perf_counter() - self._window_start, 1e-9)
        # A window of nothing but skipped steps has no loss to report; the warnings already said why.
        count = state.loss_count
        mean_loss = state.loss_sum / count if count else math.nan
        mean_latent_loss = state.latent_loss_sum / count if count else math.nan
        state.loss_sum, state.latent_loss_sum, state.loss_count = 0.0, 0.0, 0
        if count:
            state.last_loss = mean_loss
        grad_norm = math.nan if result.grad_norm is None else float(result.grad_norm)
        log = self.metric_logger
        if count:
            log.add_scalar("train/loss", mean_loss, step)
        log.add_scalar("train/lr", lr, step)
        log.add_scalar("train/teacher_forcing", self.settings.teacher_forcing(step), step)
        if stage is not None:
            log.add_scalar("train/curriculum_stage", stage, step)
        if latent_loss and count:
            log.add_scalar("train/latent_loss", mean_latent_loss, step)
        if self.settings.forces_latents:
            log.add_scalar("train/latent_forcing", self.settings.latent_forcing(step), step)
        if result.grad_norm is not None:
            log.add_scalar("train/grad_norm", grad_norm, step)
        log.add_scalar("train/clip_threshold", result.clip_threshold, step)
        log.add_scalar("train/emergency_lr_scale", lr_scale, step)
        log.add_scalar("perf/samples_per_sec", samples_per_sec, step)
        self.progress.set_postfix(loss=f"{mean_loss:.4f}", lr=f"{lr:.2e}", refresh=False)
        logger.info(
            f"step {step}/{self.settings.max_steps} loss {mean_loss:.4f} lr {lr:.3e} "
            f"grad_norm {grad_norm:.3f} clip {result.clip_threshold:.3g} {samples_per_sec:.0f} samples/s"
        )
        self._window_start, self._window_samples = time.perf_counter(), 0

    def close(self) -> None:
        self.progress.close()
