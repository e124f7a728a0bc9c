"""Planning a parallel launch: one job per experiment and seed, threads split, everything validated first."""

import time
from pathlib import Path

import pytest
from support import SMOKE as SMOKE_PATH
from support import SMOKE_SIMPLE

from latentrun.cli import main
from latentrun.config import ConfigError
from latentrun.launch import parallel, relaunch
from latentrun.launch.supervisor import Supervisor

SMOKE, SIMPLE = str(SMOKE_PATH), str(SMOKE_SIMPLE)  # argv holds strings


def test_one_job_per_experiment_and_seed_with_cores_split(monkeypatch, tmp_path):
    monkeypatch.setattr(parallel, "cores", lambda: 8)
    jobs = parallel.plan([SMOKE, SIMPLE], [1, 2], ["optimizer.lr=0.01"], tmp_path, jobs=4, stop_at=5)
    assert [job.label for job in jobs] == ["smoke seed=1", "smoke seed=2", "smoke_simple seed=1", "smoke_simple seed=2"]
    assert list(jobs[1].args) == [
        SMOKE,
        "--set",
        "optimizer.lr=0.01",
        "--set",
        "seed=2",
        "--set",
        "train.num_threads=2",
        "--runs-dir",
        str(tmp_path),
        "--stop-at",
        "5",
    ]


def test_threads_split_only_between_runs_that_exist_and_explicit_threads_kept(monkeypatch, tmp_path):
    monkeypatch.setattr(parallel, "cores", lambda: 8)
    [job] = parallel.plan([SMOKE], [3], [], tmp_path, jobs=4, stop_at=None)
    assert "train.num_threads=8" in job.args
    [job] = parallel.plan([SMOKE], [3], ["train.num_threads=3"], tmp_path, jobs=4, stop_at=None)
    assert [arg for arg in job.args if "num_threads" in arg] == ["train.num_threads=3"]


def test_every_problem_of_every_file_is_reported_before_anything_starts(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(Path(SMOKE).read_text().replace("lr: 1e-3", "lr: -1").replace("d_model: 32", "d_model: big"))
    with pytest.raises(ConfigError) as raised:
        parallel.plan([SMOKE, str(bad)], [1, 2], [], tmp_path, jobs=2, stop_at=None)
    problems = raised.value.problems
    assert len(problems) == 2 and all(str(bad) in p for p in problems)  # once each, not once per seed


@pytest.mark.parametrize(
    "args,message",
    [
        ([SMOKE, "--seeds", "1,2", "--set", "seed=3"], "--seeds and --set seed"),
        ([SMOKE, SMOKE], "given twice"),
        ([SMOKE, "--seeds", "1,x"], "comma-separated"),
        ([SMOKE, "--seeds", "1,1"], "repeated"),
        ([SMOKE, "--jobs", "0"], "positive"),
        (["--resume", "latest", "--jobs", "2"], "--resume continues one"),
        ([SMOKE, "--seeds", "-4"], "seed: must be >= 0, got -4"),  # the range check itself, not usage text
    ],
)
def test_launch_usage_errors_exit_2_without_starting_anything(args, message, tmp_path, capsys):
    assert main([*args, "--runs-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not any(tmp_path.iterdir())


def test_an_interrupted_launch_starts_nothing_more(tmp_path):
    supervisor = Supervisor(tmp_path)
    supervisor.cancelled.set()
    [job] = parallel.plan([SMOKE], None, [], tmp_path, jobs=1, stop_at=None)
    outcome = supervisor.run(job, tmp_path)
    assert outcome.status == "skipped" and not any(tmp_path.iterdir())


def test_a_sweep_plans_the_product_with_files_and_seeds(monkeypatch, tmp_path):
    monkeypatch.setattr(parallel, "cores", lambda: 8)
    jobs = parallel.plan([SMOKE, SIMPLE], [1, 2], ["optimizer.lr=1e-3,3e-4", "train.max_steps=5"], tmp_path, 4, None)
    assert len(jobs) == 8 and [job.index for job in jobs] == list(range(8))
    assert (
        jobs[0].label == "smoke optimizer.lr=1e-3 seed=1" and jobs[7].label == "smoke_simple optimizer.lr=3e-4 seed=2"
    )
    assert jobs[3].overrides == ("optimizer.lr=3e-4", "train.max_steps=5", "seed=2", "train.num_threads=2")


def test_an_explicit_zero_thread_count_is_replaced_not_repeated(monkeypatch, tmp_path):
    """A repeated --set is an error in the child, so the launcher must not add a second one."""
    monkeypatch.setattr(parallel, "cores", lambda: 8)
    [job] = parallel.plan([SMOKE], [1], ["train.num_threads=0"], tmp_path, jobs=1, stop_at=None)
    assert [arg for arg in job.args if "num_threads" in arg] == ["train.num_threads=8"]


def test_on_a_cluster_the_threads_are_not_this_machines_to_split(tmp_path):
    [job] = parallel.plan([SMOKE], [1], [], tmp_path, jobs=1, stop_at=None, split_threads=False)
    assert not any("num_threads" in arg for arg in job.args)


def test_seeds_and_a_swept_seed_conflict(tmp_path, capsys):
    assert main([SMOKE, "--seeds", "1,2", "--set", "seed=3,4", "--runs-dir", str(tmp_path)]) == 2
    assert "give the seeds one way" in capsys.readouterr().err


def test_seeds_count_against_the_cap_before_any_config_is_read(tmp_path):
    """Issue 22 item 7: 20,000 seeds took 59 s to plan and wrote a 3 MB sweep.yaml."""
    started = time.monotonic()
    with pytest.raises(ConfigError, match="20,000 runs .*at most 10,000"):
        parallel.plan([SMOKE], list(range(20_000)), [], tmp_path, jobs=2, stop_at=None)
    assert time.monotonic() - started < 5
    with pytest.raises(ConfigError, match="20,000 runs"):
        parallel.plan([SMOKE, SIMPLE], list(range(100)), ["optimizer.lr=range(1,101)"], tmp_path, jobs=2, stop_at=None)


def test_a_resumes_set_replaces_the_launchs_own_for_the_same_key():
    """Issue 22 item 5: every point that never started failed with 'already set by --set'."""
    own = ["optimizer.lr=0.01", "train.max_steps=100", "seed=3"]
    assert relaunch.replace_overrides(own, ["train.max_steps=200"]) == [
        "optimizer.lr=0.01",
        "seed=3",
        "train.max_steps=200",
    ]
    assert relaunch.replace_overrides(own, []) == own
