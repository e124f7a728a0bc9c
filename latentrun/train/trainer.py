"""The step loop: batch(step) → forward → loss → backward → clip → optimizer and scheduler step →
log → evaluate → checkpoint. It owns nothing it can receive, and reads no config objects.

A step whose loss explodes skips its update; `LossGuard` decides what follows (a lower learning
rate, and after a streak a rollback to an earlier checkpoint), and the trainer carries it out.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from typing import Any, cast

import torch
from loguru import logger
from torch import nn

from latentrun.core.status import FINISHED, INTERRUPTED, STOPPED
from latentrun.models.chain import ChainTransformer
from latentrun.models.protocol import TaskModel
from latentrun.train import distributed
from latentrun.train.averaging import WeightAverage
from latentrun.train.checkpoints_protocol import CheckpointError, Checkpoints, State
from latentrun.train.components import Components
from latentrun.train.loggers import MetricLogger, NullLogger
from latentrun.train.losses import LossOutput
from latentrun.train.metrics import evaluate
from latentrun.train.objective import step_loss
from latentrun.train.precision import MixedPrecision
from latentrun.train.reporting import StepReport
from latentrun.train.rng import capture_rng, restore_rng
from latentrun.train.signals import StopSignals
from latentrun.train.stability import TrainingDiverged, scaled_learning_rate
from latentrun.train.state import StepResult, TrainerState, TrainSettings

__all__ = ["FINISHED", "INTERRUPTED", "STOPPED", "StepResult", "Trainer", "TrainerState", "TrainSettings"]


class Trainer:
    """Trains one model on one task; asks `checkpointer` to save and `metric_logger` to record."""

    def __init__(
        self,
        components: Components,
        settings: TrainSettings,
        precision: MixedPrecision,
        *,
        checkpointer: Checkpoints,
        device: torch.device,
        config: dict[str, Any],
        metric_logger: MetricLogger | None = None,
        world: distributed.Context | None = None,
    ) -> None:
        self.task = components.task
        self.model: TaskModel = components.model  # the plain module: checkpoints, evaluation, generation
        self.loss_fn = components.loss_fn
        self.optimizer = components.optimizer
        self.scheduler = components.scheduler
        self.clipper = components.clipper
        self.guard = components.guard
        self.curriculum = components.curriculum  # what a chain model writes at each step; None for other models
        self.chain_model = self.model if isinstance(self.model, ChainTransformer) else None
        if self.curriculum is not None and self.chain_model is None:
            raise ValueError(f"a curriculum moves a chain model along; got {type(self.model).__name__}")
        self.settings = settings
        self.precision = precision
        # Training runs through this rank's DDP replica (the model itself in a world of one), compiled
        # if asked; everything else uses the plain module, so checkpoints keep their names and load anywhere.
        self.replica = distributed.wrap(cast(nn.Module, self.model), device)
        compiled = torch.compile(self.replica) if settings.compile else self.replica
        self.forward = cast(TaskModel, compiled)
        self.checkpointer = checkpointer
        self.device = device
        self.config = config  # stored in every checkpoint, so a checkpoint explains itself
        self.metric_logger: MetricLogger = metric_logger or NullLogger()  # NullLogger on ranks other than 0
        world = world or distributed.Context()
        self.rank = world.rank
        self.world_size = world.world_size  # settings.batch_size is then this rank's share of the global batch
        self.state = TrainerState()
        self.signals = StopSignals()
        average = settings.weight_average
        self.average = WeightAverage(cast(nn.Module, self.model), average.decay, average.start_step)

    # ---- checkpoint state -----------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The checkpoint dict: contract keys model, optimizer, scheduler, step, rng, trainer, config,
        and weight_average (the averaged weights, None while there are none).

        Under torchrun every rank must call it (it gathers each rank's RNG streams); `rng` is rank 0's.
        """
        rng_by_rank = distributed.all_gather_object(capture_rng())
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "step": self.state.step,
            "rng": rng_by_rank[0],
            "rng_by_rank": rng_by_rank,
            "world_size": self.world_size,
            "trainer": {
                **dataclasses.asdict(self.state),
                "precision": self.precision.name,
                "grad_scaler": self.precision.state_dict(),
                "clipping": self.clipper.state_dict(),
                "stability": self.guard.state_dict(),
            },
            "config": self.config,
            "weight_average": self.average.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a checkpoint dict written by `state_dict`."""
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            trainer = dict(state["trainer"])
            # Checkpoints from before precision, clipping history and loss guard existed were fp32
            # runs with fixed clipping and no explosion handling: their absence means the fresh state.
            trainer.pop("precision", None)
            self.precision.load_state_dict(trainer.pop("grad_scaler", {}))
            self.clipper.load_state_dict(trainer.pop("clipping", {"history": []}))
            self.guard.load_state_dict(trainer.pop("stability", {}))
            self.state = TrainerState(**trainer)
            self.average.load_state_dict(state.get("weight_average"))  # absent before averaging existed
            # Checkpoints from before DDP hold one rank's streams, under `rng` only.
            restore_rng(state.get("rng_by_rank", [state["rng"]])[self.rank])
        except (RuntimeError, ValueError, KeyError, TypeError, IndexError, AttributeError) as error:
            # A file that passed its checks can still hold the wrong things (another tool's dict,
            # an edited manifest): say so rather than fail somewhere inside torch.
            reason = (str(error).splitlines() or [type(error).__name__])[0]
            raise CheckpointError(f"checkpoint does not fit this model: {reason}") from None

    def save_checkpoint(self) -> None:
        """Checkpoint the current step now, whatever save_every says (every rank calls it)."""
        self.checkpointer.save(self.state.step, self._checkpoint_state, force=True)

    def _checkpoint_state(self) -> State:
        # A resume rewinds the metric log to the checkpoint's step; what was logged up to it must
        # be on disk by then, or a SIGKILL would lose it for good.
        self.metric_logger.flush()
        return self.state_dict()

    def _best_state(self, metrics: dict[str, float]) -> State:
        graded = self.average.module or cast(nn.Module, self.model)  # the weights `metrics` were measured on
        return {"model": graded.state_dict(), "step": self.state.step, "metrics": metrics, "config": self.config}

    def test_best(self) -> dict[str, float] | None:
        """The figure of record: the weights of best.pt (chosen on the validation split) graded on
        the test split, logged as test/* at the current step; None when no evaluation ever wrote
        best.pt. Rank 0 only: like save_best, not a collective."""
        best = self.checkpointer.best() if self.rank == 0 else None
        if best is None:
            return None
        model = copy.deepcopy(self.model)
        model.load_state_dict(best["model"])
        split = self.task.split("test")
        metrics = evaluate(
            model, split, self.loss_fn, self.settings.eval_batch_size, self.device, self.task.operand_width, "test"
        )
        for tag, value in metrics.items():
            self.metric_logger.add_scalar(tag, value, self.state.step)
        logger.info(
            f"test ({len(split)} pairs, best.pt from step {best['step']}): exact_match {metrics['test/exact_match']:.4f} "
            f"digit_accuracy {metrics['test/digit_accuracy']:.4f}"
        )
        return {**metrics, "best_step": best["step"], "pairs": len(split)}

    # ---- the loop -------------------------------------------------------------------------
    def step_output(self, step: int, forward: nn.Module | None = None) -> LossOutput:
        """The loss of update `step` as training computes it, in whatever autocast is active:
        `forward` (the training forward unless given; the precision probe passes a copy) on the
        step's batch, with the step's forcing ratios and chain."""
        batch = self.task.train_batch(step, self.settings.batch_size, self.rank).to(self.device)
        return step_loss(
            self.forward if forward is None else cast(TaskModel, forward),
            self.loss_fn,
            batch,
            teacher_forcing=self.settings.teacher_forcing(step),
            operand_width=self.task.operand_width,
            latent_forcing=self.settings.latent_forcing(step),
            latent_chain=self.model.chain,
            chain=self.curriculum.chain if self.curriculum is not None else None,
            extra_removed=(
                self.curriculum.extra_removed(step, self.settings.batch_size, self.rank)
                if self.curriculum is not None
                else None
            ),
        )

    def train_step(self, step: int) -> StepResult:
        """One optimizer update on the batch of `step`, unless its loss or gradient explodes."""
        self.replica.train()
        if self.curriculum is not None and self.chain_model is not None:
            self.curriculum.begin_step(step, self.chain_model, self.optimizer)
            if self.curriculum.begins_stage(step):
                # The new layout's loss is a planned jump, not an explosion: judge it by its own stage.
                self.guard.restart_average()
                self.average.restart()
        with self.precision.autocast():
            output = self.step_output(step)
        loss = output.loss.detach()
        latent_loss, grad_norm, threshold = None, None, self.clipper.threshold()
        # Judged on the mean over ranks, so every rank skips or updates alike: a backward skipped on
        # one rank alone would leave the others waiting in DDP's gradient all-reduce.
        problem = self.guard.check_loss(float(distributed.agree([loss], False)[0][0]))
        if problem is None:
            self.optimizer.zero_grad(set_to_none=True)
            self.precision.backward(output.loss)
            self.precision.unscale(self.optimizer)
            grad_norm, threshold = self.clipper.clip(self.model.parameters())
            # Under fp16 the scaler skips overflowing steps itself; elsewhere an inf norm is an explosion.
            if not self.precision.skips_nonfinite_gradients and not torch.isfinite(grad_norm):
                problem = f"non-finite gradient norm ({float(grad_norm)})"
            else:
                with scaled_learning_rate(self.optimizer, self.guard.lr_scale()):
                    self.precision.step(self.optimizer)
                self.average.update(step)
                latent_loss = output.parts.get("latent_loss")
        self.scheduler.step()  # skipped or not, step s+1 follows the schedule's step s+1
        return StepResult(loss, latent_loss, grad_norm, threshold, problem)

    def fit(self, stop_at: int | None = None) -> str:
        """Train until max_steps, `stop_at`, or SIGINT/SIGTERM; always leaves a checkpoint of the last step."""
        settings = self.settings
        last_step = min(settings.max_steps, stop_at) if stop_at else settings.max_steps
        report = StepReport(self.metric_logger, settings, first_step=self.state.step, world_size=self.world_size)
        session_start, elapsed_before = time.perf_counter(), self.state.elapsed_seconds
        status = FINISHED if last_step == settings.max_steps else STOPPED
        try:
            with self.signals:
                while self.state.step < last_step:
                    step = self.state.step + 1
                    result = self.train_step(step)
                    stop_requested = self._record(step, result)
                    self.state.elapsed_seconds = elapsed_before + time.perf_counter() - session_start
                    report.step_done()
                    if result.problem is not None and self._handle_bad_step(step, result.problem):
                        report.rewound(self.state.step)
                        continue
                    if step % settings.log_every == 0 or step == last_step:
                        self._log_window(report, step, result)
                    if step % settings.eval_every == 0 or step == settings.max_steps:
                        self._evaluate(step)
                    if stop_requested:
                        status = INTERRUPTED
                        signum = self.signals.received or "to another rank"
                        logger.warning(f"signal {signum} received: checkpointing step {step} and stopping")
                        break
                    self.checkpointer.save(step, self._checkpoint_state, force=step == last_step)
                if status == INTERRUPTED:
                    self.save_checkpoint()
        finally:
            report.close()
            self.metric_logger.flush()
        return status

    def _record(self, step: int, result: StepResult) -> bool:
        """Count update `step` as done and add a good step's losses (means over ranks, so that rank 0
        logs the whole global batch's) to the window; whether any rank was asked to stop."""
        no_latent = torch.zeros((), device=result.loss.device)
        (loss, latent_loss), stop_requested = distributed.agree(
            [result.loss, no_latent if result.latent_loss is None else result.latent_loss],
            self.signals.received is not None,
        )
        self.state.step = step
        if result.problem is None:
            loss_value = float(loss)
            self.guard.record_good(loss_value)
            self.state.loss_sum += loss_value
            self.state.loss_count += 1
            if result.latent_loss is not None:
                self.state.latent_loss_sum += float(latent_loss)
        return stop_requested

    def _handle_bad_step(self, step: int, problem: str) -> bool:
        """Log a skipped step, cut the learning rate, checkpoint the evidence, and roll back when the
        streak is long enough; True when the state went back to an earlier step."""
        roll_back = self.guard.record_bad(step)
        scale = self.guard.lr_scale()
        saved = self.checkpointer.save_emergency(step, self.state_dict)
        logger.warning(
            f"step {step}: {problem}; update skipped, emergency lr scale now {scale:.4g} "
            f"({self.guard.consecutive_bad} bad in a row), state saved to {saved}"
        )
        self.metric_logger.add_scalar("train/emergency_lr_scale", scale, step)
        if roll_back:
            self._roll_back()
        return roll_back

    def _roll_back(self) -> None:
        """Return to the newest loadable checkpoint from before the streak of bad steps, keeping
        the guard's state (the cut learning rate, the rollback count) so the replay differs.
        Every rank reads the same file, as a resume does."""
        first_bad = self.guard.begin_rollback()
        guard_state = self.guard.state_dict()
        found = self.checkpointer.newest_before(first_bad)
        if found is None:
            raise TrainingDiverged(f"bad steps from step {first_bad} on, and no checkpoint before it to roll back to")
        name, state = found
        self.load_state_dict(state)
        self.guard.load_state_dict(guard_state)
        # The replay logs these steps again; its values are the ones that count.
        self.metric_logger.rewind(self.state.step)
        logger.warning(
            f"rolled back to step {self.state.step} ({name}), rollback {self.guard.rollbacks} of "
            f"at most {self.guard.max_rollbacks}; emergency lr scale {self.guard.lr_scale():.4g}"
        )

    def _log_window(self, report: StepReport, step: int, result: StepResult) -> None:
        scale = self.guard.lr_scale()
        report.log_window(
            step,
            self.state,
            result,
            lr=self.optimizer.param_groups[0]["lr"] * scale,  # the rate the next update will use
            lr_scale=scale,
            stage=self.curriculum.stage(step) if self.curriculum is not None else None,
            latent_loss=self.loss_fn.latent_supervision_weight > 0,
        )

    def _evaluate(self, step: int) -> dict[str, float]:
        """Grade what best.pt would keep (the average once there is one; live weights as val_live/*)."""
        split, grading = self.task.split("val"), (self.loss_fn, self.settings.eval_batch_size, self.device)
        graded = cast(TaskModel, self.average.module) if self.average.module is not None else self.model
        metrics = evaluate(graded, split, *grading, self.task.operand_width)
        logged = dict(metrics)
        if self.average.module is not None:
            logged.update(evaluate(self.model, split, *grading, self.task.operand_width, "val_live"))
        for tag, value in logged.items():
            self.metric_logger.add_scalar(tag, value, step)
        # Training time excluding pauses between sessions: `compare` reads time-to-accuracy from it.
        self.metric_logger.add_scalar("perf/elapsed_seconds", self.state.elapsed_seconds, step)
        latent = f" latent_accuracy {metrics['val/latent_accuracy']:.4f}" if "val/latent_accuracy" in metrics else ""
        weights = " (averaged weights)" if "val_live/exact_match" in logged else ""
        live = f"; live weights exact_match {logged['val_live/exact_match']:.4f}" if weights else ""
        logger.info(
            f"step {step} eval{weights}: loss {metrics['val/loss']:.4f} exact_match {metrics['val/exact_match']:.4f} "
            f"digit_accuracy {metrics['val/digit_accuracy']:.4f}{latent}{live}"
        )
        stage = self.curriculum.stage(step) if self.curriculum is not None else 0
        if self.state.improves_on_best(metrics, stage):
            self.state.best_exact_match = metrics["val/exact_match"]
            self.state.best_val_loss = metrics["val/loss"]
            self.state.best_step = step
            self.state.best_stage = stage
            self.checkpointer.save_best(lambda: self._best_state(metrics))
        return metrics
