"""Runs side by side, for real: a parallel launch of two smoke runs and one that is killed midway,
then `list`, `compare` (checked against the checkpoints), resume by id and `latest`, and what
TensorBoard's own readers find in the run directories."""

import contextlib
import io
import json
import os
import shutil
import signal
import socket
import threading
import time

import pytest
import torch
from helpers import run_cli, scalars
from support import SMOKE, SMOKE_SIMPLE

from latentrun.launch import parallel
from latentrun.runs import checkpoint_file as checkpoint
from latentrun.runs import run_files as runs

pytestmark = pytest.mark.slow  # launches of two and three processes, one of them killed


def kill_victims(runs_dir, stop, killed):
    """SIGKILL the `victim` run as soon as it is training, as the out-of-memory killer would."""
    deadline = time.monotonic() + 300
    while not stop.is_set() and time.monotonic() < deadline:
        for meta_path in runs_dir.glob("victim-*/meta.json"):
            try:
                meta = json.loads(meta_path.read_text())
            except ValueError:
                continue
            if meta.get("status") == "running" and meta["pid"] not in killed:
                os.kill(meta["pid"], signal.SIGKILL)
                killed.append(meta["pid"])
        time.sleep(0.05)


@pytest.fixture(scope="module")
def launch(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("side_by_side")
    runs_dir = tmp / "runs"
    victim = tmp / "victim.yaml"
    victim.write_text(
        SMOKE.read_text().replace("experiment: smoke", "experiment: victim").replace("max_steps: 40", "max_steps: 3000")
    )
    stop, killed = threading.Event(), []
    killer = threading.Thread(target=kill_victims, args=(runs_dir, stop, killed), daemon=True)
    killer.start()
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = run_cli(victim, SMOKE, SMOKE_SIMPLE, "--jobs", 2, "--runs-dir", runs_dir)
    stop.set()
    killer.join()
    by_experiment = {json.loads((d / "meta.json").read_text())["experiment"]: d for d in runs.run_dirs(runs_dir)}
    return {
        "status": status,
        "out": out.getvalue(),
        "err": err.getvalue(),
        "killed": killed,
        "runs_dir": runs_dir,
        "runs": by_experiment,
    }


def test_one_failure_does_not_stop_the_others(launch):
    assert launch["status"] == 1, launch["err"]
    assert len(launch["killed"]) == 1
    lines = launch["out"].splitlines()
    assert len(lines) == 4 and lines[-1] == "3 runs: 1 crashed, 2 finished"  # each run's line once, as it ends
    by_label = {line.split()[1]: line for line in lines[:3]}
    victim, smoke, simple = (by_label[name].split() for name in ("victim", "smoke", "smoke_simple"))
    assert victim[0] == "crashed" and "killed by SIGKILL" in by_label["victim"]
    assert smoke[0] == "finished" and smoke[2] == launch["runs"]["smoke"].name
    assert simple[0] == "finished" and "step 40/40" in by_label["smoke_simple"]
    assert "launching 3 runs, 2 at a time" in launch["err"]
    assert launch["err"].count("] started ") == 3  # not silent until the first run ends


def test_each_run_is_its_own_process_with_the_cores_split(launch):
    threads = max(1, parallel.cores() // 2)
    pids = set()
    for run_dir in launch["runs"].values():
        meta = json.loads((run_dir / "meta.json").read_text())
        pids.add(meta["pid"])
        assert f"num_threads: {threads}" in (run_dir / "config.yaml").read_text()
        assert meta["command"][:3] == ["python", "-m", "latentrun"]
        assert meta["command"][4:6] == ["--set", f"train.num_threads={threads}"]
    assert len(pids) == 3 and os.getpid() not in pids


def test_list_reads_the_real_runs(launch, capsys):
    runs_dir, smoke = launch["runs_dir"], launch["runs"]["smoke"]
    capsys.readouterr()
    assert run_cli("list", "--runs-dir", runs_dir, "--json") == 0
    rows = {row["experiment"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["victim"]["status"] == "crashed"  # meta.json still says running; its process is dead
    assert rows["smoke"]["status"] == rows["smoke_simple"]["status"] == "finished"
    meta = json.loads((smoke / "meta.json").read_text())
    best = checkpoint.load(smoke / "checkpoints" / "best.pt")
    assert rows["smoke"]["step"] == 40 and rows["smoke"]["best_exact_match"] == best["metrics"]["val/exact_match"]
    assert rows["smoke"]["last_loss"] == pytest.approx(scalars(smoke, "train/loss")[-1][1], rel=1e-6)
    assert rows["smoke"]["parameters"] == meta["parameters"]

    assert run_cli("list", "--runs-dir", runs_dir, "--sort", "acc", "--limit", "2") == 0
    table = capsys.readouterr().out.splitlines()
    ranked = sorted(("smoke", "smoke_simple"), key=lambda e: -rows[e]["best_exact_match"])
    assert len(table) == 3 and [line.split()[1] for line in table[1:]] in (ranked, ranked[::-1])
    if rows["smoke"]["best_exact_match"] != rows["smoke_simple"]["best_exact_match"]:
        assert [line.split()[1] for line in table[1:]] == ranked

    assert run_cli("list", "--runs-dir", runs_dir, "--id", smoke.name) == 0
    details = capsys.readouterr().out
    threads = max(1, parallel.cores() // 2)
    assert f"train.num_threads: 0 -> {threads}" in details
    for step, path in checkpoint.step_checkpoints(smoke / "checkpoints"):
        assert f"{path.name}    step {step}" in details
    assert "best.pt" in details


def test_compare_two_real_runs_matches_their_checkpoints(launch, tmp_path, capsys):
    smoke, simple = launch["runs"]["smoke"], launch["runs"]["smoke_simple"]
    target = scalars(smoke, "val/exact_match")[-1][1]
    capsys.readouterr()
    assert (
        run_cli("compare", smoke, simple.name, "--runs-dir", launch["runs_dir"], "--target", target, "--out", tmp_path)
        == 0
    )
    printed = capsys.readouterr().out
    document = json.loads((tmp_path / "compare.json").read_text())
    assert (tmp_path / "compare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for run_dir, run in zip((smoke, simple), document["runs"]):
        best = checkpoint.load(run_dir / "checkpoints" / "best.pt")
        parameters = sum(tensor.numel() for tensor in best["model"].values())
        assert run["id"] == run_dir.name and run["parameters"] == parameters
        assert run["best_step"] == best["step"]
        assert run["exact_match"] == best["metrics"]["val/exact_match"]
        assert run["val_loss"] == best["metrics"]["val/loss"]
        assert run["digit_accuracy"] == best["metrics"]["val/digit_accuracy"]
        assert run["exact_match_per_million_params"] == pytest.approx(run["exact_match"] / parameters * 1e6)
        assert run["loss_x_params"] == pytest.approx(run["val_loss"] * parameters)
        last = torch.load(run_dir / "checkpoints" / "step_00000040.pt", weights_only=True)
        assert run["steps"] == last["step"] == 40
        assert run["elapsed_seconds"] == pytest.approx(last["trainer"]["elapsed_seconds"], abs=1e-3)
        assert run["train_flops"] == pytest.approx(run["train_flops_per_example"] * 32 * 40)
        reached = (
            next(step for step, value in scalars(run_dir, "val/exact_match") if value >= target)
            if any(value >= target for _, value in scalars(run_dir, "val/exact_match"))
            else None
        )
        assert run["steps_to_target"] == reached
        if reached is not None:
            assert run["seconds_to_target"] == pytest.approx(dict(scalars(run_dir, "perf/elapsed_seconds"))[reached])
        assert run["curves"]["val/loss"] == [list(point) for point in scalars(run_dir, "val/loss")]
    assert [group["model"] for group in document["groups"]] == ["latent_transformer", "simple_transformer"]
    assert document["verdict"]["winner"] in ("smoke", "smoke_simple")
    assert document["verdict"]["text"] in printed and f"{document['runs'][0]['parameters']:,}" in printed


def test_tensorboard_finds_scalars_and_hparams_one_entry_per_run(launch):
    from tensorboard import context
    from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
    from tensorboard.plugins import base_plugin
    from tensorboard.plugins.hparams import api_pb2, backend_context, list_session_groups, metadata

    smoke = launch["runs"]["smoke"]
    assert [step for step, _ in scalars(smoke, "train/loss")] == list(range(1, 41))
    assert [step for step, _ in scalars(smoke, "val/exact_match")] == [20, 40]

    multiplexer = plugin_event_multiplexer.EventMultiplexer()
    multiplexer.AddRunsFromDirectory(str(launch["runs_dir"]))
    multiplexer.Reload()
    assert sorted(multiplexer.Runs()) == sorted(d.name for d in launch["runs"].values())  # no hparams sub-runs
    content = multiplexer.PluginRunToTagToContent(metadata.PLUGIN_NAME)
    start = metadata.parse_session_start_info_plugin_data(content[smoke.name][metadata.SESSION_START_INFO_TAG])
    assert start.hparams["model.name"].string_value == "latent_transformer"
    assert start.hparams["optimizer.lr"].number_value == 0.001
    assert start.hparams["parameters"].number_value == json.loads((smoke / "meta.json").read_text())["parameters"]
    # Killed: never ended (and, killed early enough, never started a session either).
    assert metadata.SESSION_END_INFO_TAG not in content.get(launch["runs"]["victim"].name, {})

    # What TensorBoard's HParams tab lists: one session group per run, with its final metrics.
    provider = data_provider.MultiplexerDataProvider(multiplexer, str(launch["runs_dir"]))
    hparams_context = backend_context.Context(base_plugin.TBContext(data_provider=provider, multiplexer=multiplexer))
    request = api_pb2.ListSessionGroupsRequest(
        start_index=0,
        slice_size=100,
        allowed_statuses=[
            api_pb2.STATUS_UNKNOWN,
            api_pb2.STATUS_SUCCESS,
            api_pb2.STATUS_FAILURE,
            api_pb2.STATUS_RUNNING,
        ],
    )
    response = list_session_groups.Handler(context.RequestContext(), hparams_context, "", request).run()
    groups = {group.name: group for group in response.session_groups}
    assert set(groups) == {d.name for d in launch["runs"].values()}
    finals = {value.name.tag: value.value for value in groups[smoke.name].metric_values}
    best = checkpoint.load(smoke / "checkpoints" / "best.pt")["metrics"]["val/exact_match"]
    assert finals["summary/best_exact_match"] == pytest.approx(best)
    assert finals["val/exact_match"] == pytest.approx(scalars(smoke, "val/exact_match")[-1][1])
    assert groups[smoke.name].sessions[0].status == api_pb2.STATUS_SUCCESS


def test_resume_by_id_and_latest(launch, tmp_path):
    runs_dir = tmp_path / "runs"
    shutil.copytree(launch["runs"]["victim"], runs_dir / launch["runs"]["victim"].name)
    victim = runs_dir / launch["runs"]["victim"].name
    found = checkpoint.step_checkpoints(victim / "checkpoints")
    stop_at = (found[-1][0] if found else 0) + 1
    assert run_cli("--resume", victim.name, "--runs-dir", runs_dir, "--stop-at", stop_at) == 0
    meta = json.loads((victim / "meta.json").read_text())
    assert meta["status"] == "stopped" and meta["step"] == stop_at and meta["pid"] == os.getpid()
    assert meta["host"] == socket.gethostname()

    shutil.copytree(launch["runs"]["smoke"], runs_dir / "smoke-copy")
    meta_path = runs_dir / "smoke-copy" / "meta.json"
    meta_path.write_text(json.dumps({**json.loads(meta_path.read_text()), "created": "2999-01-01T00:00:00+00:00"}))
    assert runs.resolve_run_dir("latest", runs_dir).name == "smoke-copy"
    assert (
        run_cli("--resume", "latest", "--runs-dir", runs_dir) == 0
    )  # already finished: records the resume, trains nothing
    assert [event["event"] for event in json.loads(meta_path.read_text())["history"]] == ["start", "resume"]


def test_sigterm_to_the_launcher_stops_runs_cleanly_and_starts_no_more(tmp_path, capsys):
    """The launcher runs in this process; a helper thread sends it SIGTERM once the first run trains."""
    long = tmp_path / "long.yaml"
    long.write_text(
        SMOKE.read_text().replace("experiment: smoke", "experiment: long").replace("max_steps: 40", "max_steps: 3000")
    )
    runs_dir = tmp_path / "runs"

    def terminate_when_training():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if any('"step": 10' in p.read_text() for p in runs_dir.glob("long-*/meta.json")):
                os.kill(os.getpid(), signal.SIGTERM)  # the launcher's handler owns SIGTERM while it runs
                return
            time.sleep(0.05)

    helper = threading.Thread(target=terminate_when_training)
    helper.start()
    assert run_cli(long, SMOKE, "--jobs", 1, "--runs-dir", runs_dir) == 130
    helper.join()
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("interrupted  long") and lines[1].startswith("skipped      smoke"), lines
    [run_dir] = runs.run_dirs(runs_dir)  # smoke never started
    [(step, _)] = checkpoint.step_checkpoints(run_dir / "checkpoints")[-1:]
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["status"] == "interrupted" and meta["step"] == step >= 10  # resumable from where it stopped
