"""What checkpoint files are called, and finding them on disk: torch-free, so that `list --id` can
show a run's checkpoints without the two seconds torch takes to import."""

from __future__ import annotations

import os
import re
from pathlib import Path

STEP_FILE = re.compile(r"^step_(\d{8})\.pt$")
# Written when a step is skipped for an exploding loss; a separate series, so that pruning regular
# checkpoints never deletes the evidence and a resume never mistakes one for the newest good state.
EMERGENCY_FILE = re.compile(r"^emergency_(\d{8})\.pt$")
BEST_FILE = "best.pt"


def step_file_name(step: int) -> str:
    return f"step_{step:08d}.pt"


def step_checkpoints(folder: Path, pattern: re.Pattern = STEP_FILE) -> list[tuple[int, Path]]:
    """(step, path) of every `step_*.pt` (or other `pattern` series) in `folder`, oldest first."""
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), folder / m.group(0)) for m in map(pattern.match, os.listdir(folder)) if m]
    return sorted(found)
