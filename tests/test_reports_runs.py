"""The run tables (:mod:`minilib.reports.runs`) that the reproduction chapters (05, 09) use to read ``results/mnist``.

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
from minilib.models import lenet
from minilib.reports import runs as R
from minilib.reports.papers import MVNET_TABLE1, VERSATILE_TABLE2, VERSATILE_TABLE3
from minilib.reproduce import mnist
from minilib.results import RESULTS_DIR, QuickResultWarning
from result_helpers import write_mnist_result

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
CHAPTERS = ("05_reproducing_versatile_filters_on_mnist.ipynb", "09_reproducing_mvnet_on_mnist.ipynb")


def fake(run, seed, accuracy, quick=False, epochs=3):
    """The fields of a result file that the report reads; ``accuracy`` as a fraction."""
    history = {"val_accuracy": [accuracy - 0.01 * k for k in range(epochs)][::-1],
               "train_loss": [1.0 / (k + 1) for k in range(epochs)], "penalty": [None] * epochs}
    return {"run": run, "model": run.split("-lam")[0], "seed": seed, "test_accuracy": accuracy, "quick": quick,
            "epoch_seconds": 2.0 + seed, "wall_seconds": 60.0, "history": history, "backend": "torch", "threads": 1,
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


def test_a_diverged_run_reads_as_diverged_not_as_a_number():
    diverged = {**fake("mvnet-a-50", 0, 0.1, epochs=1), "test_accuracy": None, "diverged": {"epoch": 2, "batch": 79, "batches_per_epoch": 391}}
    group = R.RunGroup((diverged,))
    assert math.isnan(group.mean) and group.diverged == [diverged["diverged"]]
    assert group.accuracy_text() == "diverged (epoch 2)"
    assert R.RunGroup((fake("baseline", 0, 0.99),)).diverged == []
    curves = R.fig2b_curves(R.group_results([{**diverged, "run": "mvnet-a-5-lam10-e5"}]), (5,), (0.1, 10), 5)
    assert all(math.isnan(value) for value in curves[5])


def test_run_group_refuses_mixed_runs_and_repeated_seeds():
    with pytest.raises(ValueError, match="one run"):
        R.RunGroup((fake("baseline", 0, 0.99), fake("versatile-3", 1, 0.99)))
    with pytest.raises(ValueError, match="seed"):
        R.RunGroup((fake("baseline", 0, 0.99), fake("baseline", 0, 0.98)))


def test_group_results_sorts_seeds_and_leaves_out_quick_runs():
    with pytest.warns(QuickResultWarning, match="versatile-3 seed 0"):      # never silently
        groups = R.group_results([fake("baseline", 2, 0.99), fake("baseline", 0, 0.98),
                                  fake("versatile-3", 0, 0.5, True)])
    assert list(groups) == ["baseline"] and groups["baseline"].seeds == [0, 2]


def test_pooled_seed_std_and_binomial_std_by_hand():
    groups_results = [fake("baseline", 0, 0.9920), fake("baseline", 1, 0.9930),
                      fake("mvnet-a-10", 0, 0.9910), fake("mvnet-a-10", 1, 0.9914), fake("mvnet-a-10", 2, 0.9912),
                      fake("versatile-1", 0, 0.95)]
    groups = R.group_results(groups_results)
    # variances 0.005 (1 dof) and 0.0004 (2 dof), in points^2
    assert R.pooled_seed_std(groups) == pytest.approx(math.sqrt((0.005 + 2 * 0.0004) / 3))
    assert math.isnan(R.pooled_seed_std(R.group_results([fake("baseline", 0, 0.99)])))
    # a diverged seed has no accuracy: it is left out of its run's spread, and a run with one finished seed adds none
    diverged = [{**fake("mvnet-a-20-lam10-e5", seed, 0.99), "test_accuracy": None} for seed in (0, 1)]
    with_diverged = R.group_results([*groups_results, *diverged, fake("mvnet-a-20-lam10-e5", 2, 0.5)])
    assert R.pooled_seed_std(with_diverged) == pytest.approx(math.sqrt((0.005 + 2 * 0.0004) / 3))
    assert R.binomial_std(99.2, 10_000) == pytest.approx(0.0890842, rel=1e-6)
    assert R.binomial_std(50.0, 100) == pytest.approx(5.0)


def test_versatile_rows_take_costs_from_the_code_and_mark_missing_runs():
    groups = R.group_results([fake("baseline", 0, 0.9930), fake("baseline", 1, 0.9920)])
    rows = {row["model"]: row for row in R.versatile_rows(groups)}
    assert set(rows) == set(VERSATILE_TABLE2) | set(VERSATILE_TABLE3)
    for name, row in rows.items():
        printed = {"weights": row["paper_weights"], "flops": row["paper_flops"]}
        ours = summarize(lenet(name), (1, 28, 28)).paper_strings(like=printed)
        assert (row["weights"], row["memory"], row["flops"]) == (ours["weights"], ours["memory"], ours["flops"])
    assert rows["baseline"]["gap"] == pytest.approx(99.25 - 99.20)
    assert rows["versatile-3"]["accuracy"] == "not run" and rows["versatile-3"]["gap"] is None


def test_mvnet_rows_match_the_printed_parameter_counts():
    rows = R.mvnet_rows({})
    assert [row["model"] for row in rows] == list(MVNET_TABLE1)
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
    table = R.describe_runs(groups, ["mvnet-a-10", "baseline-numpy"])
    done, todo = table.rows
    assert done["run"] == "mvnet-a-10" and done["git"] == "01234567" and done["seeds"] == "0"
    assert todo["seeds"] == "not run yet" and done["minutes"] == "1.0 (1)"
    assert "1 run(s) not yet: python -m minilib.reproduce mnist --runs NAME (--backend numpy" in table.title
    assert "<th" in table._repr_html_() and "mvnet-a-10" in str(table)


def test_load_results_names_the_command_when_the_folder_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m minilib.reproduce mnist"):
        R.load_results("mnist", tmp_path / "nothing")
    write_mnist_result(tmp_path, "versatile-3")
    write_mnist_result(tmp_path, "baseline")
    assert [r["run"] for r in R.load_results("mnist", tmp_path)] == ["baseline-numpy", "versatile-3-numpy"]


def test_the_chapters_read_the_committed_results_and_show_every_run():
    """Chapters 05 and 09 call load_results("mnist"); every committed run is one the chapters list (the
    default plans of both backends), so no result file is left out of the book."""
    for chapter in CHAPTERS:
        source = "\n".join(cell.source for cell in nbformat.read(NOTEBOOKS / chapter, 4).cells)
        assert 'R.load_results("mnist")' in source, chapter
    shown = {run.name for backend in mnist.BACKENDS for run in mnist.default_runs(backend)}
    committed = {json.loads(path.read_text())["run"] for path in (RESULTS_DIR / "mnist").glob("*.json")}
    assert committed <= shown, f"runs no chapter shows: {sorted(committed - shown)}"


def test_spread_text_over_seeds():
    assert R.spread_text([30.0]) == "30.00 (1 seed)"
    assert R.spread_text([30.0, 31.0]) == f"30.50 ± {math.sqrt(0.5):.2f} (2 seeds)"


def fake_cifar(run, seed, accuracy, params=1000, ratio=1.0):
    return {"run": run, "seed": seed, "quick": False, "method": run, "test_accuracy": accuracy,
            "cost": {"params": params}, "compression": {"params_32bit": params / 1000, "flops": 0.5},
            "latency": {"torch": {"batch_1": {"per_image_ms": 2.0 + seed}, "batch_128": {"per_image_ms": 1.0}},
                        "numpy_layer": {"ratio": ratio}}}


def test_cifar_rows_by_hand():
    groups = R.group_results([fake_cifar("baseline", 0, 0.80), fake_cifar("baseline", 1, 0.82),
                              fake_cifar("mvnet-b-4", 0, 0.79, params=250, ratio=3.0)])
    rows = {row["run"]: row for row in R.cifar_rows(groups, ["baseline", "mvnet-b-4", "versatile"])}
    assert rows["baseline"]["accuracy"] == R.spread_text([80.0, 82.0]) and rows["baseline"]["delta"] == 0
    assert rows["baseline"]["latency_1"] == "2.50"                     # median over the seeds
    assert rows["mvnet-b-4"]["delta"] == pytest.approx(79.0 - 81.0)
    assert (rows["mvnet-b-4"]["params"], rows["mvnet-b-4"]["params_pct"], rows["mvnet-b-4"]["mults_pct"],
            rows["mvnet-b-4"]["numpy_ratio"]) == ("250", "25.0", "50.0", "3.00")
    assert rows["versatile"]["accuracy"] == "not run" and rows["versatile"]["delta"] is None


def fake_sr(run, seed, set5, set14, n_basis=None, splits=None, shared=False, s=None):
    return {"run": run, "seed": seed, "quick": False, "n_basis": n_basis, "splits": splits, "share_basis": shared,
            "s": s, "psnr": {"Set5": set5, "Set14": set14},
            "cost": {"block": {"params_32bit": 1234.0}}, "compression": {"block": 0.25, "total": 0.5}}


def test_sr_rows_by_hand():
    groups = R.group_results([fake_sr("baseline", 0, 36.0, 32.0), fake_sr("baseline", 1, 36.2, 32.2),
                              fake_sr("basis-m8-s4-shared", 0, 35.5, 31.9, 8, 4, True)])
    rows = {row["run"]: row for row in R.sr_rows(groups, ["baseline", "basis-m8-s4-shared", "mvnet-b-4"])}
    basis = rows["basis-m8-s4-shared"]
    assert (basis["m"], basis["s"], basis["shared"], basis["block_params"], basis["block_pct"], basis["total_pct"]) \
        == (8, 4, "yes", "1,234", "25.0", "50.0")
    assert basis["delta_Set5"] == pytest.approx(35.5 - 36.1) and basis["delta_Set14"] == pytest.approx(31.9 - 32.1)
    assert rows["mvnet-b-4"]["Set5"] == "not run" and rows["mvnet-b-4"]["delta_Set14"] is None


def test_the_transcribed_table1_counts_and_rates_are_consistent():
    """Li et al.'s Table 1 as transcribed: each block count is m p k^2 basis numbers (once when shared) plus m n
    coefficients per convolution (the count chapter 6 shows the paper used), n = 256, p = n/4, k = 3, and each rate
    is that count over the baseline block's 2 (9 n^2 + n) = 1,180,160; every compressed row is below the baseline."""
    from minilib.reports import papers

    base = papers.BASIS_TABLE1["baseline"]
    assert len(base["psnr"]) == len(papers.BASIS_TABLE1_SETS)
    for key, row in papers.BASIS_TABLE1.items():
        if key == "baseline":
            continue
        m, shared = key
        count = (1 if shared else 2) * m * 64 * 9 + 2 * m * 256
        assert row["block_params"] == f"{round(count / 1000)}k", key
        assert row["rate"] == round(100 * count / 1_180_160, 1), key
        assert all(p < b for p, b in zip(row["psnr"], base["psnr"])), key


def test_a_table_prints_as_text_and_shows_as_html():
    rows = [{"model": "a<b", "accuracy": "99.1", "gap": -0.123}, {"model": "c", "accuracy": "not run", "gap": None}]
    table = R.Table(rows, [("model", "model"), ("acc %", "accuracy"), ("gap", "gap")], title="T")
    text = str(table)
    assert text.splitlines()[0] == "T" and text.splitlines()[1:] == R.format_rows(rows, table.columns).splitlines()
    page = table._repr_html_()
    assert page.count("<tr>") == 3 and "<caption>T</caption>" in page
    assert "a&lt;b" in page and "-0.12" in page and "not run" in page
    assert "white-space:nowrap" in page and "text-align:right" in page
    first, *numbers = page.split("<tr>")[2].split("<td")[1:]
    assert "white-space:normal" in first and all("white-space:nowrap" in cell for cell in numbers)


def test_a_table_of_prose_wraps_and_aligns_left():
    rows = [{"question": "which?", "answer": "a long answer that may break over lines"}]
    page = R.Table(rows, [("question", "question"), ("answer", "answer")], wrap=True)._repr_html_()
    assert "white-space:normal" in page and "text-align:right" not in page


def test_difference_of_two_runs_and_its_standard_error():
    groups = R.group_results([fake("a", 0, 0.992), fake("a", 1, 0.994), fake("b", 0, 0.990)])
    delta, se = R.difference(groups, "a", "b", sigma=0.1)
    assert delta == pytest.approx(0.3) and se == pytest.approx(0.1 * math.sqrt(1 / 2 + 1))
