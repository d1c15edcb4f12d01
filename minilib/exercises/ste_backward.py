"""Exercise (chapter 8, ex08-ste): the straight-through estimator behind MVNet's learned binary masks.

Check with ``make check-exercise NAME=ste_backward``; the library's solution is :func:`minilib.fullstack.ste_gradient`.
"""
from __future__ import annotations


def ste_gradient(dmasks, latent):
    """Backward pass of M = sign(latent) (:func:`minilib.fullstack.binarize`) with the straight-through estimator.

    MVNet learns its ±1 masks m (Eq. 3-5, Full-stack filters) through real latents: the forward pass uses
    M = sign(latent), whose true derivative is zero almost everywhere, so no gradient would ever reach the
    latents. The STE of the paper's [4], clipped as in BinaryConnect/BNN, treats sign as the identity
    where |latent| <= 1 and as a constant outside:

        dL/dlatent = dL/dM * 1[|latent| <= 1]          (the boundary |latent| = 1 passes the gradient)

    Args:
        dmasks: dL/dM, any shape, e.g. (s, c, d, d) for shared masks.
        latent: the latent reals, the same shape as ``dmasks``.

    Returns:
        dL/dlatent, an array of the shape and dtype of ``dmasks``. Do not modify the inputs.
    """
    raise NotImplementedError("fill in minilib/exercises/ste_backward.py (chapter 8), "
                              "then run: make check-exercise NAME=ste_backward")
