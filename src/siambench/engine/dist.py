"""Device and distributed setup for plain runs and ``torchrun``.

``torchrun`` sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; with them
present the process group is initialised (NCCL on GPUs, gloo on CPUs), and
without them everything runs in one process. No launcher of our own.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as tdist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str = "auto") -> DistInfo:
    """Pick the device and, under torchrun, join the process group."""
    rank = int(os.environ.get("RANK", 0))
    world = int(os.environ.get("WORLD_SIZE", 1))
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        torch.cuda.set_device(local_rank)
        dev = torch.device("cuda", local_rank)
    else:
        dev = torch.device(device)
    if world > 1 and not tdist.is_initialized():
        tdist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return DistInfo(rank, world, local_rank, dev)


def barrier() -> None:
    if tdist.is_available() and tdist.is_initialized():
        tdist.barrier()


def shutdown() -> None:
    if tdist.is_available() and tdist.is_initialized():
        tdist.destroy_process_group()


def process_group() -> tuple[int, int]:
    """``(rank, world size)`` of the current process group; ``(0, 1)`` outside one."""
    if tdist.is_available() and tdist.is_initialized():
        return tdist.get_rank(), tdist.get_world_size()
    return 0, 1


def is_main_process() -> bool:
    return process_group()[0] == 0


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over the ranks in place (nothing to do in one process)."""
    if process_group()[1] > 1:
        tdist.all_reduce(tensor)
    return tensor


def mean_over_ranks(value: torch.Tensor) -> float:
    """The mean of a scalar over the ranks (its value in one process)."""
    return float(all_reduce_sum(value.detach().clone())) / process_group()[1]


def data_parallel(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """``model`` wrapped in DDP when the process group has several ranks, else ``model`` itself.

    DDP averages the gradients over the ranks, so each rank's loss must be
    its share of the global batch's mean.
    """
    if process_group()[1] == 1:
        return model
    device_ids = [device.index] if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


def broadcast_buffers(model: torch.nn.Module) -> None:
    """Give every rank rank 0's buffers (BN running statistics), as DDP does before each forward.

    After the last training step each rank's BN statistics hold its own
    batch; scoring shards across ranks needs the same network on all of them.
    """
    if process_group()[1] > 1:
        for buffer in model.buffers():
            tdist.broadcast(buffer, src=0)
