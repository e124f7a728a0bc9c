"""`--launcher slurm` through submitit, run with submitit's local executor: one job per run, each
the ordinary single-run command, tagged with the launch like a local launch's runs."""

import json

import pytest
from support import SMOKE as SMOKE_PATH

pytest.importorskip("submitit", reason="submitit is not installed (pip install -e '.[slurm]')")

from latentrun.cli import main  # noqa: E402
from latentrun.launch import record, slurm  # noqa: E402

SMOKE = str(SMOKE_PATH)  # argv holds strings

pytestmark = pytest.mark.slow


def test_a_sweep_becomes_one_job_per_run(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(slurm, "CLUSTER", "local")
    runs_dir = tmp_path / "runs"
    args = [SMOKE, "--set", "seed=1,2", "--set", "train.num_threads=1", "--stop-at", "3", "--runs-dir", str(runs_dir)]
    assert main([*args, "--launcher", "slurm", "--slurm", "timeout_min=10"]) == 0
    captured = capsys.readouterr()
    assert captured.err.count("] submitted smoke seed=") == 2, captured.err
    assert captured.out.splitlines()[-1] == "2 runs: 2 stopped"
    [launch_dir] = (runs_dir / record.LAUNCHES_DIR).iterdir()
    found = record.launch_runs(runs_dir, launch_dir.name)
    assert sorted(found) == [0, 1]
    for index, run_dir in found.items():
        meta = json.loads((run_dir / "meta.json").read_text())
        assert meta["status"] == "stopped" and meta["step"] == 3 and meta["seed"] == index + 1
        assert "train.num_threads=1" in meta["command"]  # the cores are not split on a cluster
    assert list((launch_dir / "submitit").glob("*_log.out"))  # submitit's own logs beside the record


def test_without_sbatch_slurm_says_where_to_launch_from(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(slurm.shutil, "which", lambda name: None)
    assert main([SMOKE, "--seeds", "1", "--launcher", "slurm", "--runs-dir", str(tmp_path)]) == 2
    assert "no sbatch on PATH" in capsys.readouterr().err
    assert not tmp_path.exists() or not any(tmp_path.iterdir())  # nothing written, no launch recorded


def test_slurm_options_need_the_slurm_launcher(tmp_path, capsys):
    for args in ([SMOKE, "--seeds", "1,2"], [SMOKE]):
        assert main([*args, "--slurm", "timeout_min=5", "--runs-dir", str(tmp_path)]) == 2
        assert "--slurm sets a parameter of --launcher slurm" in capsys.readouterr().err


def test_an_unknown_slurm_parameter_is_named_before_sbatch_is_looked_for(monkeypatch, tmp_path, capsys):
    """Issue 21: `--slurm bogus_param=3` reported "no sbatch" instead of the parameter."""
    monkeypatch.setattr(slurm.shutil, "which", lambda name: None)
    for given, named in (
        ("bogus_param=3", "--slurm bogus_param=3: not a submitit parameter"),
        ("slurm_partitio=gpu", "did you mean slurm_partition?"),
        ("timeout_min=abc", "--slurm timeout_min=abc: "),
    ):
        assert main([SMOKE, "--seeds", "1", "--launcher", "slurm", "--slurm", given, "--runs-dir", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert named in err and "no sbatch" not in err and "Traceback" not in err
    assert main([SMOKE, "--launcher", "slurm", "--slurm", "cluster=moon", "--runs-dir", str(tmp_path)]) == 2
    assert "--slurm cluster=moon: unknown cluster; one of slurm, local" in capsys.readouterr().err
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


def test_cluster_local_tries_a_slurm_launch_on_this_machine(monkeypatch, tmp_path, capsys):
    """submitit's local executor from the command line: no sbatch, no cluster, the same launch."""
    monkeypatch.setattr(slurm.shutil, "which", lambda name: None)  # as on a laptop
    runs_dir = tmp_path / "runs"
    args = [SMOKE, "--set", "train.num_threads=1", "--stop-at", "2", "--runs-dir", str(runs_dir)]
    assert main([*args, "--launcher", "slurm", "--slurm", "cluster=local", "--slurm", "timeout_min=10"]) == 0
    captured = capsys.readouterr()
    assert "[1/1] submitted smoke" in captured.err and captured.out.splitlines()[-1] == "1 run: 1 stopped"
    [launch_dir] = (runs_dir / record.LAUNCHES_DIR).iterdir()
    [run_dir] = record.launch_runs(runs_dir, launch_dir.name).values()
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["status"] == "stopped" and meta["step"] == 2
    assert list((launch_dir / "submitit").glob("*_log.out"))
