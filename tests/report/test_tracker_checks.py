"""A tracker that cannot work as set up is one line and exit status 2 before any run dir is made
(issue 21): MLflow without a usable tracking URI, MLflow's file store without
MLFLOW_ALLOW_FILE_STORE, W&B online without a login. Nothing here reaches the network."""

from pathlib import Path

import pytest
from support import SMOKE

from latentrun.cli import main


def refused(tmp_path: Path, capsys, tracker: str) -> str:
    """Train the smoke run with `tracker`; the one error line, after checking nothing was created."""
    path = tmp_path / "tracked.yaml"
    path.write_text(SMOKE.read_text() + f"  loggers: [tensorboard, {tracker}]\n")  # train is the file's last section
    assert main([str(path), "--runs-dir", str(tmp_path / "runs")]) == 2
    assert not (tmp_path / "runs").exists()
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_mlflow_without_a_usable_tracking_uri(tmp_path, monkeypatch, capsys):
    pytest.importorskip("mlflow", reason="mlflow is not installed (pip install -e '.[mlflow]')")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "nowhere://tracking")
    line = refused(tmp_path, capsys, "mlflow")
    assert line.startswith("error: train.loggers: mlflow cannot use the tracking URI nowhere://tracking (")
    assert "set MLFLOW_TRACKING_URI" in line


def test_mlflow_file_store_without_its_opt_in(tmp_path, monkeypatch, capsys):
    pytest.importorskip("mlflow", reason="mlflow is not installed (pip install -e '.[mlflow]')")
    store = (tmp_path / "mlruns").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    line = refused(tmp_path, capsys, "mlflow")
    assert line.startswith(f"error: train.loggers: mlflow: the tracking URI {store} is a file store")
    assert "MLFLOW_ALLOW_FILE_STORE=true" in line


def test_wandb_online_without_a_login(tmp_path, monkeypatch, capsys):
    pytest.importorskip("wandb", reason="wandb is not installed (pip install -e '.[wandb]')")
    for name in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_IDENTITY_TOKEN_FILE", "WANDB_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    netrc = tmp_path / "netrc"
    netrc.write_text("machine example.org login someone password elsewhere\n")  # a netrc, but not W&B's
    monkeypatch.setenv("NETRC", str(netrc))
    line = refused(tmp_path, capsys, "wandb")
    assert line == (
        "error: train.loggers: wandb is online but not logged in to api.wandb.ai; run `wandb login`, "
        "set WANDB_API_KEY, or set WANDB_MODE=offline to log under the run dir for a later `wandb sync`"
    )


def test_wandb_logged_in_through_netrc_passes_the_check(tmp_path, monkeypatch):
    pytest.importorskip("wandb", reason="wandb is not installed (pip install -e '.[wandb]')")
    from latentrun.report import tracker_checks

    for name in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_IDENTITY_TOKEN_FILE", "WANDB_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    netrc = tmp_path / "netrc"
    netrc.write_text("machine api.wandb.ai login user password 0123456789abcdef0123456789abcdef01234567\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    tracker_checks.check(["tensorboard", "wandb"])  # no error: the key is there (never checked online)
    netrc.write_text("")
    with pytest.raises(tracker_checks.ConfigError, match="wandb is online but not logged in"):
        tracker_checks.check(["wandb"])
