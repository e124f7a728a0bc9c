"""Every user mistake: exit 2, one clear line naming file:line:key, never a traceback."""

import pytest
from helpers import run_cli, run_process
from support import SMOKE

GOOD = SMOKE.read_text()

BAD_FILES = {
    "unknown_key": (
        GOOD.replace("  num_latent: 2", "  num_latnt: 2"),
        r":10: model.num_latnt: .*did you mean 'num_latent'",
    ),
    "misspelt_registry_name": (
        GOOD.replace("name: latent_transformer", "name: latent_transformr"),
        r":6: model.name: .*did you mean 'latent_transformer'",
    ),
    "wrong_type": (GOOD.replace("max_steps: 40", "max_steps: forty"), r":27: train.max_steps: .*integer"),
    "out_of_range": (GOOD.replace("lr: 1e-3", "lr: -1e-3"), r":22: optimizer.lr: "),
    "duplicate_key": (
        GOOD.replace("  max_steps: 40", "  max_steps: 40\n  max_steps: 50"),
        r":28: .*max_steps.*duplicate",
    ),
    "python_tag": (GOOD.replace("seed: 0", "seed: !!python/object/apply:os.system ['echo hi']"), r":4: .*tag"),
    "tab_indentation": (GOOD.replace("  d_model: 32", "\td_model: 32"), r":7: .*tab"),
    "syntax_error": (GOOD.replace("  d_model: 32", "  d_model: [32"), r":\d+: "),
    "empty_file": ("", r"empty"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_config_exits_2_with_file_line_key(case, tmp_path, capsys):
    text, pattern = BAD_FILES[case]
    path = tmp_path / f"{case}.yaml"
    path.write_text(text)
    assert run_cli(path, "--runs-dir", tmp_path / "runs") == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert lines and all(str(path) in line for line in lines), err
    import re

    assert re.search(pattern, err), err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir()), "no run dir for a bad config"


def test_missing_file(tmp_path, capsys):
    assert run_cli(tmp_path / "nope.yaml") == 2
    assert "nope.yaml" in capsys.readouterr().err


@pytest.mark.parametrize(
    "override,pattern",
    [
        ("optimizer.lr=abc", r"--set optimizer.lr=abc: optimizer.lr: "),
        ("optimizer.lrr=1", r"did you mean 'lr'"),
        ("train.max_steps", r"--set train.max_steps"),
    ],
)
def test_bad_set_exits_2(override, pattern, tmp_path, capsys):
    import re

    assert run_cli(SMOKE, "--set", override, "--runs-dir", tmp_path) == 2
    err = capsys.readouterr().err
    assert re.search(pattern, err) and "Traceback" not in err, err


def test_float_written_1e_minus_3_is_a_number(tmp_path, capsys):
    assert run_cli("validate", SMOKE) == 0
    assert "lr: 0.001" in capsys.readouterr().out


def test_resume_refuses_computation_changes_without_force(tmp_path, capsys):
    assert run_cli(SMOKE, "--runs-dir", tmp_path, "--stop-at", 10) == 0
    [run_dir] = list(tmp_path.iterdir())
    assert run_cli("--resume", run_dir, "--set", "optimizer.lr=0.01", "--stop-at", 12) == 2
    assert "--force" in capsys.readouterr().err
    assert run_cli("--resume", run_dir, "--set", "train.max_steps=12") == 0
    assert run_cli("--resume", run_dir, "--set", "optimizer.lr=0.01", "--force", "--stop-at", 12) == 0
    import json

    history = json.loads((run_dir / "meta.json").read_text())["history"]
    assert history[1]["changes"] == {"train.max_steps": [40, 12]} and not history[1]["forced"]
    assert history[2]["changes"] == {"optimizer.lr": [0.001, 0.01]} and history[2]["forced"]


@pytest.mark.parametrize(
    "args",
    [
        ["--resume", "runs/does-not-exist"],
        ["predict", "runs/does-not-exist", "1*2"],
        [],
        [SMOKE, "--resume", "x"],
        [SMOKE, "--stop-at", "0"],
    ],
)
def test_usage_errors_exit_2(args, capsys):
    assert run_cli(*args) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_a_real_process_prints_no_traceback(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(GOOD.replace("lr: 1e-3", "lr: -1"))
    process = run_process(path, "--runs-dir", tmp_path)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 2 and "Traceback" not in stderr and f"{path}:22: optimizer.lr" in stderr, stderr
