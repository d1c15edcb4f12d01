"""The side-by-side comparison (``python -m minilib.reproduce compare``, chapter 10): budget matching, the plan,
quick runs of the command, the committed results, and the report helpers.

Budgets: every reachable (method, budget) pair stores within a factor TOLERANCE of the budget, its costs are those
:func:`minilib.accounting.summarize` counts, and four choices are checked against counts done by hand. Quick runs
(1024 training images, one epoch) write the full schema in seconds; a from_conv run in an empty folder trains
the baseline of its seed first. Every file committed under ``results/compare/`` must have the same schema and the
costs of the network the plan names today (with no committed file that check passes vacuously, so the schema
check also runs on the quick runs' output).
"""
from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import numpy as np
import pytest
import reproduce_helpers

from minilib.accounting import summarize
from minilib.layers import Conv2d
from minilib.models import basis, build, lenet_spec
from minilib.reports import compare as C
from minilib.torch.from_conv import start_from_conv
from minilib.reports import runs as R
from minilib.reproduce import budgets, compare, mnist
from minilib.reproduce.__main__ import main as reproduce_main
from minilib.results import RESULTS_DIR

ROOT = Path(__file__).resolve().parents[1]
TOP_KEYS = {"command", "seed", "date", "git_revision", "experiment", "run", "method", "budget", "backend",
            "hyperparameters", "description", "architecture", "converted_layers", "init", "from_conv", "epochs", "lam",
            "quick", "recipe", "data", "history", "initial", "test_loss", "test_accuracy", "diverged",
            "best_val_accuracy", "best_epoch", "last_val_accuracy", "cost", "paper_strings", "compression", "latency",
            "train_seconds", "wall_seconds", "epoch_seconds", "threads", "versions"}
COST_KEYS = {"conv_weights", "mask_bits", "params", "params_32bit", "memory_kb", "flops"}
FULL_DATA = {"train": 50_000, "val": 10_000, "test": 10_000}
LAYER_KIND = {"versatile": "VersatileConv2d", "versatile-v2": "VersatileConv2d", "basis-scratch": "BasisConv2d",
              "basis-from-conv": "BasisConv2d", "mvnet-a": "FullStackConv2d", "mvnet-b": "FullStackConv2d",
              "baseline": "Conv2d"}



def check_schema(result: dict, path: Path) -> None:
    """Every key chapter 10 reads, with consistent values; ``path`` is the file the result came from."""
    assert TOP_KEYS <= result.keys(), f"{path.name}: missing {sorted(TOP_KEYS - result.keys())}"
    run = compare.parse_run(result["run"])
    assert result["experiment"] == "compare" and result["backend"] == "torch"
    assert (run.method, run.budget) == (result["method"], result["budget"])
    assert path.name == f"{result['run']}_seed{result['seed']}.json"
    assert result["command"].startswith("python -m minilib.reproduce compare")
    assert isinstance(result["git_revision"], str) and result["git_revision"]
    assert result["lam"] == run.penalty_lam == (0.1 if run.method.startswith("mvnet") else None)
    assert result["epochs"] == (1 if result["quick"] else mnist.RECIPE["epochs"])
    assert compare.RECIPE.keys() <= result["recipe"].keys() and result["recipe"]["epochs"] == result["epochs"]
    expected = mnist.QUICK_SIZES if result["quick"] else FULL_DATA
    assert {key: result["data"][key] for key in expected} == expected
    assert result["converted_layers"] == ["conv1", "conv2", "conv3"]
    assert result["init"] == ("from_conv" if run.method == "basis-from-conv" else "random")
    if run.method == "basis-from-conv":
        errors = result["from_conv"]["relative_error"]
        assert set(errors) == {"conv1", "conv2", "conv3"} and all(0 <= e <= 1 for e in errors.values())
        assert result["from_conv"]["baseline_weights"] == f"weights/baseline_seed{result['seed']}.npz"
    else:
        assert result["from_conv"] is None

    history = result["history"]
    if result["diverged"]:
        assert result["test_accuracy"] is None and result["latency"] is None
        return
    assert all(len(history[key]) == result["epochs"] for key in mnist.HISTORY_KEYS)
    assert history["lr"][0] == mnist.RECIPE["lr"]
    assert all((value is None) == (result["lam"] is None) for value in history["penalty"])
    for value in [*history["val_accuracy"], result["test_accuracy"]]:
        assert 0.0 <= value <= 1.0
    assert all(math.isfinite(v) for v in [*history["train_loss"], *history["val_loss"], result["test_loss"]])
    assert result["best_val_accuracy"] == max(history["val_accuracy"])
    assert result["cost"].keys() == COST_KEYS
    assert 0 < result["train_seconds"] <= result["wall_seconds"]

    latency = result["latency"]
    for batch in (1, 128):
        entry = latency["torch"][f"batch_{batch}"]
        assert entry["batch"] == batch and entry["median_seconds"] > 0
        assert entry["per_image_ms"] == pytest.approx(1000 * entry["median_seconds"] / batch)
    layer = latency["numpy_layer"]
    assert (layer["name"], layer["index"]) == compare.LATENCY_LAYER
    assert layer["ratio"] == pytest.approx(layer["method_seconds"] / layer["standard_seconds"])
    assert layer["output_shape"][1:] == [run.choice.spec[2][1]["out_channels"], 8, 8]


def check_cost(result: dict) -> None:
    """The stored architecture is the one the plan picks today, and the costs are summarize's of it."""
    run = compare.parse_run(result["run"])
    assert result["architecture"] == compare.architecture(run.choice.spec), f"{result['run']}: the plan changed"
    assert result["hyperparameters"] == json.loads(json.dumps(run.choice.hyperparameters))
    summary = summarize(build(result["architecture"], rng=np.random.default_rng(0)), (1, 28, 28))
    cost = result["cost"]
    for key in ("conv_weights", "mask_bits", "params", "flops"):
        assert cost[key] == getattr(summary, key), f"{result['run']}: {key} {cost[key]} != {getattr(summary, key)}"
    assert cost["params_32bit"] == pytest.approx(summary.params_32bit, rel=1e-12)
    ratios = result["compression"]
    assert ratios["stored_bits"] == pytest.approx(run.choice.stored_ratio, rel=1e-12)
    assert ratios["conv_weights"] == pytest.approx(run.choice.weight_ratio, rel=1e-12)
    assert ratios["flops"] == pytest.approx(run.choice.flops_ratio, rel=1e-12)


def load(path: Path) -> dict:
    return reproduce_helpers.load_checked(path, check_schema, check_cost)


def run_command(*args, cwd) -> subprocess.CompletedProcess:
    return reproduce_helpers.run_command("compare", *args, cwd=cwd, timeout=600)


# ----------------------------------------------------------------------------- budget matching
def test_every_reachable_choice_is_near_its_budget_and_costed_by_summarize():
    reachable = [choice for choice in budgets.budget_table()[1:] if choice.reachable]
    assert len(reachable) == 15
    for choice in reachable:
        assert 1 / budgets.TOLERANCE <= choice.stored_ratio / choice.budget <= budgets.TOLERANCE, choice.run
        summary = summarize(build(choice.spec, rng=np.random.default_rng(0)), (1, 28, 28))
        assert (summary.conv_weights, summary.mask_bits, summary.flops) == (
            choice.cost.conv_weights, choice.cost.mask_bits, choice.cost.flops), choice.run
        if choice.method.startswith("basis"):      # the closed form the search uses is what summarize counts
            assert budgets._basis_stored(choice.hyperparameters) == summary.conv_weights


def test_choices_counted_by_hand():
    base = 430_500
    # MVNet-A, s = 2: k = 10, 25, 250 filters; 2 shared masks of 25, 500, 800 bits per layer
    a50 = budgets.match_budget("mvnet-a", 0.50)
    assert a50.hyperparameters["s"] == 2 and a50.hyperparameters["n_filters"] == [10, 25, 250]
    assert a50.cost.conv_weights == 10 * 25 + 25 * 500 + 250 * 800 + 5_000 == 217_750
    assert a50.cost.mask_bits == 2 * (25 + 500 + 800)
    assert a50.stored_ratio == pytest.approx((217_750 + 2_650 / 32) / base)
    # v2 at 25 % is Table 3's v2-Model 1: 117,900 weights, 1,217,520 multiplications
    v25 = budgets.match_budget("versatile-v2", 0.25)
    assert (v25.hyperparameters["delta"], v25.hyperparameters["g"], v25.hyperparameters["n"]) == (1, 1, 2)
    assert (v25.cost.conv_weights, v25.cost.flops) == (117_900, 1_217_520)
    # basis at 12 %: m = 2, 9, 34 and p = 1, 5, 50 (s = 1, 4, 1); Eq. 6: m p k^2 + n s m per layer
    b12 = budgets.match_budget("basis-scratch", 0.12)
    assert b12.hyperparameters["n_basis"] == [2, 9, 34] and b12.hyperparameters["splits"] == [1, 4, 1]
    assert b12.cost.conv_weights == 2 * (25 + 20) + 9 * (125 + 200) + 34 * (800 + 500) + 5_000 == 52_215
    # the neighbours m3 = 33 and 35 (with m = 2, 9 below) are further from 12 % of 430,500 = 51,660
    assert abs(52_215 - 51_660) < min(abs(52_215 - 1_300 - 51_660), abs(52_215 + 1_300 - 51_660))
    # MVNet-B, s = 13: k = 2, 4, 39; one mask bit per weight of the baseline's feature layers (425,500)
    b12_mv = budgets.match_budget("mvnet-b", 0.12)
    assert b12_mv.hyperparameters["n_filters"] == [2, 4, 39]
    assert b12_mv.cost.conv_weights == 2 * 25 + 4 * 500 + 39 * 800 + 5_000 and b12_mv.cost.mask_bits == 425_500
    assert b12_mv.stored_ratio == pytest.approx((38_250 + 425_500 / 32) / base)


def test_unreachable_budgets_are_listed_with_their_reason():
    out = {choice.run: choice.reason for choice in budgets.budget_table()[1:] if not choice.reachable}
    assert set(out) == {"versatile-b25", "versatile-b12", "versatile-v2-b50"}
    assert "ceil(d/2)" in out["versatile-b25"] and "50.7 %" in out["versatile-b12"]
    assert "n >= 2" in out["versatile-v2-b50"] and "27.4 %" in out["versatile-v2-b50"]


def test_every_method_converts_the_same_three_layers_and_keeps_the_classifier():
    for choice in budgets.budget_table():
        if not choice.reachable:
            continue
        model = build(choice.spec, rng=np.random.default_rng(0))
        kinds = [type(model[index]).__name__ for _, index, *_ in budgets.CONVERTED]
        assert kinds == [LAYER_KIND[choice.method]] * 3, choice.run
        classifier = model[budgets.CLASSIFIER[1]]
        assert type(classifier) is Conv2d and classifier.out_channels == 10, choice.run


def test_bad_method_and_budget_are_refused():
    with pytest.raises(ValueError, match="method='basis' is not one of"):
        budgets.match_budget("basis", 0.25)
    with pytest.raises(ValueError, match="budget=1.5 must be a fraction"):
        budgets.match_budget("mvnet-a", 1.5)
    with pytest.raises(ValueError, match="budget=0.3 must be one of"):
        compare.Run("mvnet-a", 0.3)


# ----------------------------------------------------------------------------- the plan
def test_default_plan_has_every_reachable_run_and_two_seeds():
    plan = compare.make_plan()
    names = [run.name for run, _ in plan]
    assert names[0] == "baseline" and len(names) == 16 == len(set(names))
    assert all(seeds == (0, 1) for _, seeds in plan) and sum(len(seeds) for _, seeds in plan) == 32
    assert "versatile-b25" not in names and "versatile-v2-b50" not in names
    assert {f"{m}-b{p}" for m in ("basis-scratch", "basis-from-conv", "mvnet-a", "mvnet-b") for p in (50, 25, 12)} \
        <= set(names)
    for run, _ in plan:
        assert compare.parse_run(run.name) == run


@pytest.mark.parametrize("name, message", [("versatile-b25", "not reachable"), ("basis-b25", "is not 'baseline'"),
                                           ("mvnet-a-b30", "budget must be one of"), ("lenet", "is not 'baseline'")])
def test_bad_run_names_are_refused(name, message):
    with pytest.raises(ValueError, match=message):
        compare.parse_run(name)


def test_list_shows_the_plan_and_the_budgets_out_of_reach(tmp_path, capsys):
    assert reproduce_main(["compare", "--list", "--out-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "not reachable  versatile-b25" in out and "todo  mvnet-b-b12 seed 1" in out and "0 of 32 done" in out
    assert reproduce_main(["compare", "--runs", "versatile-b12", "--out-dir", str(tmp_path)]) == 2
    assert "not reachable" in capsys.readouterr().err


def test_baseline_weights_stay_out_of_git():
    proc = subprocess.run(["git", "check-ignore", "-q", "results/compare/weights/baseline_seed0.npz"], cwd=ROOT)
    assert proc.returncode == 0, "results/compare/weights/ must be git-ignored"


# ----------------------------------------------------------------------------- from_conv
def test_from_conv_at_full_rank_computes_the_baseline():
    """With m at the rank of every split matrix, the fitted basis network is the trained convolution network."""
    torch = pytest.importorskip("torch")
    from minilib.torch.models import build as build_torch

    baseline = build_torch(budgets.baseline_choice().spec, rng=np.random.default_rng(3))
    state = {key: value.numpy() for key, value in baseline.state_dict().items()}
    full = build_torch(lenet_spec(basis(20, 5, 20, 1), basis(50, 5, 125, 5), basis(500, 4, 500, 50)),
                       rng=np.random.default_rng(4))
    errors = start_from_conv(full, state)
    assert set(errors) == {0, 2, 4} and max(errors.values()) < 1e-12
    x = torch.from_numpy(np.random.default_rng(5).standard_normal((4, 1, 28, 28)))
    with torch.no_grad():
        np.testing.assert_allclose(full(x).numpy(), baseline(x).numpy(), rtol=1e-9, atol=1e-10)
    low = build_torch(budgets.match_budget("basis-from-conv", 0.12).spec, rng=np.random.default_rng(4))
    assert all(0 < error < 1 for error in start_from_conv(low, state).values())


def test_saved_weights_are_reused_only_for_the_same_length(tmp_path):
    pytest.importorskip("torch")
    from minilib.torch.models import build as build_torch

    model = build_torch(budgets.baseline_choice().spec, rng=np.random.default_rng(0))
    path = compare.weights_path(tmp_path, 3)
    compare.save_weights(path, model, epochs=12)
    state = compare.load_weights(path, 12)
    assert set(state) == set(model.state_dict()) and state["6.weight"].shape == (10, 500, 1, 1)
    assert compare.load_weights(path, 1) is None and compare.load_weights(tmp_path / "none.npz", 12) is None


# ----------------------------------------------------------------------------- quick runs of the command
def test_quick_runs_write_the_schema_learn_and_train_the_baseline_for_from_conv(tmp_path):
    pytest.importorskip("torch")
    names = ["basis-from-conv-b25", "mvnet-a-b12"]
    proc = run_command("--quick", "--threads", "1", "--runs", *names, "--seeds", "0", "--out-dir", str(tmp_path),
                       cwd=tmp_path)
    assert proc.stdout.count("test accuracy") == 2
    assert compare.weights_path(tmp_path, 0).is_file()
    for name in ["baseline", *names]:       # the from_conv run trained the baseline and wrote its result
        result = load(tmp_path / f"{name}_seed0.json")
        assert result["quick"] is True and "--quick" in result["command"]
        assert result["history"]["val_loss"][-1] < result["initial"]["val_loss"], f"{name}: the loss must fall"
        assert result["test_accuracy"] > 0.2
    fitted = load(tmp_path / "basis-from-conv-b25_seed0.json")
    assert fitted["from_conv"]["baseline_trained_by_this_run"] is True

    again = run_command("--quick", "--threads", "1", "--runs", "baseline", *names, "--seeds", "0", "--out-dir",
                        str(tmp_path), cwd=tmp_path)
    assert again.stdout.count("skip") == 3
    forced = run_command("--quick", "--threads", "1", "--force", "--runs", "basis-from-conv-b25", "--seeds", "0",
                         "--out-dir", str(tmp_path), cwd=tmp_path)
    assert "test accuracy" in forced.stdout
    refit = load(tmp_path / "basis-from-conv-b25_seed0.json")
    assert refit["from_conv"]["baseline_trained_by_this_run"] is False       # the saved weights were used
    assert refit["from_conv"]["relative_error"] == pytest.approx(fitted["from_conv"]["relative_error"], rel=1e-5)


# ----------------------------------------------------------------------------- committed results
def test_committed_results_have_the_schema_and_the_plans_costs():
    folder = RESULTS_DIR / "compare"
    if not folder.is_dir():
        return                              # nothing run yet; the quick-run test exercises the checks
    paths = sorted(folder.glob("*.json"))
    assert paths, f"{folder} exists but holds no result file"
    for path in paths:
        assert load(path)["quick"] is False, f"{path.name} is a --quick smoke run; it does not belong in results/"


# ----------------------------------------------------------------------------- report helpers
def fake(run, seed, accuracy, latency_1=1.0, numpy_ratio=1.0):
    return {"run": run, "seed": seed, "quick": False, "test_accuracy": accuracy,
            "latency": {"torch": {"batch_1": {"per_image_ms": latency_1 + seed},
                                  "batch_128": {"per_image_ms": latency_1 / 10}},
                        "numpy_layer": {"ratio": numpy_ratio}}}


def test_pareto_front_by_hand():
    costs = [1.0, 2.0, 2.0, 3.0, 0.5, 4.0, math.nan]
    accuracies = [98.0, 99.0, 98.5, 98.9, 97.0, 99.3, 99.9]
    # (0.5, 97.0), (1, 98), (2, 99), (4, 99.3) are undominated; (2, 98.5) and (3, 98.9) lose to (2, 99)
    assert C.pareto_front(costs, accuracies) == [4, 0, 1, 5]
    assert C.pareto_front([1.0, 1.0], [98.0, 98.0]) == [0, 1]        # equal points do not dominate each other
    assert C.pareto_front([], []) == []


def test_pareto_plot_draws_every_method_and_the_front_and_can_leave_the_legend_out():
    import matplotlib.pyplot as plt

    from minilib import viz

    series = {"baseline": [(1.0, 99.2, 0.03, "base")],
              "basis": [(0.5, 99.1, math.nan, "50%"), (0.25, 99.0, 0.1, "25%")]}
    front = [(0.25, 99.0), (0.5, 99.1), (1.0, 99.2)]
    fig, (with_legend, without) = plt.subplots(1, 2)
    for ax, legend in ((with_legend, True), (without, False)):
        viz.plot_pareto(series, front, ax=ax, legend=legend)
    _, labels = without.get_legend_handles_labels()
    assert sorted(labels) == ["Pareto front", "baseline", "basis"]    # what a shared legend of the figure takes
    assert [text.get_text() for text in with_legend.get_legend().get_texts()] == labels
    assert without.get_legend() is None
    staircase = [line for line in without.get_lines() if line.get_linestyle() == "--"]
    assert len(staircase) == 1 and list(staircase[0].get_xdata()) == [0.25, 0.5, 1.0, 1.0]
    plt.close(fig)


def test_rows_exist_before_training_and_take_accuracy_and_latency_from_results():
    rows = {row["run"]: row for row in C.compare_rows({})}
    assert len(rows) == 16 and all(row["accuracy"] == "not run" and row["mean"] is None for row in rows.values())
    assert rows["mvnet-a-b50"]["stored_ratio"] == pytest.approx(budgets.match_budget("mvnet-a", 0.5).stored_ratio)

    groups = R.group_results([fake("baseline", 0, 0.9920, 2.0), fake("baseline", 1, 0.9930, 2.0),
                              fake("mvnet-b-b25", 0, 0.9910, 1.0, 3.0), fake("mvnet-b-b25", 1, 0.9912, 1.0, 5.0),
                              fake("basis-scratch-b25", 0, 0.9800, 0.5, 0.5),
                              fake("basis-scratch-b25", 1, 0.9820, 0.5, 0.7)])
    rows = {row["run"]: row for row in C.compare_rows(groups)}
    mv = rows["mvnet-b-b25"]
    assert mv["mean"] == pytest.approx(99.11) and mv["seeds"] == 2 and mv["delta"] == pytest.approx(99.11 - 99.25)
    assert mv["latency_1"] == pytest.approx(1.5) and mv["numpy_ratio"] == pytest.approx(4.0)   # medians over seeds
    text = C.format_compare_rows(list(rows.values()))
    assert "mvnet-b-b25" in text and "not run" in text

    sigma = R.pooled_seed_std(groups)
    table = {entry["question"]: entry for entry in C.when_to_use(list(rows.values()), sigma)}
    assert table["most accurate at about 25 % of the stored bits"]["answer"] == "mvnet-b"
    assert table["most accurate at about 50 % of the stored bits"]["answer"] == "not run yet"
    assert table["fastest torch model, batch 1"]["answer"] == "basis-scratch-b25 (0.40x the baseline's)"
    assert table["NumPy conv2 faster than the standard convolution"]["answer"] == "basis-scratch-b25"
    # basis-scratch-b25's ratio is 0.6 (median of 0.5 and 0.7): no longer faster when 40 % or more is noise
    noisy = {entry["question"]: entry for entry in C.when_to_use(list(rows.values()), sigma, numpy_noise=0.4)}
    assert noisy["NumPy conv2 faster than the standard convolution"]["answer"].startswith("none")
    assert "within 40 % of 1 count as equal" in noisy["NumPy conv2 faster than the standard convolution"]["evidence"]
    assert table["fewest multiplications at about 12 %"]["answer"].startswith("mvnet-b")
    assert table["versatile at 25 %?"]["answer"] == "not reachable"
    # sigma = sqrt((0.005 + 0.0002 + 0.02) / 3) = 0.092: mvnet-b-b25 is 0.14 below the baseline, 2 s.e. = 0.18
    assert sigma == pytest.approx(math.sqrt(0.0252 / 3))
    assert table["smallest network within noise of the baseline's accuracy"]["answer"] == "mvnet-b-b25"
    series, front = C.pareto_series(list(rows.values()), "stored_ratio")
    assert set(series) == {"baseline", "mvnet-b", "basis-scratch"}
    # MVNet-B at 25 % stores fewer bits (24.0 %) than the basis (25.0 %) and is more accurate: the basis is dominated
    assert [x for x, _ in front] == pytest.approx([rows["mvnet-b-b25"]["stored_ratio"], 1.0])
    assert C.front_runs(list(rows.values()), "latency_1") == ["basis-scratch-b25", "mvnet-b-b25", "baseline"]
    fronts = {row["cost"]: row["front"] for row in C.fronts_table(list(rows.values())).rows}
    assert fronts[C.COSTS["latency_1"]] == "basis-scratch-b25 < mvnet-b-b25 < baseline"
    assert set(fronts) == set(C.COSTS.values())
    assert all(row["front"] == "no run trained yet" for row in C.fronts_table(C.compare_rows({})).rows)


def test_the_plan_tables_show_every_choice_with_its_costs_or_its_reason():
    choices = budgets.budget_table()
    costs = {row["run"]: row for row in C.plan_table(choices).rows}
    assert list(costs) == [choice.run for choice in choices if choice.reachable]
    mv = next(choice for choice in choices if choice.run == "mvnet-b-b25")
    assert costs["mvnet-b-b25"]["bits"] == f"{100 * mv.stored_ratio:.2f}"
    assert costs["mvnet-b-b25"]["mults"] == f"{mv.cost.flops:,}"
    prose = {row["run"]: row["what"] for row in C.hyperparameter_table(choices).rows}
    assert len(prose) == len(choices)
    assert all(text.startswith("not reachable: ") == (not choice.reachable) for choice, text in
               zip(choices, prose.values()))
    assert "<th" in C.plan_table(choices)._repr_html_()


def test_load_results_may_find_no_folder(tmp_path):
    assert R.load_results("compare", tmp_path / "none", missing_ok=True) == []
    with pytest.raises(FileNotFoundError, match="python -m minilib.reproduce compare"):
        R.load_results("compare", tmp_path / "none")


def test_chapter_10_reads_the_compare_results():
    import nbformat

    notebook = nbformat.read(ROOT / "notebooks/10_three_methods_side_by_side.ipynb", 4)
    source = "\n".join(cell.source for cell in notebook.cells)
    assert 'R.load_results("compare"' in source


def test_the_cifar_runs_become_pareto_rows_with_their_own_names():
    groups = R.group_results([{**fake("baseline", 0, 0.43, 3.0, 1.0),
                               "compression": {"params_32bit": 1.0, "flops": 1.0}},
                              {**fake("mvnet-b-4", 0, 0.42, 12.0, 4.0),
                               "compression": {"params_32bit": 0.29, "flops": 0.26}},
                              {**fake("versatile", 0, 0.41, 9.0, 1.2),
                               "compression": {"params_32bit": 0.5, "flops": 0.56}}])
    rows = C.cifar_compare_rows(groups, ["baseline", "mvnet-b-4", "versatile", "basis-split"])   # one not trained
    assert [row["run"] for row in rows] == ["baseline", "mvnet-b-4", "versatile"]
    assert rows[1]["stored_ratio"] == 0.29 and rows[1]["mean"] == pytest.approx(42.0) and rows[1]["numpy_ratio"] == 4
    series, front = C.pareto_series(rows, "stored_ratio")
    assert set(series) == {"baseline", "mvnet-b-4", "versatile"} and series["versatile"][0][3] == ""
    assert C.front_runs(rows, "stored_ratio") == ["mvnet-b-4", "baseline"]          # versatile: larger, less accurate
    assert C.front_runs(rows, "latency_1") == ["baseline"]
