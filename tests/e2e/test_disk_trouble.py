"""A checkpoint the disk refuses to take stops the run (exit 1) with an error in the log, leaves the
previous checkpoint intact and verified, and the run resumes from it to the same bitwise end."""

import builtins
import errno
import json
import os
import resource
import subprocess
import sys

import pytest
from helpers import FAST, assert_states_equal, final_state, only_run, run_cli, step_file
from support import ROOT, SMOKE

from latentrun.core import atomic
from latentrun.runs import checkpoint_file as checkpoint


def assert_stopped_cleanly_at_10(run_dir, err):
    assert "Traceback" not in err
    assert [step for step, _ in checkpoint.step_checkpoints(run_dir / "checkpoints")] == [10]
    assert checkpoint.load(step_file(run_dir, 10))["step"] == 10  # intact, and its SHA-256 still matches
    assert not [p for p in (run_dir / "checkpoints").iterdir() if p.name.endswith(".tmp")]
    log = (run_dir / "train.log").read_text()
    assert "ERROR" in log and "step 20: " in log and "stopping the run, earlier checkpoints are intact" in log
    assert "step 21/" not in log, "trained on without a checkpoint"
    assert json.loads((run_dir / "meta.json").read_text())["status"] == "crashed"


class HalfWrittenFile:
    """A file whose writes get half-way and then hit `error_number`, as on a disk that fills up."""

    def __init__(self, handle, error_number):
        self.handle, self.error_number = handle, error_number

    def write(self, data):
        self.handle.write(data[: len(data) // 2])
        raise OSError(self.error_number, os.strerror(self.error_number))

    def __getattr__(self, name):
        return getattr(self.handle, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.close()


@pytest.mark.parametrize("error_number", [errno.ENOSPC, errno.EROFS])
def test_a_refused_checkpoint_write_stops_the_run_with_exit_1(error_number, tmp_path, straight, monkeypatch, capsys):
    def refusing_open(path, mode="r", *args, **kwargs):
        handle = builtins.open(path, mode, *args, **kwargs)
        return HalfWrittenFile(handle, error_number) if "step_00000020" in str(path) else handle

    monkeypatch.setattr(atomic, "open", refusing_open, raising=False)  # only step 20's checkpoint fails
    assert run_cli(SMOKE, "--runs-dir", tmp_path, *FAST, "--set", "train.save_every=10") == 1
    err = capsys.readouterr().err
    run_dir = only_run(tmp_path)
    assert f"error: {step_file(run_dir, 20)}: cannot write checkpoint ({os.strerror(error_number)})" in err, err
    assert_stopped_cleanly_at_10(run_dir, err)

    monkeypatch.undo()
    assert run_cli("--resume", run_dir) == 0
    assert_states_equal(final_state(straight, 40), final_state(run_dir, 40))


@pytest.mark.slow  # the resume runs as a process of its own, under RLIMIT_FSIZE
def test_a_real_file_size_limit_from_the_kernel(tmp_path, straight):
    """No monkeypatching: RLIMIT_FSIZE makes the kernel refuse the write (EFBIG) in a real process."""
    assert run_cli(SMOKE, "--runs-dir", tmp_path, *FAST, "--stop-at", 10) == 0
    run_dir = only_run(tmp_path)
    limit = step_file(run_dir, 10).stat().st_size // 2  # logs and meta stay far below it

    def limit_file_size():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

    process = subprocess.run(
        [sys.executable, str(ROOT / "run.py"), "--resume", run_dir],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=limit_file_size,
    )
    assert process.returncode == 1, process.stderr[-3000:]
    assert f"error: {step_file(run_dir, 20)}: cannot write checkpoint (File too large)" in process.stderr
    assert_stopped_cleanly_at_10(run_dir, process.stderr)
    assert run_cli("--resume", run_dir) == 0
    assert_states_equal(final_state(straight, 40), final_state(run_dir, 40))


def test_a_refused_progress_or_lock_write_is_exit_1_without_traceback(tmp_path, monkeypatch, capsys):
    """Writes besides checkpoints (meta.json progress, the lock file) failing end the run cleanly too."""
    from latentrun.runs import run_files as runs

    real_update_meta = runs.update_meta

    def full_disk_after_step_10(run_dir, **changes):
        if changes.get("step") == 20:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(run_dir / "meta.json"))
        return real_update_meta(run_dir, **changes)

    monkeypatch.setattr(runs, "update_meta", full_disk_after_step_10)
    assert run_cli(SMOKE, "--runs-dir", tmp_path, *FAST, "--set", "train.save_every=10") == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and f"error: [Errno {errno.ENOSPC}]" in err and "meta.json" in err, err
    run_dir = only_run(tmp_path)
    assert json.loads((run_dir / "meta.json").read_text())["status"] == "crashed"

    from latentrun.runs import lock

    def refused(run_dir):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(run_dir / "lock"))

    monkeypatch.setattr(lock, "acquire", refused)
    assert run_cli("--resume", run_dir) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "Read-only file system" in err and "lock" in err, err
