"""Suite-wide settings, loaded before every test folder's own conftest."""

import os

import torch

# Two cores shared with other processes: torch's second OpenMP thread then spends most of its time
# waiting at barriers for a descheduled sibling, which made small runs 10-30x slower. One thread
# per test process (and per `run.py` subprocess, through the environment) keeps timings sane.
os.environ["OMP_NUM_THREADS"] = "1"
torch.set_num_threads(1)
