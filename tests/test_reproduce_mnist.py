"""The MNIST reproduction command (``python -m minilib.reproduce mnist``) and the results it writes.

Quick runs (``--quick``: 1024 training images, one epoch) take seconds in a subprocess: the JSON
must have the complete schema, the loss must fall, a second call must skip finished runs, and
NumPy-backend runs must track their torch twins (same seed: same initial weights, same batches).
Every file committed under ``results/mnist/`` must have the same schema, and its weights,
memory and FLOPs must equal :func:`minilib.accounting.summarize` of the model it names, so the
results cannot drift from the code (with no committed file the check passes vacuously).
"""
from __future__ import annotations

import math
import subprocess
from pathlib import Path

import numpy as np
import pytest
import reproduce_helpers
from reproduce_helpers import load_checked

from minilib.accounting import summarize
from minilib.models import VARIANTS, lenet
from minilib.reproduce import mnist
from minilib.reproduce.__main__ import main as reproduce_main
from minilib.results import RESULTS_DIR

TOP_KEYS = {"command", "seed", "date", "git_revision", "experiment", "run", "model", "backend", "epochs", "lam",
            "quick", "recipe", "data", "history", "initial", "test_loss", "test_accuracy", "best_val_accuracy",
            "best_epoch", "last_val_accuracy", "cost", "paper_strings", "wall_seconds", "epoch_seconds", "threads",
            "versions"}
COST_KEYS = {"conv_weights", "mask_bits", "params", "params_32bit", "memory_kb", "flops"}
FULL_DATA = {"train": 50_000, "val": 10_000, "test": 10_000}



def check_schema(result: dict, path: Path) -> None:
    """Every key the notebooks read, with consistent values; ``path`` is the file the result came from."""
    assert TOP_KEYS <= result.keys(), f"{path.name}: missing {sorted(TOP_KEYS - result.keys())}"
    assert result["experiment"] == "mnist" and result["model"] in VARIANTS
    assert result["backend"] in mnist.BACKENDS
    stem = result["run"].removesuffix("-numpy") if result["backend"] == "numpy" else result["run"]
    run = mnist.parse_run(stem, result["backend"])
    assert run.name == result["run"] and run.model == result["model"]
    assert path.name == f"{result['run']}_seed{result['seed']}.json"
    assert result["lam"] == run.penalty_lam
    assert result["epochs"] == (1 if result["quick"] else run.n_epochs)
    assert result["command"].startswith("python -m minilib.reproduce mnist")
    assert isinstance(result["date"], str) and isinstance(result["git_revision"], str) and result["git_revision"]
    # files written before the two penalty scales were run side by side lack "penalty": they used Eq. 7
    assert mnist.RECIPE.keys() - {"penalty"} <= result["recipe"].keys()
    assert result["recipe"].get("penalty", "eq7") == run.penalty
    assert result.get("penalty", run.penalty if run.penalty_lam is not None else None) == (
        run.penalty if run.penalty_lam is not None else None)
    assert result.get("mask_weight_decay", True) == run.mask_weight_decay
    assert result["recipe"]["epochs"] == result["epochs"] and result["recipe"]["lam"] == result["lam"]
    expected = mnist.QUICK_SIZES if result["quick"] else FULL_DATA
    assert {key: result["data"][key] for key in expected} == expected

    history, epochs = result["history"], result["epochs"]
    diverged = result.get("diverged")       # files written before runs could diverge lack the key
    if diverged:
        check_diverged(result, diverged)
        return
    assert set(mnist.HISTORY_KEYS) <= history.keys()
    assert all(len(history[key]) == epochs for key in mnist.HISTORY_KEYS), "one history entry per epoch"
    assert history["epoch"] == list(range(1, epochs + 1))
    assert history["lr"][0] == result["recipe"]["lr"]
    assert all((value is None) == (result["lam"] is None) for value in history["penalty"])
    for value in [*history["train_accuracy"], *history["val_accuracy"], result["test_accuracy"]]:
        assert 0.0 <= value <= 1.0
    assert all(math.isfinite(value) for value in [*history["train_loss"], *history["val_loss"], result["test_loss"]])
    assert result["best_val_accuracy"] == max(history["val_accuracy"])
    assert history["val_accuracy"][history["epoch"].index(result["best_epoch"])] == result["best_val_accuracy"]
    assert result["last_val_accuracy"] == history["val_accuracy"][-1]
    assert {"val_loss", "val_accuracy"} <= result["initial"].keys()

    assert result["cost"].keys() == COST_KEYS
    assert result["wall_seconds"] > 0 and result["epoch_seconds"] > 0 and all(s > 0 for s in history["seconds"])
    assert result["versions"]["numpy"] and result["versions"]["python"]
    if result["backend"] == "torch":
        assert result["versions"]["torch"] and result["threads"] >= 1


def check_diverged(result: dict, diverged: dict) -> None:
    """A diverged run: the epochs before the divergence in full and finite, no test numbers."""
    history = result["history"]
    assert 1 <= diverged["epoch"] <= result["epochs"] and 1 <= diverged["batch"] <= diverged["batches_per_epoch"]
    assert all(len(history[key]) == diverged["epoch"] - 1 for key in mnist.HISTORY_KEYS)
    assert all(math.isfinite(value) for value in [*history["train_loss"], *history["val_loss"]])
    assert result["test_accuracy"] is None and result["test_loss"] is None
    assert result["best_val_accuracy"] == (max(history["val_accuracy"]) if history["val_accuracy"] else None)


def check_cost(result: dict) -> None:
    """The stored weights / mask bits / parameters / memory / FLOPs are those of the named model today."""
    summary = summarize(lenet(result["model"], rng=np.random.default_rng(0)), (1, 28, 28))
    cost = result["cost"]
    for key in ("conv_weights", "mask_bits", "params", "flops"):
        assert cost[key] == getattr(summary, key), f"{result['run']}: {key} {cost[key]} != {getattr(summary, key)}"
    assert cost["memory_kb"] == pytest.approx(summary.memory_kb, rel=1e-12)
    assert cost["params_32bit"] == pytest.approx(summary.params_32bit, rel=1e-12)
    assert result["paper_strings"] == summary.paper_strings()


def load(path: Path) -> dict:
    return load_checked(path, check_schema, check_cost)


def run_command(*args, cwd) -> subprocess.CompletedProcess:
    return reproduce_helpers.run_command("mnist", *args, cwd=cwd, timeout=600)


# ----------------------------------------------------------------------------- names and the plan
def test_run_names_round_trip_and_fill_in_the_recipe():
    run = mnist.parse_run("mvnet-a-10-lam0.01-e5")
    assert (run.model, run.lam, run.epochs, run.penalty_lam, run.n_epochs) == ("mvnet-a-10", 0.01, 5, 0.01, 5)
    assert mnist.parse_run("versatile-v2-1") == mnist.Run("versatile-v2-1")
    assert mnist.Run("mvnet-a-10").penalty_lam == mnist.RECIPE["lam"]
    assert mnist.Run("mvnet-b-rand-20").penalty_lam is None and mnist.Run("baseline").penalty_lam is None
    assert mnist.Run("baseline", backend="numpy").name == "baseline-numpy"
    for backend in mnist.BACKENDS:
        for run in mnist.default_runs(backend):
            stem = run.name.removesuffix("-numpy")
            assert mnist.parse_run(stem, backend) == run


def test_penalty_scale_and_mask_decay_are_in_the_name():
    run = mnist.parse_run("mvnet-b-20-released-lam0.01-e5-nomaskwd")
    assert (run.model, run.penalty, run.lam, run.epochs, run.mask_weight_decay) == ("mvnet-b-20", "released", 0.01,
                                                                                    5, False)
    assert run.name == "mvnet-b-20-released-lam0.01-e5-nomaskwd" and run.released_penalty
    assert mnist.parse_run("mvnet-a-20") == mnist.Run("mvnet-a-20", penalty="eq7", mask_weight_decay=True)


@pytest.mark.parametrize("name", ["lenet", "baseline-lam0.1", "mvnet-a-rand-20-lam1", "mvnet-a-10-e0", "mvnet-a-7",
                                  "baseline-released", "mvnet-a-rand-20-nomaskwd", "mvnet-a-10-nomaskwd-released"])
def test_bad_run_names_are_refused(name):
    with pytest.raises(ValueError, match="baseline|lam|epochs|variant|masks"):
        mnist.parse_run(name)


def test_mask_decay_is_torch_only_and_a_bad_penalty_is_named():
    with pytest.raises(ValueError, match="backend='torch' only"):
        mnist.Run("mvnet-a-20", mask_weight_decay=False, backend="numpy")
    with pytest.raises(ValueError, match="penalty='eq8'"):
        mnist.Run("mvnet-a-20", penalty="eq8")


def test_overrides_rename_only_what_they_change():
    assert mnist.Run("baseline").with_overrides(epochs=mnist.RECIPE["epochs"]).name == "baseline"
    assert mnist.Run("baseline").with_overrides(epochs=3, lam=1.0).name == "baseline-e3"
    assert mnist.Run("mvnet-a-10").with_overrides(lam=mnist.RECIPE["lam"]).name == "mvnet-a-10"
    assert mnist.Run("mvnet-a-10").with_overrides(lam=1.0).name == "mvnet-a-10-lam1"


def test_default_plan_has_every_paper_run_and_its_seeds():
    plan = {run.name: seeds for run, seeds in mnist.default_plan()}
    for name in mnist.TABLE_RUNS:
        assert plan[name] == ((0, 1, 2) if name in mnist.THREE_SEEDS else (0,))
    for name in mnist.MVNET_TABLE:                      # Table 1 under both penalty scales, three seeds each
        assert plan[name] == plan[f"{name}-released"] == (0, 1, 2)
    assert plan["mvnet-a-rand-20"] == plan["mvnet-b-rand-20"] == (0, 1, 2)
    assert plan[f"mvnet-b-20-{mnist.RECOMMENDED_PENALTY}-nomaskwd"] == (0, 1, 2)
    for penalty in ("", "-released"):                   # Fig. 2(a): three seeds from s = 20 on
        assert [plan[f"mvnet-a-{s}{penalty}"] for s in mnist.FIG2A_S] == [(0,), (0,), (0, 1, 2), (0, 1, 2), (0, 1, 2)]
    sweep = [name for name in plan if "-lam" in name and name.endswith(f"-e{mnist.FIG2B_EPOCHS}")]
    assert len(sweep) == len(mnist.FIG2B_S) * len(mnist.FIG2B_LAMBDAS) == 15
    assert all(plan[name] == (0, 1, 2) for name in sweep)
    assert plan["mvnet-a-50-lam8e-05"] == (0,)         # Eq. 7 at the released scale's λ for s = 50
    assert sum(len(seeds) for seeds in plan.values()) == 105
    numpy_plan = {run.name: seeds for run, seeds in mnist.default_plan("numpy")}
    assert numpy_plan == {"baseline-numpy": (0,), "versatile-3-numpy": (0,)}


def test_released_runs_train_with_the_released_penalty(monkeypatch):
    """A -released run hands released=True to the penalty, which for shared masks is 2/s^2 times Eq. 7; a
    -nomaskwd run puts exactly the mask latents in a group without weight decay."""
    import torch

    from minilib.torch import ortho_loss, ortho_loss_released
    latent = torch.from_numpy(np.random.default_rng(0).uniform(-1, 1, (50, 1, 5, 5)))
    assert float(2 / 50 ** 2 * ortho_loss(latent)) == pytest.approx(float(ortho_loss_released(latent)), rel=1e-12)
    lam = mnist.released_lam(50)
    assert lam == 8e-05 and float(lam * ortho_loss(latent)) == pytest.approx(float(0.1 * ortho_loss_released(latent)))

    seen = []
    monkeypatch.setattr("minilib.training.loop.ortho_penalty", lambda model, lam, released=False:
                        seen.append(released) or torch.zeros(()))
    recipe = mnist.loop_recipe(0.1, released=True, mask_weight_decay=False)
    assert (recipe.penalty_scale, recipe.mask_weight_decay, recipe.on_nonfinite) == ("released", False, "record")
    splits = mnist.load_splits(quick=True)
    splits = {**splits, **{key: tuple(a[:64] for a in splits[key]) for key in ("train", "val", "test")}}
    mnist.train_torch(mnist.parse_run("mvnet-b-20-released-nomaskwd"), 0, splits, epochs=1)
    assert seen and all(seen)


def test_list_shows_the_plan_and_a_bad_name_exits_2(tmp_path, capsys):
    assert reproduce_main(["mnist", "--list", "--runs", "baseline", "mvnet-a-5", "--out-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "todo  baseline" in out and "seed 2" in out and "mvnet-a-5" in out and "0 of 4 done" in out
    assert reproduce_main(["mnist", "--runs", "lenet-9", "--out-dir", str(tmp_path)]) == 2
    assert "lenet-9" in capsys.readouterr().err


# ----------------------------------------------------------------------------- quick runs of the command
def test_quick_torch_runs_write_the_schema_and_learn_then_skip(tmp_path):
    pytest.importorskip("torch")
    names = ["baseline", "mvnet-a-10", "mvnet-b-rand-20"]
    proc = run_command("--quick", "--runs", *names, "--seeds", "0", "--out-dir", str(tmp_path), cwd=tmp_path)
    assert "test accuracy" in proc.stdout
    for name in names:
        result = load(tmp_path / f"{name}_seed0.json")
        assert result["quick"] is True and result["backend"] == "torch" and "--quick" in result["command"]
        assert result["data"]["variant"] == "sample"        # quick runs read the embedded sample: no data needed
        assert result["history"]["val_loss"][-1] < result["initial"]["val_loss"], "the loss must fall"
        assert result["history"]["train_loss"][-1] < math.log(10)
        assert result["test_accuracy"] > 0.3
    assert mnist.Run("mvnet-a-10").penalty_lam == load(tmp_path / "mvnet-a-10_seed0.json")["lam"] == 0.1

    before = {path: path.read_bytes() for path in tmp_path.glob("*.json")}
    again = run_command("--quick", "--runs", *names, "--seeds", "0", "--out-dir", str(tmp_path), cwd=tmp_path)
    assert again.stdout.count("skip") == len(names)
    assert {path: path.read_bytes() for path in tmp_path.glob("*.json")} == before


def test_quick_numpy_runs_track_their_torch_twins(tmp_path):
    pytest.importorskip("torch")
    names = ["versatile-3", "mvnet-a-10"]
    run_command("--quick", "--backend", "numpy", "--runs", *names, "--out-dir", str(tmp_path), cwd=tmp_path)
    run_command("--quick", "--runs", *names, "--out-dir", str(tmp_path), cwd=tmp_path)
    for name in names:
        numpy_result, torch_result = load(tmp_path / f"{name}-numpy_seed0.json"), load(tmp_path / f"{name}_seed0.json")
        assert numpy_result["backend"] == "numpy" and numpy_result["run"] == f"{name}-numpy"
        assert numpy_result["history"]["val_loss"][-1] < numpy_result["initial"]["val_loss"], "the loss must fall"
        # same seed: same initial weights and the same mini-batches; only float32 rounding differs
        assert numpy_result["initial"]["val_loss"] == pytest.approx(torch_result["initial"]["val_loss"], rel=1e-5)
        numpy_history, torch_history = numpy_result["history"], torch_result["history"]
        assert numpy_history["train_loss"] == pytest.approx(torch_history["train_loss"], rel=1e-4)
        if numpy_result["lam"] is not None:
            assert numpy_history["penalty"] == pytest.approx(torch_history["penalty"], rel=1e-4)
        assert numpy_result["test_accuracy"] == pytest.approx(torch_result["test_accuracy"], abs=0.01)


# ----------------------------------------------------------------------------- committed results
def test_committed_results_have_the_schema_and_the_codes_costs():
    paths = sorted((RESULTS_DIR / "mnist").glob("*.json"))
    for path in paths:
        result = load(path)
        assert result["quick"] is False, f"{path.name} is a --quick smoke run; it does not belong in results/"


def test_a_diverging_numpy_run_is_recorded_as_a_torch_run_is(monkeypatch):
    """minilib.train.fit raises Diverged where the loss stops being finite; train_numpy records the run as the torch
    loop's on_nonfinite="record" does: where, the epochs before, no test evaluation."""
    import minilib.optim

    class Poisoned(minilib.optim.CosineLR):
        """After epoch 1 the rate is NaN: the first update of epoch 2 makes every weight NaN, so its batch 2 diverges."""

        def step(self):
            super().step()
            self.optimizer.lr = math.nan

    monkeypatch.setattr(minilib.optim, "CosineLR", Poisoned)
    splits = mnist.load_splits(quick=True)
    run = mnist.Run("baseline", backend="numpy")
    payload = mnist.train_run(run, 0, splits)
    batches = -(-len(splits["train"][0]) // mnist.RECIPE["batch_size"])
    assert payload["diverged"] == {"epoch": 2, "batch": 2, "batches_per_epoch": batches}
    check_diverged(payload, payload["diverged"])
    assert payload["history"]["epoch"] == [1] and payload["history"]["lr"] == [mnist.RECIPE["lr"]]
    assert mnist.describe(payload).startswith("diverged at epoch 2, mini-batch 2")
