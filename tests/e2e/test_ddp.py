"""Data-parallel training with torchrun (gloo on CPU): 2 processes vs 1 on the same global batch,
exact resume on 2 processes, and the refusals that keep a run on the process count it started with.

"Same global batch": under torchrun rank r draws `train_batch(step, batch_size / 2, r)`. The
1-process reference run here draws exactly those two shards and concatenates them (rank 0's
first), so both runs see the same 32 examples per step; only the order of floating-point sums
differs (all-reduce of two shard-mean gradients vs one backward over the whole batch).
"""

import json
import os
import re
import subprocess
import sys

import pytest
import torch
from helpers import FAST, assert_states_equal, final_state, only_run, run_cli, scalars
from support import ROOT, SMOKE

from latentrun.task.multiplication import Batch, MultiplicationTask

pytestmark = pytest.mark.slow

# The promise (README "Guarantees"): after 40 AdamW steps in float32, every weight and every logged
# training loss of the 2-process run is within ATOL + RTOL * |value| of the 1-process run's.
RTOL, ATOL = 1e-4, 1e-5


def torchrun(*args, nproc=2) -> subprocess.CompletedProcess:
    """`torchrun --standalone --nproc_per_node=N run.py ARGS` (standalone: a free port, so parallel jobs don't collide)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        str(ROOT / "run.py"),
        *map(str, args),
    ]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


_draw = MultiplicationTask.train_batch


def both_shards(self, step, batch_size, rank=0):
    """What ranks 0 and 1 of a 2-process run draw at `step`, concatenated: one process's global batch."""
    shards = [_draw(self, step, batch_size // 2, shard) for shard in (0, 1)]
    return Batch(*(torch.cat(parts) for parts in zip(*((s.a, s.b, s.prompt, s.answer) for s in shards))))


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    runs_dir = tmp_path_factory.mktemp("ddp")
    result = torchrun(SMOKE, "--runs-dir", runs_dir, *FAST)
    assert result.returncode == 0, result.stderr[-3000:]
    return only_run(runs_dir)


def test_two_processes_match_one_process_on_the_same_global_batch(ddp_run, tmp_path, monkeypatch):
    monkeypatch.setattr(MultiplicationTask, "train_batch", both_shards)
    assert run_cli(SMOKE, "--runs-dir", tmp_path, *FAST) == 0
    single = only_run(tmp_path)

    one, two = final_state(single, 40), final_state(ddp_run, 40)
    assert one["model"].keys() == two["model"].keys()
    for key, value in one["model"].items():  # observed: max |difference| 2.2e-6
        torch.testing.assert_close(two["model"][key], value, rtol=RTOL, atol=ATOL, msg=key)
    one_losses, two_losses = scalars(single, "train/loss"), scalars(ddp_run, "train/loss")
    assert [s for s, _ in one_losses] == [s for s, _ in two_losses] == list(range(1, 41))
    for (step, expected), (_, got) in zip(one_losses, two_losses):  # observed: max |difference| 4.8e-7
        assert got == pytest.approx(expected, rel=RTOL, abs=ATOL), step
    one_eval, two_eval = scalars(single, "val/exact_match"), scalars(ddp_run, "val/exact_match")
    assert [s for s, _ in one_eval] == [s for s, _ in two_eval]
    assert [v for _, v in one_eval] == pytest.approx([v for _, v in two_eval])


def test_the_latent_loss_is_the_mean_over_ranks_as_the_loss_is(tmp_path, monkeypatch):
    supervised = (*FAST, "--set", "train.max_steps=10", "--set", "model.latent_mode=recurrent")
    supervised += ("--set", "model.num_latent=3", "--set", "loss.latent_supervision_weight=0.5")
    result = torchrun(SMOKE, "--runs-dir", tmp_path / "two", *supervised)
    assert result.returncode == 0, result.stderr[-3000:]
    monkeypatch.setattr(MultiplicationTask, "train_batch", both_shards)
    assert run_cli(SMOKE, "--runs-dir", tmp_path / "one", *supervised) == 0
    one, two = only_run(tmp_path / "one"), only_run(tmp_path / "two")
    for tag in ("train/loss", "train/latent_loss"):
        one_values, two_values = scalars(one, tag), scalars(two, tag)
        assert [s for s, _ in one_values] == [s for s, _ in two_values] == list(range(1, 11)), tag
        for (step, expected), (_, got) in zip(one_values, two_values):
            assert got == pytest.approx(expected, rel=RTOL, abs=ATOL), (tag, step)


def test_rank_0_alone_writes_and_checkpoints_hold_every_ranks_rng(ddp_run):
    state = final_state(ddp_run, 40)
    assert state["world_size"] == 2 and len(state["rng_by_rank"]) == 2
    assert not torch.equal(state["rng_by_rank"][0]["torch"], state["rng_by_rank"][1]["torch"]), (
        "ranks share a dropout stream"
    )
    assert torch.equal(state["rng"]["torch"], state["rng_by_rank"][0]["torch"])
    meta = json.loads((ddp_run / "meta.json").read_text())
    assert meta["world_size"] == 2 and meta["status"] == "finished"
    assert len(list(ddp_run.glob("events.out.tfevents.*"))) == 1  # one writer, not one per rank
    log = (ddp_run / "train.log").read_text()
    assert log.count("finished at step 40") == 1 and "2 processes" in log
    others = {p.name for p in ddp_run.iterdir() if not p.name.startswith("events.out.tfevents.")}
    assert others == {"checkpoints", "config.yaml", "meta.json", "train.log"}  # and the lock released


def test_a_two_process_run_stops_and_resumes_on_two_bitwise_and_refuses_one(ddp_run, tmp_path, capsys):
    result = torchrun(SMOKE, "--runs-dir", tmp_path, *FAST, "--stop-at", 20)
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = only_run(tmp_path)

    capsys.readouterr()
    assert run_cli("--resume", run_dir) == 2  # one process: refused before anything is written
    err = capsys.readouterr().err
    assert "trained on 2 process(es) but resumed on 1" in err and "torchrun --nproc_per_node=2" in err, err
    assert [e["event"] for e in json.loads((run_dir / "meta.json").read_text())["history"]] == ["start"]

    result = torchrun("--resume", run_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    assert_states_equal(final_state(ddp_run, 40), final_state(run_dir, 40))
    assert scalars(run_dir, "train/loss") == scalars(ddp_run, "train/loss")
    assert [e["event"] for e in json.loads((run_dir / "meta.json").read_text())["history"]] == ["start", "resume"]


def test_a_global_batch_that_does_not_split_evenly_is_a_usage_error(tmp_path):
    result = torchrun(SMOKE, "--runs-dir", tmp_path, "--set", "train.batch_size=33")
    # torchrun itself exits 1 and prints its own report whenever a worker fails (and may stop the
    # other worker before it exits); the workers keep the contract: exit 2, and one error line
    # (rank 0's; rank 1 knows rank 0 already said it).
    assert result.returncode == 1
    assert result.stderr.count("error: train.batch_size: 33 examples cannot be split evenly over the 2 processes") == 1
    root_cause = result.stderr[result.stderr.index("Root Cause") :]
    assert re.search(r"exitcode\s+:\s*2 \(pid", root_cause), result.stderr[-2000:]
    assert not any(tmp_path.iterdir()), "no run dir for a bad config"
