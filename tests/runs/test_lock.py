"""latentrun.runs.lock: one process per run dir; a dead holder's lock is taken over."""

import json
import os
import socket
import subprocess
import sys

import pytest
from loguru import logger
from support import dead_pid

from latentrun.runs import lock


@pytest.fixture
def warnings():
    messages: list[str] = []
    sink = logger.add(lambda message: messages.append(str(message)), level="WARNING")
    yield messages
    logger.remove(sink)


def test_lock_file_names_the_holder_and_goes_away_on_release(tmp_path):
    with lock.hold(tmp_path):
        record = json.loads((tmp_path / "lock").read_text())
        assert record["pid"] == os.getpid() and record["host"] == socket.gethostname()
        assert {"pid", "host", "pid_start", "started"} == record.keys()
        assert lock.holder(tmp_path) == record
    assert not (tmp_path / "lock").exists()
    assert lock.holder(tmp_path) is None


def test_a_second_holder_is_refused_with_the_first_ones_pid(tmp_path):
    with lock.hold(tmp_path):
        with pytest.raises(lock.RunLockedError, match=rf"in use by pid {os.getpid()} on host "):
            lock.acquire(tmp_path)
    with lock.hold(tmp_path):  # free again once released
        pass


def test_a_live_holder_in_another_process_is_refused(tmp_path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from latentrun.runs import lock; lock.acquire(__import__('pathlib').Path(sys.argv[1]));"
            "print('held', flush=True); time.sleep(60)",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(lock.RunLockedError, match=rf"pid {holder.pid} "):
            lock.acquire(tmp_path)
        assert lock.holder(tmp_path)["pid"] == holder.pid
    finally:
        holder.kill()
        holder.wait()
    # Killed with SIGKILL: its file stays behind, naming a process that no longer runs.
    assert json.loads((tmp_path / "lock").read_text())["pid"] == holder.pid
    assert lock.holder(tmp_path) is None
    with lock.hold(tmp_path):
        assert json.loads((tmp_path / "lock").read_text())["pid"] == os.getpid()


STALE = {
    "dead holder": None,
    "empty": "",
    "garbage": "not json at all \x00\xff",
    "a list": '["a", "list"]',
    "hostile fields": '{"pid": "12\\n34", "host": "' + "h" * 5000 + '"}',
}


@pytest.mark.parametrize("case", STALE)
def test_stale_or_damaged_lock_files_are_taken_over_with_a_warning(tmp_path, warnings, case):
    pid = dead_pid()
    content = (
        STALE[case]
        if STALE[case] is not None
        else json.dumps({"pid": pid, "host": socket.gethostname(), "started": "2020-01-01T00:00:00+00:00"})
    )
    (tmp_path / "lock").write_text(content)
    with lock.hold(tmp_path):
        assert json.loads((tmp_path / "lock").read_text())["pid"] == os.getpid()
    if content:
        [message] = warnings
        assert "taking over the stale lock of" in message and message.count("\n") <= 1, message
        assert len(message) < 400
        if case == "dead holder":
            assert f"pid {pid} on host {socket.gethostname()}" in message
    else:
        assert warnings == []
