"""Exercise (chapter 6, ex06-rate): the compression rate of a split filter basis.

Check with ``make check-exercise NAME=compression_rate``; the library's solution is
:func:`minilib.basis.compression_rate`.
"""
from __future__ import annotations


def compression_rate(c, n, k, m, s) -> float:
    """Stored weights of a filter-basis layer relative to the c -> n convolution it replaces (Eq. 6, Filter basis).

    The c input channels are cut into s splits of p = c/s channels. One basis of m filters (p x kh x kw)
    serves every split, and each of the n outputs mixes the s*m basis responses with its own coefficients:

        (m*p*kh*kw + m*n*s) / (n*c*kh*kw) = m/(n*s) + m/(p*kh*kw)          (Eq. 6; s = 1 is Eq. 4, s = c Eq. 5)

    Args:
        c, n: input and output channels of the original convolution.
        k: the kernel size, an int or a pair (kh, kw) (the paper's w x h).
        m: the number of basis filters.
        s: the number of splits; it must divide c, otherwise raise ``ValueError`` whose message names ``s``.

    Returns:
        The rate as a float (below 1 means fewer stored weights). Biases are not counted.
    """
    raise NotImplementedError("fill in minilib/exercises/compression_rate.py (chapter 6), "
                              "then run: make check-exercise NAME=compression_rate")
