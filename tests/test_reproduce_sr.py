"""The super-resolution reproduction command (``python -m minilib.reproduce sr``) and the results it writes.

A quick run (``--quick``: 30 iterations on 8 T91 images, tested on the 2 smallest images of Set5 and
Set14) takes seconds in a subprocess: the JSON must have the complete schema, the training loss
must fall, and a second call must skip finished runs. Every file committed under ``results/sr/``
must have the same schema, and its parameter counts and compression rates must equal those of
the network it names built today (with no committed file the check passes vacuously).
"""
from __future__ import annotations

import math
import subprocess
from pathlib import Path

import numpy as np
import pytest
import reproduce_helpers
from data_full import needs_data
from reproduce_helpers import load_checked

from minilib.reproduce import sr
from minilib.reproduce.__main__ import main as reproduce_main
from minilib.results import RESULTS_DIR
from minilib.sr import from_png_base64

TOP_KEYS = {"command", "seed", "date", "git_revision", "experiment", "run", "model", "method", "n_basis", "splits",
            "share_basis", "s", "masks", "iterations", "lam", "quick", "architecture", "recipe", "protocol", "data",
            "history", "psnr", "psnr_per_image", "bicubic_psnr", "bicubic_psnr_per_image", "cost", "compression",
            "coefficient_count", "crops", "wall_seconds", "train_seconds", "test_seconds", "iteration_seconds", "threads",
            "versions"}
COST_KEYS = {"params", "mask_bits", "params_32bit", "mults_per_lr_pixel"}
FULL_DATA = {"train_images": 91, "Set5_images": 5, "Set14_images": 14}

needs_sr_data = needs_data("sr/T91/t1.png", "SR images")


def check_schema(result: dict, path: Path) -> None:
    """Every key a chapter reads, with consistent values; ``path`` is the file the result came from."""
    assert TOP_KEYS <= result.keys(), f"{path.name}: missing {sorted(TOP_KEYS - result.keys())}"
    run = sr.parse_run(result["run"])
    assert result["experiment"] == "sr" and run.name == result["run"] and run.model == result["model"]
    assert path.name == f"{result['run']}_seed{result['seed']}.json"
    assert {key: result[key] for key in ("method", "n_basis", "splits", "share_basis", "s", "masks")} \
        == sr._method_fields(run)
    assert result["lam"] == run.penalty_lam
    iterations = sr.QUICK["iterations"] if result["quick"] else run.n_iterations
    assert result["iterations"] == result["recipe"]["iterations"] == iterations
    assert result["command"].startswith("python -m minilib.reproduce sr")
    assert isinstance(result["date"], str) and isinstance(result["git_revision"], str) and result["git_revision"]
    assert sr.RECIPE.keys() <= result["recipe"].keys() and result["recipe"]["lam"] == result["lam"]
    assert result["protocol"] == sr.PROTOCOL and result["architecture"] == sr.ARCHITECTURE

    history = result["history"]
    assert set(sr.HISTORY_KEYS) <= history.keys()
    entries = len(history["iteration"])
    assert entries == math.ceil(iterations / result["recipe"]["log_every"])
    assert all(len(history[key]) == entries for key in sr.HISTORY_KEYS), "one entry per log window"
    assert history["iteration"][-1] == iterations and history["iteration"] == sorted(history["iteration"])
    assert history["lr"] == [lr_at(i - 1, iterations) for i in history["iteration"]]
    assert all((value is None) == (result["lam"] is None) for value in history["penalty"])
    assert all(math.isfinite(value) and value > 0 for value in history["train_loss"])
    assert all(value > 0 for value in history["seconds"])

    if result["quick"]:
        assert result["data"]["train_images"] == sr.QUICK["train_images"]
        assert all(len(result["data"][f"{name}_images"]) == sr.QUICK["test_images"] for name in ("Set5", "Set14"))
    else:
        assert {key: (value if key == "train_images" else len(value)) for key, value in result["data"].items()
                if key in FULL_DATA} == FULL_DATA
    for scores, means in (("psnr_per_image", "psnr"), ("bicubic_psnr_per_image", "bicubic_psnr")):
        assert result[scores].keys() == result[means].keys() == {"Set5", "Set14"}
        for name, per_image in result[scores].items():
            assert sorted(per_image) == result["data"][f"{name}_images"]
            assert all(math.isfinite(value) and value > 10 for value in per_image.values())
            assert result[means][name] == pytest.approx(np.mean(list(per_image.values())), rel=1e-12)

    tested = {f"{name}/{image}" for name in ("Set5", "Set14") for image in result["data"][f"{name}_images"]}
    assert result["crops"].keys() == {key for key in sr.VISUAL_CROPS if key in tested}
    for key, stored in result["crops"].items():
        assert stored["box"] == list(sr.VISUAL_CROPS[key])
        size = stored["box"][2]
        assert from_png_base64(stored["png"]).shape == (size, size, 3)

    assert result["cost"].keys() == {"block", "body", "total"}
    assert all(entry.keys() == COST_KEYS for entry in result["cost"].values())
    assert result["compression"].keys() == {"block", "body", "total"}
    assert result["wall_seconds"] >= result["train_seconds"] > 0 and result["test_seconds"] > 0
    assert result["iteration_seconds"] > 0 and result["threads"] >= 1
    assert result["versions"]["numpy"] and result["versions"]["python"] and result["versions"]["torch"]


def check_cost(result: dict) -> None:
    """The stored counts and compression rates are those of the named network built today."""
    run = sr.parse_run(result["run"])
    costs = sr.model_costs(run.build(np.random.default_rng(0)))
    assert result["cost"] == costs, f"{result['run']}: {result['cost']} != {costs}"
    expected = sr.compression(costs, sr.model_costs(sr.Run("baseline").build()))
    assert result["compression"] == pytest.approx(expected, rel=1e-12)


def load(path: Path) -> dict:
    return load_checked(path, check_schema, check_cost)


def run_command(*args, cwd) -> subprocess.CompletedProcess:
    return reproduce_helpers.run_command("sr", *args, cwd=cwd, timeout=300)


# ----------------------------------------------------------------------------- names, the plan, the costs
def test_run_names_round_trip_and_say_what_they_build():
    assert sr.parse_run("basis-m16-s4-shared-it500") == sr.Run("basis-m16-s4-shared", iterations=500)
    assert sr.Run("basis-m16-s4-shared").model_kwargs == {"method": "basis", "n_basis": 16, "splits": 4,
                                                          "share_basis": True}
    assert sr.Run("mvnet-b-8").model_kwargs["s"] == 8 and sr.Run("mvnet-b-8").penalty_lam == sr.RECIPE["lam"]
    assert sr.Run("baseline").penalty_lam is None and sr.Run("basis-m4-s4").penalty_lam is None
    assert sr.Run("baseline").with_iterations(sr.RECIPE["iterations"]).name == "baseline"
    assert sr.Run("baseline").with_iterations(40).name == "baseline-it40"
    for run in sr.default_runs():
        assert sr.parse_run(run.name) == run


@pytest.mark.parametrize("name", ["edsr", "basis-m16", "basis-m16-s3", "basis-m0-s4", "mvnet-a-4", "mvnet-b-5",
                                  "baseline-it0", "basis-m16-s4-it500-shared", "baseline-shared"])
def test_bad_run_names_are_refused(name):
    with pytest.raises(ValueError, match="is not|does not fit|iterations"):
        sr.parse_run(name)


def test_names_are_accepted_exactly_when_the_network_can_be_built():
    pytest.importorskip("torch")
    for value in range(1, 40):
        for name in (f"basis-m4-s{value}", f"mvnet-b-{value}"):
            try:
                run = sr.parse_run(name)
            except ValueError:
                run = None
            assert (run is not None) == (32 % value == 0), name
            if run is not None:
                run.build()


def test_default_plan_has_the_table1_axes_the_splits_axis_and_mvnet_b():
    plan = {run.name: seeds for run, seeds in sr.default_plan()}
    assert [name for name in plan if name.endswith("-s4-shared")] == ["basis-m4-s4-shared", "basis-m8-s4-shared",
                                                                       "basis-m16-s4-shared"]
    assert {"basis-m4-s4", "basis-m8-s4", "basis-m16-s1", "basis-m16-s2", "basis-m16-s8", "mvnet-b-2",
            "mvnet-b-4", "mvnet-b-8", "baseline"} < plan.keys()
    assert len(plan) == 13 and sum(len(seeds) for seeds in plan.values()) == 21
    assert all(plan[name] == (0, 1, 2) for name in sr.THREE_SEEDS)


def test_costs_and_compression_equal_hand_computed_values():
    baseline = sr.model_costs(sr.Run("baseline").build())
    standard = (9 * 3 * 32 + 32) + (9 * 32 * 32 + 32) + (9 * 32 * 128 + 128) + (9 * 32 * 3 + 3)
    assert baseline["block"]["params"] == 18_496 and baseline["body"]["params"] == 4 * 18_496
    assert baseline["total"]["params"] == standard + 4 * 18_496
    assert baseline["block"]["mults_per_lr_pixel"] == 2 * 9 * 32 * 32
    shared = sr.model_costs(sr.Run("basis-m16-s4-shared").build())
    assert shared["block"]["params"] == 9 * 16 * 8 + 2 * (32 * 4 * 16 + 32)         # 5,312
    assert sr.compression(shared, baseline)["block"] == pytest.approx(5_312 / 18_496)
    mvnet = sr.model_costs(sr.Run("mvnet-b-4").build())
    # 2 convs of k = 8 filters (8 x 32 x 3 x 3) + 32 biases, and 2 x 32 x 32 x 9 one-bit masks = 576 floats
    assert mvnet["block"]["params_32bit"] == 2 * (8 * 32 * 9 + 32) + 2 * 32 * 32 * 9 / 32
    assert sr.compression(mvnet, baseline)["total"] == pytest.approx(
        (standard + 4 * 5_248) / (standard + 4 * 18_496))


def lr_at(iteration: int, iterations: int) -> float:
    """The recipe's step schedule: RECIPE["lr"], divided by 10 from iteration ceil(2/3 * iterations) on (0-based)."""
    return sr.RECIPE["lr"] * (0.1 if 3 * iteration >= 2 * iterations else 1.0)


def test_the_learning_rate_drops_tenfold_after_two_thirds():
    recipe = sr.loop_recipe(None, 16)
    assert (recipe.schedule, recipe.schedule_step, recipe.drop_at, recipe.drop_factor) == ("drop", "batch", (2, 3), 0.1)
    assert [lr_at(i, 1200) for i in (0, 799, 800, 1199)] == [sr.RECIPE["lr"]] * 2 + [sr.RECIPE["lr"] * 0.1] * 2


def test_list_shows_the_plan_and_a_bad_name_exits_2(tmp_path, capsys):
    assert reproduce_main(["sr", "--list", "--runs", "baseline", "mvnet-b-8", "--out-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "todo  baseline seed 2" in out and "mvnet-b-8 seed 0" in out and "0 of 4 done" in out
    assert reproduce_main(["sr", "--runs", "basis-m16-s3", "--out-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "basis-m16-s3" in err and "splits=3 must divide width=32" in err
    assert reproduce_main(["sr", "--runs", "edsr-big", "--out-dir", str(tmp_path)]) == 2
    assert "baseline, basis-m<m>-s<s>[-shared] or mvnet-b-<s>" in capsys.readouterr().err


# ----------------------------------------------------------------------------- a quick run of the command
@needs_sr_data
def test_quick_runs_write_the_schema_and_learn_then_skip(tmp_path):
    pytest.importorskip("torch")
    names = ["baseline", "basis-m8-s4-shared", "mvnet-b-4"]
    proc = run_command("--quick", "--runs", *names, "--seeds", "0", "--threads", "1", "--out-dir", str(tmp_path),
                       cwd=tmp_path)
    assert "PSNR-Y Set5" in proc.stdout
    for name in names:
        result = load(tmp_path / f"{name}_seed0.json")
        assert result["quick"] is True and "--quick" in result["command"] and result["threads"] == 1
        losses = result["history"]["train_loss"]
        assert losses[-1] < 0.7 * losses[0], f"{name}: the training loss must fall, got {losses}"
    assert load(tmp_path / "mvnet-b-4_seed0.json")["history"]["penalty"][0] > 0

    before = {path: path.read_bytes() for path in tmp_path.glob("*.json")}
    again = run_command("--quick", "--runs", *names, "--seeds", "0", "--out-dir", str(tmp_path), cwd=tmp_path)
    assert again.stdout.count("skip") == len(names)
    assert {path: path.read_bytes() for path in tmp_path.glob("*.json")} == before


# ----------------------------------------------------------------------------- committed results
def test_committed_results_have_the_schema_and_the_codes_costs():
    for path in sorted((RESULTS_DIR / "sr").glob("*.json")):
        result = load(path)
        assert result["quick"] is False, f"{path.name} is a --quick smoke run; it does not belong in results/"
