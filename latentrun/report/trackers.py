"""The metric loggers of a session, opened and closed here: TensorBoard (the default) and the
experiment trackers behind the `MetricLogger` interface, Weights & Biases and MLflow, chosen in the
config's `train.loggers`.

Both are optional extras (`pip install -e '.[wandb]'`, `'.[mlflow]'`) and are imported only when a
run asks for them. Each tracker run is tied to the latentrun run: W&B's run id is derived from the
run id, MLflow's is kept in `trackers.json` in the run dir, so a resume continues the same tracker
run. A resume logs again the steps between its checkpoint and wherever the stopped session got to
(bitwise the same values); a tracker cannot take them back, so each logger drops the steps its
tracker already holds: MLflow is asked, W&B gets the step recorded at the last checkpoint.

A tracker is a convenience, never a reason to lose training: each one runs behind `Guarded`, so a
tracker that fails (its server gone, its folder deleted, a damaged trackers.json) is warned about
once, dropped for the rest of the session, and named in meta.json's `tracker_errors`; the run,
its checkpoints and TensorBoard go on. A resume whose recorded tracker run is gone starts a new one.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from loguru import logger

from latentrun import config as config_module
from latentrun.core.atomic import atomic_write_json
from latentrun.core.status import CRASHED
from latentrun.core.text import printable
from latentrun.report import hparams
from latentrun.report.tensorboard import TensorBoardLogger
from latentrun.report.tracker_checks import require
from latentrun.runs import run_files
from latentrun.runs.run_dir import RunDir
from latentrun.train.loggers import Loggers, MetricLogger
from latentrun.train.trainer import TrainerState

TRACKERS_FILE = "trackers.json"


def _read_state(run_dir: Path) -> dict[str, Any]:
    try:
        state = json.loads((run_dir / TRACKERS_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def _entry(run_dir: Path, name: str) -> dict[str, Any]:
    """What trackers.json holds for tracker `name`; {} when nothing, or something damaged, is there."""
    entry = _read_state(run_dir).get(name)
    return entry if isinstance(entry, dict) else {}


def _write_state(run_dir: Path, name: str, entry: dict[str, Any]) -> None:
    state = _read_state(run_dir)
    state[name] = entry
    atomic_write_json(run_dir / TRACKERS_FILE, state)


class WandbLogger:
    """`MetricLogger` for Weights & Biases: one W&B run per latentrun run, resumed with it.

    Project, entity and mode come from W&B's own variables (WANDB_PROJECT, default "latentrun";
    WANDB_ENTITY; WANDB_MODE=offline writes under the run dir's wandb/ for a later `wandb sync`).
    """

    def __init__(self, run_dir: Path, experiment: str, resuming: bool) -> None:
        wandb = require("wandb")
        self.run_dir = run_dir
        self.wandb_id = hashlib.sha1(run_dir.name.encode()).hexdigest()[:16]  # same id every session
        step = _entry(run_dir, "wandb").get("step") if resuming else 0
        self.logged_through = step if isinstance(step, int) and not isinstance(step, bool) else 0
        self.step = self.logged_through
        self.run = wandb.init(
            project=os.environ.get("WANDB_PROJECT", "latentrun"),
            id=self.wandb_id,
            name=run_dir.name,
            group=experiment,
            dir=str(run_dir),
            resume="allow",
            reinit="create_new",
        )
        _write_state(run_dir, "wandb", {"id": self.wandb_id, "step": self.step})

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        if step <= self.logged_through:
            return
        self.step = max(self.step, step)
        self.run.log({tag: value}, step=step)

    def add_text(self, tag: str, text: str, step: int = 0) -> None:
        self.run.summary[tag] = text

    def start_session(self, hparams: Mapping[str, Any]) -> None:
        self.run.config.update(dict(hparams), allow_val_change=True)

    def end_session(self, status: str, step: int) -> None:
        self.run.summary["status"] = status

    def rewind(self, step: int) -> None:
        pass  # W&B keeps what it has; the steps after a rollback are logged again beside them

    def flush(self) -> None:
        _write_state(self.run_dir, "wandb", {"id": self.wandb_id, "step": self.step})

    def close(self) -> None:
        self.flush()
        self.run.finish()


class MLflowLogger:
    """`MetricLogger` for MLflow: one MLflow run per latentrun run in the experiment of the same
    name, at MLFLOW_TRACKING_URI, resumed with it.

    MLflow metric names may not hold every character TensorBoard tags do, but `train/loss` is fine.
    """

    _STATUS = {"finished": "FINISHED", "crashed": "FAILED", "diverged": "FAILED"}

    def __init__(self, run_dir: Path, experiment: str, resuming: bool) -> None:
        mlflow = require("mlflow")
        self.mlflow = mlflow
        self.client = mlflow.tracking.MlflowClient()
        recorded = _entry(run_dir, "mlflow").get("run_id") if resuming else None
        self.run_id, self.logged_through = None, 0
        if isinstance(recorded, str):
            try:
                self.client.update_run(recorded, status="RUNNING")
                history = self.client.get_metric_history(recorded, "train/loss")
                self.run_id, self.logged_through = recorded, max((m.step for m in history), default=0)
            except mlflow.exceptions.MlflowException as error:
                logger.warning(
                    f"MLflow run {recorded} of {TRACKERS_FILE} is gone ({_first_line(error)}); starting a new one"
                )
        if self.run_id is None:
            found = self.client.get_experiment_by_name(experiment)
            experiment_id = found.experiment_id if found else self.client.create_experiment(experiment)
            self.run_id = self.client.create_run(experiment_id, run_name=run_dir.name).info.run_id
        _write_state(run_dir, "mlflow", {"run_id": self.run_id, "tracking_uri": mlflow.get_tracking_uri()})
        self.status = "KILLED"

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        if step <= self.logged_through:
            return  # already in MLflow from the session that stopped; the resume computes the same
        self.client.log_metric(self.run_id, tag, float(value), step=step)

    def add_text(self, tag: str, text: str, step: int = 0) -> None:
        self.client.log_text(self.run_id, text, f"{tag}.txt")

    def start_session(self, hparams: Mapping[str, Any]) -> None:
        for key, value in hparams.items():
            self.client.log_param(self.run_id, key, value)

    def end_session(self, status: str, step: int) -> None:
        self.client.set_tag(self.run_id, "latentrun.status", status)
        self.status = self._STATUS.get(status, "KILLED")  # KILLED: stopped or interrupted, resumable

    def rewind(self, step: int) -> None:
        pass  # MLflow keeps what it has; the steps after a rollback are logged again beside them

    def flush(self) -> None:
        pass  # every call above is written through at once

    def close(self) -> None:
        self.client.set_terminated(self.run_id, status=self.status)


class Guarded:
    """A tracker whose failures never reach training: the first one is warned about and recorded in
    meta.json's `tracker_errors`, and the tracker is dropped for the rest of the session."""

    def __init__(
        self,
        name: str,
        tracker: Callable[[Path, str, bool], MetricLogger],
        run_dir: Path,
        experiment: str,
        resuming: bool,
    ) -> None:
        self.name, self.run_dir = name, run_dir
        self.inner: MetricLogger | None = None
        try:
            self.inner = tracker(run_dir, experiment, resuming)
        except Exception as error:  # whatever a tracker library raises: none of it is training's business
            self._fail("starting", error)

    def _call(self, method: str, *args: Any) -> None:
        if self.inner is None:
            return
        try:
            getattr(self.inner, method)(*args)
        except Exception as error:
            self.inner = None
            self._fail(method, error)

    def _fail(self, doing: str, error: Exception) -> None:
        message = f"{type(error).__name__} while {doing}: {_first_line(error)}"
        logger.warning(
            f"{self.name} tracker failed ({message}); training goes on without it, "
            "its checkpoints and TensorBoard are unaffected"
        )
        try:
            RunDir(self.run_dir).record_tracker_error(self.name, message)
        except (OSError, run_files.RunError) as meta_error:
            logger.warning(f"could not record the tracker failure in {run_files.META_FILE}: {meta_error}")

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        self._call("add_scalar", tag, value, step)

    def add_text(self, tag: str, text: str, step: int = 0) -> None:
        self._call("add_text", tag, text, step)

    def start_session(self, hparams: Mapping[str, Any]) -> None:
        self._call("start_session", hparams)

    def end_session(self, status: str, step: int) -> None:
        self._call("end_session", status, step)

    def rewind(self, step: int) -> None:
        self._call("rewind", step)

    def flush(self) -> None:
        self._call("flush")

    def close(self) -> None:
        self._call("close")


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return printable(text.splitlines()[0] if text else "no message", limit=200)


def _guarded(
    name: str, tracker: Callable[[Path, str, bool], MetricLogger]
) -> Callable[[Path, str, bool], MetricLogger]:
    return lambda run_dir, experiment, resuming: Guarded(name, tracker, run_dir, experiment, resuming)


# name in train.loggers -> the logger's constructor (run dir, experiment, resuming), failures contained
TRACKERS: dict[str, Callable[[Path, str, bool], MetricLogger]] = {
    "wandb": _guarded("wandb", WandbLogger),
    "mlflow": _guarded("mlflow", MLflowLogger),
}


def open_loggers(config: dict[str, Any], run_dir: Path, resume_step: int | None) -> MetricLogger:
    """Rank 0: the loggers `train.loggers` names, behind one MetricLogger; `resume_step` is the
    checkpoint's step when resuming. Close them with `close_loggers`."""
    chosen: list[MetricLogger] = []
    for name in config["train"]["loggers"]:
        if name == "tensorboard":
            # A resume purges what an earlier session logged after its checkpoint (all of it, when
            # it stopped before the first); config and HParams belong to the run, written once.
            purge_step = resume_step + 1 if resume_step is not None else None
            chosen.append(TensorBoardLogger(run_dir, purge_step=purge_step))
        else:
            chosen.append(TRACKERS[name](run_dir, config["experiment"], resume_step is not None))
    return chosen[0] if len(chosen) == 1 else Loggers(chosen)


def record_run(metric_logger: MetricLogger, config: dict[str, Any], parameters: int) -> None:
    """The first session's records of the run itself: its resolved config and its hyperparameters."""
    metric_logger.add_text("config", "\n".join("    " + line for line in config_module.dump(config).splitlines()))
    metric_logger.start_session(hparams.flat_hparams(config, parameters))


def close_loggers(metric_logger: MetricLogger, state: TrainerState, outcome: str = CRASHED) -> None:
    """Attach the session's final metrics for TensorBoard's HParams tab, mark how it ended, close."""
    try:
        if state.best_exact_match >= 0:
            metric_logger.add_scalar("summary/best_exact_match", state.best_exact_match, state.step)
        metric_logger.add_scalar("summary/elapsed_seconds", state.elapsed_seconds, state.step)
        metric_logger.end_session(outcome, state.step)
    finally:
        metric_logger.close()
