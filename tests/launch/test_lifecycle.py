"""One training session on its own: a real Trainer and RunDir, fake Checkpoints and MetricLogger
in memory (tests/fakes.py), no CLI and no monkeypatched imports.

What is pinned is the session's bookkeeping: what meta.json says and what the loggers were told
when a session finishes, stops, crashes in training or in grading, or resumes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fakes import CPU, MemoryCheckpoints, MemoryLogger, make_trainer

from latentrun.core.status import CRASHED, FINISHED, RUNNING, STOPPED
from latentrun.launch.assembly import Built
from latentrun.launch.lifecycle import train_session
from latentrun.launch.resume_plan import Resume
from latentrun.runs.run_dir import RunDir
from latentrun.train.checkpoints_protocol import CheckpointError
from latentrun.train.precision import Choice
from latentrun.train.trainer import Trainer


def new_run(tmp_path: Path, trainer: Trainer) -> tuple[RunDir, Built]:
    run = RunDir.create(tmp_path, "smoke")
    run.write_config(trainer.config)
    run.record_start(trainer.config, 1)
    return run, Built(trainer, Choice("fp32", "set in the config"), trainer.model.num_parameters())


def meta(run: RunDir) -> dict:
    return json.loads((run.path / "meta.json").read_text())


def test_a_finished_session_is_graded_and_recorded_and_its_loggers_closed(tmp_path):
    trainer = make_trainer()
    run, built = new_run(tmp_path, trainer)
    loggers = MemoryLogger()
    assert train_session(run, built, trainer.config, CPU, None, None, loggers) == FINISHED
    recorded = meta(run)
    assert recorded["status"] == FINISHED and recorded["step"] == 6 and recorded["max_steps"] == 6
    assert recorded["parameters"] == built.parameters > 0
    assert recorded["precision"] == {
        "requested": "fp32",
        "resolved": "fp32",
        "reason": "set in the config",
        "probe_seconds": None,
    }
    assert set(recorded["test"]) >= {"exact_match", "digit_accuracy"} and 0 <= recorded["test"]["exact_match"] <= 1
    assert [kind for kind, _ in loggers.sessions] == ["start", "end"] and loggers.sessions[1][1] == (FINISHED, 6)
    assert "experiment: smoke" in loggers.texts["config"] and loggers.closed
    assert loggers.steps("summary/elapsed_seconds") == [6]
    assert trainer.metric_logger is loggers  # the trainer logs its scalars to the session's loggers


def test_a_stopped_session_is_not_graded(tmp_path):
    trainer = make_trainer()
    run, built = new_run(tmp_path, trainer)
    loggers = MemoryLogger()
    assert train_session(run, built, trainer.config, CPU, 3, None, loggers) == STOPPED
    recorded = meta(run)
    assert recorded["status"] == STOPPED and recorded["step"] == 3 and "test" not in recorded
    assert loggers.sessions[-1] == ("end", (STOPPED, 3)) and loggers.closed


class ExplodingTrainer(Trainer):
    def fit(self, stop_at: int | None = None) -> str:
        self.state.step = 2
        raise RuntimeError("out of memory")


def test_a_crash_in_training_propagates_after_the_loggers_record_it(tmp_path):
    trainer = make_trainer(trainer_class=ExplodingTrainer)
    run, built = new_run(tmp_path, trainer)
    loggers = MemoryLogger()
    with pytest.raises(RuntimeError, match="out of memory"):
        train_session(run, built, trainer.config, CPU, None, None, loggers)
    assert loggers.sessions[-1] == ("end", (CRASHED, 2)) and loggers.closed
    # meta.json's crash (status and error) is the caller's to write: guards.crash_recorded
    assert meta(run)["status"] == RUNNING


class UnreadableBest(MemoryCheckpoints):
    def best(self) -> None:
        raise CheckpointError("best.pt: damaged")


def test_a_grading_that_fails_ends_the_session_as_crashed(tmp_path):
    trainer = make_trainer()
    trainer.checkpointer = UnreadableBest(2)
    run, built = new_run(tmp_path, trainer)
    loggers = MemoryLogger()
    with pytest.raises(CheckpointError, match="damaged"):
        train_session(run, built, trainer.config, CPU, None, None, loggers)
    assert loggers.sessions[-1] == ("end", (CRASHED, 6)) and loggers.closed


def test_a_resumed_session_records_the_resume_and_not_the_run_again(tmp_path):
    trainer = make_trainer()
    run, built = new_run(tmp_path, trainer)
    resume = Resume(trainer.config, 0, {"train.max_steps": [4, 6]}, forced=False, tested=False)
    loggers = MemoryLogger()
    assert train_session(run, built, trainer.config, CPU, None, resume, loggers) == FINISHED
    history = meta(run)["history"]
    assert [event["event"] for event in history] == ["start", "resume"]
    assert history[1]["step"] == 0 and history[1]["changes"] == {"train.max_steps": [4, 6]}
    assert [kind for kind, _ in loggers.sessions] == ["end"] and "config" not in loggers.texts
    assert meta(run)["status"] == FINISHED
