"""Process-group setup, per-rank seeding and sharded sampling for ``python -m minilib.training``.

Launch with ``torchrun --nproc_per_node N`` (it sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT);
without those variables everything runs in one process and no process group is created.

Sharding is designed so that the GLOBAL batch of step t is the same set of examples for any number of
processes: each epoch has one permutation of the training set drawn from (seed, epoch); global batch t is
positions [t*B, (t+1)*B) of it, and rank r takes the r-th of its W equal slices. DDP averages the W gradients
of mean losses over B/W examples, which is the gradient of the mean loss over all B examples; so a run on W
processes follows the same trajectory as a run on one (up to floating-point summation order), and a checkpoint
written by one world size resumes on another. The incomplete last batch of an epoch is dropped, as every
step must have exactly B examples for that to hold.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import os
import random

import numpy as np
import torch
import torch.distributed as dist

_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@dataclasses.dataclass(frozen=True)
class DistContext:
    """Where this process sits: ``rank`` of ``world_size``, ``local_rank`` on its node, its ``device``,
    and whether a process group was created (``distributed``)."""
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = dataclasses.field(default_factory=lambda: torch.device("cpu"))
    distributed: bool = False

    @property
    def is_main(self) -> bool:
        """Rank 0 writes files and draws the progress bar."""
        return self.rank == 0


def _env_int(name: str, env) -> int | None:
    value = env.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name}={value!r} must be an integer") from None


def read_env(env=None) -> tuple[int, int, int]:
    """(rank, world_size, local_rank) from torchrun's variables, (0, 1, 0) when none is set.

    Raises ``ValueError`` naming the variable when they are inconsistent (e.g. RANK without WORLD_SIZE,
    RANK >= WORLD_SIZE, or a multi-process world without MASTER_ADDR/MASTER_PORT).
    """
    env = os.environ if env is None else env
    rank, world, local = (_env_int(name, env) for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))
    if rank is None and world is None:
        return 0, 1, 0 if local is None else local
    if rank is None or world is None:
        raise ValueError("set both RANK and WORLD_SIZE (torchrun does) or neither; got "
                         f"RANK={env.get('RANK')!r}, WORLD_SIZE={env.get('WORLD_SIZE')!r}")
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"RANK={rank} must satisfy 0 <= RANK < WORLD_SIZE={world}")
    if world > 1:
        missing = [name for name in ("MASTER_ADDR", "MASTER_PORT") if not env.get(name)]
        if missing:
            raise ValueError(f"WORLD_SIZE={world} needs {' and '.join(missing)} (the rendezvous address); "
                             "launch with torchrun, which sets them")
    return rank, world, rank if local is None else local


def setup(device: str = "auto", timeout_minutes: float = 30.0) -> DistContext:
    """Join the process group torchrun describes (nccl on CUDA, gloo on CPU), or run alone without one.

    ``device``: "auto" (CUDA if available, GPU ``LOCAL_RANK``), "cuda" or "cpu".
    """
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device={device!r} must be 'auto', 'cpu' or 'cuda'")
    rank, world, local = read_env()
    use_cuda = torch.cuda.is_available() if device == "auto" else device == "cuda"
    if use_cuda and not torch.cuda.is_available():
        raise ValueError("device='cuda' but torch.cuda.is_available() is False")
    if use_cuda:
        torch.cuda.set_device(local)  # before init: nccl and all_gather_object use the current device
        where = torch.device("cuda", local)
    else:
        where = torch.device("cpu")
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo", rank=rank, world_size=world,
                                timeout=_dt.timedelta(minutes=timeout_minutes))
    return DistContext(rank, world, local, where, world > 1)


def cleanup(ctx: DistContext, barrier: bool = True) -> None:
    """Leave the process group; with ``barrier`` all ranks meet first, so none exits while rank 0 still writes
    (skip it after an error: the other ranks may never arrive)."""
    if ctx.distributed and dist.is_initialized():
        if barrier:
            dist.barrier()
        dist.destroy_process_group()


# --------------------------------------------------------------------------------------------------
# Seeding
# --------------------------------------------------------------------------------------------------


def seed_everything(seed: int, rank: int = 0) -> None:
    """Seed torch (CPU and CUDA), NumPy's global generator and ``random`` from (seed, rank).

    Called once per process after the model is built (the model is built from ``seed`` alone, so all ranks
    start equal): randomness drawn inside the model during training (dropout) must differ between ranks,
    or every rank would drop the same units and the W per-rank batches would share one noise pattern.
    Data order and augmentation do not use these generators (see :func:`example_rng`).
    """
    words = np.random.SeedSequence([seed, rank]).generate_state(2, dtype=np.uint32)
    torch.manual_seed(int(words[0]) << 32 | int(words[1]))  # also seeds every CUDA device
    np.random.seed(int(words[0]))
    random.seed(int(words[1]))


def example_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator for augmenting example ``index`` in ``epoch``.

    Keyed by the example, not by the rank, so an example gets the same crop and flip whichever process
    draws it: runs on 1 and W processes see identical inputs, and a resumed run needs no augmentation state.
    """
    return np.random.default_rng([seed, epoch, index])


def capture_rng_state() -> dict:
    """This process's torch / CUDA / NumPy / ``random`` generator states, in a form ``torch.load(weights_only)``
    accepts (NumPy's key array as a list)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state() if torch.cuda.is_available() else None,
            "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)],
            "python": random.getstate()}


def restore_rng_state(state: dict) -> None:
    """Undo :func:`capture_rng_state`."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    random.setstate(state["python"])


# --------------------------------------------------------------------------------------------------
# Sharded sampling
# --------------------------------------------------------------------------------------------------


def check_batch(global_batch: int, world_size: int, n_examples: int) -> int:
    """Steps per epoch, after checking that ``global_batch`` splits evenly and fits the data."""
    if global_batch % world_size:
        raise ValueError(f"batch size {global_batch} (global) must be divisible by the number of processes "
                         f"{world_size}: each process takes batch size / processes examples per step")
    if global_batch > n_examples:
        raise ValueError(f"batch size {global_batch} is larger than the training set ({n_examples} examples); "
                         "incomplete batches are dropped, so an epoch would have no step")
    return n_examples // global_batch


def epoch_order(n_examples: int, seed: int, epoch: int) -> np.ndarray:
    """The permutation of the training set for ``epoch``: the same on every rank, different every epoch."""
    return np.random.default_rng([seed, epoch]).permutation(n_examples)


class ShardedBatches:
    """This rank's share of every global batch of one epoch, as lists of ``(epoch, index)`` keys.

    Global batch t holds ``epoch_order(...)[t*B:(t+1)*B]``; rank r gets its slice
    ``[r*B/W, (r+1)*B/W)``. ``start_step`` skips the batches a resumed run has already trained on.
    Use as a ``torch.utils.data.DataLoader(batch_sampler=...)``: the dataset is indexed by the keys, and
    the epoch in each key seeds the example's augmentation (:func:`example_rng`).
    """

    def __init__(self, n_examples: int, global_batch: int, *, rank: int, world_size: int, seed: int, epoch: int,
                 start_step: int = 0):
        self.steps = check_batch(global_batch, world_size, n_examples)
        if not 0 <= start_step <= self.steps:
            raise ValueError(f"start_step={start_step} must be in [0, {self.steps}] (steps per epoch)")
        self.n_examples, self.global_batch, self.rank, self.world_size = n_examples, global_batch, rank, world_size
        self.seed, self.epoch, self.start_step = seed, epoch, start_step

    def __len__(self) -> int:
        return self.steps - self.start_step

    def __iter__(self):
        order = epoch_order(self.n_examples, self.seed, self.epoch)
        local = self.global_batch // self.world_size
        for step in range(self.start_step, self.steps):
            first = step * self.global_batch + self.rank * local
            yield [(self.epoch, int(i)) for i in order[first:first + local]]


def shard_for_eval(n_examples: int, rank: int, world_size: int) -> range:
    """Indices rank ``rank`` evaluates: every W-th example, so the ranks cover the set exactly once
    (no padding, hence no double-counted examples in the summed metrics)."""
    return range(rank, n_examples, world_size)


# --------------------------------------------------------------------------------------------------
# Collectives that are no-ops in a single process
# --------------------------------------------------------------------------------------------------


def all_reduce_sum(tensor: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Sum ``tensor`` over ranks in place (nothing to do alone) and return it."""
    if ctx.distributed:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def gather_objects(obj, ctx: DistContext) -> list:
    """``[obj of rank 0, obj of rank 1, ...]`` on every rank."""
    if not ctx.distributed:
        return [obj]
    out = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


def broadcast_buffers(module: torch.nn.Module, ctx: DistContext) -> None:
    """Copy rank 0's buffers (batch-norm running statistics) to every rank.

    DDP broadcasts them at the start of each training forward, but each rank then updates them with its own
    batch, so after the last step they differ; evaluation and checkpoints must use one set.
    """
    if ctx.distributed:
        for buffer in module.buffers():
            dist.broadcast(buffer, src=0)
