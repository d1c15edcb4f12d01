"""Is a difference between two methods real? Intervals over seeds and the verdicts the chapters print.

A run is trained with a few seeds; its test accuracy varies from seed to seed. The difference of two runs' means is
given with a 95 % **Welch t interval** (unequal variances, Welch-Satterthwaite degrees of freedom), the usual
choice for two small samples whose spreads may differ. With three seeds a side the interval is wide (t ≈ 2.8-4.3),
and that is the honest answer.

A claim is one of two kinds:

- *direction*: "a beats b" (the difference a - b is positive): **confirmed** when the whole interval is above 0,
  **contradicted** when it is below 0, otherwise **not resolvable at this noise**;
- *equivalence*: "a matches b" within a margin δ: **confirmed** when the interval lies inside (-δ, δ),
  **contradicted** when it lies entirely outside, otherwise not resolvable.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from . import checks

CONFIRMED, CONTRADICTED, UNRESOLVED = "confirmed", "contradicted", "not resolvable at this noise"


@dataclasses.dataclass(frozen=True)
class Difference:
    """``mean(a) - mean(b)`` with its interval ``[low, high]`` at ``level``; ``se`` its standard error, ``df`` the
    Welch degrees of freedom, ``n_a`` and ``n_b`` the seeds on each side."""
    mean: float
    low: float
    high: float
    se: float
    df: float
    n_a: int
    n_b: int
    level: float = 0.95

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    def text(self, digits: int = 2) -> str:
        """``"+0.12 [-0.05, +0.29]"``."""
        return f"{self.mean:+.{digits}f} [{self.low:+.{digits}f}, {self.high:+.{digits}f}]"


def _incomplete_beta(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b), by its continued fraction (modified Lentz)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    if x > (a + 1) / (a + b + 2):           # the fraction converges fast only below this point: use the symmetry
        return 1.0 - _incomplete_beta(b, a, 1.0 - x)
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    fraction = d
    for m in range(1, 500):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            fraction *= c * d
        if abs(c * d - 1.0) < 1e-15:
            break
    return math.exp(log_front) * fraction / a


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` (real, > 0) degrees of freedom."""
    tail = 0.5 * _incomplete_beta(df / 2, 0.5, df / (df + t * t))
    return 1.0 - tail if t > 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The t with P(T <= t) = ``p``, for 0.5 <= p < 1, by bisection on :func:`t_cdf` (to 1e-12)."""
    low, high = 0.0, 1.0
    while t_cdf(high, df) < p:
        high *= 2
    while high - low > 1e-12 * max(1.0, high):
        middle = (low + high) / 2
        low, high = (middle, high) if t_cdf(middle, df) < p else (low, middle)
    return (low + high) / 2


def _sample(values, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != 1 or len(array) < 2:
        raise ValueError(f"{name} must hold at least 2 values (one per seed), got {array.tolist()}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite, got {array.tolist()}")
    return array


def welch_difference(a, b, level: float = 0.95) -> Difference:
    """The difference of the means of samples ``a`` and ``b`` (at least 2 values each) with a Welch t interval.

    Two samples without any spread (all values equal on both sides) give a zero-width interval."""
    a, b = _sample(a, "a"), _sample(b, "b")
    level = checks.positive_number(level, "level")
    if not 0 < level < 1:
        raise ValueError(f"level={level} must be between 0 and 1")
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    mean = float(a.mean() - b.mean())
    if se == 0:
        return Difference(mean, mean, mean, 0.0, math.inf, len(a), len(b), level)
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    t = t_quantile(0.5 + level / 2, df)
    return Difference(mean, mean - t * se, mean + t * se, se, df, len(a), len(b), level)


def direction_verdict(difference: Difference) -> str:
    """For the claim "a beats b": confirmed, contradicted or not resolvable (see the module's rules)."""
    if difference.low > 0:
        return CONFIRMED
    if difference.high < 0:
        return CONTRADICTED
    return UNRESOLVED


def equivalence_verdict(difference: Difference, margin: float) -> str:
    """For the claim "a matches b within ``margin``" (same unit as the values)."""
    margin = checks.positive_number(margin, "margin")
    if -margin < difference.low and difference.high < margin:
        return CONFIRMED
    if difference.low >= margin or difference.high <= -margin:
        return CONTRADICTED
    return UNRESOLVED
