"""A damaged record never crashes a command: sweep.yaml and meta.json, broken in the ways the chaos
campaign (issue 22, items 13 and 14) broke them and at seeded random bytes, are refused with one
line naming the file, exit 2, and no traceback."""

import contextlib
import io
import json
import shutil

import pytest
import yaml
from helpers import FAST, only_run, run_cli
from support import SMOKE

from latentrun.launch import record
from latentrun.runs import run_files
from latentrun.runs.run_files import RunError

JOBS = [
    {"index": i, "label": f"smoke seed={seed}", "experiment": str(SMOKE), "overrides": [f"seed={seed}"]}
    for i, seed in enumerate((1, 2, 3, 4))
]


def capture(*args):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = run_cli(*args)
    return status, out.getvalue(), err.getvalue()


@pytest.fixture
def launch(tmp_path):
    runs_dir = tmp_path / "runs"
    document = {
        "launch": "L1",
        "created": run_files.now(),
        "experiments": [str(SMOKE)],
        "seeds": [1, 2, 3, 4],
        "overrides": [],
        "sweep": {},
        "stop_at": None,
        "jobs": JOBS,
    }
    path = record.write_record(runs_dir, "L1", document)
    return runs_dir, path


def refused_in_one_line(runs_dir, path, *extra):
    status, _, err = capture("--resume", "--launch", "L1", "--runs-dir", runs_dir, *extra)
    lines = [line for line in err.splitlines() if line.strip()]
    assert status == 2 and "Traceback" not in err, err
    assert len(lines) == 1 and str(path) in lines[0] and "damaged" in lines[0], err
    return lines[0]


def rewrite(path, change):
    document = yaml.safe_load(path.read_text())
    change(document)
    path.write_text(yaml.safe_dump(document, sort_keys=False))


@pytest.mark.parametrize(
    "damage, named",
    [
        (lambda p: p.write_bytes(bytes(range(256)) * 4), "not YAML"),
        (lambda p: p.write_text("jobs: [1, 2]\n"), "launch"),
        (lambda p: rewrite(p, lambda d: d.update(jobs=[1, 2])), "is 2: expected object"),
        (lambda p: rewrite(p, lambda d: d["jobs"][1].pop("index")), "jobs.1"),
        (lambda p: rewrite(p, lambda d: d["jobs"][2].update(overrides="seed=3")), "jobs.2.overrides"),
        (lambda p: rewrite(p, lambda d: d.update(jobs=d["jobs"][:1])), "1 jobs where 4"),
        (lambda p: rewrite(p, lambda d: d.pop("recorded_jobs")), "ends before recorded_jobs"),
        # A record from before `format` and recorded_jobs: its job count is recomputed from its points.
        (
            lambda p: rewrite(p, lambda d: (d.pop("format"), d.pop("recorded_jobs"), d.update(jobs=d["jobs"][:1]))),
            "1 jobs where 4",
        ),
        (lambda p: rewrite(p, lambda d: d["jobs"][3].update(index=7)), "numbered"),
    ],
)
def test_a_damaged_sweep_yaml_is_one_line_and_exit_2(launch, damage, named):
    runs_dir, path = launch
    damage(path)
    assert named in refused_in_one_line(runs_dir, path)


def test_a_sweep_yaml_cut_at_any_byte_is_refused_never_read_short(launch, rng):
    runs_dir, path = launch
    whole = path.read_bytes()
    assert len(record.read_record(runs_dir, "L1")["jobs"]) == 4
    cuts = sorted(rng.sample(range(1, len(whole) - 1), 40))  # the last byte is the final newline: nothing lost
    print(f"cut at bytes {cuts}")
    for cut in cuts:
        path.write_bytes(whole[:cut])
        with pytest.raises(RunError, match="sweep.yaml: damaged") as refused:
            print(f"read as {record.read_record(runs_dir, 'L1')} after a cut at byte {cut}")
        assert "\n" not in str(refused.value)


def test_every_cut_of_a_sweep_yaml_is_refused(launch):
    """Exhaustive beside the sampled test above: a cut inside the last job's text (an override cut to
    'see' leaves valid YAML with the right job count) was read as a whole record."""
    runs_dir, path = launch
    whole = path.read_bytes()
    assert whole.startswith(b"format: 2\n") and whole.rstrip().endswith(b"recorded_jobs: 4")
    for cut in range(1, len(whole) - 1):
        path.write_bytes(whole[:cut])
        with pytest.raises(RunError, match="sweep.yaml: damaged"):
            record.read_record(runs_dir, "L1")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    runs_dir = tmp_path_factory.mktemp("trained") / "runs"
    assert (
        run_cli(SMOKE, "--runs-dir", runs_dir, *FAST, "--set", "train.max_steps=20", "--set", "train.eval_every=10")
        == 0
    )
    return only_run(runs_dir)


@pytest.mark.parametrize("field, value", [("history", "x"), ("test", "x"), ("step", "abc"), ("test", {"pairs": "x"})])
@pytest.mark.parametrize("command", ["list --id", "--resume", "compare"])
def test_a_damaged_meta_json_field_is_named_in_one_line(trained, tmp_path, field, value, command):
    runs_dir = tmp_path / "runs"
    run_dir = runs_dir / trained.name
    shutil.copytree(trained, run_dir)
    meta = json.loads((run_dir / "meta.json").read_text())
    meta[field] = value
    (run_dir / "meta.json").write_text(json.dumps(meta))
    args = {
        "list --id": ["list", "--id", run_dir.name],
        "--resume": ["--resume", run_dir.name],
        "compare": ["compare", run_dir.name, trained],
    }
    status, _, err = capture(*args[command], "--runs-dir", runs_dir)
    assert status == 2 and "Traceback" not in err, err
    assert f"meta.json: damaged: {field}" in err, err
    assert json.loads((run_dir / "meta.json").read_text())[field] == value, "the damaged record is left as it was"
