"""The fast convolution (``minilib.fastconv``) takes different routes depending on the shapes:
batch chunks, two unfold orders (by kernel row or by output pixel, in ``minilib.unfold``) and
two backward passes (correlation of the padded dY for 'same' stride-1 layers, fold otherwise).
Each route is forced here and held to the im2col version, which test_conv.py checks against
PyTorch."""
import numpy as np
import pytest

from minilib import conv2d_backward, conv2d_forward, fastconv, unfold
from torch_helpers import assert_close

# (N, C, H, W, F, kernel, stride, padding, dilation): 'same' stride-1 layers take the
# correlation backward; strided, 'valid' or F >> C layers take the fold backward.
SHAPES = [
    (3, 4, 6, 5, 5, (3, 3), 1, 1, 1),      # same padding -> correlation backward
    (2, 3, 7, 7, 4, (5, 3), 1, (2, 1), 1),  # same padding, rectangular kernel
    (2, 2, 9, 8, 3, (3, 3), 1, 2, 2),      # same padding with dilation
    (3, 4, 6, 6, 5, (3, 3), 2, 1, 1),      # strided -> fold backward
    (2, 1, 8, 8, 12, (3, 3), 1, 1, 1),     # F > 8*C -> fold backward
    (1, 5, 5, 7, 2, (2, 4), (1, 2), 0, 1),  # valid padding, batch 1
]


@pytest.fixture(params=[(1 << 21, 16), (1, 16), (1 << 21, 1), (1, 10 ** 9)],
                ids=["one-chunk", "chunk-per-image", "unfold-by-row", "unfold-by-pixel"])
def fast_route(request, monkeypatch):
    chunk_bytes, min_run = request.param
    monkeypatch.setattr(unfold, "CHUNK_BYTES", chunk_bytes)
    monkeypatch.setattr(unfold, "MIN_RUN", min_run)


@pytest.mark.parametrize("shape", SHAPES, ids=[str(i) for i in range(len(SHAPES))])
@pytest.mark.parametrize("bias", [True, False])
def test_fast_route_equals_im2col_version(shape, bias, fast_route):
    n, c, h, w, f, kernel, stride, padding, dilation = shape
    rng = np.random.default_rng(hash((shape, bias)) % 2**32)
    x, wt = rng.standard_normal((n, c, h, w)), rng.standard_normal((f, c, *kernel))
    b = rng.standard_normal(f) if bias else None
    out, cache = fastconv.conv2d_forward_fast(x, wt, b, stride, padding, dilation)
    ref, ref_cache = conv2d_forward(x, wt, b, stride, padding, dilation)
    assert_close(out, ref, "forward")
    dout = rng.standard_normal(out.shape)
    for got, want, name in zip(fastconv.conv2d_backward_fast(dout, cache), conv2d_backward(dout, ref_cache), ("dx", "dw", "db")):
        if want is None:
            assert got is None
        else:
            assert_close(got, want, name)


def test_both_backward_routes_are_exercised(monkeypatch):
    """Guard for the table above: it must reach both backward passes."""
    used = []
    for name in ("_backward_by_correlation", "_backward_by_fold"):
        original = getattr(fastconv, name)
        monkeypatch.setattr(fastconv, name, lambda *a, _f=original, _n=name: used.append(_n) or _f(*a))
    for n, c, h, w, f, kernel, stride, padding, dilation in SHAPES:
        x, wt = np.ones((n, c, h, w)), np.ones((f, c, *kernel))
        out, cache = fastconv.conv2d_forward_fast(x, wt, None, stride, padding, dilation)
        fastconv.conv2d_backward_fast(np.ones_like(out), cache)
    assert set(used) == {"_backward_by_correlation", "_backward_by_fold"}


def test_fast_backward_rejects_wrong_dout_shape():
    out, cache = fastconv.conv2d_forward_fast(np.ones((2, 3, 5, 5)), np.ones((4, 3, 3, 3)))
    with pytest.raises(ValueError, match="dout has shape"):
        fastconv.conv2d_backward_fast(np.ones((2, 4, 3, 4)), cache)
