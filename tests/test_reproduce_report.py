"""The report functions that the reproduction chapters (05, 09) use to read ``results/mnist``.

Synthetic result dicts with known accuracies check the statistics and the table rows by hand;
the committed files must all be shown by the chapters, and the chapters must read them.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import nbformat
import numpy as np
import pytest

from minilib.accounting import summarize
from minilib.models import PAPER_MVNET_TABLE1, PAPER_TABLE2, PAPER_TABLE3, lenet
from minilib.reproduce import mnist
from minilib.reproduce import report as R
from minilib.results import RESULTS_DIR

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
CHAPTERS = ("05_reproducing_versatile_filters_on_mnist.ipynb", "09_reproducing_mvnet_on_mnist.ipynb")


def fake(run, seed, accuracy, quick=False, epochs=3):
    """The fields of a result file that the report reads; ``accuracy`` as a fraction."""
    history = {"val_accuracy": [accuracy - 0.01 * k for k in range(epochs)][::-1],
               "train_loss": [1.0 / (k + 1) for k in range(epochs)], "penalty": [None] * epochs}
    return {"run": run, "model": run.split("-lam")[0], "seed": seed, "test_accuracy": accuracy, "quick": quick,
            "epoch_seconds": 2.0 + seed, "history": history, "backend": "torch", "threads": 1,
            "git_revision": "0123456789abcdef", "date": "2026-11-22T00:00:00+00:00",
            "cost": {"params_32bit": 1000.0 * (seed + 1), "flops": 10, "conv_weights": 5}}


def test_run_group_statistics_by_hand():
    group = R.RunGroup((fake("baseline", 0, 0.9920), fake("baseline", 1, 0.9926), fake("baseline", 2, 0.9917)))
    accuracies = np.array([99.20, 99.26, 99.17])
    assert group.mean == pytest.approx(accuracies.mean())
    assert group.std == pytest.approx(math.sqrt(((accuracies - accuracies.mean()) ** 2).sum() / 2))
    assert group.seeds == [0, 1, 2] and group.epoch_seconds == pytest.approx(3.0)
    assert group.accuracy_text() == f"{accuracies.mean():.2f} ± {group.std:.2f} (3 seeds)"
    assert group.history("train_loss").shape == (3, 3)
    single = R.RunGroup((fake("versatile-3", 0, 0.9908),))
    assert math.isnan(single.std) and single.accuracy_text() == "99.08 (1 seed)"


def test_run_group_refuses_mixed_runs_and_repeated_seeds():
    with pytest.raises(ValueError, match="one run"):
        R.RunGroup((fake("baseline", 0, 0.99), fake("versatile-3", 1, 0.99)))
    with pytest.raises(ValueError, match="seed"):
        R.RunGroup((fake("baseline", 0, 0.99), fake("baseline", 0, 0.98)))


def test_group_results_sorts_seeds_and_leaves_out_quick_runs():
    groups = R.group_results([fake("baseline", 2, 0.99), fake("baseline", 0, 0.98), fake("versatile-3", 0, 0.5, True)])
    assert list(groups) == ["baseline"] and groups["baseline"].seeds == [0, 2]


def test_pooled_seed_std_and_binomial_std_by_hand():
    groups = R.group_results([fake("baseline", 0, 0.9920), fake("baseline", 1, 0.9930),
                              fake("mvnet-a-10", 0, 0.9910), fake("mvnet-a-10", 1, 0.9914), fake("mvnet-a-10", 2, 0.9912),
                              fake("versatile-1", 0, 0.95)])
    # variances 0.005 (1 dof) and 0.0004 (2 dof), in points^2
    assert R.pooled_seed_std(groups) == pytest.approx(math.sqrt((0.005 + 2 * 0.0004) / 3))
    assert math.isnan(R.pooled_seed_std(R.group_results([fake("baseline", 0, 0.99)])))
    assert R.binomial_std(99.2, 10_000) == pytest.approx(0.0890842, rel=1e-6)
    assert R.binomial_std(50.0, 100) == pytest.approx(5.0)


def test_versatile_rows_take_costs_from_the_code_and_mark_missing_runs():
    groups = R.group_results([fake("baseline", 0, 0.9930), fake("baseline", 1, 0.9920)])
    rows = {row["model"]: row for row in R.versatile_rows(groups)}
    assert set(rows) == set(PAPER_TABLE2) | set(PAPER_TABLE3)
    for name, row in rows.items():
        printed = {"weights": row["paper_weights"], "flops": row["paper_flops"]}
        ours = summarize(lenet(name), (1, 28, 28)).paper_strings(like=printed)
        assert (row["weights"], row["memory"], row["flops"]) == (ours["weights"], ours["memory"], ours["flops"])
    assert rows["baseline"]["gap"] == pytest.approx(99.25 - 99.20)
    assert rows["versatile-3"]["accuracy"] == "not run" and rows["versatile-3"]["gap"] is None


def test_mvnet_rows_match_the_printed_parameter_counts():
    rows = R.mvnet_rows({})
    assert [row["model"] for row in rows] == list(PAPER_MVNET_TABLE1)
    assert all(row["params"] == row["paper_params"] for row in rows)
    assert all(row["accuracy"] == "not run" for row in rows)


def test_format_rows_aligns_columns_and_prints_gaps_in_points():
    rows = [{"model": "a", "gap": 0.123}, {"model": "longer", "gap": None}]
    text = R.format_rows(rows, [("model", "model"), ("gap", "gap")]).splitlines()
    assert text[0] == "model     gap" and set(text[1]) == {"-"}
    assert text[2] == "a       +0.12" and text[3] == "longer"


def test_gap_verdicts_scale_the_gap_by_the_training_noise():
    groups = R.group_results([fake("baseline", 0, 0.9950)])
    rows = [row for row in R.versatile_rows(groups) if row["model"] == "baseline"]
    line = R.gap_verdicts(rows, sigma=0.1)     # gap 0.30, scale 0.1*sqrt(2) = 0.141
    assert "+2.1 x 0.141" in line and "larger than training noise" in line
    assert "within training noise" in R.gap_verdicts(rows, sigma=0.2)


def test_fig2_helpers_and_descriptions():
    groups = R.group_results([fake("mvnet-a-10", 0, 0.99), fake("mvnet-a-5-lam0.1-e5", 0, 0.98)])
    assert R.fig2a_points(groups, (5, 10)) == {10: (1000.0, pytest.approx(99.0))}
    curves = R.fig2b_curves(groups, (5,), (0.01, 0.1), 5)
    assert math.isnan(curves[5][0]) and curves[5][1] == pytest.approx(98.0)
    text = R.describe_runs(groups, ["mvnet-a-10", "baseline-numpy"])
    assert "mvnet-a-10" in text and "git 01234567" in text
    assert "python -m minilib.reproduce mnist --backend numpy --runs baseline" in text


def test_load_results_names_the_command_when_the_folder_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m minilib.reproduce mnist"):
        R.load_results("mnist", tmp_path / "nothing")
    (tmp_path / "b_seed0.json").write_text(json.dumps({"run": "b"}))
    (tmp_path / "a_seed0.json").write_text(json.dumps({"run": "a"}))
    assert [r["run"] for r in R.load_results("mnist", tmp_path)] == ["a", "b"]


def test_the_chapters_read_the_committed_results_and_show_every_run():
    """Chapters 05 and 09 call load_results("mnist"); every committed run is one the chapters list (the
    default plans of both backends), so no result file is left out of the book."""
    for chapter in CHAPTERS:
        source = "\n".join(cell.source for cell in nbformat.read(NOTEBOOKS / chapter, 4).cells)
        assert 'R.load_results("mnist")' in source, chapter
    shown = {run.name for backend in mnist.BACKENDS for run in mnist.default_runs(backend)}
    committed = {json.loads(path.read_text())["run"] for path in (RESULTS_DIR / "mnist").glob("*.json")}
    assert committed <= shown, f"runs no chapter shows: {sorted(committed - shown)}"
