"""Exercise (chapter 4, ex04-windows): the channel windows of channel versatile filters.

Check with ``make check-exercise NAME=channel_windows``; the library's solution is
:func:`minilib.versatile.channel_windows`.
"""
from __future__ import annotations


def channel_windows(in_channels, delta=0, g=1, channel_mode="paper"):
    """For each channel window j of Eq. 8 (Versatile filters): (input channels read, stored filter channels used).

    A filter with c = ``in_channels`` channels is applied to n = (c - ĉ)/g + 1 = delta/g + 1 windows of
    ĉ = c - delta input channels; window j = 0, ..., n - 1 reads the input channels [j*g, j*g + ĉ), the
    window sliding by the channel stride g. The filter channels it multiplies them with depend on the mode:

    * ``"paper"`` (Fig. 2): the primary has all c channels and window j uses its channels at the same
      positions, [j*g, j*g + ĉ);
    * ``"official"`` (the released ``VConv2d``): the primary stores only ĉ channels, and every window uses
      all of them, [0, ĉ).

    Args:
        in_channels: c >= 1.
        delta: c - ĉ >= 0; it must be smaller than c (each window keeps ĉ >= 1 channels) and divisible by g
            (so that n is an integer). Break either rule and raise ``ValueError`` whose message names ``delta``.
        g: the channel stride, >= 1.
        channel_mode: ``"paper"`` or ``"official"``.

    Returns:
        A list of n pairs ``(range(j*g, j*g + ĉ), stored)``, ``stored`` as described above, in order of j.
        Example: ``channel_windows(8, delta=2, g=1)`` has 3 windows reading channels 0-5, 1-6 and 2-7.
    """
    raise NotImplementedError("fill in minilib/exercises/channel_windows.py (chapter 4), "
                              "then run: make check-exercise NAME=channel_windows")
