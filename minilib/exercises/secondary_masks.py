"""Exercise (chapter 3, ex03-even-masks): the masks of spatial versatile filters.

Check with ``make check-exercise NAME=secondary_masks``; the library's solution is
:func:`minilib.versatile.secondary_masks`.
"""
from __future__ import annotations

import numpy as np


def secondary_masks(kernel_size) -> np.ndarray:
    """The 0/1 masks M_1, ..., M_s of Eq. 2 (Versatile filters) for a d x d primary filter, shape (s, d, d).

    A primary filter f yields s = ceil(d/2) secondary filters f_i = M_i ∘ f (Eq. 3); M_i keeps the centred
    window of size (d - 2i + 2) x (d - 2i + 2) with the paper's 1-based i. With 0-based i as in code,
    ``masks[i]`` is 1 on rows and columns i, ..., d - i - 1 and 0 elsewhere (a window of size d - 2i):
    d = 5 gives 5x5, 3x3 and 1x1 windows; d = 4 gives 4x4 and 2x2; d = 1 one 1x1 mask.

    Args:
        kernel_size: d, or a pair (d, d). Versatile filters are square: a pair (kh, kw) with kh != kw must
            raise ``ValueError`` whose message names ``kernel_size``.

    Returns:
        A float array of shape (s, d, d) holding 0.0 and 1.0.

    Hint: ``minilib.checks.positive_pair(kernel_size, "kernel_size")`` turns an int or a pair into (kh, kw).
    """
    raise NotImplementedError("fill in minilib/exercises/secondary_masks.py (chapter 3), "
                              "then run: make check-exercise NAME=secondary_masks")
