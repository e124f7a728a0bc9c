"""Time of `probe` on a d128, 2-layer run: 2000 held-out problems, every layer, position and target.

Trains a tiny run of each model kind (d_model 128, 2 layers, 4-digit operands, 2 steps: what the
weights hold does not change the cost) under a temporary folder, then times probing it, split into
reading the hidden states and fitting the probes (`probe_run`) and writing probe.json, probe.png and
the TensorBoard image (`write_probe`). The target is at most 60 s on one core: with one thread the
process's CPU time is that figure on a shared machine, where wall time also counts the others' load.

    python bench/probe.py [--samples 2000] [--threads 1] [--kinds simple recurrent chain]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import _common as common
import torch

from latentrun.cli import main as cli
from latentrun.report import probe

SHAPE = ["model.d_model=128", "model.num_layers=2", "model.num_heads=4", "dataset.max_digits=4"]
RUN = ["dataset.val_size=50", "train.max_steps=2", "train.eval_every=2", "train.save_every=2", "train.num_threads=1"]
KINDS = {
    "simple": ("experiments/smoke_simple.yaml", []),
    "recurrent": ("experiments/smoke.yaml", ["model.latent_mode=recurrent", "model.num_latent=8"]),
    "chain": ("experiments/smoke_chain.yaml", []),  # the longest sequence: 4-digit chain of thought
}


def train(kind: str, runs_dir: Path, samples: int) -> Path:
    file, overrides = KINDS[kind]
    sets = [*SHAPE, *RUN, f"dataset.test_size={samples}", *overrides]
    status = cli(
        [str(common.ROOT / file), "--runs-dir", str(runs_dir / kind), *(p for s in sets for p in ("--set", s))]
    )
    assert status == 0, f"training the {kind} run failed ({status})"
    (run_dir,) = (runs_dir / kind).iterdir()
    return run_dir


def measure(run_dir: Path, samples: int) -> list:
    """Wall and CPU seconds; with one thread the CPU time is what one core of its own would take,
    however many other processes share the machine."""
    started, cpu_started = time.perf_counter(), time.process_time()
    document = probe.probe_run(run_dir, probe.Request(samples=samples))
    cpu_probed = time.process_time()
    probe.write_probe(run_dir, document)
    written, cpu_written = time.perf_counter(), time.process_time()
    return [
        len(document["positions"]),
        document["problems"],
        sum(len(t["components"]) for t in document["targets"]),
        cpu_probed - cpu_started,
        cpu_written - cpu_probed,
        cpu_written - cpu_started,
        written - started,
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--kinds", nargs="+", choices=list(KINDS), default=list(KINDS))
    options = parser.parse_args()
    torch.set_num_threads(options.threads)
    print(common.machine())
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for kind in options.kinds:
            run_dir = train(kind, Path(folder), options.samples)
            torch.set_num_threads(options.threads)  # a run in this process restores its own count
            rows.append([kind, *measure(run_dir, options.samples)])
    header = ["run (d128, 2 layers)", "positions", "problems", "components"]
    header += ["states+fit cpu s", "write cpu s", "total cpu s", "total wall s"]
    print(common.table(header, rows))


if __name__ == "__main__":
    main()
