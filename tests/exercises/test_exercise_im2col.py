"""Checks for the im2col exercise (chapter 1): every entry against a loop written from the definition

    cols[(c, i, j), (n, oh, ow)] = x_pad[n, c, oh*sh + i*dh, ow*sw + j*dw].
"""
import numpy as np
import pytest

EXERCISE = "im2col"


def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def unfold_by_definition(x, kernel_size, stride=1, padding=0, dilation=1):
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = map(pair, (kernel_size, stride, padding, dilation))
    n, c, h, w = x.shape
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    cols = np.zeros((c * kh * kw, n * oh * ow), dtype=x.dtype)
    for b in range(n):
        for y in range(oh):
            for z in range(ow):
                for ch in range(c):
                    for i in range(kh):
                        for j in range(kw):
                            # read the unpadded input; positions in the zero border stay 0
                            row, col = y * sh + i * dh - ph, z * sw + j * dw - pw
                            if 0 <= row < h and 0 <= col < w:
                                cols[(ch * kh + i) * kw + j, (b * oh + y) * ow + z] = x[b, ch, row, col]
    return cols


def check(implementation, x, *window):
    expected = unfold_by_definition(x, *window)
    got = implementation(x, *window)
    assert np.shape(got) == expected.shape, \
        f"cols has shape {np.shape(got)}, expected (C*kh*kw, N*OH*OW) = {expected.shape}"
    np.testing.assert_array_equal(got, expected)


def test_shape_is_rows_c_kh_kw_by_columns_n_oh_ow(implementation):
    x = np.zeros((2, 3, 7, 6))
    assert np.shape(implementation(x, 3)) == (3 * 3 * 3, 2 * 5 * 4)
    assert np.shape(implementation(x, (2, 3), stride=2, padding=1)) == (3 * 2 * 3, 2 * 4 * 3)


def test_single_image_single_channel(implementation):
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    check(implementation, x, 3)


def test_rows_are_ordered_c_i_j_and_columns_n_oh_ow(implementation):
    rng = np.random.default_rng(1)
    check(implementation, rng.standard_normal((3, 2, 5, 4)), 2)


def test_padding_reads_zeros(implementation):
    x = np.random.default_rng(2).standard_normal((2, 2, 4, 5))
    check(implementation, x, 3, 1, 1)
    check(implementation, x, 3, 1, (2, 0))


WINDOWS = {  # kernel_size, stride, padding, dilation
    "stride2": (2, 2, 0, 1),
    "stride2-pad1": (3, 2, 1, 1),
    "dilation2": (3, 1, 0, 2),
    "stride3-pad2-dil2": (2, 3, 2, 2),
    "rectangular": ((1, 3), (2, 1), (0, 1), (1, 2)),
}


@pytest.mark.parametrize("window", list(WINDOWS.values()), ids=list(WINDOWS))
def test_stride_dilation_and_rectangular_kernels(implementation, window):
    x = np.random.default_rng(3).standard_normal((2, 3, 7, 8))
    check(implementation, x, *window)


def test_one_by_one_kernel_is_a_reordering(implementation):
    x = np.random.default_rng(4).standard_normal((2, 5, 3, 4))
    np.testing.assert_array_equal(implementation(x, 1), x.transpose(1, 0, 2, 3).reshape(5, -1))


def test_random_configurations(implementation):
    rng = np.random.default_rng(5)
    for _ in range(12):
        kernel = tuple(int(v) for v in rng.integers(1, 4, size=2))
        stride = tuple(int(v) for v in rng.integers(1, 3, size=2))
        padding = tuple(int(v) for v in rng.integers(0, 3, size=2))
        dilation = tuple(int(v) for v in rng.integers(1, 3, size=2))
        x = rng.standard_normal((int(rng.integers(1, 3)), int(rng.integers(1, 4)), 6, 7))
        check(implementation, x, kernel, stride, padding, dilation)


def test_keeps_dtype_and_leaves_input_alone(implementation):
    x = np.random.default_rng(6).standard_normal((1, 2, 5, 5)).astype(np.float32)
    before = x.copy()
    cols = implementation(x, 3, 2, 1)
    assert cols.dtype == np.float32, f"cols.dtype is {cols.dtype}, expected x's dtype float32"
    np.testing.assert_array_equal(x, before)


def test_matrix_product_is_the_convolution(implementation):
    rng = np.random.default_rng(7)
    x, w = rng.standard_normal((2, 3, 6, 6)), rng.standard_normal((4, 3, 3, 3))
    out = (w.reshape(4, -1) @ implementation(x, 3, 1, 1)).reshape(4, 2, 6, 6).transpose(1, 0, 2, 3)
    x_pad = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    expected = np.array([[[[np.sum(w[f] * x_pad[n, :, y:y + 3, z:z + 3]) for z in range(6)] for y in range(6)]
                          for f in range(4)] for n in range(2)])
    np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-12)
