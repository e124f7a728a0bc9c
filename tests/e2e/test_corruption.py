"""Resume verifies each checkpoint against the manifest's SHA-256, skips a bad one with a warning
naming it, falls back to the previous good one, and still ends bitwise equal to a straight run."""

import json
import os
import pickle
import shutil

import pytest
from helpers import FAST, assert_states_equal, final_state, only_run, run_cli, step_file
from support import SMOKE

from latentrun.runs import checkpoint_file as checkpoint
from latentrun.runs import manifest


@pytest.fixture(scope="module")
def stopped(tmp_path_factory):
    """A run stopped at step 30, holding step 10, 20 and 30 checkpoints; tests work on copies."""
    runs_dir = tmp_path_factory.mktemp("stopped")
    assert run_cli(SMOKE, "--runs-dir", runs_dir, *FAST, "--stop-at", 30) == 0
    return only_run(runs_dir)


@pytest.fixture
def run_dir(stopped, tmp_path):
    copy = tmp_path / stopped.name
    shutil.copytree(stopped, copy)
    return copy


def truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def flip_bit(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10  # inside the tensor data: torch.load would accept it
    path.write_bytes(bytes(data))


class Payload:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def pickle_payload_with_forged_manifest(path):
    """The worst case: a pickle payload, and a manifest rewritten to vouch for it."""
    data = pickle.dumps({"step": 30, "model": Payload()})
    path.write_bytes(data)
    manifest_path = path.parent / manifest.MANIFEST_FILE
    recorded = json.loads(manifest_path.read_text())
    recorded["files"][path.name] = {"sha256": manifest.sha256(data), "bytes": len(data)}
    manifest_path.write_text(json.dumps(recorded))


@pytest.mark.parametrize("damage", [truncate, flip_bit, pickle_payload_with_forged_manifest])
def test_a_bad_newest_checkpoint_is_skipped_by_name_and_the_previous_one_used(
    damage, run_dir, straight, capsys, monkeypatch
):
    monkeypatch.chdir(run_dir)  # where the payload would drop its file
    damage(step_file(run_dir, 30))
    capsys.readouterr()
    assert run_cli("--resume", run_dir) == 0
    err = capsys.readouterr().err
    assert f"skipping {step_file(run_dir, 30)}: " in err, err
    assert "resuming" in err and "at step 20" in err
    assert not (run_dir / "pwned").exists()
    assert_states_equal(final_state(straight, 40), final_state(run_dir, 40))
    history = json.loads((run_dir / "meta.json").read_text())["history"]
    assert history[-1]["event"] == "resume" and history[-1]["step"] == 20


def test_two_bad_checkpoints_fall_back_two_steps(run_dir, straight, capsys):
    flip_bit(step_file(run_dir, 30))
    truncate(step_file(run_dir, 20))
    assert run_cli("--resume", run_dir) == 0
    err = capsys.readouterr().err
    assert "step_00000030.pt: altered" in err and "step_00000020.pt: truncated or altered" in err, err
    assert_states_equal(final_state(straight, 40), final_state(run_dir, 40))


def test_every_checkpoint_bad_is_a_clear_error_exit_1(run_dir, capsys):
    for step, damage in ((10, truncate), (20, flip_bit), (30, truncate)):
        damage(step_file(run_dir, step))
    assert run_cli("--resume", run_dir) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert all(checkpoint.step_file_name(step) in err for step in (10, 20, 30)), err
    assert f"error: {run_dir / 'checkpoints'}: none of the 3 checkpoints can be loaded" in err, err
    assert [e["event"] for e in json.loads((run_dir / "meta.json").read_text())["history"]] == ["start"]


def test_predict_refuses_a_best_pt_pickle_payload_without_running_it(run_dir, capsys, monkeypatch):
    monkeypatch.chdir(run_dir)
    pickle_payload_with_forged_manifest(run_dir / "checkpoints" / "best.pt")
    assert run_cli("predict", run_dir, "3*4") == 1
    err = capsys.readouterr().err
    assert "best.pt: unreadable checkpoint (UnpicklingError" in err and "Traceback" not in err, err
    assert not (run_dir / "pwned").exists()
