"""``minilib.unfold``, the channels-last im2col of the fast layers: its rows are the textbook
column matrix transposed with the columns reordered (c, i, j) -> (i, j, c), on both copy
routes, and ``fold_rows`` is the adjoint of ``unfold_rows`` (the col2im the backward passes use)."""
import numpy as np
import pytest

from minilib import im2col, unfold
from minilib.im2col import window_geometry

# (N, C, H, W, kernel, stride, padding, dilation)
SHAPES = [
    (2, 3, 7, 6, (3, 3), 1, 1, 1),
    (3, 8, 9, 9, (3, 2), (2, 1), (1, 0), 1),
    (1, 5, 8, 8, (2, 2), 1, 2, 2),
]


@pytest.fixture(params=[16, 1, 10 ** 9], ids=["as-stored", "by-row", "by-pixel"])
def min_run(request, monkeypatch):
    monkeypatch.setattr(unfold, "MIN_RUN", request.param)


def _rows(x, kernel, stride, padding, dilation, buffer=False):
    """Rows of the whole batch as one chunk, the padded input and the geometry fold_rows takes."""
    kernel, stride, padding, dilation, out_hw = window_geometry(x.shape, kernel, stride, padding, dilation)
    x_pad = unfold.zero_pad(unfold.channels_last(x), padding)
    row_length = kernel[0] * kernel[1] * x.shape[1]
    spare = unfold.unfold_buffer([slice(0, x.shape[0])], out_hw[0] * out_hw[1], row_length, x.dtype) if buffer else None
    rows = unfold.unfold_rows(x_pad, kernel, stride, dilation, out_hw, spare)
    assert spare is None or np.shares_memory(rows, spare)
    return rows, x_pad, (kernel, stride, dilation, out_hw)


@pytest.mark.parametrize("shape", SHAPES, ids=[str(i) for i in range(len(SHAPES))])
@pytest.mark.parametrize("buffer", [False, True], ids=["fresh", "buffer"])
def test_rows_are_im2col_transposed_and_reordered(shape, buffer, min_run):
    n, c, h, w, kernel, stride, padding, dilation = shape
    x = np.random.default_rng(0).standard_normal((n, c, h, w))
    rows, _, ((kh, kw), *_) = _rows(x, kernel, stride, padding, dilation, buffer)
    cols = im2col(x, kernel, stride, padding, dilation)                     # (C*kh*kw, N*OH*OW)
    want = cols.reshape(c, kh, kw, -1).transpose(3, 1, 2, 0).reshape(-1, kh * kw * c)
    assert rows.flags.c_contiguous == unfold.unfolds_by_row(kw, c)
    np.testing.assert_array_equal(rows, want)


@pytest.mark.parametrize("shape", SHAPES, ids=[str(i) for i in range(len(SHAPES))])
def test_fold_is_the_adjoint_of_unfold(shape, min_run):
    n, c, h, w, kernel, stride, padding, dilation = shape
    rng = np.random.default_rng(1)
    x = rng.standard_normal((n, c, h, w))
    rows, x_pad, geometry = _rows(x, kernel, stride, padding, dilation)
    r = rng.standard_normal(rows.shape)
    r = r if rows.flags.c_contiguous else np.ascontiguousarray(r.T).T       # the layout unfold made
    folded = unfold.fold_rows(r, x_pad.shape, *geometry)                    # (N, Hp, Wp, C)
    np.testing.assert_allclose(np.sum(rows * r), np.sum(x_pad * folded), rtol=1e-12)
    into = np.ones(x_pad.shape)                                             # out= adds into what is there
    np.testing.assert_allclose(unfold.fold_rows(r, x_pad.shape, *geometry, out=into), folded + 1, rtol=1e-12)


def test_batch_chunks_cover_the_batch_in_cache_sized_pieces(monkeypatch):
    monkeypatch.setattr(unfold, "CHUNK_BYTES", 100)
    chunks = unfold.batch_chunks(10, 30)                                    # 3 images of 30 bytes per chunk
    assert chunks == [slice(0, 3), slice(3, 6), slice(6, 9), slice(9, 10)]
    assert unfold.batch_chunks(4, 10 ** 6) == [slice(i, i + 1) for i in range(4)]   # at least one image
    assert unfold.unfold_buffer(chunks, 5, 7, np.float32).shape == (3 * 5 * 7,)
    x_cl = np.ones((1, 2, 2, 1), dtype=np.float32)
    assert unfold.zero_pad(x_cl, (0, 0)) is x_cl                            # no copy when unpadded
    assert unfold.zero_pad(x_cl, (1, 2)).shape == (1, 4, 6, 1)
