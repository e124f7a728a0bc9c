"""`list` on fabricated run directories: sorting, limits, status from lock and pid, details."""

import json
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from support import SMOKE, dead_pid

from latentrun import config
from latentrun.cli import main
from latentrun.report import listing, listing_output
from latentrun.runs import lock as run_lock
from latentrun.runs import run_files as runs


def fabricate(runs_dir: Path, run_id: str, overrides=(), lock=None, **meta) -> Path:
    run_dir = runs_dir / run_id
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "config.yaml").write_text(config.dump(config.load(SMOKE, list(overrides))))
    base = {
        "id": run_id,
        "experiment": "smoke",
        "model": "latent_transformer",
        "parameters": 26336,
        "max_steps": 40,
        "status": "finished",
        "history": [],
    }
    (run_dir / "meta.json").write_text(json.dumps({**base, **meta}))
    if lock == runs.process_owner():  # held: a real lock, since liveness is asked of its flock
        held_locks.append(run_lock.acquire(run_dir))
    elif lock is not None:  # a lock file its holder left behind when it died
        (run_dir / "lock").write_text(json.dumps(lock))
    return run_dir


held_locks: list = []


@pytest.fixture(autouse=True)
def _release_locks():
    yield
    while held_locks:
        held_locks.pop().release()


@pytest.fixture
def four_runs(tmp_path):
    fabricate(tmp_path, "a", created="2026-01-01T10:00:00+00:00", step=40, last_loss=0.5, best_exact_match=0.3)
    fabricate(tmp_path, "b", created="2026-01-03T10:00:00+00:00", step=10, last_loss=0.2, best_exact_match=-1.0)
    fabricate(tmp_path, "c", created="2026-01-02T10:00:00+00:00", step=25, best_exact_match=0.9)
    fabricate(tmp_path, "d", created="2026-01-02T09:00:00+01:00", step=40, last_loss=0.9, best_exact_match=0.3)
    (tmp_path / "not-a-run").mkdir()  # no config.yaml: ignored
    return tmp_path


@pytest.mark.parametrize(
    "sort,expected",
    [
        ("date", ["b", "c", "d", "a"]),  # newest first; d is 08:00 UTC, before c
        ("step", ["d", "a", "c", "b"]),  # most steps first; equal steps keep newest first
        ("loss", ["b", "a", "d", "c"]),  # lowest last loss first; c has none, so last
        ("acc", ["c", "d", "a", "b"]),  # best exact match first; b has not been evaluated (-1), so last
    ],
)
def test_sorting(four_runs, sort, expected):
    assert [row["id"] for row in listing.list_runs(four_runs, sort)] == expected


def test_limit_applies_after_sorting(four_runs):
    assert [row["id"] for row in listing.list_runs(four_runs, "acc", limit=2)] == ["c", "d"]


def test_unevaluated_run_shows_no_accuracy(four_runs):
    assert listing.summarize(four_runs / "b")["best_exact_match"] is None


def test_status_from_meta_pid_and_lock(tmp_path):
    me = runs.process_owner()
    gone = {"pid": dead_pid(), "host": socket.gethostname()}
    cases = {
        "finished": ({"status": "finished", **gone}, None),
        "running": ({"status": "running", **me}, None),
        "crashed": ({"status": "running", **gone}, None),
        "crashed-created": ({"status": "created", **gone}, None),
        "reused-pid": ({"status": "running", **me, "pid_start": me["pid_start"] + 1}, None),
        "elsewhere": ({"status": "running", "pid": 1, "host": "another-machine"}, None),
        "locked": ({"status": "stopped", **gone}, me),
        "stale-lock": ({"status": "stopped", **gone}, gone),
        "bad-pid": ({"status": "running", "pid": -1, "host": socket.gethostname()}, None),
    }
    expected = {
        "finished": "finished",
        "running": "running",
        "crashed": "crashed",
        "crashed-created": "crashed",
        "reused-pid": "crashed" if me["pid_start"] is not None else "running",
        "elsewhere": "running",
        "locked": "running",
        "stale-lock": "stopped",
        "bad-pid": "crashed",
    }
    for name, (meta, lock) in cases.items():
        fabricate(tmp_path, name, lock=lock, **meta)
    assert {row["id"]: row["status"] for row in listing.list_runs(tmp_path)} == expected


def test_unreadable_meta_still_lists(tmp_path):
    fabricate(tmp_path, "good", created="2026-01-01T10:00:00+00:00")
    broken = fabricate(tmp_path, "broken")
    (broken / "meta.json").write_text("{not json")
    fabricate(tmp_path, "odd", step="many", created="yesterday", last_loss=None)
    rows = {row["id"]: row for row in listing.list_runs(tmp_path, "loss")}
    assert rows["broken"]["status"] == "unreadable"
    # A field of the wrong type is damage too (schemas/meta.schema.json): named in the row, not read as 0.
    assert rows["odd"]["status"] == "unreadable" and "damaged: step is 'many'" in rows["odd"]["error"]
    assert "broken" in listing_output.format_table(list(rows.values()))


def test_details_diff_history_and_checkpoints(tmp_path):
    experiment = tmp_path / "exp.yaml"
    experiment.write_text(SMOKE.read_text())
    run_dir = fabricate(
        tmp_path / "runs",
        "r",
        overrides=["optimizer.lr=0.01", "train.max_steps=60"],
        experiment_file=str(experiment),
        best_step=20,
        history=[
            {"event": "start", "time": "t0", "step": 0, "command": ["run.py", "exp.yaml"]},
            {
                "event": "resume",
                "time": "t1",
                "step": 40,
                "command": ["run.py", "--resume", "r"],
                "changes": {"train.max_steps": [40, 60]},
                "forced": False,
            },
        ],
    )
    (run_dir / "checkpoints" / "step_00000030.pt").write_bytes(b"x" * 3000)
    (run_dir / "checkpoints" / "step_00000040.pt").write_bytes(b"x" * 3000)
    (run_dir / "checkpoints" / "best.pt").write_bytes(b"x" * 100)
    info = listing.details(run_dir)
    assert info["config_diff"]["changes"] == [
        {"key": "optimizer.lr", "file": 0.001, "run": 0.01},
        {"key": "train.max_steps", "file": 40, "run": 60},
    ]
    assert info["checkpoints"] == [
        {"file": "step_00000030.pt", "step": 30, "bytes": 3000},
        {"file": "step_00000040.pt", "step": 40, "bytes": 3000},
        {"file": "best.pt", "step": 20, "bytes": 100},
    ]
    text = listing_output.format_details(info)
    assert "optimizer.lr: 0.001 -> 0.01" in text and "train.max_steps 40 -> 60" in text and "2.9 KiB" in text

    experiment.write_text(SMOKE.read_text().replace("lr: 1e-3", "lr: 0.01"))  # the file was edited since
    assert [c["key"] for c in listing.details(run_dir)["config_diff"]["changes"]] == ["train.max_steps"]
    experiment.unlink()
    assert "no longer exists" in listing.details(run_dir)["config_diff"]["problem"]


def test_cli_list_table_json_and_id(four_runs, capsys):
    assert main(["list", "--runs-dir", str(four_runs), "--sort", "step", "--limit", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "id",
        "experiment",
        "model",
        "params",
        "step",
        "best_exact",
        "last_loss",
        "created",
        "status",
    ]
    assert [line.split()[0] for line in lines[1:]] == ["d", "a", "c"]
    assert lines[2].split()[3:7] == ["26,336", "40/40", "0.3000", "0.5000"]
    assert main(["list", "--runs-dir", str(four_runs), "--json"]) == 0
    assert [row["id"] for row in json.loads(capsys.readouterr().out)] == ["b", "c", "d", "a"]
    assert main(["list", "--runs-dir", str(four_runs), "--id", "c", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["best_exact_match"] == 0.9
    assert main(["list", "--runs-dir", str(four_runs), "--id", "latest"]) == 0
    assert capsys.readouterr().out.startswith("run         b\n")


@pytest.mark.parametrize(
    "args", [["--limit", "0"], ["--sort", "speed"], ["--id", "nope"], ["--id", "../x"], ["--id", "a", "--limit", "2"]]
)
def test_cli_list_usage_errors(four_runs, args, capsys):
    assert main(["list", "--runs-dir", str(four_runs), *args]) == 2
    err = capsys.readouterr().err
    assert err.strip() and "Traceback" not in err


def test_cli_list_empty(tmp_path, capsys):
    assert main(["list", "--runs-dir", str(tmp_path / "none")]) == 0
    assert "no runs" in capsys.readouterr().err
    assert main(["list", "--runs-dir", str(tmp_path / "none"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_the_contract_flags_are_there(capsys):
    """ARCHITECTURE.md's command line: list [--runs-dir DIR] [--sort date|step|loss|acc] [--limit N] [--id ID]."""
    from latentrun import cli

    def flags(command: str) -> set[str]:  # the options in the usage block of the command's --help
        assert main([command, "--help"]) == 0
        return set(re.findall(r"--[a-z][a-z-]*", capsys.readouterr().out.split("\n\n")[0]))

    options = flags("list")
    assert {"--runs-dir", "--sort", "--limit", "--id", "--json"} <= options
    assert listing.SORTS == ("date", "step", "loss", "acc")
    parsed = cli.build_parser().parse_args(["compare", "a", "b", "c"])
    assert parsed.runs == ["a", "b", "c"]
    train = flags("train")
    assert {"--resume", "--set", "--runs-dir", "--stop-at", "--force", "--jobs", "--seeds"} <= train


@pytest.fixture
def varied_runs(tmp_path):
    fabricate(tmp_path, "lr1", ["optimizer.lr=0.01"], created="2026-01-01T10:00:00+00:00", launch="L1", launch_index=0)
    fabricate(
        tmp_path,
        "lr2",
        ["optimizer.lr=0.001", "model.num_latent=4"],
        created="2026-01-02T10:00:00+00:00",
        launch="L1",
        launch_index=1,
    )
    fabricate(
        tmp_path,
        "other",
        ["experiment=other"],
        experiment="other",
        status="interrupted",
        created="2026-01-03T10:00:00+00:00",
    )
    return tmp_path


@pytest.mark.parametrize(
    "args,expected",
    [
        ([], ["other", "lr2", "lr1"]),
        (["--experiment", "smoke"], ["lr2", "lr1"]),
        (["--status", "interrupted"], ["other"]),
        (["--launch", "L1"], ["lr2", "lr1"]),
        (["--where", "optimizer.lr=0.01"], ["lr1"]),
        (["--where", "optimizer.lr=1e-2"], ["lr1"]),  # read as a number, as --set reads it
        (["--where", "optimizer.lr=0.01,0.001"], ["other", "lr2", "lr1"]),  # any of
        (["--where", "optimizer.lr=0.001", "--where", "model.num_latent=2"], ["other"]),  # all must hold
        (["--where", "model.num_latent=2", "--experiment", "smoke"], ["lr1"]),
    ],
)
def test_filters(varied_runs, args, expected, capsys):
    assert main(["list", "--runs-dir", str(varied_runs), "--json", *args]) == 0
    assert [row["id"] for row in json.loads(capsys.readouterr().out)] == expected


def test_columns_in_table_json_and_csv(varied_runs, capsys):
    import csv
    import io

    columns = ["--columns", "optimizer.lr,model.num_latent"]
    assert main(["list", "--runs-dir", str(varied_runs), *columns]) == 0
    header, *lines = capsys.readouterr().out.splitlines()
    assert header.split()[-3:] == ["optimizer.lr", "model.num_latent", "status"]
    assert lines[-1].split()[-3:] == ["0.01", "2", "finished"]
    assert main(["list", "--runs-dir", str(varied_runs), "--json", *columns]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[1]["config"] == {"optimizer.lr": 0.001, "model.num_latent": 4}
    assert main(["list", "--runs-dir", str(varied_runs), "--csv", *columns]) == 0
    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [row["id"] for row in table] == ["other", "lr2", "lr1"]
    assert table[1]["optimizer.lr"] == "0.001" and table[1]["model.num_latent"] == "4"
    assert table[1]["launch"] == "L1" and table[0]["launch"] == "" and table[0]["status"] == "interrupted"


@pytest.mark.parametrize(
    "args,message",
    [
        (["--where", "optimizer.lrr=1"], "unknown config key 'optimizer.lrr' (did you mean 'optimizer.lr'?)"),
        (["--where", "optimizer.lr"], "expected KEY=VALUE"),
        (["--columns", "model.num_latnt"], "did you mean 'model.num_latent'"),
        (["--json", "--csv"], "not allowed with"),
    ],
)
def test_filter_mistakes_exit_2(varied_runs, args, message, capsys):
    assert main(["list", "--runs-dir", str(varied_runs), *args]) == 2
    assert message in capsys.readouterr().err


def test_no_match_says_so(varied_runs, capsys):
    assert main(["list", "--runs-dir", str(varied_runs), "--status", "crashed"]) == 0
    assert "no runs matching the filters" in capsys.readouterr().err


def test_list_reads_runs_through_run_dir_and_never_imports_torch(four_runs):
    """`list` reads meta.json, the lock, the config and the checkpoint folder through RunDir, and RunDir
    is torch-free: what keeps `list` light (torch alone takes ~2 s to import)."""
    (four_runs / "a" / "checkpoints" / "step_00000040.pt").write_bytes(b"not read, only listed")
    code = (
        "import sys; from latentrun.cli import main; runs = sys.argv[1]; "
        "statuses = [main(['list', '--runs-dir', runs, *args]) for args in "
        "([], ['--id', 'a'], ['--where', 'seed=0', '--columns', 'optimizer.lr'])]; "
        "assert 'latentrun.runs.run_dir' in sys.modules; "
        "assert 'torch' not in sys.modules, sorted(m for m in sys.modules if m.startswith('latentrun')); "
        "sys.exit(max(statuses))"
    )
    result = subprocess.run([sys.executable, "-c", code, str(four_runs)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "step_00000040.pt" in result.stdout  # --id a listed its checkpoint
    assert "optimizer.lr" in result.stdout and "0.001" in result.stdout  # --where read each run's config
