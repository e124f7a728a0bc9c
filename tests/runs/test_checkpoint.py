import errno
import hashlib
import io
import os
import pickle

import pytest
import torch

from latentrun.runs import checkpoint_file, manifest


def _disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("failing", ["fsync", "manifest", "replace"])
def test_failed_save_is_a_checkpoint_error_that_leaves_earlier_checkpoints_verified(tmp_path, monkeypatch, failing):
    path = tmp_path / checkpoint_file.step_file_name(10)
    checkpoint_file.save(path, {"step": 10, "model": {"w": torch.ones(2)}})
    manifest_before = (tmp_path / manifest.MANIFEST_FILE).read_bytes()
    target = {"fsync": (os, "fsync"), "manifest": (manifest, "record"), "replace": (os, "replace")}[failing]
    monkeypatch.setattr(*target, _disk_full)
    with pytest.raises(
        checkpoint_file.CheckpointError, match=r"step_00000020\.pt: cannot write checkpoint \(No space left"
    ):
        checkpoint_file.save(
            tmp_path / checkpoint_file.step_file_name(20), {"step": 20, "model": {"w": torch.zeros(2)}}
        )
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == [manifest.MANIFEST_FILE, "step_00000010.pt"]  # no temporary left
    if failing != "replace":
        assert (tmp_path / manifest.MANIFEST_FILE).read_bytes() == manifest_before
    assert checkpoint_file.load(path)["step"] == 10


def test_every_saved_file_is_recorded_with_its_sha256(tmp_path):
    for name in (checkpoint_file.step_file_name(1), checkpoint_file.BEST_FILE):
        checkpoint_file.save(tmp_path / name, {"step": 1, "model": {"w": torch.arange(4.0)}})
    recorded = manifest.read(tmp_path)
    assert sorted(recorded) == ["best.pt", "step_00000001.pt"]
    for name, entry in recorded.items():
        data = (tmp_path / name).read_bytes()
        assert entry["sha256"] == hashlib.sha256(data).hexdigest() and entry["bytes"] == len(data)


def _flip_a_byte(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0x01]) + data[middle + 1 :]


CORRUPTIONS = {
    "truncated to half": lambda data: data[: len(data) // 2],
    "truncated by one byte": lambda data: data[:-1],
    "one bit flipped inside a tensor": _flip_a_byte,
    "zero-filled": lambda data: bytes(len(data)),
    "emptied": lambda data: b"",
    "a byte appended": lambda data: data + b"\0",
}


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_corrupted_checkpoints_are_detected_naming_the_file(tmp_path, corruption):
    path = tmp_path / checkpoint_file.step_file_name(1)
    checkpoint_file.save(path, {"step": 1, "model": {"w": torch.arange(1000.0)}})
    path.write_bytes(CORRUPTIONS[corruption](path.read_bytes()))
    with pytest.raises(checkpoint_file.CheckpointError, match=r"step_00000001\.pt: (truncated or altered|altered)"):
        checkpoint_file.load(path)


def test_a_flipped_bit_loads_fine_without_the_manifest_but_is_caught_with_it(tmp_path):
    """Why the manifest exists: torch.load alone accepts silently wrong weights."""
    path = tmp_path / checkpoint_file.step_file_name(1)
    checkpoint_file.save(path, {"step": 1, "model": {"w": torch.zeros(1000)}})
    altered = _flip_a_byte(path.read_bytes())
    import io

    assert torch.load(io.BytesIO(altered), weights_only=True)["model"]["w"].abs().sum() > 0
    path.write_bytes(altered)
    with pytest.raises(checkpoint_file.CheckpointError, match="altered"):
        checkpoint_file.load(path)


def test_a_file_missing_from_the_manifest_is_refused(tmp_path):
    checkpoint_file.save(tmp_path / checkpoint_file.step_file_name(1), {"step": 1, "model": {}})
    stranger = tmp_path / checkpoint_file.step_file_name(2)
    torch.save({"step": 2, "model": {}}, stranger)
    with pytest.raises(checkpoint_file.CheckpointError, match="not recorded in manifest.json"):
        checkpoint_file.load(stranger)


def test_leftover_temporaries_are_removed(tmp_path):
    checkpoint_file.save(tmp_path / checkpoint_file.step_file_name(1), {"step": 1, "model": {}})
    (tmp_path / ".step_00000002.pt.999.tmp").write_bytes(b"half")
    assert [p.name for p in checkpoint_file.remove_temporaries(tmp_path)] == [".step_00000002.pt.999.tmp"]
    assert sorted(os.listdir(tmp_path)) == [manifest.MANIFEST_FILE, "step_00000001.pt"]


class Payload:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_pickle_payloads_are_refused_not_executed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "step_00000001.pt"
    with open(path, "wb") as handle:
        pickle.dump({"step": 1, "model": Payload()}, handle)
    with pytest.raises(checkpoint_file.CheckpointError, match="unreadable"):
        checkpoint_file.load(path)
    assert not (tmp_path / "pwned").exists()


def test_truncated_and_foreign_files_are_checkpoint_errors(tmp_path):
    good = tmp_path / "step_00000001.pt"
    checkpoint_file.save(good, {"step": 1, "model": {"w": torch.ones(100)}})
    truncated = tmp_path / "step_00000002.pt"
    truncated.write_bytes(good.read_bytes()[:50])
    foreign = tmp_path / "step_00000003.pt"
    torch.save({"weights": 1}, foreign)
    for path in (truncated, foreign):
        with pytest.raises(checkpoint_file.CheckpointError):
            checkpoint_file.load(path)


def test_listing_and_pruning(tmp_path):
    for step in (50, 100, 150, 200):
        checkpoint_file.save(tmp_path / checkpoint_file.step_file_name(step), {"step": step, "model": {}})
    (tmp_path / checkpoint_file.BEST_FILE).write_bytes(b"")
    (tmp_path / ".step_00000250.pt.123.tmp").write_bytes(b"")
    assert [step for step, _ in checkpoint_file.step_checkpoints(tmp_path)] == [50, 100, 150, 200]
    checkpoint_file.prune(tmp_path, keep_last=2)
    assert [step for step, _ in checkpoint_file.step_checkpoints(tmp_path)] == [150, 200]
    assert (tmp_path / checkpoint_file.BEST_FILE).exists()


def test_a_reader_between_the_manifest_update_and_the_rename_sees_the_old_whole_file(tmp_path):
    """The torn pair a reader during training met: manifest already new, best.pt still old."""
    path = tmp_path / checkpoint_file.BEST_FILE
    checkpoint_file.save(path, {"step": 10, "model": {"w": torch.ones(2)}})
    buffer = io.BytesIO()
    torch.save({"step": 20, "model": {"w": torch.zeros(2)}}, buffer)
    manifest.record(path, buffer.getvalue())  # what save() does just before renaming the new file in
    assert checkpoint_file.load(path)["step"] == 10
    path.write_bytes(buffer.getvalue())  # the rename lands
    assert checkpoint_file.load(path)["step"] == 20


def test_the_replaced_entry_vouches_only_for_the_bytes_it_recorded(tmp_path):
    path = tmp_path / checkpoint_file.BEST_FILE
    checkpoint_file.save(path, {"step": 10, "model": {"w": torch.ones(2)}})
    checkpoint_file.save(path, {"step": 20, "model": {"w": torch.zeros(2)}})
    path.write_bytes(_flip_a_byte(path.read_bytes()))
    with pytest.raises(checkpoint_file.CheckpointError, match="altered: SHA-256"):
        checkpoint_file.load(path)


def test_a_reader_retries_when_the_manifest_changes_during_its_read(tmp_path, monkeypatch):
    """Two saves during one read leave bytes the manifest no longer knows; the read is taken again."""
    path = tmp_path / checkpoint_file.BEST_FILE
    for step in (10, 20, 30):
        checkpoint_file.save(path, {"step": step, "model": {"w": torch.full((2,), float(step))}})
    stale = {"step": 10, "model": {"w": torch.full((2,), 10.0)}}
    buffer = io.BytesIO()
    torch.save(stale, buffer)
    reads = []
    original = type(path).read_bytes

    def read_racing_two_saves(self):
        reads.append(self.name)
        if len(reads) == 1:  # the first read returns step 10's bytes, and the manifest moves on meanwhile
            checkpoint_file.save(tmp_path / checkpoint_file.step_file_name(1), {"step": 1, "model": {}})
            return buffer.getvalue()
        return original(self)

    monkeypatch.setattr(type(path), "read_bytes", read_racing_two_saves)
    assert checkpoint_file.load(path)["step"] == 30
    assert reads == ["best.pt", "best.pt"]
