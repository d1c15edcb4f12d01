"""The MVNet claims on synthetic runs whose answer is known: a clear win, a clear loss, noise, a match within the
margin, and divergence deciding a comparison."""
import pytest

from minilib import stats
from minilib.reports import mvnet_claims as M
from minilib.reports import runs as R


def runs(name, *accuracies):
    """Result dicts of one run, one per seed; None is a seed that diverged."""
    return [{"run": name, "seed": seed, "test_accuracy": None if acc is None else acc / 100,
             "diverged": {"epoch": 1, "batch": 3} if acc is None else None} for seed, acc in enumerate(accuracies)]


def verdict(comparison, *results):
    return M.evaluate(comparison, R.group_results([r for group in results for r in group]))


def test_the_plan_covers_four_claims_and_both_penalty_scales():
    found = M.comparisons()
    assert {c.claim for c in found} == {1, 2, 3, 4}
    assert {c.penalty for c in found if c.claim < 4} == {"eq7", "released"}
    assert sum(c.claim == 4 for c in found) == 6
    released = [c for c in found if c.penalty == "released"]
    assert all(c.a.endswith("-released") for c in released)
    assert all(c.b == "baseline" or "rand" in c.b or c.b.endswith("-released") for c in released)


def test_a_clear_win_and_a_clear_loss():
    win = M.Comparison(2, "mvnet-a-20", "mvnet-a-rand-20", "direction")
    row = verdict(win, runs("mvnet-a-20", 99.0, 99.02, 98.98), runs("mvnet-a-rand-20", 98.5, 98.52, 98.48))
    assert row["verdict"] == stats.CONFIRMED and row["difference"].mean == pytest.approx(0.5)
    assert row["paper"] == pytest.approx(99.01 - 98.55)
    row = verdict(win, runs("mvnet-a-20", 98.5, 98.52, 98.48), runs("mvnet-a-rand-20", 99.0, 99.02, 98.98))
    assert row["verdict"] == stats.CONTRADICTED


def test_noise_is_not_resolvable_and_a_match_within_the_margin_is_confirmed():
    direction = M.Comparison(3, "mvnet-b-10", "mvnet-a-10", "direction")
    row = verdict(direction, runs("mvnet-b-10", 99.3, 98.9, 99.1), runs("mvnet-a-10", 99.0, 99.3, 98.9))
    assert row["verdict"] == stats.UNRESOLVED
    match = M.Comparison(1, "mvnet-a-10", "baseline", "equivalence")
    row = verdict(match, runs("mvnet-a-10", 99.20, 99.21, 99.19), runs("baseline", 99.21, 99.20, 99.19))
    assert row["verdict"] == stats.CONFIRMED
    row = verdict(match, runs("mvnet-a-10", 98.90, 98.91, 98.89), runs("baseline", 99.21, 99.20, 99.19))
    assert row["verdict"] == stats.CONTRADICTED


def test_divergence_decides_and_is_counted():
    sweep = M.Comparison(4, "mvnet-a-20-lam0.1-e5", "mvnet-a-20-lam10-e5", "direction")
    row = verdict(sweep, runs("mvnet-a-20-lam0.1-e5", 98.0, 98.1, 97.9), runs("mvnet-a-20-lam10-e5", None, None, None))
    assert row["verdict"] == stats.CONFIRMED and "3 of 3 seeds diverged" in row["note"]
    row = verdict(sweep, runs("mvnet-a-20-lam0.1-e5", None, None), runs("mvnet-a-20-lam10-e5", 97.0, 97.1))
    assert row["verdict"] == stats.CONTRADICTED
    row = verdict(sweep, runs("mvnet-a-20-lam0.1-e5", 98.0, None, 98.2), runs("mvnet-a-20-lam10-e5", 97.0, 97.1, 97.05))
    assert row["verdict"] == stats.CONFIRMED and "1 of 3 seeds diverged" in row["note"]


def test_missing_runs_and_single_seeds_are_said_so():
    comparison = M.Comparison(2, "mvnet-b-20", "mvnet-b-rand-20", "direction")
    assert verdict(comparison, runs("mvnet-b-20", 99.0))["verdict"] == "not run yet"
    assert verdict(comparison, runs("mvnet-b-20", 99.0), runs("mvnet-b-rand-20", 98.0))["verdict"] == "too few seeds"


def test_claim_verdicts_and_table():
    rows = [{"claim": 2, "penalty": "eq7", "verdict": stats.CONFIRMED},
            {"claim": 2, "penalty": "eq7", "verdict": stats.CONFIRMED},
            {"claim": 3, "penalty": "eq7", "verdict": stats.CONFIRMED},
            {"claim": 3, "penalty": "eq7", "verdict": stats.CONTRADICTED},
            {"claim": 3, "penalty": "released", "verdict": stats.UNRESOLVED},
            {"claim": 3, "penalty": "released", "verdict": stats.CONTRADICTED},
            {"claim": 1, "penalty": "eq7", "verdict": stats.UNRESOLVED},
            {"claim": 1, "penalty": "released", "verdict": "not run yet"}]
    assert M.claim_verdicts(rows) == {(2, "eq7"): stats.CONFIRMED, (3, "eq7"): "mixed",
                                      (3, "released"): stats.CONTRADICTED, (1, "eq7"): stats.UNRESOLVED,
                                      (1, "released"): "not run yet"}
    groups = R.group_results(runs("mvnet-a-10", 99.2, 99.1, 99.0) + runs("baseline", 99.2, 99.25, 99.3))
    table = M.claims_table(M.claim_rows(groups))
    first = table.rows[0]
    assert first["comparison"] == "mvnet-a-10 − baseline" and first["ours"].startswith("-0.15 [")
    assert first["paper"] == "-0.03" and "<th" in table._repr_html_()


def test_seed_summaries_count_divergence_and_texts_say_it():
    group = R.group_results(runs("mvnet-a-20-lam1-e5", 98.0, None, 98.2))["mvnet-a-20-lam1-e5"]
    summary = M.seed_summary(group)
    assert (summary["finite"], summary["diverged"], summary["seeds"]) == (2, 1, 3)
    assert summary["mean"] == pytest.approx(98.1) and M.seed_text(summary) == "98.10 ± 0.14 (1 of 3 diverged)"
    lost = M.seed_summary(R.group_results(runs("x", None, None))["x"])
    assert M.seed_text(lost) == "diverged (2 of 2)"
    assert M.seed_text(M.seed_summary(R.group_results(runs("y", 99.0))["y"])) == "99.00"


def test_sweep_and_fig2a_tables_and_points():
    results = runs("mvnet-a-5-lam0.1-e5", 99.0, 99.1) + runs("mvnet-a-20-lam10-e5", None)
    results += [dict(r, cost={"params_32bit": 28000.0}) for r in runs("mvnet-a-20-released", 98.9, 99.0)]
    groups = R.group_results(results)
    cells = {row["s"]: row for row in M.sweep_table(groups).rows}
    assert cells["5"]["0.1"] == "99.05 ± 0.07" and cells["20"]["10"] == "diverged (1 of 1)"
    assert cells["10"]["0.1"] == "not run"
    assert M.sweep_points(groups)[5] == [(0.1, M.seed_summary(groups["mvnet-a-5-lam0.1-e5"]))]
    assert M.fig2a_points(groups, "released") == {"s=20": (28000.0, pytest.approx(98.95), pytest.approx(0.0707, abs=1e-4))}
    rows = {row["run"]: row for row in M.fig2a_table(groups, {20: (1.0, 99.01)}).rows}
    assert rows["mvnet-a-20-released"]["paper"] == "99.01" and rows["mvnet-a-2"]["accuracy"] == "not run yet"


def test_scale_and_decay_rows_compare_the_named_runs():
    groups = R.group_results(runs("mvnet-a-20-released", 99.0, 99.02, 98.98) + runs("mvnet-a-20", 98.4, 98.38, 98.42))
    rows = {row["comparison"]: row for row in M.scale_rows(groups)}
    win = rows["mvnet-a-20-released − mvnet-a-20"]
    assert win["verdict"] == stats.CONFIRMED and M.phrase(win).endswith("points (*confirmed*)")
    assert M.phrase(rows["mvnet-b-10-released − mvnet-b-10"]) == "not run yet"
    assert [row["comparison"] for row in M.decay_rows(groups)] == [
        "mvnet-a-20-released-nomaskwd − mvnet-a-20-released", "mvnet-b-20-released-nomaskwd − mvnet-b-20-released"]


def test_plot_sweep_draws_a_curve_per_label_and_skips_lost_points():
    import matplotlib
    matplotlib.use("Agg")
    from minilib import viz
    ax = viz.plot_sweep({"s=5": [(0.01, 99.0, 0.1), (0.1, 98.9, float("nan"))],
                         "s=20": [(0.01, float("nan"), float("nan"))]})
    assert [text.get_text() for text in ax.get_legend().get_texts()] == ["s=5"]
    assert len(ax.containers) == 1 and ax.get_xscale() == "log"
