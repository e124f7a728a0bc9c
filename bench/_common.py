"""Shared pieces of the benchmarks: the machine they ran on, a trainer built as a run builds it,
interleaved timing, and plain-text tables.

Benchmarks compare ratios measured side by side in one process, alternating the contenders and
taking medians, because this machine is shared: absolute times drift with other people's load,
but two things timed in alternation drift together.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as `python bench/x.py` from a checkout, installed or not

import torch  # noqa: E402

from latentrun import config as config_module  # noqa: E402
from latentrun.config.build import build_components, build_trainer  # noqa: E402
from latentrun.runs.run_dir import RunDir  # noqa: E402
from latentrun.train.loggers import MetricLogger  # noqa: E402
from latentrun.train.trainer import Trainer  # noqa: E402


def machine() -> str:
    """One line naming the CPU (or GPU), threads, torch and the load when the benchmark started."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpu = f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    load = "/".join(f"{value:.2f}" for value in os.getloadavg())
    return (
        f"{cpu} ({os.cpu_count()} cores{gpu}), torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"load average {load} (1/5/15 min)"
    )


def load_config(path: str, overrides: Sequence[str] = ()) -> dict[str, Any]:
    return config_module.load(ROOT / path if not Path(path).is_absolute() else path, overrides)


def make_trainer(
    config: dict[str, Any],
    device: torch.device,
    precision: str,
    run_dir: Path,
    metric_logger: MetricLogger | None = None,
) -> Trainer:
    """A Trainer built by the function `session` builds one with, checkpointing into `run_dir`."""
    train = config["train"]
    checkpointer = RunDir(run_dir).checkpointer(train["save_every"], train["keep_last"])
    return build_trainer(config, build_components(config, device), device, precision, checkpointer, metric_logger)


def add_set(parser) -> None:
    """`--set KEY=VALUE` config overrides, as run.py takes them (e.g. --set train.compile=true)."""
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value of every benchmarked experiment (repeatable)",
    )


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn: Callable[[], Any], device: torch.device) -> float:
    """Wall seconds of `fn()`, with the device drained before and after."""
    synchronize(device)
    start = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - start


def interleaved(contenders: dict[str, Callable[[], Any]], rounds: int, device: torch.device) -> dict[str, list[float]]:
    """Seconds of each contender per round, alternating the order every round (ABBA...), so that a
    drift in load costs each contender alike."""
    names = list(contenders)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for index in range(rounds):
        for name in names if index % 2 == 0 else reversed(names):
            seconds[name].append(timed(contenders[name], device))
    return seconds


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain-text table, columns padded to their widest cell."""
    cells = [list(map(str, headers))] + [[_cell(value) for value in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
