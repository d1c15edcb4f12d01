"""Checks for the secondary_masks exercise (chapter 3): Eq. 2 of Versatile filters, entry by entry.

With 0-based indices, M_i keeps the taps (r, q) whose distance to the nearest border of the d x d
kernel, min(r, q, d-1-r, d-1-q), is at least i.
"""
import numpy as np
import pytest

EXERCISE = "secondary_masks"


def masks_by_definition(d):
    r, q = np.indices((d, d))
    border_distance = np.minimum.reduce([r, q, d - 1 - r, d - 1 - q])
    return np.stack([(border_distance >= i).astype(float) for i in range((d + 1) // 2)])


def test_five_by_five_gives_windows_5_3_1(implementation):
    masks = implementation(5)
    assert np.shape(masks) == (3, 5, 5), f"shape {np.shape(masks)}, expected (s, d, d) = (3, 5, 5)"
    np.testing.assert_array_equal(masks[2], np.pad([[1.0]], 2))
    np.testing.assert_array_equal(masks[1], np.pad(np.ones((3, 3)), 1))
    np.testing.assert_array_equal(masks[0], np.ones((5, 5)))


@pytest.mark.parametrize("d", range(1, 10))
def test_every_entry_matches_eq2(implementation, d):
    expected = masks_by_definition(d)
    masks = implementation(d)
    assert np.shape(masks) == expected.shape, f"d={d}: shape {np.shape(masks)}, expected (s, d, d) = {expected.shape}"
    np.testing.assert_array_equal(masks, expected, err_msg=f"d={d}")


def test_even_kernel_keeps_the_central_2x2(implementation):
    masks = implementation(4)
    assert np.shape(masks) == (2, 4, 4)
    np.testing.assert_array_equal(masks.sum(axis=(1, 2)), [16, 4])
    np.testing.assert_array_equal(masks[1, 1:3, 1:3], np.ones((2, 2)))


def test_masks_are_nested_and_usable_as_multipliers(implementation):
    masks = np.asarray(implementation(7))
    assert np.issubdtype(masks.dtype, np.floating), f"dtype {masks.dtype}: return a float array of 0.0 and 1.0"
    assert np.all(masks[1:] <= masks[:-1]), "window i+1 must lie inside window i"
    primary = np.random.default_rng(0).standard_normal((7, 7))
    np.testing.assert_array_equal((masks * primary)[3], np.pad(primary[3:4, 3:4], 3))


def test_accepts_a_square_pair(implementation):
    np.testing.assert_array_equal(implementation((3, 3)), masks_by_definition(3))


def test_rejects_a_non_square_kernel(implementation):
    with pytest.raises(ValueError, match="kernel_size"):
        implementation((3, 5))
