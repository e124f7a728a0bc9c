"""The named errors: one home below every package, each with the exit status the CLI gives it."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

from latentrun import cli
from latentrun.core import errors
from latentrun.core.status import EXIT_FAILURE, EXIT_USAGE

NAMED = [cls for _, cls in inspect.getmembers(errors, inspect.isclass) if cls.__module__ == errors.__name__]


def _loaded_after(statement: str) -> set[str]:
    """The latentrun and torch modules a fresh interpreter holds after running `statement`."""
    code = f"{statement}\nimport sys\nprint(' '.join(m for m in sys.modules if m.startswith(('latentrun', 'torch'))))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_every_named_error_has_exactly_one_exit_status() -> None:
    assert len(NAMED) == 8
    for cls in NAMED:
        assert (cls in errors.USAGE_ERRORS) != (cls in errors.RUNTIME_ERRORS), cls.__name__


@pytest.mark.parametrize("cls", NAMED, ids=lambda cls: cls.__name__)
def test_the_cli_gives_each_named_error_its_status(cls: type[Exception]) -> None:
    # Import every module that used to define one, as a command that raised it would have.
    for module in (
        "config",
        "runs.run_files",
        "task.multiplication",
        "task.problems",
        "report.probe",
        "train.stability",
    ):
        __import__(f"latentrun.{module}")
    error = cls(["x"]) if cls is errors.ConfigError else cls("x")
    expected = EXIT_USAGE if cls in errors.USAGE_ERRORS else EXIT_FAILURE
    assert cli._known_status(error) == expected


def test_train_raises_config_errors_without_importing_config() -> None:
    # train/precision.py raising ConfigError made config -> train -> config a cycle.
    loaded = _loaded_after("import latentrun.train.precision")
    assert "latentrun.train.precision" in loaded
    assert not any(m == "latentrun.config" or m.startswith("latentrun.config.") for m in loaded)


def test_the_errors_module_is_light() -> None:
    # cli.py can name every error without paying torch's start-up.
    loaded = _loaded_after("import latentrun.core.errors")
    # latentrun.runs: the top-level package makes that (empty) package callable as the API's runs()
    assert loaded == {"latentrun", "latentrun.runs", "latentrun.core", "latentrun.core.errors"}
