"""``python -m minilib.training``: resume exactness, checkpoint integrity, the command line, presets, the zoo.

Runs are tiny (``tiny-cnn`` on the 8x8 synthetic set, one thread, float64) and in-process, except the test that
SIGKILLs a real training process and resumes from whatever checkpoint it left.
"""
from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch_train_helpers import _restore_torch_globals  # noqa: F401 (an autouse fixture)

from minilib.torch import BasisConv2d, FullStackConv2d, VersatileConv2d
from minilib.torch.zoo import MODELS, build_model, default_exclude
from minilib.training.__main__ import main, parse_args
from minilib.training.checkpoint import MAGIC, CheckpointError, load_checkpoint, save_checkpoint
from minilib.training.trainer import PRESETS, TrainConfig, train

ROOT = Path(__file__).resolve().parents[1]


def config(out, **kw) -> TrainConfig:
    base = {"model": "tiny-cnn", "data": "synthetic", "epochs": 3, "batch_size": 32, "milestones": [2], "gamma": 0.5,
            "dtype": "float64", "threads": 1, "progress": False, "out": str(out)}
    return TrainConfig(**{**base, **kw})


def final_state(out) -> dict:
    return load_checkpoint(Path(out) / "checkpoint.pt")


def assert_same_run(a: dict, b: dict) -> None:
    """Two checkpoints hold bit-identical weights and optimizer state and the same per-epoch metrics."""
    assert a["global_step"] == b["global_step"] and a["epoch"] == b["epoch"]
    for name, value in a["model"].items():
        assert torch.equal(value, b["model"][name]), name
    for i, slot in a["optimizer"]["state"].items():
        assert torch.equal(slot["momentum_buffer"], b["optimizer"]["state"][i]["momentum_buffer"]), i
    assert a["scheduler"]["last_epoch"] == b["scheduler"]["last_epoch"]
    assert len(a["history"]) == len(b["history"])
    for ra, rb in zip(a["history"], b["history"]):
        for key in ra:
            if key != "seconds":
                assert ra[key] == pytest.approx(rb[key], rel=1e-12), key


# --------------------------------------------------------------------------------------------------
# Kill and resume
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model, method, method_kw, stop_at", [
    ("tiny-cnn", None, {}, 13),                  # mid-epoch (8 steps per epoch): sums and sampler position
    ("tiny-cnn", "versatile", {"delta": 1}, 8),  # exactly at an epoch end
    ("tiny-cnn", "fullstack", {"s": 4}, 5),      # straight-through masks and the ortho penalty
    ("vgg16-bn", None, {}, 11),                  # dropout (torch's generator) and batch-norm running statistics
])
def test_stop_and_resume_continues_exactly_as_the_uninterrupted_run(tmp_path, model, method, method_kw, stop_at):
    kw = {"model": model, "method": method, "method_kw": method_kw,
          "ortho_lambda": 0.1 if method == "fullstack" else None}
    if model == "vgg16-bn":
        kw.update(width=0.03125, image_size=32)  # five 2x2 poolings need 32 pixels
    train(config(tmp_path / "straight", **kw))
    stopped = train(config(tmp_path / "split", max_steps=stop_at, **kw))
    assert not stopped["finished"] and stopped["global_step"] == stop_at
    assert final_state(tmp_path / "split")["global_step"] == stop_at
    resumed = train(config(tmp_path / "split", resume=str(tmp_path / "split" / "checkpoint.pt"), **kw))
    assert resumed["finished"] and len(resumed["epochs"]) == 3
    assert_same_run(final_state(tmp_path / "straight"), final_state(tmp_path / "split"))


def test_resume_from_a_periodic_checkpoint_after_the_run_went_on(tmp_path):
    # --checkpoint-every writes mid-epoch; copy one away, let the run finish, then resume the copy.
    train(config(tmp_path / "straight"))
    partial = config(tmp_path / "split", checkpoint_every=3, max_steps=10)
    train(partial)  # last periodic checkpoint at step 9 is replaced by the stop checkpoint at 10
    assert final_state(tmp_path / "split")["step"] == 2  # 10 = 8 + 2
    train(dataclasses.replace(partial, max_steps=None, resume=str(tmp_path / "split" / "checkpoint.pt")))
    assert_same_run(final_state(tmp_path / "straight"), final_state(tmp_path / "split"))


def test_sigkilled_run_resumes_from_its_last_checkpoint(tmp_path):
    """A real kill -9 at an arbitrary moment (possibly mid-write): the checkpoint left is valid, and resuming
    it reaches the weights of an uninterrupted run."""
    victim_out = tmp_path / "victim"
    argv = ["--model", "tiny-cnn", "--data", "synthetic", "--epochs", "40", "--batch-size", "32",
            "--milestones", "2", "--gamma", "0.5", "--dtype", "float64", "--threads", "1", "--no-progress",
            "--checkpoint-every", "1", "--out", str(victim_out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    victim = subprocess.Popen([sys.executable, "-m", "minilib.training", *argv], env=env, cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        ckpt = victim_out / "checkpoint.pt"
        while not ckpt.exists() and victim.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        first = ckpt.stat().st_mtime_ns if ckpt.exists() else None
        while first is not None and ckpt.stat().st_mtime_ns == first and time.monotonic() < deadline:
            time.sleep(0.005)  # kill after the first overwrite: the run is between two checkpoints
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=30)
    finally:
        if victim.poll() is None:
            victim.kill()
            victim.wait()
    assert victim.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    left = final_state(victim_out)
    assert 2 <= left["global_step"] < 40 * 8
    stop = left["global_step"] + 5
    train(config(victim_out, epochs=40, checkpoint_every=1, max_steps=stop, resume=str(victim_out / "checkpoint.pt")))
    train(config(tmp_path / "straight", epochs=40, checkpoint_every=1, max_steps=stop))
    assert_same_run(final_state(tmp_path / "straight"), final_state(victim_out))


def test_resume_refuses_a_changed_recipe(tmp_path):
    train(config(tmp_path, epochs=1))
    with pytest.raises(ValueError, match=r"lr=0.05 but the checkpoint was trained with lr=0.1"):
        train(config(tmp_path, epochs=2, lr=0.05, resume=str(tmp_path / "checkpoint.pt")))
    with pytest.raises(ValueError, match="--max-steps=3 must be larger than the 8 steps"):
        train(config(tmp_path, epochs=2, max_steps=3, resume=str(tmp_path / "checkpoint.pt")))


# --------------------------------------------------------------------------------------------------
# Checkpoint files
# --------------------------------------------------------------------------------------------------


def test_checkpoint_round_trip_and_every_damage_is_detected(tmp_path):
    path = tmp_path / "c.pt"
    payload = {"w": torch.arange(6.0).reshape(2, 3), "step": 7, "rng": [1, 2]}
    save_checkpoint(path, payload)
    loaded = load_checkpoint(path)
    assert torch.equal(loaded["w"], payload["w"]) and loaded["step"] == 7
    raw = path.read_bytes()

    flipped = bytearray(raw)
    flipped[-20] ^= 0x01
    damaged = {"flipped.pt": (bytes(flipped), "is corrupted: SHA-256"),
               "truncated.pt": (raw[:-100], "is truncated"),
               "not-a-checkpoint.pt": (b"PK\x03\x04" + raw[4:], "is not a minilib checkpoint"),
               "bad-header.pt": (MAGIC + b"{nonsense\n" + raw[len(MAGIC):], "damaged header")}
    for name, (data, rule) in damaged.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(CheckpointError, match=rule) as info:
            load_checkpoint(tmp_path / name)
        assert info.value.path == tmp_path / name and name in str(info.value)
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_checkpoint(tmp_path / "missing.pt")


def test_a_failed_write_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"step": 1})

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space"):
        save_checkpoint(path, {"step": 2})
    monkeypatch.undo()
    assert load_checkpoint(path)["step"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pt"]  # the temporary file is gone


def test_resuming_a_corrupted_checkpoint_fails_naming_it(tmp_path, capsys):
    train(config(tmp_path, epochs=1))
    ckpt = tmp_path / "checkpoint.pt"
    ckpt.write_bytes(ckpt.read_bytes()[:-1])
    code = main(["--model", "tiny-cnn", "--data", "synthetic", "--epochs", "2", "--batch-size", "32",
                 "--resume", str(ckpt), "--out", str(tmp_path), "--no-progress", "--threads", "1"])
    assert code == 2
    assert f"checkpoint {ckpt} is truncated" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------------


def test_metrics_json_records_every_epoch_the_schedule_and_provenance(tmp_path):
    result = train(config(tmp_path, epochs=3, milestones=[1, 2], gamma=0.5, method="fullstack",
                          method_kw={"s": 2}, ortho_lambda=0.1))
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert written["epochs"] == json.loads(json.dumps(result["epochs"]))
    assert [e["lr"] for e in written["epochs"]] == pytest.approx([0.1, 0.05, 0.025])
    assert [e["epoch"] for e in written["epochs"]] == [1, 2, 3]
    for record in written["epochs"]:
        assert set(record) == {"epoch", "lr", "train_loss", "train_accuracy", "test_loss", "test_accuracy",
                               "seconds", "steps", "ortho_penalty"}
        assert 0 <= record["train_accuracy"] <= 1 and record["ortho_penalty"] > 0 and record["seconds"] > 0
    assert written["world_size"] == 1 and written["finished"] and written["global_step"] == 24
    assert written["config"]["method_kw"] == {"s": 2} and written["seed"] == 0
    assert {"command", "date", "git_revision"} <= set(written)


def test_limit_takes_an_evenly_spaced_subset_so_class_sorted_data_keeps_every_class():
    from minilib.training.data import evenly_spaced, load_data

    assert evenly_spaced(10, None).tolist() == list(range(10)) and evenly_spaced(10, 50).tolist() == list(range(10))
    assert evenly_spaced(100, 5).tolist() == [0, 25, 50, 74, 99]
    labels = np.repeat(np.arange(4), 25)  # sorted by class, like CIFAR-10's test split
    assert set(labels[evenly_spaced(100, 8)]) == {0, 1, 2, 3}
    data = load_data(TrainConfig(model="tiny-cnn", data="synthetic", limit=20))
    assert len(data.train) == 20 and len(data.test) == 20


def test_training_learns_the_synthetic_task(tmp_path):
    # Not a benchmark: a guard that the loop optimises at all (loss falls, accuracy leaves chance = 0.25).
    result = train(config(tmp_path, epochs=8, batch_size=16, lr=0.05, milestones=[], augment=False))
    first, last = result["epochs"][0], result["epochs"][-1]
    assert last["train_loss"] < first["train_loss"] - 0.2
    assert last["test_accuracy"] > 0.5


# --------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------


def test_help_lists_presets_and_models(capsys):
    with pytest.raises(SystemExit) as info:
        parse_args(["--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    assert all(name in text for name in PRESETS) and all(name in text for name in MODELS)
    assert "torchrun --nproc_per_node" in text and "GLOBAL batch" in text


@pytest.mark.parametrize("argv, message", [
    (["--data", "synthetic"], "argument --model: required unless --preset"),
    (["--model", "tiny-cnn"], "argument --data: required"),
    (["--model", "nope", "--data", "synthetic"], "argument --model: invalid choice: 'nope'"),
    (["--model", "tiny-cnn", "--data", "no/such/folder"], "'no/such/folder' is neither cifar10, mnist, synthetic"),
    (["--model", "tiny-cnn", "--data", "synthetic", "--batch-size", "0"], "--batch-size: must be a positive int"),
    (["--model", "tiny-cnn", "--data", "synthetic", "--lr", "-1"], "--lr: must be a positive float"),
    (["--model", "tiny-cnn", "--data", "synthetic", "--lr", "nan"], "--lr: must be a positive float"),
    (["--model", "tiny-cnn", "--data", "synthetic", "--epochs", "two"], "--epochs: must be a positive int"),
    (["--model", "tiny-cnn", "--data", "synthetic", "--method", "magic"], "--method: invalid choice"),
    (["--model", "tiny-cnn", "--data", "synthetic", "--method", "versatile", "--method-kw", "delta"],
     "--method-kw: --method-kw 'delta' must be KEY=VALUE"),
    (["--model", "tiny-cnn", "--data", "synthetic", "--method", "versatile", "--method-kw", "dtype=1"],
     "is set by the trainer"),
    (["--model", "tiny-cnn", "--data", "synthetic", "--method-kw", "s=4"], "--method-kw: needs --method"),
    (["--model", "tiny-cnn", "--data", "synthetic", "--ortho-lambda", "0.1"], "only applies to --method fullstack"),
    (["--model", "tiny-cnn", "--data", "synthetic", "--epochs", "5", "--milestones", "9"],
     "--milestones: [9] must not exceed --epochs=5"),
    (["--model", "tiny-cnn", "--data", "synthetic", "--resume", "gone.pt"], "--resume: checkpoint 'gone.pt' not found"),
    (["--preset", "fast"], "--preset: invalid choice: 'fast'"),
    (["--preset", "versatile-imagenet"], "preset versatile-imagenet trains on an ImageNet-style folder"),
    (["--model", "tiny-cnn", "--data", "synthetic", "--threads", "0"], "--threads: must be a positive int"),
])
def test_bad_arguments_exit_naming_the_argument_and_rule(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        parse_args(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("extra, message", [
    (["--batch-size", "1000"], "batch size 1000 is larger than the training set (256 examples)"),
    (["--method", "versatile", "--method-kw", "delta=5"], "cannot convert layer 'conv1'"),
    (["--method", "basis", "--method-kw", "n_basis=4"], "give exactly one of basis_channels"),
    (["--method", "fullstack", "--method-kw", "s=4", "--exclude", "conv9"], "exclude=['conv9'] names no nn.Conv2d"),
])
def test_settings_that_fail_at_build_time_exit_with_one_line(tmp_path, extra, message, capsys):
    code = main(["--model", "tiny-cnn", "--data", "synthetic", "--threads", "1", "--no-progress",
                 "--out", str(tmp_path), *extra])
    assert code == 2
    err = capsys.readouterr().err
    assert "error:" in err and message in err


def test_flags_override_the_preset_and_the_preset_fills_the_rest(tmp_path):
    (tmp_path / "train" / "a").mkdir(parents=True)
    args = parse_args(["--preset", "versatile-imagenet", "--data", str(tmp_path), "--epochs", "3",
                       "--milestones", "1", "2"])
    recipe = PRESETS["versatile-imagenet"]
    assert (args.epochs, args.milestones) == (3, [1, 2])
    assert (args.model, args.batch_size, args.lr, args.momentum, args.weight_decay, args.image_size) == \
           ("resnet50", recipe.batch_size, recipe.lr, recipe.momentum, recipe.weight_decay, 224)
    basis = parse_args(["--preset", "basis-cifar10-vgg16", "--method", "basis"])
    assert (basis.model, basis.data, basis.epochs, basis.milestones, basis.weight_decay, basis.batch_size) == \
           ("cifar-vgg16", "cifar10", 300, [150, 225], 5e-4, 128)
    fullstack = parse_args(["--model", "tiny-cnn", "--data", "synthetic", "--method", "fullstack"])
    assert fullstack.ortho_lambda == 0.1 and fullstack.out == str(Path("runs") / "tiny-cnn-fullstack-synthetic")


def test_versatile_preset_matches_the_released_schedule():
    # The released script: lr = 0.1 * 0.1 ** (epoch // 40) over 130 epochs; MultiStepLR at 40, 80, 120 is the same.
    recipe = PRESETS["versatile-imagenet"]
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=recipe.lr)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, list(recipe.milestones), recipe.gamma)
    for epoch in range(recipe.epochs):
        assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1 * 0.1 ** (epoch // 40), rel=1e-12), epoch
        optimizer.step()
        scheduler.step()


# --------------------------------------------------------------------------------------------------
# Model zoo
# --------------------------------------------------------------------------------------------------


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_full_size_models_have_the_standard_parameter_counts():
    with torch.device("meta"):  # shapes only: no memory, no initialisation cost
        assert count(build_model("resnet50", num_classes=1000)) == 25_557_032   # torchvision resnet50
        assert count(build_model("vgg16", num_classes=1000)) == 138_357_544     # torchvision vgg16
        # Versatile v2-ResNet-50 (delta = c - ĉ = 1, g = 1): the paper's Table 4 lists 1.1 x 10^7 weights
        v2 = count(build_model("resnet50", num_classes=1000, method="versatile", method_kw={"delta": 1, "g": 1}))
    assert round(v2 / 1e7, 1) == 1.1


@pytest.mark.parametrize("name, size", [("resnet50", 32), ("vgg16", 32), ("vgg16-bn", 32), ("cifar-vgg16", 32),
                                        ("tiny-cnn", 8)])
@pytest.mark.parametrize("method, method_kw, twin", [
    (None, {}, nn.Conv2d), ("versatile", {"delta": 1}, VersatileConv2d), ("fullstack", {"s": 2}, FullStackConv2d),
    ("basis", {"basis_ratio": 0.5, "splits": 2}, BasisConv2d)])
def test_every_model_builds_tiny_converts_and_runs(name, size, method, method_kw, twin):
    torch.manual_seed(0)
    width = 1.0 if name == "tiny-cnn" else 0.125  # ResNet-50's stem: 8 channels, divisible by s*n = 4*2
    model = build_model(name, num_classes=5, width=width, method=method, method_kw=method_kw)
    out = model(torch.randn(2, 3, size, size))
    assert out.shape == (2, 5)
    kept = set(default_exclude(build_model(name, num_classes=5, width=width), name, method)) if method else set()
    for layer_name, layer in model.named_modules():
        if layer_name in kept:
            assert type(layer) is nn.Conv2d, layer_name
        elif isinstance(layer, (nn.Conv2d, VersatileConv2d, FullStackConv2d, BasisConv2d)):
            assert isinstance(layer, twin), layer_name


def test_default_exclusions_follow_the_papers():
    vgg = build_model("vgg16", num_classes=3, width=0.0625)
    assert default_exclude(vgg, "vgg16", "versatile") == ("fc7",)      # released vcnn.py: fc7 is nn.Linear
    assert default_exclude(vgg, "vgg16", "fullstack") == ()            # MVNet: all but the last FC
    assert default_exclude(vgg, "vgg16", "basis") == ("features.0",)
    cifar = build_model("cifar-vgg16", num_classes=3, width=0.0625)
    assert default_exclude(cifar, "cifar-vgg16", "basis") == ("features.0", "features.3", "features.7")
    with pytest.raises(ValueError, match="width=0 must be a positive number"):
        build_model("resnet50", num_classes=3, width=0)
    with pytest.raises(ValueError, match="model='resnet18' is not known"):
        build_model("resnet18", num_classes=3)


@pytest.mark.parametrize("method, method_kw, twin", [
    (None, {}, nn.Conv2d), ("versatile", {"delta": 1}, VersatileConv2d), ("fullstack", {"s": 2}, FullStackConv2d),
    ("basis", {"n_basis": [4, 8, 16], "splits": 1}, BasisConv2d)])  # the released ResNet-56 form: m per stage
def test_cifar_resnet_converts_its_blocks_keeps_its_stem_and_follows_torch_seed(method, method_kw, twin):
    builds = []
    for _ in range(2):
        torch.manual_seed(0)
        builds.append(build_model("cifar-resnet20", num_classes=5, width=0.5, method=method, method_kw=method_kw))
    model = builds[0]
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), builds[1].state_dict().values()))
    assert model(torch.randn(2, 3, 16, 16)).shape == (2, 5)
    assert type(model.stem) is nn.Conv2d
    assert model.block_convs() and all(isinstance(conv, twin) for _, conv in model.block_convs())


def test_cifar_resnet_with_a_shared_basis_trains_through_the_trainer(tmp_path):
    result = train(config(tmp_path, model="cifar-resnet20", width=0.25, epochs=1, batch_size=64, method="basis",
                          method_kw={"n_basis": [2, 4, 8], "splits": 1}))
    assert result["finished"] and result["parameters"] < 10_000
