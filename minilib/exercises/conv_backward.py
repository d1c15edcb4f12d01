"""Exercise (chapter 2, ex02-conv-backward): the backward pass of an im2col convolution.

Check with ``make check-exercise NAME=conv_backward``; the library's solution is :func:`minilib.conv.conv2d_backward`.
"""
from __future__ import annotations


def conv2d_backward(dout, cache):
    """Gradients of :func:`minilib.conv.conv2d_forward` with respect to its input, weight and bias.

    The forward pass computed ``Y = W X + b`` with ``X = im2col(x)`` (C*kh*kw, N*OH*OW),
    ``W = w.reshape(F, C*kh*kw)`` and Y (F, N*OH*OW) rearranged to ``out`` (N, F, OH, OW). Given
    ``dout`` = dL/dout, with ``dY`` = dout rearranged like Y (columns ordered (n, oh, ow)), the chain rule gives

        dW = dY X^T                      reshaped to w.shape (F, C, kh, kw)
        db = the sum of dY over its columns, i.e. dout summed over axes (0, 2, 3)
        dX = W^T dY,  dx = col2im(dX)    col2im is the adjoint of im2col: it adds overlapping copies

    Args:
        dout: (N, F, OH, OW), the gradient of the loss with respect to the forward output.
        cache: what ``minilib.conv2d_forward(x, w, b, stride, padding, dilation)`` returned next to ``out``:
            ``(x_shape, w, has_bias, cols, (stride, padding, dilation))``, with ``cols = im2col(x, ...)``.

    Returns:
        ``(dx, dw, db)`` with the shapes of x (N, C, H, W), w (F, C, kh, kw) and b (F,);
        ``db`` is None when the forward pass had no bias (``has_bias`` is False).

    Hints: ``dout.transpose(1, 0, 2, 3).reshape(F, -1)`` is dY; ``minilib.col2im(dX, x_shape, (kh, kw),
    stride, padding, dilation)`` folds the columns back.
    """
    raise NotImplementedError("fill in minilib/exercises/conv_backward.py (chapter 2), "
                              "then run: make check-exercise NAME=conv_backward")
