"""Data-parallel training under torchrun: process group, rank, and the few collectives a run needs.

`torchrun --nproc_per_node=N run.py EXP.yaml` starts N copies of run.py with RANK, WORLD_SIZE,
LOCAL_RANK and MASTER_ADDR/PORT in their environment. Each copy joins one process group (gloo for
CPU tensors, NCCL for CUDA ones), trains a DistributedDataParallel replica on `batch_size / N`
examples drawn from `(seed, step, rank)`, and lets rank 0 alone touch the run directory. A plain
`python run.py` is a world of one: no process group, and every function here is then a no-op, so
single-process runs compute exactly what they did before DDP existed.
"""

from __future__ import annotations

import datetime as dt
import inspect
import os
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from latentrun.core.errors import PeerError as PeerError  # defined there, still importable from here

T = TypeVar("T")
# Long enough for rank 0 to verify a few large checkpoints while the others wait at a broadcast;
# short enough that a rank stuck on a dead peer gives up within minutes, not gloo's default 30.
_TIMEOUT = dt.timedelta(minutes=10)
_EXIT_WAIT = dt.timedelta(minutes=2)  # how long a finished rank waits for the others before leaving
# torch 2.13 renamed DDP's broadcast_buffers (and warns about the old name); older ones know only it.
_NO_BUFFER_SYNC = (
    "forward_sync_buffers"
    if "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters
    else "broadcast_buffers"
)


@dataclass(frozen=True)
class Context:
    """Where this process sits in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


_context = Context()


def init() -> Context:
    """Join the process group torchrun describes in the environment; without torchrun, a world of one."""
    global _context
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1 or dist.is_initialized():
        _context = Context() if world_size <= 1 else _context
        return _context
    _context = Context(int(os.environ["RANK"]), world_size, int(os.environ.get("LOCAL_RANK", "0")))
    cuda = torch.cuda.is_available() and dist.is_nccl_available()
    if cuda:
        torch.cuda.set_device(_context.local_rank)
    # One group serves both kinds of tensor, so the backend need not wait for the config's train.device.
    dist.init_process_group("cpu:gloo,cuda:nccl" if cuda else "gloo", timeout=_TIMEOUT)
    return _context


def shutdown(finished: bool = False) -> None:
    """Leave the process group (so that torchrun sees a clean exit) and go back to a world of one.

    `finished`: every rank got to the end normally, so wait for the others first. A rank that tears
    its group down while another still works (rank 0 grading the test split, say) can die in gloo's
    teardown with SIGABRT ("terminate called without an active exception"), seen under load in CI.
    The wait is bounded, so a rank whose peer has died still leaves.
    """
    global _context
    if dist.is_initialized():
        if finished:
            try:
                dist.monitored_barrier(timeout=_EXIT_WAIT)
            except Exception:  # a peer gone or a backend without monitored_barrier: leave anyway
                pass
        dist.destroy_process_group()
    _context = Context()


def context() -> Context:
    return _context


def local_device(device: torch.device) -> torch.device:
    """The device this rank trains on: its own GPU under torchrun, else `device` unchanged."""
    if device.type == "cuda" and _context.world_size > 1:
        return torch.device("cuda", _context.local_rank)
    return device


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """`model` as a DDP replica that averages gradients across ranks; `model` itself in a world of one."""
    if _context.world_size == 1:
        return model
    # Weights stay equal on every rank by construction (same init, same averaged gradients), and
    # evaluation must not be a collective: no buffer sync in forward.
    return _DataParallel(
        model,
        device_ids=[device.index] if device.type == "cuda" else None,
        **{_NO_BUFFER_SYNC: False},  # type: ignore[arg-type]
    )


class _DataParallel(DistributedDataParallel):
    """DDP that looks like the model it wraps: the same state_dict keys (no 'module.' prefix, so
    checkpoints move between 1 and N processes and `predict` reads them) and the model's own methods
    (`generate`, `num_parameters`)."""

    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Any]:  # type: ignore[override]
        return self.module.state_dict(*args, **kwargs)

    def load_state_dict(self, state_dict: Any, strict: bool = True, assign: bool = False) -> Any:
        return self.module.load_state_dict(state_dict, strict=strict, assign=assign)

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.module, name)


def from_main(work: Callable[[], T]) -> T:
    """Run `work` on rank 0 only and hand its result (or its exception) to every rank.

    For the steps that touch the run directory: rank 0 does them, the others wait and learn the
    outcome, so that an error on rank 0 (a busy lock, a bad resume) stops every rank rather than
    leaving the others waiting at the next collective.
    """
    if _context.world_size == 1:
        return work()
    payload: list[Any] = [None]
    if _context.is_main:
        try:
            payload[0] = ("ok", work())
        except BaseException as error:
            payload[0] = ("error", _portable(error))
            dist.broadcast_object_list(payload, src=0)
            raise
    dist.broadcast_object_list(payload, src=0)
    kind, value = payload[0]
    if kind == "error":
        value.reported_by_main = True
        raise value
    return value


def _portable(error: BaseException) -> BaseException:
    """`error` if it survives pickling (so other ranks raise the same type and exit status), else a PeerError."""
    try:
        return pickle.loads(pickle.dumps(error))
    except Exception:
        return PeerError(f"rank 0 failed: {type(error).__name__}: {error}")


def all_gather_object(value: T) -> list[T]:
    """`value` from every rank, in rank order; [value] in a world of one."""
    if _context.world_size == 1:
        return [value]
    gathered: list[Any] = [None] * _context.world_size
    dist.all_gather_object(gathered, value)
    return gathered


def agree(values: list[torch.Tensor], stop_requested: bool) -> tuple[list[torch.Tensor], bool]:
    """(each scalar's mean over ranks, whether any rank was asked to stop): one small all-reduce per step.

    Every rank must take the same branch at the same step (log, evaluate, checkpoint, stop), or the
    collectives inside those branches pair up wrongly and the job hangs. A signal reaches each
    rank at a slightly different step, so the decision is made together.
    """
    if _context.world_size == 1:
        return values, stop_requested
    device = values[0].device
    packed = torch.stack(
        [*(value.detach().float() for value in values), torch.tensor(float(stop_requested), device=device)]
    )
    dist.all_reduce(packed)
    return list(packed[:-1] / _context.world_size), bool(packed[-1] > 0)
