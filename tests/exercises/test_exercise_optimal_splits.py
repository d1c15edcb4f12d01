"""Checks for the optimal_splits exercise (chapter 6): Eq. 7 of the filter-basis paper, p quantised to the
divisor of c nearest to p* = sqrt(n*c/(kh*kw)), a tie going to the lower rate of Eq. 6."""
import math

import numpy as np
import pytest

EXERCISE = "optimal_splits"


def rate(c, n, taps, s):
    """Eq. 6 with m = 1 (m scales every rate alike)."""
    return 1 / (n * s) + 1 / ((c // s) * taps)


def splits_by_search(c, n, taps):
    p_star = math.sqrt(n * c / taps)
    best = None
    for p in range(1, c + 1):
        if c % p == 0:
            key = (abs(p - p_star), rate(c, n, taps, c // p))
            if best is None or key < best[0]:
                best = (key, c // p)
    return best[1]


def test_the_chapter_example(implementation):
    # c = n = 256, 3x3: p* = 256/3 = 85.3, the nearest divisor of 256 is 64, so s = 4
    assert implementation(256, 256, 3) == 4


def test_exact_optimum_is_kept(implementation):
    assert implementation(64, 64, 2) == 2        # p* = 32 divides 64
    assert implementation(32, 32, 1) == 1        # 1x1: p* = c, no split


def test_a_tie_goes_to_the_lower_rate(implementation):
    # p* = sqrt(9*4/4) = 3 lies halfway between the divisors 2 and 4; p = 4 (s = 1) has the lower rate
    assert rate(4, 9, 4, 1) < rate(4, 9, 4, 2)
    assert implementation(4, 9, 2) == 1


def test_rectangular_kernel(implementation):
    assert implementation(48, 30, (1, 5)) == splits_by_search(48, 30, 5)


def test_random_layers(implementation):
    rng = np.random.default_rng(0)
    for _ in range(40):
        c, n, k = int(rng.integers(1, 300)), int(rng.integers(1, 300)), int(rng.integers(1, 6))
        s = implementation(c, n, k)
        assert isinstance(s, int) and c % s == 0, f"c={c}, n={n}, k={k}: s={s!r} must be an int dividing c"
        assert s == splits_by_search(c, n, k * k), f"c={c}, n={n}, k={k}"


@pytest.mark.parametrize("c, n, k", [(1, 1, 1), (7, 50, 3), (1024, 16, 7)])
def test_edge_cases(implementation, c, n, k):
    assert implementation(c, n, k) == splits_by_search(c, n, k * k)
