"""Run statuses (meta.json's `status`, what `list` shows) and process exit statuses (contract)."""

from __future__ import annotations

# How a run stands. Training ends a session in FINISHED (max_steps reached), STOPPED (--stop-at),
# INTERRUPTED (SIGINT/SIGTERM, after a clean checkpoint) or CRASHED (anything else).
CREATED, RUNNING = "created", "running"
FINISHED, STOPPED, INTERRUPTED, CRASHED = "finished", "stopped", "interrupted", "crashed"
# Recorded statuses that only hold while the process that wrote them is alive.
LIVE = (CREATED, RUNNING)

# Exit statuses of `run.py` (contract): success, runtime failure, bad config or usage, and
# interrupted after a clean checkpoint (128 + SIGINT, as shells report it).
EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
