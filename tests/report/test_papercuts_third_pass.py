"""Issue 21's papercuts in list, compare, help and shell completion, each with the behaviour asked for."""

import csv
import io
import subprocess
import sys
from pathlib import Path

import pytest
from support import ROOT

from latentrun import cli
from latentrun.report import compare_output, listing_filter

sys.path.insert(0, str(Path(__file__).parent))
from test_listing import fabricate  # noqa: E402


def test_list_csv_names_seed_once_when_asked_for_as_a_column(tmp_path, capsys):
    fabricate(tmp_path, "a", ["seed=3"], seed=3, created="2026-01-01T00:00:00+00:00")
    assert cli.main(["list", "--runs-dir", str(tmp_path), "--columns", "optimizer.lr,seed", "--csv"]) == 0
    header, row = csv.reader(io.StringIO(capsys.readouterr().out))
    assert header.count("seed") == 1 and header[-1] == "optimizer.lr"
    assert row[header.index("seed")] == "3" and row[-1] == "0.001"


@pytest.mark.parametrize(
    ("status", "message"),
    [
        ("bogus", "error: --status bogus: unknown status; one of created, running, finished, stopped,"),
        ("finishd", "error: --status finishd: unknown status (did you mean 'finished'?); one of created,"),
    ],
)
def test_list_names_the_valid_statuses_for_an_unknown_one(tmp_path, capsys, status, message):
    assert cli.main(["list", "--runs-dir", str(tmp_path), "--status", status]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and len(err.splitlines()) == 1
    assert cli.main(["list", "--runs-dir", str(tmp_path), "--status", "crashed"]) == 0  # a real one: no runs


def test_help_with_a_mistyped_command_gets_the_closest_one(capsys):
    assert cli.main(["help", "lis"]) == 2
    assert "unknown command 'lis' (did you mean 'list'?)" in capsys.readouterr().err
    assert cli.main(["help", "zzz"]) == 2
    assert "unknown command 'zzz'; one of train, validate" in capsys.readouterr().err
    assert cli.main(["help", "list"]) == 0


@pytest.mark.parametrize(
    ("value", "written"),
    [
        (0.014999999664723873, "0.015"),  # float32(0.015), as torch's metrics come back
        (0.9994999766349792, "0.9995"),
        (0.5, "0.5"),
        (1234.5678, "1234.5678"),  # no float32: Python's shortest repr
        (0.1, "0.1"),
        (7, 7),
        (None, ""),
    ],
)
def test_compare_csv_writes_float32_figures_by_their_shortest_decimals(value, written):
    assert compare_output._csv_value(value) == written


def test_list_id_imports_no_torch(tmp_path):
    fabricate(tmp_path, "a", created="2026-01-01T00:00:00+00:00")
    (tmp_path / "a" / "checkpoints" / "step_00000040.pt").write_bytes(b"x" * 2048)
    script = (
        "import sys; from latentrun import cli; "
        f"status = cli.main(['list', '--id', 'a', '--runs-dir', {str(tmp_path)!r}]); "
        "print('torch' in sys.modules, status)"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert "step_00000040.pt    step 40" in done.stdout and done.stdout.split()[-2:] == ["False", "0"]


def test_the_status_list_is_every_status_a_run_can_show():
    from latentrun.core import status

    assert set(listing_filter.STATUSES) >= {status.FINISHED, status.CRASHED, status.RUNNING, status.STOPPED}
