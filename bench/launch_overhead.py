"""Launch overhead: where the seconds of a launch go when its runs train for almost no time.

Starts `run.py SMOKE --seeds 1..N --set train.max_steps=K --set train.num_threads=1` (one run at a
time) from each checkout given, alternating them, and reads back: the wall time of the whole launch,
its CPU time (the launcher and every run it started), the launcher's planning (until its banner),
and the runs' own training time from their meta.json; what is left, per run, is overhead. Then it
times what every run pays before its first step, each in a fresh interpreter: Python itself, torch,
torch._dynamo (torch.optim's Optimizer imports it on first use) and latentrun's own modules. CPU
seconds are the figure to compare on a shared machine; wall seconds follow the load.

    python bench/launch_overhead.py [--runs 4] [--steps 4] [--repeat 1] [--checkout /path/to/other/checkout]

It also times the launcher alone (its runs replaced by instant outcomes), which isolates what the
launcher itself costs from what every run costs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMPORTS = {  # what a child pays before its first step, each step on top of the one before
    "python -c pass": "pass",
    "+ torch": "import torch",
    "+ torch._dynamo": "import torch, torch._dynamo",
    "+ latentrun (session, trainer, config)": "import torch, torch._dynamo, latentrun.launch.session, latentrun.cli",
}


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def launch_once(checkout: Path, runs: int, steps: int) -> dict[str, float]:
    """One launch from `checkout`: wall, CPU, planning seconds and the runs' summed training time."""
    with tempfile.TemporaryDirectory(prefix="latentrun-launch-bench-") as folder:
        runs_dir = Path(folder) / "runs"
        command = [
            sys.executable,
            str(checkout / "run.py"),
            str(checkout / "experiments" / "smoke.yaml"),
            "--seeds",
            ",".join(str(seed) for seed in range(1, runs + 1)),
            "--set",
            f"train.max_steps={steps}",
            "--set",
            "train.num_threads=1",
            "--runs-dir",
            str(runs_dir),
        ]
        env = {**os.environ, "PYTHONPATH": str(checkout)}
        cpu_before, started = children_cpu(), time.perf_counter()
        process = subprocess.Popen(command, env=env, cwd=checkout, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
        planned = None
        assert process.stderr is not None
        for line in process.stderr:
            if planned is None and line.startswith(b"launching "):
                planned = time.perf_counter() - started
        if process.wait() != 0:
            raise SystemExit(f"the launch from {checkout} failed")
        wall, cpu = time.perf_counter() - started, children_cpu() - cpu_before
        training = sum(
            json.loads((run_dir / "meta.json").read_text()).get("elapsed_seconds") or 0.0
            for run_dir in runs_dir.iterdir()
            if (run_dir / "meta.json").is_file()
        )
    return {"wall": wall, "cpu": cpu, "planning": planned or float("nan"), "training": training}


LAUNCHER_ALONE = """
import sys
from latentrun.cli import main
from latentrun.launch import parallel
from latentrun.launch.jobs import Outcome
parallel._run_all = lambda planned, *args, **kwargs: [Outcome(job, "finished") for job in planned]
sys.exit(main([sys.argv[1], "--seeds", "1,2,3,4", "--runs-dir", sys.argv[2]]))
"""


def launcher_alone(checkout: Path) -> tuple[float, float]:
    """(wall, CPU) seconds of the launcher's own work for a 4-run launch: parse, plan (every point's
    config validated), record, summarize; its runs replaced by instant outcomes."""
    with tempfile.TemporaryDirectory(prefix="latentrun-launch-bench-") as folder:
        smoke = str(checkout / "experiments" / "smoke.yaml")
        cpu_before, started = children_cpu(), time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", LAUNCHER_ALONE, smoke, folder],
            check=True,
            env={**os.environ, "PYTHONPATH": str(checkout)},
            cwd=checkout,
            capture_output=True,
        )
        return time.perf_counter() - started, children_cpu() - cpu_before


def import_costs(repeat: int) -> dict[str, tuple[float, float]]:
    """(median wall, median CPU) seconds of a fresh interpreter running each line of IMPORTS."""
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in IMPORTS}
    for _ in range(repeat):
        for name, code in IMPORTS.items():  # interleaved: each sees the same load
            cpu_before, started = children_cpu(), time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
            samples[name].append((time.perf_counter() - started, children_cpu() - cpu_before))
    return {
        name: (statistics.median(s[0] for s in got), statistics.median(s[1] for s in got))
        for name, got in samples.items()
    }


def launches(checkouts: list[Path], runs: int, steps: int, repeat: int) -> None:
    """Whole launches of `runs` short runs from each checkout, alternating, and their table."""
    results: dict[Path, list[dict[str, float]]] = {checkout: [] for checkout in checkouts}
    for _ in range(repeat):
        for checkout in checkouts:
            results[checkout].append(launch_once(checkout, runs, steps))
    print("\n| checkout | launch wall s | launch CPU s | planning wall s | training s | wall/run s | CPU/run s |")
    print("|---|---|---|---|---|---|---|")
    for checkout, got in results.items():
        m = {key: statistics.median(r[key] for r in got) for key in got[0]}
        print(
            f"| {checkout} | {m['wall']:.1f} | {m['cpu']:.1f} | {m['planning']:.1f} | {m['training']:.1f} "
            f"| {(m['wall'] - m['training']) / runs:.2f} | {m['cpu'] / runs:.2f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=4, help="runs of each whole launch (0: the launcher alone)")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--checkout", type=Path, action="append", default=[], help="another checkout to compare")
    args = parser.parse_args()
    load = "/".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"{os.cpu_count()} cores, load average {load} (1/5/15 min) at the start")
    checkouts = [ROOT, *args.checkout]
    alone: dict[Path, list[tuple[float, float]]] = {checkout: [] for checkout in checkouts}
    for _ in range(max(3, args.repeat)):
        for checkout in checkouts:
            alone[checkout].append(launcher_alone(checkout))
    print("| checkout | launcher alone, 4 runs: wall s | CPU s |\n|---|---|---|")
    for checkout, got in alone.items():
        print(
            f"| {checkout} | {statistics.median(g[0] for g in got):.2f} | {statistics.median(g[1] for g in got):.2f} |"
        )
    if args.runs:
        launches(checkouts, args.runs, args.steps, args.repeat)
    print("\n| fresh interpreter | wall s | CPU s |\n|---|---|---|")
    for name, (wall, cpu) in import_costs(max(3, args.repeat)).items():
        print(f"| {name} | {wall:.2f} | {cpu:.2f} |")
    print(f"load average {'/'.join(f'{value:.2f}' for value in os.getloadavg())} at the end")


if __name__ == "__main__":
    main()
