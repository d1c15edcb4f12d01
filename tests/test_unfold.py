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


# ----------------------------------------------------------------------------- taps in a chosen order
# (N, C, H, W, kernel, stride, padding): the geometries of SHAPES without dilation, and one of few channels
BLOCK_SHAPES = [(2, 3, 7, 6, (3, 3), (1, 1), (1, 1)), (3, 8, 9, 9, (3, 2), (2, 1), (1, 0)),
                (2, 20, 6, 7, (5, 5), (1, 2), (2, 1))]
# blocks of taps of a 3x2 (or larger) kernel: single taps, a strided pair of rows, a column, out of order
SHUFFLED = [(range(2, 3), range(0, 2)), (range(0, 1), range(1, 2)), (range(1, 2), range(0, 2)),
            (range(0, 1), range(0, 1))]


def _padded(x, kernel, stride, padding):
    kernel, stride, padding, _, out_hw = window_geometry(x.shape, kernel, stride, padding)
    return unfold.zero_pad(unfold.channels_last(x), padding), kernel, stride, out_hw


def _block_taps(blocks):
    return [(a, b) for rows, cols in blocks for a in rows for b in cols]


def _columns_of(taps, kernel, c):
    """Where the columns of unfold_rows' (i, j, c) order sit for taps in the given order."""
    return np.array([(a * kernel[1] + b) * c + ch for a, b in taps for ch in range(c)])


@pytest.mark.parametrize("shape", BLOCK_SHAPES, ids=[str(i) for i in range(len(BLOCK_SHAPES))])
def test_unfold_blocks_is_unfold_rows_with_the_taps_reordered(shape, min_run):
    n, c, h, w, kernel, stride, padding = shape
    x = np.random.default_rng(2).standard_normal((n, c, h, w))
    x_pad, kernel, stride, out_hw = _padded(x, kernel, stride, padding)
    plain = unfold.unfold_rows(x_pad, kernel, stride, (1, 1), out_hw).copy()
    whole = [(range(kernel[0]), range(kernel[1]))]
    np.testing.assert_array_equal(unfold.unfold_blocks(x_pad, whole, stride, out_hw), plain)
    kh, kw = kernel
    blocks = [(range(0, kh, kh - 1), range(kw)), (range(1, kh - 1), range(kw))] if kh > 2 else whole
    blocks += SHUFFLED if kernel == (3, 2) else []
    rows = unfold.unfold_blocks(x_pad, blocks, stride, out_hw, buffer=np.full(plain.size * 2, np.nan))
    assert rows.flags.c_contiguous == unfold.unfolds_by_row(1, c)
    np.testing.assert_array_equal(rows, plain[:, _columns_of(_block_taps(blocks), kernel, c)])


def test_unfold_blocks_reads_a_channel_window_view():
    x = np.random.default_rng(3).standard_normal((2, 6, 5, 5))
    x_pad, _, stride, out_hw = _padded(x, 3, 1, 1)
    blocks = [(range(1, 2), range(1, 2)), (range(0, 3, 2), range(3)), (range(1, 2), range(0, 3, 2))]
    view = unfold.unfold_blocks(x_pad[..., 2:5], blocks, stride, out_hw)
    plain = unfold.unfold_blocks(np.ascontiguousarray(x_pad[..., 2:5]), blocks, stride, out_hw)
    np.testing.assert_array_equal(view, plain)


@pytest.mark.parametrize("shape", BLOCK_SHAPES, ids=[str(i) for i in range(len(BLOCK_SHAPES))])
def test_fold_blocks_is_the_adjoint_of_unfold_blocks(shape, min_run):
    n, c, h, w, kernel, stride, padding = shape
    rng = np.random.default_rng(4)
    x_pad, kernel, stride, out_hw = _padded(rng.standard_normal((n, c, h, w)), kernel, stride, padding)
    kh, kw = kernel
    blocks = [(range(kh - 1, kh), range(kw)), (range(0, kh - 1), range(0, kw, max(kw - 1, 1)))]
    blocks += [(range(0, kh - 1), range(1, kw - 1))] if kw > 2 else []
    rows = unfold.unfold_blocks(x_pad, blocks, stride, out_hw).copy()
    r = rng.standard_normal(rows.shape)
    r = r if unfold.unfolds_by_row(1, c) else np.ascontiguousarray(r.T).T          # the layout unfold made
    folded = unfold.fold_blocks(r, x_pad.shape, blocks, stride, out_hw)
    np.testing.assert_allclose(np.sum(rows * r), np.sum(x_pad * folded), rtol=1e-12)
    into = np.ones(x_pad.shape)
    np.testing.assert_allclose(unfold.fold_blocks(r, x_pad.shape, blocks, stride, out_hw, out=into), folded + 1,
                               rtol=1e-12)
    whole = [(range(kh), range(kw))]                                                 # the plain fold, block by block
    r_whole = rng.standard_normal((rows.shape[0], kh * kw * c))
    r_whole = r_whole if unfold.unfolds_by_row(1, c) else np.ascontiguousarray(r_whole.T).T
    if unfold.unfolds_by_row(kw, c) == unfold.unfolds_by_row(1, c):
        np.testing.assert_allclose(unfold.fold_blocks(r_whole, x_pad.shape, whole, stride, out_hw),
                                   unfold.fold_rows(r_whole, x_pad.shape, kernel, stride, (1, 1), out_hw), rtol=1e-12)


@pytest.mark.parametrize("blocks, message", [
    ([(range(0), range(2))], "non-empty increasing ranges"),
    ([(range(2, 0, -1), range(2))], "non-empty increasing ranges"),
    ([(range(-1, 1), range(2))], "non-negative"),
    ([((0, 1), range(2))], "pair of non-empty"),
    ([(range(0, 4), range(2))], r"span 4x2 taps and reach outside the padded input 5x5"),
])
def test_bad_tap_blocks_are_rejected(blocks, message):
    x_pad = np.zeros((1, 5, 5, 2))
    with pytest.raises(ValueError, match=message):
        unfold.unfold_blocks(x_pad, blocks, (1, 1), (3, 3))
    with pytest.raises(ValueError, match=message):
        unfold.fold_blocks(np.zeros((9, 4)), x_pad.shape, blocks, (1, 1), (3, 3))


def test_pad_channels_last_is_zero_pad_of_channels_last_chunk_after_chunk():
    x = np.random.default_rng(5).standard_normal((5, 3, 4, 6)).astype(np.float32)
    chunks = [slice(0, 2), slice(2, 4), slice(4, 5)]
    buffer = unfold.padded_buffer(chunks, x.shape, (2, 1), np.float32)
    assert buffer.shape == (2, 8, 8, 3) and buffer.dtype == np.float32
    for chunk in chunks:                  # the border stays zero while the inside is rewritten
        padded = unfold.pad_channels_last(x[chunk], (2, 1), buffer)
        assert np.shares_memory(padded, buffer)
        np.testing.assert_array_equal(padded, unfold.zero_pad(unfold.channels_last(x[chunk]), (2, 1)))
    assert unfold.padded_buffer([], x.shape, (1, 1), np.float64).shape == (0, 6, 8, 3)
