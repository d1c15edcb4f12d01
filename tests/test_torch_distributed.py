"""minilib.training.distributed and DistributedDataParallel training on CPU (gloo).

The sampler tests check the property the exactness argument rests on: global batch t is the same set of examples
whatever the number of processes. The end-to-end test launches 2 processes of ``python -u -m minilib.training``
(the command ``torchrun -m minilib.training`` runs) with the variables torchrun sets (RANK, WORLD_SIZE,
LOCAL_RANK, MASTER_ADDR, MASTER_PORT) and checks that they train, in float64, to the parameters one process
reaches with the same global batch.
"""
from __future__ import annotations

import itertools
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch_train_helpers import _restore_torch_globals  # noqa: F401 (an autouse fixture)

from minilib.training import distributed
from minilib.training.checkpoint import load_checkpoint
from minilib.training.data import load_data
from minilib.training.trainer import TrainConfig, train

ROOT = Path(__file__).resolve().parents[1]


def shards(n, batch, world, epoch=0, seed=3, start_step=0):
    """Per rank, the list of this epoch's batches (lists of example indices)."""
    return [[[i for _, i in keys] for keys in distributed.ShardedBatches(
        n, batch, rank=r, world_size=world, seed=seed, epoch=epoch, start_step=start_step)] for r in range(world)]


@pytest.mark.parametrize("world", [2, 4])
def test_global_batch_is_the_same_set_for_any_world_size(world):
    alone = shards(50, 8, 1)[0]
    together = shards(50, 8, world)
    assert len(alone) == 6 and all(len(r) == 6 for r in together)
    for step, batch in enumerate(alone):
        parts = [together[r][step] for r in range(world)]
        assert all(len(p) == 8 // world for p in parts)
        assert list(itertools.chain(*parts)) == batch  # rank r holds the r-th slice, in order


def test_an_epoch_uses_each_example_at_most_once_and_epochs_differ():
    rank0, rank1 = shards(50, 8, 2, epoch=0)
    epoch0 = list(itertools.chain(*rank0, *rank1))
    assert len(epoch0) == len(set(epoch0)) == 48  # 2 examples dropped with the incomplete batch
    assert shards(50, 8, 2, epoch=1)[0] != rank0
    assert shards(50, 8, 2, epoch=1) == shards(50, 8, 2, epoch=1)


def test_start_step_skips_exactly_the_batches_already_trained():
    full, resumed = shards(40, 4, 2), shards(40, 4, 2, start_step=7)
    assert [r[7:] for r in full] == resumed


@pytest.mark.parametrize("batch, world, n, rule", [
    (10, 4, 100, "divisible by the number of processes 4"),
    (64, 1, 50, "larger than the training set"),
])
def test_bad_batch_is_explained(batch, world, n, rule):
    with pytest.raises(ValueError, match=rule):
        distributed.ShardedBatches(n, batch, rank=0, world_size=world, seed=0, epoch=0)


def test_eval_shards_cover_the_set_exactly_once():
    covered = sorted(i for r in range(3) for i in distributed.shard_for_eval(10, r, 3))
    assert covered == list(range(10))


def test_read_env_falls_back_to_one_process_and_reads_torchrun_variables():
    assert distributed.read_env({}) == (0, 1, 0)
    env = {"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "MASTER_ADDR": "h", "MASTER_PORT": "1"}
    assert distributed.read_env(env) == (3, 4, 1)
    ctx = distributed.setup("cpu")  # no variables in the test process: alone, no process group
    assert (ctx.rank, ctx.world_size, ctx.distributed, ctx.is_main) == (0, 1, False, True)


@pytest.mark.parametrize("env, rule", [
    ({"RANK": "0"}, "both RANK and WORLD_SIZE"),
    ({"RANK": "2", "WORLD_SIZE": "2"}, "0 <= RANK < WORLD_SIZE=2"),
    ({"RANK": "0", "WORLD_SIZE": "2"}, "MASTER_ADDR and MASTER_PORT"),
    ({"RANK": "zero", "WORLD_SIZE": "2"}, "RANK='zero' must be an integer"),
])
def test_inconsistent_environment_is_explained(env, rule):
    with pytest.raises(ValueError, match=rule):
        distributed.read_env(env)


def test_ranks_get_different_streams_and_states_round_trip():
    draws = {}
    for rank in (0, 1, 0):
        distributed.seed_everything(7, rank)
        draws.setdefault(rank, []).append((torch.rand(3).tolist(), np.random.rand(), __import__("random").random()))
    assert draws[0][0] == draws[0][1]
    assert draws[0][0][0] != draws[1][0][0] and draws[0][0][1] != draws[1][0][1]
    state = distributed.capture_rng_state()
    expected = (torch.rand(2), np.random.rand(2), __import__("random").random())
    distributed.restore_rng_state(state)
    assert torch.equal(torch.rand(2), expected[0]) and np.array_equal(np.random.rand(2), expected[1])
    assert __import__("random").random() == expected[2]


def test_augmentation_is_a_function_of_the_example_not_of_the_process():
    data = load_data(TrainConfig(model="tiny-cnn", data="synthetic", seed=5))
    x, label = data.train[(2, 17)]
    assert x.shape == (3, 8, 8) and x.dtype == torch.float32
    assert torch.equal(x, data.train[(2, 17)][0]) and label == data.train[(2, 17)][1]
    views = {tuple(data.train[(epoch, 17)][0].flatten().tolist()) for epoch in range(6)}
    assert len(views) > 1  # other epochs draw other crops/flips


# --------------------------------------------------------------------------------------------------
# Two processes == one process
# --------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(world: int, argv: list[str], timeout: float = 150.0) -> list[str]:
    """Run ``python -u -m minilib.training argv`` as ``world`` ranks, as ``torchrun -m`` would (same command, same
    variables); return their stderr."""
    port = free_port()
    procs = []
    for rank in range(world):
        env = {**os.environ, "RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank),
               "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "OMP_NUM_THREADS": "1",
               "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        procs.append(subprocess.Popen([sys.executable, "-u", "-m", "minilib.training", *argv], env=env, cwd=ROOT,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
    try:
        errors = [p.communicate(timeout=timeout)[1] for p in procs]
    finally:
        for p in procs:  # only the processes started here
            if p.poll() is None:
                p.kill()
                p.wait()
    for rank, (p, err) in enumerate(zip(procs, errors)):
        assert p.returncode == 0, f"rank {rank} exited with {p.returncode}:\n{err[-3000:]}"
    return errors


def test_two_processes_train_to_the_parameters_of_one(tmp_path):
    # Full-stack filters (the orthogonality penalty is a gradient from outside the DDP forward) and
    # augmentation on, float64: the only difference between the runs is the order of floating-point sums.
    common = ["--model", "tiny-cnn", "--method", "fullstack", "--method-kw", "s=4", "--data", "synthetic",
              "--epochs", "2", "--batch-size", "16", "--milestones", "1", "--gamma", "0.5", "--dtype", "float64",
              "--threads", "1", "--no-progress"]
    launch(2, common + ["--out", str(tmp_path / "ddp")])
    config = TrainConfig(model="tiny-cnn", method="fullstack", method_kw={"s": 4}, data="synthetic", epochs=2,
                         batch_size=16, milestones=[1], gamma=0.5, ortho_lambda=0.1, dtype="float64", threads=1,
                         progress=False, out=str(tmp_path / "one"))
    alone = train(config)

    ddp_state = load_checkpoint(tmp_path / "ddp" / "checkpoint.pt")
    one_state = load_checkpoint(tmp_path / "one" / "checkpoint.pt")
    assert ddp_state["global_step"] == one_state["global_step"] == 32
    for name, value in one_state["model"].items():
        np.testing.assert_allclose(ddp_state["model"][name].numpy(), value.numpy(), rtol=0, atol=1e-10, err_msg=name)
    initial = _initial_model(config)
    assert max((one_state["model"][k] - v).abs().max().item() for k, v in initial.items()) > 1e-3  # it trained

    together = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    assert together["world_size"] == 2 and alone["world_size"] == 1
    for a, b in zip(together["epochs"], alone["epochs"]):
        assert a["lr"] == b["lr"]
        for key in ("train_loss", "train_accuracy", "test_loss", "test_accuracy", "ortho_penalty"):
            assert a[key] == pytest.approx(b[key], rel=1e-9, abs=1e-12), key


def _initial_model(config: TrainConfig) -> dict:
    from minilib.torch.zoo import build_model

    torch.manual_seed(config.seed)
    model = build_model(config.model, num_classes=4, method=config.method, method_kw=config.method_kw)
    return {k: v.double() for k, v in model.state_dict().items()}
