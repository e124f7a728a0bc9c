"""One rule for how a launched run ended (`jobs.classify`), used by the local and the SLURM launcher
alike, and what a launch says around its runs: threads, plurals, the program's own name."""

import ast
import signal
import subprocess
import sys

import pytest
from support import ROOT
from support import SMOKE as SMOKE_PATH

from latentrun.cli import main
from latentrun.launch import jobs, parallel, relaunch
from latentrun.launch.jobs import Job, Outcome, classify
from latentrun.launch.supervisor import Supervisor

SMOKE = str(SMOKE_PATH)  # argv holds strings
JOB = Job(0, "smoke seed=1", ("smoke.yaml",))
FINISHED_RUN = {"id": "smoke-1", "status": "finished", "step": 40, "max_steps": 40}


@pytest.mark.parametrize(
    "returncode,run,output,cancelled,status,message",
    [
        (0, FINISHED_RUN, "", False, "finished", ""),
        (0, {}, "", False, "failed", "exit 0 but no run directory was made"),
        (130, {}, "stopping\n", False, "interrupted", "exit 130: stopping"),
        (1, {}, "", False, "failed", "exit 1: no output"),
        (1, FINISHED_RUN, "Traceback\nOSError: disk full\n\n", False, "crashed", "exit 1: OSError: disk full"),
        (1, {**FINISHED_RUN, "status": "damaged"}, "x", False, "damaged", "exit 1: x"),
        (-signal.SIGKILL, FINISHED_RUN, "", False, "crashed", "killed by SIGKILL"),
        (-signal.SIGTERM, {}, "", True, "interrupted", "stopped by SIGTERM"),
        (-signal.SIGKILL, {}, "", True, "failed", "killed by SIGKILL"),  # not the launch's signal
    ],
)
def test_a_childs_exit_and_run_dir_make_one_outcome(returncode, run, output, cancelled, status, message):
    outcome = classify(JOB, returncode, run, output, cancelled=cancelled)
    assert (outcome.status, outcome.message) == (status, message)


def test_only_the_last_ten_lines_of_output_are_kept():
    output = "\n".join(f"line {n}" for n in range(1, 31))
    assert classify(JOB, 1, {}, output).output_tail.splitlines() == [f"line {n}" for n in range(21, 31)]


def test_a_child_that_exits_0_without_a_run_dir_failed_in_the_local_launcher(tmp_path):
    """`validate` exits 0 and makes no run dir: parallel.py called that "finished", slurm.py "failed"."""
    job = Job(0, "validate", ("validate", SMOKE))
    outcome = Supervisor(tmp_path).run(job, tmp_path)
    assert outcome.status == "failed" and outcome.message == "exit 0 but no run directory was made"


def test_a_child_runs_this_checkout_tagged_with_its_launch(tmp_path):
    env = jobs.child_env("L1", 3, tmp_path)
    assert env["PYTHONPATH"].split(":")[0] == str(ROOT)
    assert (env["LATENTRUN_LAUNCH"], env["LATENTRUN_LAUNCH_INDEX"], env["LATENTRUN_LAUNCH_CLAIM"]) == (
        "L1",
        "3",
        str(tmp_path),
    )
    assert "LATENTRUN_LAUNCH" not in jobs.child_env("", 0)
    assert jobs.child_command(["x.yaml"]) == [sys.executable, "-m", "latentrun", "x.yaml"]


def test_the_banner_tells_the_threads_each_run_really_gets(monkeypatch, tmp_path):
    """Issue 21: `train.num_threads=1` launched with "each with 2 of 2 cores"."""
    monkeypatch.setattr(parallel, "cores", lambda: 2)
    one = parallel.plan([SMOKE], [1, 2], ["train.num_threads=1"], tmp_path, jobs=1, stop_at=None)
    assert "1 at a time, each with 1 thread on 2 cores;" in parallel.banner(one, 1, "L", tmp_path)
    split = parallel.plan([SMOKE], [1, 2], [], tmp_path, jobs=1, stop_at=None)
    assert "1 at a time, each with 2 threads on 2 cores;" in parallel.banner(split, 1, "L", tmp_path)
    mixed = parallel.plan([SMOKE], None, ["train.num_threads=1,3"], tmp_path, jobs=2, stop_at=None)
    assert "each with 1 to 3 threads on 2 cores" in parallel.banner(mixed, 2, "L", tmp_path)
    resumed = [Job(0, "a", ("--resume", "x"), run_dir=tmp_path)]
    assert "launching 1 run, 1 at a time, each with the threads its config sets on 2 cores;" in parallel.banner(
        resumed, 1, "L", tmp_path
    )
    both = [*resumed, Job(1, "b", ("x.yaml",), threads=1)]
    assert "each with 1 thread (resumed runs: as their config sets) on 2 cores;" in parallel.banner(
        both, 1, "L", tmp_path
    )


@pytest.mark.parametrize("argv0,program", [("/x/run.py", "python run.py"), ("/venv/bin/latentrun", "latentrun")])
def test_a_launch_suggests_commands_in_the_programs_own_name(monkeypatch, capsys, tmp_path, argv0, program):
    monkeypatch.setattr(sys, "argv", [argv0])
    stopped = Outcome(JOB, "stopped", {"id": "smoke-1", "status": "stopped"})
    assert parallel._finish([stopped], tmp_path, "L1") == 0
    captured = capsys.readouterr()
    assert captured.out == "1 run: 1 stopped\n"  # not "1 runs"
    assert f"next: {program} list --launch L1 --runs-dir {tmp_path}, {program} compare --launch L1" in captured.err
    assert f"{program} --resume --launch L1" in captured.err
    assert f"follow them with: {program} list --launch L1" in parallel.banner([JOB], 1, "L1", tmp_path)


def test_a_launcher_of_cpu_runs_imports_no_torch(tmp_path):
    """Each launch paid a torch import in the launcher (1.5 s of CPU) only to check the device and
    whether torchrun had started it; its runs import their own."""
    code = f"""
import sys
from latentrun.cli import main
from latentrun.launch import parallel
from latentrun.launch.jobs import Outcome
parallel._run_all = lambda planned, *args, **kwargs: [Outcome(job, "finished") for job in planned]
assert main([{SMOKE!r}, "--seeds", "1,2", "--runs-dir", {str(tmp_path)!r}]) == 0
print("torch" in sys.modules)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert result.stdout.splitlines()[-1] == "False"


def test_under_torchrun_a_launch_of_several_runs_is_refused(monkeypatch, tmp_path, capsys):
    """The check asked a process group that a launcher never joins, so it never refused."""
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main([SMOKE, "--seeds", "1,2", "--runs-dir", str(tmp_path)]) == 2
    assert "under torchrun give one" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_the_launch_modules_import_each_other_without_a_cycle():
    """Function-level imports count: parallel.py and slurm.py once imported each other that way."""
    folder = ROOT / "latentrun" / "launch"
    edges: dict[str, set[str]] = {}
    for path in folder.glob("*.py"):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "latentrun.launch":
                names |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("latentrun.launch."):
                names.add(node.module.rsplit(".", 1)[1])
        edges[path.stem] = names - {path.stem}

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(n == goal or (n not in seen and reaches(n, goal, seen | {n})) for n in edges.get(start, ()))

    assert edges["parallel"] >= {"jobs", "supervisor", "slurm"} and "jobs" in edges["slurm"]  # the walk sees them
    assert [name for name in edges if reaches(name, name, set())] == []


def test_a_resumed_launch_knows_the_threads_its_unstarted_points_were_given(tmp_path):
    document = {
        "launch": "L1",
        "jobs": [
            {"index": 0, "label": "a", "experiment": SMOKE, "overrides": ["seed=1", "train.num_threads=2"]},
            {"index": 1, "label": "b", "experiment": SMOKE, "overrides": ["seed=2"]},
        ],
    }
    todo, damaged = relaunch.plan(document, tmp_path, [], force=False, stop_at=None)
    assert [job.threads for job in todo] == [2, None] and damaged == []
