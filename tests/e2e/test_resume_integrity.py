"""What a resume leaves behind: nothing at all when it cannot load, no TensorBoard step twice when
it starts over before the first checkpoint, and no TensorBoard writer left open whatever fails."""

import errno
import os

import pytest
from helpers import FAST, final_state, only_run, run_cli, scalars
from support import SMOKE
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
from torch.utils.tensorboard import SummaryWriter

from latentrun.report import hparams
from latentrun.runs import run_files as runs
from latentrun.train.trainer import Trainer


def snapshot(run_dir):
    """Every file of the run directory with its bytes."""
    return {str(path.relative_to(run_dir)): path.read_bytes() for path in sorted(run_dir.rglob("*")) if path.is_file()}


def session_starts(run_dir) -> int:
    """HParams session-start records in all of the run's event files."""
    return sum(
        value.tag == "_hparams_/session_start_info"
        for path in run_dir.glob("events.out.tfevents.*")
        for event in EventFileLoader(str(path)).Load()
        for value in event.summary.value
    )


def test_a_forced_resume_that_cannot_load_changes_nothing_in_the_run_dir(tmp_path, capsys):
    assert run_cli(SMOKE, "--runs-dir", tmp_path, *FAST, "--stop-at", 20) == 0
    run_dir = only_run(tmp_path)
    before = snapshot(run_dir)

    assert run_cli("--resume", run_dir, "--force", "--set", "model.d_model=64") == 1
    assert "checkpoint does not fit this model" in capsys.readouterr().err
    after = snapshot(run_dir)
    assert after.keys() == before.keys()
    assert [name for name in before if after[name] != before[name]] == []

    assert run_cli("--resume", run_dir) == 0, "the failed resume must not stand in the way of a good one"
    assert final_state(run_dir, 40)["step"] == 40


def test_a_resume_before_the_first_checkpoint_logs_every_step_once(tmp_path, monkeypatch, straight):
    real_step = Trainer.train_step

    def crash_at_step_6(self, step):
        if step == 6:
            raise RuntimeError("the machine went away")
        return real_step(self, step)

    monkeypatch.setattr(Trainer, "train_step", crash_at_step_6)
    with pytest.raises(RuntimeError, match="went away"):
        run_cli(SMOKE, "--runs-dir", tmp_path, *FAST)
    run_dir = only_run(tmp_path)
    assert [step for step, _ in scalars(run_dir, "train/loss")] == [1, 2, 3, 4, 5]  # flushed before the crash
    monkeypatch.undo()

    assert run_cli("--resume", run_dir) == 0
    assert scalars(run_dir, "train/loss") == scalars(straight, "train/loss")
    accumulator = EventAccumulator(str(run_dir), size_guidance={"tensors": 0})
    accumulator.Reload()
    assert len(accumulator.Tensors("config/text_summary")) == 1
    assert session_starts(run_dir) == 1


@pytest.fixture
def open_writers(monkeypatch):
    """The TensorBoard writers opened and not closed since the test began."""
    opened = set()
    real_init, real_close = SummaryWriter.__init__, SummaryWriter.close

    def init(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        opened.add(id(self))

    def close(self):
        opened.discard(id(self))
        real_close(self)

    monkeypatch.setattr(SummaryWriter, "__init__", init)
    monkeypatch.setattr(SummaryWriter, "close", close)
    return opened


def test_the_writer_is_closed_when_a_resume_cannot_load(tmp_path, open_writers):
    assert run_cli(SMOKE, "--runs-dir", tmp_path, *FAST, "--stop-at", 10) == 0
    assert run_cli("--resume", only_run(tmp_path), "--force", "--set", "model.d_model=64") == 1
    assert not open_writers


def test_the_writer_is_closed_when_meta_json_cannot_be_written_before_training(tmp_path, monkeypatch, open_writers):
    real_update_meta = runs.update_meta

    def refused(run_dir, **changes):
        if changes.get("status") == "running":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(run_dir / "meta.json"))
        return real_update_meta(run_dir, **changes)

    monkeypatch.setattr(runs, "update_meta", refused)
    assert run_cli(SMOKE, "--runs-dir", tmp_path, *FAST) == 1
    assert not open_writers


def test_the_writer_is_closed_when_its_first_records_fail(tmp_path, monkeypatch, open_writers):
    def broken(*args):
        raise RuntimeError("no HParams today")

    monkeypatch.setattr(hparams, "session_start", broken)
    with pytest.raises(RuntimeError, match="no HParams today"):
        run_cli(SMOKE, "--runs-dir", tmp_path, *FAST)
    assert not open_writers
