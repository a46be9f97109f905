"""Data-parallel training under torchrun: the process's rank, and gathering rows across ranks."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass
class Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self):
        if self.world_size > 1:
            import torch.distributed as dist

            dist.barrier()


def setup_distributed(device: str) -> tuple[Dist, str]:
    """One process (the default), or torchrun's: gloo on CPU, NCCL on CUDA, one GPU per local rank."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist(), device
    import torch
    import torch.distributed as dist

    rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    if device.startswith("cuda"):
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return Dist(rank, world, local), device


def gather_rows(t, dist_info: Dist):
    """All ranks' rows in rank order; this rank's rows keep their gradient, the others are constants."""
    if dist_info.world_size == 1:
        return t
    import torch
    import torch.distributed as dist

    parts = [torch.empty_like(t) for _ in range(dist_info.world_size)]
    dist.all_gather(parts, t.detach().contiguous())
    parts[dist_info.rank] = t
    return torch.cat(parts)
