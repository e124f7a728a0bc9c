"""Start-up time of the light commands against a bare interpreter, each a fresh process.

`--help`, `validate`, `keys` and `list` should never pay for importing torch (issue 13: under
0.5 s). Every command is started `--repeat` times, the commands interleaved so that the load of
the shared machine falls on all of them alike; the table gives the median and the fastest start,
and how much slower than `python -c pass` each one is.

    python bench/startup.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def commands(runs_dir: Path) -> dict[str, list[str]]:
    run = [sys.executable, str(ROOT / "run.py")]
    smoke = str(ROOT / "experiments" / "smoke.yaml")
    return {
        "python -c pass": [sys.executable, "-c", "pass"],
        "run.py --help": [*run, "--help"],
        "run.py validate smoke.yaml": [*run, "validate", smoke],
        "run.py keys": [*run, "keys"],
        "run.py list": [*run, "list", "--runs-dir", str(runs_dir)],
    }


def time_once(argv: list[str]) -> tuple[float, int]:
    start = time.perf_counter()
    returncode = subprocess.run(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
    return time.perf_counter() - start, returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="starts per command (default: 7)")
    options = parser.parse_args()
    load = "/".join(f"{value:.2f}" for value in os.getloadavg())
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    print(
        f"# {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, load {load} at start, commit {commit.stdout.strip()}"
    )
    with tempfile.TemporaryDirectory() as runs_dir:
        table = commands(Path(runs_dir))
        times: dict[str, list[float]] = {name: [] for name in table}
        status: dict[str, int] = {}
        for round_ in range(options.repeat):
            names = list(table) if round_ % 2 == 0 else list(reversed(table))
            for name in names:
                seconds, status[name] = time_once(table[name])
                times[name].append(seconds)
    base = statistics.median(times["python -c pass"])
    print(f"{'command':<28} {'median s':>9} {'fastest s':>10} {'- bare s':>9}  exit")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:<28} {median:>9.3f} {min(values):>10.3f} {median - base:>9.3f}  {status[name]}")
    print(f"# load {'/'.join(f'{value:.2f}' for value in os.getloadavg())} at end")


if __name__ == "__main__":
    main()
