"""Checks for the channel_windows exercise (chapter 4): Eq. 8 of Versatile filters, n = (c - ĉ)/g + 1
windows of ĉ = c - delta input channels at offsets 0, g, 2g, ..."""
import numpy as np
import pytest

EXERCISE = "channel_windows"


def windows_by_definition(c, delta, g, channel_mode):
    c_hat = c - delta
    return [(list(range(j * g, j * g + c_hat)), list(range(j * g, j * g + c_hat)) if channel_mode == "paper"
             else list(range(c_hat))) for j in range(delta // g + 1)]


def as_lists(windows):
    return [(list(inputs), list(stored)) for inputs, stored in windows]


def test_no_delta_is_one_window_of_all_channels(implementation):
    assert as_lists(implementation(5)) == [([0, 1, 2, 3, 4], [0, 1, 2, 3, 4])]


def test_paper_mode_window_slides_with_the_input(implementation):
    assert as_lists(implementation(8, delta=2, g=1)) == windows_by_definition(8, 2, 1, "paper")


def test_official_mode_uses_the_stored_channels(implementation):
    assert as_lists(implementation(8, 2, 1, "official")) == [(list(range(j, j + 6)), list(range(6)))
                                                           for j in range(3)]


@pytest.mark.parametrize("channel_mode", ["paper", "official"])
def test_random_configurations(implementation, channel_mode):
    rng = np.random.default_rng(0)
    for _ in range(25):
        c = int(rng.integers(1, 17))
        g = int(rng.integers(1, 5))
        delta = g * int(rng.integers(0, (c - 1) // g + 1))      # a multiple of g below c
        got = as_lists(implementation(c, delta, g, channel_mode))
        assert got == windows_by_definition(c, delta, g, channel_mode), f"c={c}, delta={delta}, g={g}"


def test_delta_must_be_smaller_than_in_channels(implementation):
    with pytest.raises(ValueError, match="delta"):
        implementation(4, delta=4, g=1)


def test_delta_must_be_divisible_by_g(implementation):
    with pytest.raises(ValueError, match="delta"):
        implementation(8, delta=3, g=2)
