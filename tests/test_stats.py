"""minilib.stats: the t distribution against printed tables and a numeric integral, Welch intervals against a
worked example and their coverage on simulated seeds, and the verdicts on differences whose answer is known."""
import math

import numpy as np
import pytest

from minilib import stats as S

# two-sided 95 % critical values of Student's t, as printed in every table
T975 = {1: 12.7062, 2: 4.3027, 3: 3.1824, 4: 2.7764, 5: 2.5706, 10: 2.2281, 30: 2.0423}


@pytest.mark.parametrize("df", sorted(T975))
def test_t_quantile_matches_the_printed_table(df):
    assert S.t_quantile(0.975, df) == pytest.approx(T975[df], abs=1e-4)


@pytest.mark.parametrize("df", [1.5, 2.7, 6.3])
def test_t_cdf_is_the_integral_of_the_density(df):
    t = np.linspace(-200, 1.3, 400_001)
    density = math.gamma((df + 1) / 2) / (math.sqrt(df * math.pi) * math.gamma(df / 2)) * (1 + t * t / df) ** (
        -(df + 1) / 2)
    tail = S.t_cdf(-200.0, df)                      # the mass left of the grid
    assert S.t_cdf(1.3, df) == pytest.approx(tail + np.trapezoid(density, t), abs=1e-6)
    assert S.t_cdf(0.0, df) == pytest.approx(0.5) and S.t_cdf(-1.3, df) == pytest.approx(1 - S.t_cdf(1.3, df))


def test_welch_difference_worked_example():
    a, b = [99.2, 99.3, 99.1], [98.9, 99.0, 98.6]
    d = S.welch_difference(a, b)
    se = math.sqrt(np.var(a, ddof=1) / 3 + np.var(b, ddof=1) / 3)
    df = se ** 4 / ((np.var(a, ddof=1) / 3) ** 2 / 2 + (np.var(b, ddof=1) / 3) ** 2 / 2)
    assert d.mean == pytest.approx(0.3667, abs=1e-4) and d.se == pytest.approx(se) and d.df == pytest.approx(df)
    assert d.high - d.mean == pytest.approx(S.t_quantile(0.975, df) * se)
    assert d.text() == f"+0.37 [{d.low:+.2f}, {d.high:+.2f}]"


def test_welch_interval_covers_the_true_difference_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    hits = sum(d.low <= 0.2 <= d.high for d in (S.welch_difference(rng.normal(99.2, 0.05, 3),
                                                                     rng.normal(99.0, 0.1, 3)) for _ in range(4000)))
    assert 0.935 < hits / 4000 < 0.965


def test_verdicts_on_differences_whose_answer_is_known():
    clear_win = S.welch_difference([99.3, 99.31, 99.29], [99.0, 99.02, 98.98])
    assert S.direction_verdict(clear_win) == S.CONFIRMED
    assert S.direction_verdict(S.welch_difference([99.0, 99.02, 98.98], [99.3, 99.31, 99.29])) == S.CONTRADICTED
    noisy = S.welch_difference([99.3, 98.9, 99.1], [99.0, 99.3, 98.9])
    assert S.direction_verdict(noisy) == S.UNRESOLVED
    same = S.welch_difference([99.20, 99.21, 99.19], [99.21, 99.20, 99.19])
    assert S.equivalence_verdict(same, margin=0.1) == S.CONFIRMED
    assert S.equivalence_verdict(clear_win, margin=0.1) == S.CONTRADICTED
    assert S.equivalence_verdict(noisy, margin=0.1) == S.UNRESOLVED
    flat = S.welch_difference([1.0, 1.0], [0.5, 0.5])
    assert (flat.low, flat.high) == (0.5, 0.5) and S.direction_verdict(flat) == S.CONFIRMED


@pytest.mark.parametrize("a, b, message", [([99.0], [98.0, 98.1], "a must hold at least 2 values"),
                                           ([99.0, float("nan")], [98.0, 98.1], "a must be finite"),
                                           ([[1.0, 2.0]], [1.0, 2.0], "a must hold")])
def test_bad_samples_are_named(a, b, message):
    with pytest.raises(ValueError, match=message):
        S.welch_difference(a, b)


def test_bad_level_and_margin_are_named():
    d = S.welch_difference([1.0, 2.0], [1.0, 3.0])
    with pytest.raises(ValueError, match="level=1.5"):
        S.welch_difference([1.0, 2.0], [1.0, 3.0], level=1.5)
    with pytest.raises(ValueError, match="margin"):
        S.equivalence_verdict(d, margin=0)
