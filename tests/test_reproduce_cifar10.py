"""The CIFAR-10 reproduction command (``python -m minilib.reproduce cifar10``), its data pipeline, the latency
helpers of :mod:`minilib.timing` and :mod:`minilib.training.timing`, and the results the command writes.

One ``--quick`` run in a subprocess (512 training images, one epoch) must write the complete schema and
learn, and a second call must skip it. Every file committed under ``results/cifar10/`` must have the
schema, and its parameters / FLOPs must equal those of the model it names built today, so the results
cannot drift from the code (with no committed file the check passes vacuously). Latency tests check
keys and signs only: speed is never asserted.
"""
from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import numpy as np
import pytest
from data_full import needs_data

torch = pytest.importorskip("torch")

import reproduce_helpers
from reproduce_helpers import load_checked

from minilib.basis import optimal_splits
from minilib.reproduce import cifar10
from minilib.reproduce.__main__ import main as reproduce_main
from minilib.results import RESULTS_DIR
from minilib.timing import median_seconds, numpy_layer_latency
from minilib.torch.to_numpy import numpy_twin
from minilib.training.timing import torch_model_latency
from minilib.torch import BasisConv2d, FullStackConv2d, SharedBasis, VersatileConv2d

TOP_KEYS = {"command", "seed", "date", "git_revision", "experiment", "run", "model", "method", "architecture",
            "epochs", "lam", "quick", "recipe", "data", "history", "initial", "test_loss", "test_accuracy",
            "best_val_accuracy", "best_epoch", "last_val_accuracy", "cost", "compression", "latency",
            "wall_seconds", "train_seconds", "epoch_seconds", "threads", "versions"}
COST_KEYS = {"conv_weights", "mask_bits", "params", "memory_kb", "flops", "params_32bit", "converted_conv_weights",
             "converted_mask_bits", "converted_params", "converted_flops"}
COMPRESSION_KEYS = {"params", "params_32bit", "converted_params", "converted_params_32bit", "flops",
                    "converted_flops"}
FULL_DATA = {"train": cifar10.N_TRAIN, "val": cifar10.N_VAL, "test": 10_000}

needs_cifar = needs_data("cifar10/cifar10_test.npz", "JPEG-decoded CIFAR-10 copy")


def check_schema(result: dict, path: Path) -> None:
    """Every key the notebooks read, with consistent values; ``path`` is the file the result came from."""
    assert TOP_KEYS <= result.keys(), f"{path.name}: missing {sorted(TOP_KEYS - result.keys())}"
    run = cifar10.parse_run(result["run"])
    assert result["experiment"] == "cifar10" and run.name == result["run"] and run.model == result["model"]
    assert path.name == f"{result['run']}_seed{result['seed']}.json"
    spec = cifar10.RUNS[result["model"]]
    assert result["method"] == spec["method"]
    assert result["architecture"] == json.loads(json.dumps({**cifar10.ARCHITECTURE, **spec}))
    assert result["lam"] == run.penalty_lam
    assert result["epochs"] == (1 if result["quick"] else run.n_epochs)
    assert result["command"].startswith("python -m minilib.reproduce cifar10")
    assert isinstance(result["date"], str) and isinstance(result["git_revision"], str) and result["git_revision"]
    assert cifar10.RECIPE.keys() <= result["recipe"].keys()
    assert result["recipe"]["epochs"] == result["epochs"] and result["recipe"]["lam"] == result["lam"]

    data = result["data"]
    expected = cifar10.QUICK_SIZES if result["quick"] else FULL_DATA
    assert {key: data[key] for key in expected} == expected
    assert data["jpeg_decoded"] is True and "JPEG" in data["note"] and "JPEG" in result["recipe"]["data"]
    assert len(data["train_subset_mean"]) == len(data["train_subset_std"]) == 3

    history, epochs = result["history"], result["epochs"]
    assert set(cifar10.HISTORY_KEYS) <= history.keys()
    assert all(len(history[key]) == epochs for key in cifar10.HISTORY_KEYS), "one history entry per epoch"
    assert history["epoch"] == list(range(1, epochs + 1))
    assert history["lr"][0] == result["recipe"]["lr"]
    batches = math.ceil(data["train"] / result["recipe"]["batch_size"])
    assert all(len(losses) == batches for losses in history["batch_losses"])
    assert all((value is None) == (result["lam"] is None) for value in history["penalty"])
    for value in [*history["train_accuracy"], *history["val_accuracy"], result["test_accuracy"]]:
        assert 0.0 <= value <= 1.0
    assert all(math.isfinite(v) for v in [*history["train_loss"], *history["val_loss"], result["test_loss"]])
    assert result["best_val_accuracy"] == max(history["val_accuracy"])
    assert result["last_val_accuracy"] == history["val_accuracy"][-1]
    assert {"val_loss", "val_accuracy"} <= result["initial"].keys()

    assert result["cost"].keys() == COST_KEYS and result["compression"].keys() == COMPRESSION_KEYS
    latency = result["latency"]
    for batch in (1, 128):
        assert latency["torch"][f"batch_{batch}"]["median_seconds"] > 0
    assert latency["torch"]["threads"] >= 1
    layer = latency["numpy_layer"]
    assert layer["name"] == cifar10.LATENCY_LAYER and layer["ratio"] > 0
    width = 2 * cifar10.ARCHITECTURE["width"]
    assert layer["input_shape"] == [cifar10.LATENCY_NUMPY_BATCH, width, 16, 16] == layer["output_shape"]
    assert result["wall_seconds"] >= result["train_seconds"] > 0 and result["epoch_seconds"] > 0
    assert result["versions"]["torch"] and result["versions"]["numpy"] and result["threads"] >= 1


def check_cost(result: dict) -> None:
    """The stored parameters, mask bits and FLOPs are those of the named model built today."""
    cost = cifar10.model_cost(cifar10.build_model(result["model"], np.random.default_rng(0)))
    for key in COST_KEYS - {"memory_kb", "params_32bit"}:
        assert result["cost"][key] == cost[key], f"{result['run']}: {key} {result['cost'][key]} != {cost[key]}"
    assert result["cost"]["memory_kb"] == pytest.approx(cost["memory_kb"], rel=1e-12)
    assert result["cost"]["params_32bit"] == pytest.approx(cost["params_32bit"], rel=1e-12)
    compression = cifar10.compression(cost)
    assert result["compression"] == pytest.approx(compression, rel=1e-12)


def load(path: Path) -> dict:
    return load_checked(path, check_schema, check_cost)


def run_command(*args, cwd) -> subprocess.CompletedProcess:
    return reproduce_helpers.run_command("cifar10", *args, cwd=cwd, timeout=600)


# ----------------------------------------------------------------------------- names, the plan, the models
def test_run_names_round_trip_and_fill_in_the_recipe():
    assert cifar10.parse_run("basis-split-e3") == cifar10.Run("basis-split", epochs=3)
    assert cifar10.parse_run("mvnet-b-4") == cifar10.Run("mvnet-b-4")
    assert cifar10.Run("mvnet-b-4").penalty_lam == cifar10.LAM == 0.1
    assert all(cifar10.Run(name).penalty_lam is None for name in cifar10.RUNS if name != "mvnet-b-4")
    assert cifar10.Run("baseline").with_epochs(cifar10.RECIPE["epochs"]).name == "baseline"
    assert cifar10.Run("baseline").with_epochs(2).name == "baseline-e2"
    plan = cifar10.make_plan()
    assert [run.name for run, _ in plan] == list(cifar10.RUNS) and all(seeds == (0,) for _, seeds in plan)
    assert [run.name for run, _ in cifar10.make_plan(["versatile", "versatile"], (1, 2), 3)] == ["versatile-e3"]


@pytest.mark.parametrize("name", ["resnet", "baseline-lam0.1", "versatile-e0", "mvnet-b-8"])
def test_bad_run_names_are_refused(name):
    with pytest.raises(ValueError, match="run|epochs"):
        cifar10.parse_run(name)


def test_list_shows_the_plan_and_a_bad_name_exits_2(tmp_path, capsys):
    assert reproduce_main(["cifar10", "--list", "--out-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert all(f"todo  {name} seed 0" in out for name in cifar10.RUNS) and "0 of 5 done" in out
    assert reproduce_main(["cifar10", "--runs", "resnet-56", "--out-dir", str(tmp_path)]) == 2
    assert "resnet-56" in capsys.readouterr().err


def test_runs_compress_as_documented():
    """The split-wise run uses Eq. 7's s in every stage; every method stores fewer parameters than the baseline."""
    assert [optimal_splits(w, w, 3) for w in (16, 32, 64)] == [cifar10.RUNS["basis-split"]["splits"]] * 3
    base = cifar10.baseline_cost()
    assert base["params"] == 269_722
    rates = {name: cifar10.compression(cifar10.model_cost(cifar10.build_model(name, np.random.default_rng(0))))
             for name in cifar10.RUNS}
    assert rates["baseline"] == pytest.approx(dict.fromkeys(rates["baseline"], 1.0))
    assert rates["versatile"]["converted_params"] == pytest.approx(0.5)             # P = n/2 primaries
    assert rates["mvnet-b-4"]["converted_params"] == pytest.approx(0.25)            # k = n/4 full-stack filters
    assert rates["mvnet-b-4"]["converted_flops"] == pytest.approx(0.25)             # Eq. 14: s-fold fewer MULs
    assert all(rate["params"] < 0.6 for name, rate in rates.items() if name != "baseline")


# ----------------------------------------------------------------------------- data pipeline
def test_random_crop_flip_takes_a_window_of_the_padded_image():
    rng = np.random.default_rng(0)
    images = rng.integers(1, 256, size=(64, 3, 8, 8), dtype=np.uint8)      # no zeros: padding shows as 0
    out = cifar10.random_crop_flip(images, np.random.default_rng(1), padding=2)
    assert out.shape == images.shape and out.dtype == np.uint8
    padded = np.pad(images, ((0, 0), (0, 0), (2, 2), (2, 2)))
    flips = 0
    for image, crop in zip(padded, out):
        windows = [(image[:, dy:dy + 8, dx:dx + 8], flip) for dy in range(5) for dx in range(5) for flip in (0, 1)]
        matches = [flip for window, flip in windows if np.array_equal(window[..., ::-1] if flip else window, crop)]
        assert matches, "every output is a (possibly flipped) window of the zero-padded image"
        flips += matches[0]
    assert 16 < flips < 48, "about half the images are flipped"
    again = cifar10.random_crop_flip(images, np.random.default_rng(1), padding=2)
    assert np.array_equal(out, again)


def test_stratified_test_subset_takes_every_class_equally():
    labels = np.repeat(np.arange(10), 100)                                  # sorted by class, as the stored test set
    chosen = cifar10.stratified_indices(labels, 7, np.random.default_rng(0))
    assert np.array_equal(np.bincount(labels[chosen]), np.full(10, 7)) and len(set(chosen)) == 70


def test_normalize_uses_the_recipe_constants():
    images = np.full((1, 3, 2, 2), 128, dtype=np.uint8)
    expected = (128 / 255 - np.array(cifar10.NORM_MEAN)) / np.array(cifar10.NORM_STD)
    np.testing.assert_allclose(cifar10.normalize(images)[0, :, 0, 0], expected, rtol=0, atol=1e-6)  # float32


# ----------------------------------------------------------------------------- latency helpers
def test_median_seconds_and_torch_latency_report_positive_times():
    assert median_seconds(lambda: sum(range(1000)), repeats=3, warmup=1) > 0
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten())
    model.train()
    latency = torch_model_latency(model, (3, 8, 8), (1, 4), repeats=2, warmup=1)
    assert set(latency) == {"batch_1", "batch_4", "repeats", "warmup", "threads"}
    assert latency["batch_4"]["batch"] == 4 and latency["batch_4"]["median_seconds"] > 0
    assert latency["batch_1"]["per_image_ms"] > 0 and latency["threads"] >= 1
    assert model.training, "the model's mode is restored"


TWINS = {
    "conv": lambda: torch.nn.Conv2d(8, 8, 3, stride=2, padding=1, bias=False),
    "versatile": lambda: VersatileConv2d(8, 8, 3, padding=1, rng=np.random.default_rng(0)),
    "basis-shared": lambda: BasisConv2d(8, 8, 3, 4, 4, padding=1, bias=False,
                                        basis=SharedBasis(4, 8, 3, rng=np.random.default_rng(0))),
    "fullstack": lambda: FullStackConv2d(8, 8, 3, 4, padding=1, masks="separate", rng=np.random.default_rng(0)),
}


@pytest.mark.parametrize("kind", list(TWINS))
def test_numpy_twin_computes_the_torch_layer_and_its_latency_has_the_keys(kind):
    layer = TWINS[kind]()
    twin = numpy_twin(layer)
    x = np.random.default_rng(1).standard_normal((2, 8, 6, 6)).astype(np.float32)
    with torch.no_grad():
        expected = layer(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(twin.forward(x), expected, rtol=1e-4, atol=1e-5)
    latency = numpy_layer_latency(layer, (2, 8, 6, 6), repeats=2)
    assert {"layer", "input_shape", "output_shape", "method_seconds", "standard_seconds", "ratio", "repeats",
            "warmup", "blas_threads"} <= latency.keys()
    assert latency["method_seconds"] > 0 and latency["standard_seconds"] > 0 and latency["ratio"] > 0
    assert latency["input_shape"] == [2, 8, 6, 6] and latency["output_shape"] == list(expected.shape)


def test_numpy_twin_refuses_other_layers():
    with pytest.raises(TypeError, match="nn.Conv2d or a minilib.torch twin"):
        numpy_twin(torch.nn.Linear(2, 2))


# ----------------------------------------------------------------------------- a quick run of the command
@needs_cifar
def test_quick_run_writes_the_schema_and_learns_then_skips(tmp_path):
    names = ["mvnet-b-4"]           # one run keeps the test short (loading CIFAR-10 alone takes 10-20 s)
    proc = run_command("--quick", "--runs", *names, "--out-dir", str(tmp_path), "--threads", "1", cwd=tmp_path)
    assert "test accuracy" in proc.stdout
    for name in names:
        result = load(tmp_path / f"{name}_seed0.json")
        assert result["quick"] is True and "--quick" in result["command"] and result["threads"] == 1
        assert result["data"]["test_selection"].startswith("stratified")
        losses = result["history"]["batch_losses"][0]
        assert (result["history"]["val_loss"][-1] < result["initial"]["val_loss"]
                and np.mean(losses[len(losses) // 2:]) < losses[0]), "the loss must fall"
    assert load(tmp_path / "mvnet-b-4_seed0.json")["history"]["penalty"][0] > 0

    before = {path: path.read_bytes() for path in tmp_path.glob("*.json")}
    again = run_command("--quick", "--runs", *names, "--out-dir", str(tmp_path), cwd=tmp_path)
    assert again.stdout.count("skip") == len(names)
    assert {path: path.read_bytes() for path in tmp_path.glob("*.json")} == before


# ----------------------------------------------------------------------------- committed results
def test_committed_results_have_the_schema_and_the_codes_costs():
    for path in sorted((RESULTS_DIR / "cifar10").glob("*.json")):
        result = load(path)
        assert result["quick"] is False, f"{path.name} is a --quick smoke run; it does not belong in results/"
