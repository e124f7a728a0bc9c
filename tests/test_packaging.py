"""An installed latentrun carries its schema: the wheel holds every schemas/*.json inside the package,
byte for byte, and the code reads the schema from the package, not from a source tree beside it."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from support import ROOT

import latentrun
from latentrun.config import validator
from latentrun.core import keys

SCHEMAS = sorted((ROOT / "schemas").glob("*.json"))


def test_the_schema_is_read_from_inside_the_package():
    package = Path(latentrun.__file__).resolve().parent
    assert keys.SCHEMA_PATH.parent.parent == package
    assert validator.SCHEMA_PATH == keys.SCHEMA_PATH  # one constant
    assert keys.SCHEMA_PATH.read_bytes() == (ROOT / "schemas" / "experiment.schema.json").read_bytes()


@pytest.mark.slow
def test_the_wheel_holds_every_schema_byte_for_byte(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    for name in ("latentrun", "schemas"):
        shutil.copytree(ROOT / name, source / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), "."],
        cwd=source,
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("latentrun-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        shipped = {Path(name).name: archive.read(name) for name in archive.namelist() if "/schemas/" in name}
    assert SCHEMAS and set(shipped) == {path.name for path in SCHEMAS}
    for path in SCHEMAS:
        assert shipped[path.name] == path.read_bytes(), path.name
