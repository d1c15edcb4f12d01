"""Exercise (chapter 6, ex06-rate): the number of splits that Eq. 7 of the filter-basis paper recommends.

Check with ``make check-exercise NAME=optimal_splits``; the library's solution is :func:`minilib.basis.optimal_splits`.
"""
from __future__ import annotations


def optimal_splits(c, n, k) -> int:
    """The number of splits s for a c -> n convolution with k x k kernels (Eq. 7, Filter basis).

    Minimising the compression rate of Eq. 6, m/(n*s) + m/(p*kh*kw), over real s with c = s*p gives

        s* = sqrt(c*kh*kw / n),   p* = sqrt(n*c / (kh*kw))       (independent of m)

    As the paper says, p is then quantised to the divisor of c nearest to p*; return s = c/p. When two
    divisors are equally near (c = 4, n = 9, k = 2 has p* = 3 between 2 and 4), take the one with the
    lower rate of Eq. 6 (``minilib.basis.compression_rate(c, n, k, 1, c // p)``; m cancels in the comparison).

    Args:
        c, n: input and output channels, >= 1.
        k: the kernel size, an int or a pair (kh, kw).

    Returns:
        s as a Python int that divides c.
    """
    raise NotImplementedError("fill in minilib/exercises/optimal_splits.py (chapter 6), "
                              "then run: make check-exercise NAME=optimal_splits")
