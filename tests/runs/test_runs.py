"""Finding a run from what the user typed: a path, an id under the runs dir, or `latest`."""

import datetime as dt
import json

import pytest

from latentrun.runs import run_files as runs


def hours_ago(hours, utc_offset=0):
    """meta.json's `created` for a moment `hours` before now, written with the given UTC offset.

    Computed from the clock, not written as a date: a run made without meta.json counts as created
    now (its config.yaml's modification time), and must stay the newest whatever the clock says."""
    zone = dt.timezone(dt.timedelta(hours=utc_offset))
    return (dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=hours)).astimezone(zone).isoformat()


def make_run(folder, created=None):
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text("experiment: x\n")
    if created is not None:
        (folder / "meta.json").write_text(json.dumps({"created": created}))
    return folder


def test_path_id_and_latest(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runs_dir = tmp_path / "runs"
    older = make_run(runs_dir / "b-older", hours_ago(2))
    newer = make_run(runs_dir / "a-newer", hours_ago(1.5, utc_offset=-1))  # newer, though its name and text sort first
    assert runs.resolve_run_dir(str(older), runs_dir) == older
    assert runs.resolve_run_dir("b-older", runs_dir) == runs_dir / "b-older"
    assert runs.resolve_run_dir("latest", runs_dir) == newer
    make_run(runs_dir / "c-no-meta")  # falls back to config.yaml's modification time: just written, so newest
    assert runs.resolve_run_dir("latest", runs_dir).name == "c-no-meta"


def test_latest_with_no_runs(tmp_path):
    with pytest.raises(runs.RunError, match="no runs"):
        runs.resolve_run_dir("latest", tmp_path / "runs")


@pytest.mark.parametrize("text", ["../outside", "..", "sub/../../outside", "/etc", "a\0b"])
def test_ids_never_leave_the_runs_dir(tmp_path, monkeypatch, text):
    """`../outside` resolves against the current directory as a path, never against the runs dir."""
    runs_dir = tmp_path / "deep" / "runs"
    make_run(tmp_path / "deep" / "outside")  # runs_dir/../outside would be a valid run
    (runs_dir / "sub").mkdir(parents=True)
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    with pytest.raises(runs.RunError):
        runs.resolve_run_dir(text, runs_dir)


def test_plain_ids():
    assert runs.is_plain_id("smoke-20260101-101010-ab12")
    assert not any(runs.is_plain_id(text) for text in ("", ".", "..", "a/b", "../a"))


def test_latest_never_follows_a_link_out_of_the_runs_dir(tmp_path):
    """Issue 22 item 17: `--resume latest` trained into a folder outside runs/ through a symlink."""
    runs_dir = tmp_path / "runs"
    make_run(runs_dir / "a-inside", hours_ago(48))
    outside = make_run(tmp_path / "elsewhere", hours_ago(24))
    (runs_dir / "b-link").symlink_to(outside)
    with pytest.raises(runs.RunError, match=r"latest: the newest run, b-link: leads outside .*runs/"):
        runs.resolve_run_dir("latest", runs_dir)
    (runs_dir / "b-link").unlink()
    assert runs.resolve_run_dir("latest", runs_dir) == runs_dir / "a-inside"
