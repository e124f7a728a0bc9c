"""The command line itself: subcommands, usage, a fast start (no torch for the light commands),
typos, the program's name, and a closed pipe."""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from support import ROOT
from support import SMOKE as SMOKE_PATH

from latentrun import __version__, cli
from latentrun.commands import arguments
from latentrun.core import text

SMOKE = str(SMOKE_PATH)  # argv holds strings


def run_py(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "run.py"), *args], cwd=ROOT, capture_output=True, text=True, timeout=120, **kwargs
    )


def test_usage_lists_every_command_and_points_to_keys(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in cli.COMMANDS:
        assert f"    {command} " in out, command
    assert "keys [SECTION]" in out


def test_version_and_help_command(capsys):
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"latentrun {__version__}"
    assert cli.main(["help"]) == 0
    assert "commands:" in capsys.readouterr().out
    assert cli.main(["help", "list"]) == 0
    assert "--where" in capsys.readouterr().out
    assert cli.main(["help", "nosuch"]) == 2


def test_a_mistyped_command_gets_the_closest_one(capsys):
    assert cli.main(["valdate", "x.yaml"]) == 2
    assert "unknown command 'valdate' (did you mean 'validate'?)" in capsys.readouterr().err
    assert cli.main(["lst"]) == 2
    assert "did you mean 'list'?" in capsys.readouterr().err


def test_train_is_implied_and_can_be_named(tmp_path, capsys):
    """The contract: `run.py EXP.yaml` trains; `run.py train EXP.yaml` is the same command."""
    parser = cli.build_parser("latentrun")
    implied = cli.parse_args(parser, [SMOKE, "--stop-at", "3"])
    named = parser.parse_args(["train", SMOKE, "--stop-at", "3"])
    assert implied == named and implied.command == "train"
    resume = cli.parse_args(parser, ["--resume", "latest"])
    assert resume.command == "train" and resume.resume == "latest"


def test_a_hydra_style_override_gets_a_set_hint(capsys):
    assert cli.main([SMOKE, "optimizer.lr=1e-3"]) == 2
    err = capsys.readouterr().err
    assert "optimizer.lr=1e-3: no such experiment file; to override a config value write --set optimizer.lr=1e-3" in err


def test_a_repeated_set_is_an_error_not_the_last_one_silently(capsys):
    assert cli.main(["validate", SMOKE, "--set", "seed=1", "--set", "seed=2"]) == 2
    assert "seed is already set by --set seed=1" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv0,expected",
    [
        ("/x/run.py", "python run.py"),
        ("/venv/bin/latentrun", "latentrun"),
        ("/src/latentrun/__main__.py", "python -m latentrun"),
    ],
)
def test_usage_names_the_program_as_it_was_started(monkeypatch, capsys, argv0, expected):
    monkeypatch.setattr(sys, "argv", [argv0])
    assert text.program_name() == expected
    assert cli.main(["--help"]) == 0
    assert capsys.readouterr().out.startswith(f"usage: {expected} ")


def test_the_console_script_says_its_own_name():
    """`latentrun --help` (the installed script) said `run.py`; it must say `latentrun`."""
    script = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; sys.argv[0] = 'latentrun'; from latentrun.cli import main; sys.exit(main())",
            "--help",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert script.returncode == 0 and script.stdout.startswith("usage: latentrun "), script.stdout


@pytest.mark.parametrize(
    "args",
    [["--help"], ["keys"], ["validate", SMOKE], ["list", "--runs-dir", "RUNS"], ["help", "train"], ["--version"]],
)
def test_light_commands_never_import_torch(tmp_path, args):
    """What keeps them under half a second (bench/startup.py measures it): torch alone takes ~2 s."""
    args = [str(tmp_path) if a == "RUNS" else a for a in args]
    code = (
        "import sys; from latentrun.cli import main; status = main(sys.argv[1:]); "
        "assert 'torch' not in sys.modules, sorted(m for m in sys.modules if m.startswith('latentrun')); "
        "sys.exit(status)"
    )
    result = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_list_sorts_written_out_in_the_cli_match_listing():
    from latentrun.report import listing

    assert cli.LIST_SORTS == listing.SORTS


def test_a_closed_pipe_ends_quietly(tmp_path):
    """`list --json | head -1` exited 1 with 'Broken pipe'; a reader that had enough is no failure."""
    runs_dir = tmp_path / "runs"
    for index in range(300):  # enough JSON to fill the pipe after head has gone
        run_dir = runs_dir / f"r{index:03d}"
        run_dir.mkdir(parents=True)
        (run_dir / "config.yaml").write_text("seed: 0\n")
        (run_dir / "meta.json").write_text(
            json.dumps({"id": run_dir.name, "status": "finished", "experiment": "x" * 200})
        )
    shell = f"{sys.executable} {ROOT / 'run.py'} list --json --runs-dir {runs_dir} | head -1; exit ${{PIPESTATUS[0]}}"
    result = subprocess.run(["bash", "-c", shell], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout == "[\n", (result.returncode, result.stderr)
    assert result.stderr == "", result.stderr


def test_no_arguments_is_a_usage_error_naming_the_commands(capsys):
    assert cli.main([]) == 2
    err = capsys.readouterr().err
    assert "give an experiment file" in err and "validate" in err


needs_argcomplete = pytest.mark.skipif(
    subprocess.run([sys.executable, "-c", "import argcomplete"], capture_output=True).returncode != 0,
    reason="argcomplete is not installed (pip install -e '.[completion]')",
)


def complete(line: str, cwd: Path) -> list[str]:
    """argcomplete's protocol: the shell passes the line in COMP_LINE and reads the words on fd 8
    (here a file); a word it alone matches ends in a space, stripped here."""
    out = Path(tempfile.mkdtemp()) / "words"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "_ARGCOMPLETE": "1",
        "_ARGCOMPLETE_IFS": "\n",
        "COMP_LINE": line,
        "COMP_POINT": str(len(line)),
        "_ARGCOMPLETE_STDOUT_FILENAME": str(out),
    }
    subprocess.run([sys.executable, str(ROOT / "run.py")], cwd=cwd, env=env, capture_output=True, timeout=60)
    return [word.rstrip(" ") for word in out.read_text().split("\n")]


@needs_argcomplete
def test_shell_completion_offers_commands_and_set_keys(tmp_path):
    assert {"validate", "keys", "list"} <= set(complete("run.py ", ROOT))
    assert "optimizer.lr=" in complete(f"run.py train {SMOKE} --set optimizer.", ROOT)


@needs_argcomplete
def test_shell_completion_of_the_readmes_main_form(tmp_path):
    """Issue 21: files after the implied train, `latest` and run ids after --resume, and plain keys
    (no `=`) after --columns."""
    (tmp_path / "experiments").mkdir()
    (tmp_path / "experiments" / "smoke.yaml").write_text("seed: 1\n")
    (tmp_path / "runs" / "lucky-1").mkdir(parents=True)
    (tmp_path / "runs" / "lucky-1" / "config.yaml").write_text("seed: 1\n")  # what makes a folder a run
    assert "experiments/smoke.yaml" in complete("run.py experiments/smo", tmp_path)
    assert set(complete("run.py --resume l", tmp_path)) == {"latest", "lucky-1"}
    assert complete("run.py list --columns optimizer.l", tmp_path) == ["optimizer.lr"]
    assert "model.d_model,optimizer.lr" in complete("run.py list --columns model.d_model,optimizer.l", tmp_path)
    assert {"validate", "keys", "list"} <= set(complete("run.py ", tmp_path))  # the commands, as before


@pytest.mark.parametrize(
    "args,message",
    [
        ([SMOKE, "--stop-at", "0"], "train: error: argument --stop-at: expected a positive step number, got '0'"),
        ([SMOKE, "--stop-at", "x"], "train: error: argument --stop-at: expected a positive step number, got 'x'"),
        (
            ["eval", "no-such-run", "--max-digits", "10"],
            "eval: error: argument --max-digits: expected a number of digits from 1 to 9, got '10'",
        ),
        (
            ["eval", "no-such-run", "--samples", "0"],
            "eval: error: argument --samples: expected a positive whole number",
        ),
    ],
)
def test_a_bad_value_is_refused_as_it_is_parsed(args, message, capsys):
    """Argument types: the value is the command's usage error before anything runs (the run named
    does not exist, yet the value is what is reported)."""
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: ") and message in err, err


@pytest.mark.parametrize(
    "args,message",
    [
        ([SMOKE, "--force"], "train: error: --force only applies to --resume"),
        ([SMOKE, "--launch", "X"], "train: error: --launch ID goes with --resume (list --launch ID and compare"),
        (["--resume"], "train: error: --resume needs a RUN (or --launch ID)"),
        (["--resume", "x", "--jobs", "2"], "train: error: --jobs launches runs in parallel; --resume continues one"),
        (["compare", "--runs-dir", "RUNS"], "compare: error: give runs to compare, or --launch ID"),
        (["help", "nosuch"], "help: error: unknown command 'nosuch'; one of train, validate, keys, list, compare"),
    ],
)
def test_arguments_that_cannot_go_together_are_the_commands_usage_error(tmp_path, args, message, capsys):
    """Checked by the command itself, said through its own usage as argparse says its errors."""
    args = [str(tmp_path) if a == "RUNS" else a for a in args]
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    usage = f"usage: latentrun {args[0] if args[0] in cli.COMMANDS else 'train'} "
    assert err.startswith(usage) and message in err and "Traceback" not in err, err


@pytest.mark.parametrize(
    "parse,text,expected",
    [
        (arguments.step_number, "40", 40),
        (arguments.positive_int, "1", 1),
        (arguments.operand_digits, "9", 9),
        (arguments.operand_digits, "1", 1),
        (arguments.fraction, "0.5", 0.5),
        (arguments.seeds, "3,1,2", [3, 1, 2]),
        (arguments.checkpoint_name, "best", "best"),
        (arguments.checkpoint_name, "latest", "latest"),
        (arguments.checkpoint_name, "step_40", "step_40"),
        (arguments.checkpoint_name, "step_0040", "step_40"),
    ],
)
def test_argument_types_take_what_is_in_range(parse, text, expected):
    assert parse(text) == expected


@pytest.mark.parametrize(
    "parse,text",
    [
        (arguments.step_number, "0"),
        (arguments.step_number, "-1"),
        (arguments.step_number, "1.5"),
        (arguments.positive_int, "0"),
        (arguments.operand_digits, "0"),
        (arguments.operand_digits, "10"),
        (arguments.fraction, "1.01"),
        (arguments.fraction, "x"),
        (arguments.seeds, "1,1"),
        (arguments.seeds, "1,a"),
        (arguments.checkpoint_name, "step_"),
        (arguments.checkpoint_name, "step_-1"),
        (arguments.checkpoint_name, "step_\u0663"),  # int() reads this Arabic-Indic 3; no file is named so
        (arguments.checkpoint_name, "bestest"),
        (arguments.checkpoint_name, "Best"),
    ],
)
def test_argument_types_refuse_what_is_not(parse, text):
    with pytest.raises(argparse.ArgumentTypeError, match=repr(text).replace(".", r"\.")):
        parse(text)
