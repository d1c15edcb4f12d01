"""Exercise (chapter 1, ex01-im2col): unfold an image batch into the im2col matrix.

Check with ``make check-exercise NAME=im2col``; the library's solution is :func:`minilib.im2col.im2col`.
"""
from __future__ import annotations

import numpy as np


def im2col(x: np.ndarray, kernel_size, stride=1, padding=0, dilation=1) -> np.ndarray:
    """Unfold ``x`` (N, C, H, W) into ``cols`` (C*kh*kw, N*OH*OW), so that convolution is one matrix product.

    Column (n, oh, ow) holds the receptive field of output pixel (oh, ow) of image n; row (c, i, j)
    holds kernel tap (i, j) of channel c::

        cols[(c*kh + i)*kw + j, (n*OH + oh)*OW + ow] = x_pad[n, c, oh*sh + i*dh, ow*sw + j*dw]

    where ``x_pad`` is ``x`` with ``padding`` zeros on each side of H and W, and

        OH = floor((H + 2*ph - dh*(kh - 1) - 1) / sh) + 1     (likewise OW).

    The rows are ordered (c, i, j), the order of ``w.reshape(F, -1)`` for a weight (F, C, kh, kw), so
    ``w.reshape(F, -1) @ im2col(x, ...)`` is the convolution, with columns ordered (n, oh, ow).

    Args:
        x: (N, C, H, W) array; ``cols`` has the same dtype.
        kernel_size, stride, padding, dilation: an int, or a pair (for the H axis, for the W axis).

    Hints:
        * ``minilib.im2col.window_geometry(x.shape, kernel_size, stride, padding, dilation)`` turns the
          arguments into pairs and returns ``(kh, kw), (sh, sw), (ph, pw), (dh, dw), (OH, OW)``.
        * ``np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))`` pads H and W only.
        * Loops over every index are fine for a first version. A faster one loops over the kh*kw taps only:
          tap (i, j) reads the strided slice ``x_pad[:, :, i*dh : i*dh + sh*(OH-1) + 1 : sh, ...]``.
    """
    raise NotImplementedError("fill in minilib/exercises/im2col.py (chapter 1), "
                              "then run: make check-exercise NAME=im2col")
