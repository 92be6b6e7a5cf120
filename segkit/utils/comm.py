"""Thin helpers over torch.distributed, valid in single-process runs too."""
from __future__ import annotations

import datetime
import os
from typing import Callable, TypeVar

import torch
import torch.distributed as dist
from torch import nn

T = TypeVar("T")


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def get_rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def get_world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main_process() -> bool:
    return get_rank() == 0


def init_distributed(backend: str | None = None) -> tuple[int, int, torch.device]:
    """Join the process group torchrun describes (RANK, WORLD_SIZE, LOCAL_RANK); returns (rank, world, device).

    Without torchrun's variables this is a single process on CUDA if available, else CPU.
    NCCL is used where every process has a GPU, gloo otherwise.
    """
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return 0, 1, device
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    if not is_distributed():
        backend = backend or ("nccl" if device.type == "cuda" else "gloo")
        store = _restart_store()
        if store is None:
            dist.init_process_group(backend=backend)
        else:
            dist.init_process_group(backend=backend, store=store, rank=int(os.environ["RANK"]),
                                    world_size=int(os.environ["WORLD_SIZE"]))
    return get_rank(), get_world_size(), device


def check_device(device: str | torch.device) -> torch.device:
    """`device` as a torch.device; one this machine lacks is a ValueError saying so in one line (torch would
    fail deep inside the first `.to(device)` with "Found no NVIDIA driver")."""
    try:
        device = torch.device(device)
    except RuntimeError as e:
        raise ValueError(f"device {device!r} is not a device torch knows ({str(e).splitlines()[0]})") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            why = "this torch is a CPU-only build" if torch.version.cuda is None else "no NVIDIA GPU or driver found"
            raise ValueError(f"device {str(device)!r} asked for, but CUDA is not available here ({why}): use "
                             "device 'cpu'")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"device {str(device)!r} asked for, but this machine has "
                             f"{torch.cuda.device_count()} CUDA device(s)")
    return device
def _restart_store() -> dist.Store | None:
    """The process group's store under a torchrun restart, keyed apart from the failed group's, else None.

    torchrun's agent hosts the store its workers share and keeps it across restarts; a restarted group
    writes the same keys as the failed one (each process's address), and a process that reads before its
    peer wrote would connect to a dead process. A prefix per restart keeps the groups apart.
    """
    restart = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    if restart in ("", "0") or os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True":
        return None
    store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), int(os.environ["WORLD_SIZE"]),
                          is_master=False, timeout=datetime.timedelta(minutes=30))
    return dist.PrefixStore(f"segkit/restart_{restart}", store)


def main_process_first(build: Callable[[], T]) -> T:
    """`build()` on the main process, then on the others after a barrier: what the first one writes (an
    exported and cached ONNX file, a generated folder) the others then only read."""
    result = build() if is_main_process() else None
    barrier()
    return result if is_main_process() else build()  # type: ignore[return-value]


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum `tensor` over processes in place (a no-op in a single process); returns it."""
    if is_distributed():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


class StoppedEarly(RuntimeError):
    """Raised on every process when a loop that ends in a collective (an evaluation) was left early because a stop
    (a preemption signal) was requested on at least one of them: the caller saves and exits instead of
    finishing the loop, which could outlast the launcher's patience (torchrun's --shutdown-timeout)."""


def stopped_on_any(stopped: bool, totals: torch.Tensor) -> None:
    """Sum `totals` (the loop's counts, a float tensor) over processes in place, together with whether this
    process stopped early; raise StoppedEarly on every process if any did, after the one all-reduce."""
    flags = torch.cat([totals, torch.tensor([float(stopped)], dtype=totals.dtype, device=totals.device)])
    all_reduce_sum(flags)
    totals.copy_(flags[:-1])
    if flags[-1] > 0:
        raise StoppedEarly(f"stopped early on {int(flags[-1])} of {get_world_size()} processes")


def reduce_mean_dict(values: dict[str, float], device: torch.device) -> dict[str, float]:
    """Average a dict of scalars over processes (for logging losses of every rank)."""
    if not is_distributed() or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([float(values[k]) for k in keys], device=device)
    all_reduce_sum(t)
    t /= get_world_size()
    return dict(zip(keys, t.tolist()))


def per_process_batch(global_batch: int, key: str = "SOLVER.IMS_PER_BATCH") -> int:
    """This process's share of a global batch; a batch the processes cannot split evenly is an error naming `key`."""
    world = get_world_size()
    if global_batch <= 0 or global_batch % world:
        raise ValueError(f"{key} {global_batch} is not a positive multiple of the world size {world}")
    return global_batch // world


def unwrap_model(model: nn.Module) -> nn.Module:
    """The user's module under DDP / DataParallel (`.module`) and torch.compile (`._orig_mod`)."""
    while True:
        if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
            model = model.module
        elif isinstance(getattr(model, "_orig_mod", None), nn.Module):
            model = model._orig_mod
        else:
            return model


def cleanup() -> None:
    if is_distributed():
        dist.destroy_process_group()


def broadcast_buffers(module: nn.Module, src: int = 0) -> None:
    """Give every process `src`'s buffers (BatchNorm running statistics), in place.

    DDP keeps parameters equal, but each process updates its own running statistics during its forward
    passes; before a checkpoint is written and before evaluation, every rank must hold the weights that
    are saved, or a distributed evaluation would score a mixture of models.
    """
    if not is_distributed():
        return
    for buf in module.buffers():
        dist.broadcast(buf, src)


def broadcast_state(module: nn.Module, src: int = 0) -> None:
    """Give every process `src`'s parameters and buffers, in place (a module outside DDP, such as an EMA copy
    taken before DDP gave every process the same initial weights)."""
    if not is_distributed():
        return
    with torch.no_grad():
        for tensor in (*module.parameters(), *module.buffers()):
            dist.broadcast(tensor, src)
