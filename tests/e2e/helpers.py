"""End-to-end helpers: run the command line in or out of process, and read back what a run left."""

import os
import subprocess
import sys
from pathlib import Path

import torch
from support import ROOT

from latentrun.cli import main
from latentrun.runs import checkpoint_file as checkpoint

FAST = ("--set", "train.num_threads=1")  # two processes on two shared cores: one thread each, or they thrash


def run_cli(*args: str) -> int:
    """Run the command line in this process, as `python run.py ARGS` would."""
    return main([str(a) for a in args])


def run_process(*args: str, **kwargs) -> subprocess.Popen:
    """Start `python run.py ARGS` as a separate process."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, str(ROOT / "run.py"), *map(str, args)],
        cwd=kwargs.pop("cwd", ROOT),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def only_run(runs_dir: Path) -> Path:
    """The one run directory under `runs_dir`."""
    found = [p for p in runs_dir.iterdir() if p.is_dir()]
    assert len(found) == 1, found
    return found[0]


def scalars(run_dir: Path, tag: str) -> list[tuple[int, float]]:
    """(step, value) of a TensorBoard tag, read with TensorBoard's own event reader."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    accumulator.Reload()
    return [(event.step, event.value) for event in accumulator.Scalars(tag)]


def step_file(run_dir: Path, step: int) -> Path:
    """The path of a run's `step_*.pt` checkpoint for `step`."""
    return run_dir / "checkpoints" / checkpoint.step_file_name(step)


def final_state(run_dir: Path, step: int) -> dict:
    """The run's checkpoint of `step`, loaded (and verified) as a resume would load it."""
    return checkpoint.load(step_file(run_dir, step))


def assert_states_equal(left: dict, right: dict) -> None:
    """Model and optimizer tensors bitwise equal."""
    for key in left["model"]:
        assert torch.equal(left["model"][key], right["model"][key]), key
    left_opt, right_opt = left["optimizer"]["state"], right["optimizer"]["state"]
    assert left_opt.keys() == right_opt.keys()
    for index in left_opt:
        for name, value in left_opt[index].items():
            assert torch.equal(torch.as_tensor(value), torch.as_tensor(right_opt[index][name])), (index, name)
    assert left["optimizer"]["param_groups"] == right["optimizer"]["param_groups"]
