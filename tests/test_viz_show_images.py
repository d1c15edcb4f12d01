"""viz.show_images, plot_bars and plot_curves stay within the book's figure limits: at most MAX_WIDTH inches wide and
no text below TEXT_PT["small"]."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from minilib import viz  # noqa: E402


def texts(fig):
    return [text for text in fig.findobj(matplotlib.text.Text) if text.get_text()]


def check_limits(fig):
    fig.canvas.draw()
    assert fig.get_size_inches()[0] <= viz.MAX_WIDTH + 1e-9
    assert min(text.get_fontsize() for text in texts(fig)) >= viz.TEXT_PT["small"]


@pytest.mark.parametrize("ncols, size, per_row", [(None, 2.4, 4), (6, 2.2, 6), (3, 2.6, 3), (8, 4.0, 8)])
def test_show_images_fits_the_column_with_readable_captions(ncols, size, per_row):
    images = {f"basis m16 s4 shared {k}.{k}{k} dB": np.full((12, 12, 3), 20 * k, np.uint8) for k in range(6)}
    fig = viz.show_images(images, ncols=ncols, size=size, title="close-up")
    try:
        check_limits(fig)
        assert len([ax for ax in fig.axes if ax.images]) == 6
        panel = fig.get_size_inches()[0] / per_row
        for ax in fig.axes:
            if ax.images:                        # a caption wider than its panel is broken over lines
                width = ax.title.get_window_extent().width / fig.dpi
                assert width <= panel * 1.05, (ax.title.get_text(), width, panel)
    finally:
        plt.close(fig)


def test_show_images_keeps_line_breaks_and_the_images():
    hr = np.arange(64, dtype=np.uint8).reshape(8, 8)
    fig = viz.show_images({"HR": hr, "network\n30.12 dB": hr}, size=2.0)
    try:
        check_limits(fig)
        assert [ax.title.get_text() for ax in fig.axes] == ["HR", "network\n30.12 dB"]
        np.testing.assert_array_equal(fig.axes[0].images[0].get_array(), hr)
    finally:
        plt.close(fig)


def test_plot_bars_and_curves_stay_within_the_limits():
    ax = viz.plot_bars([f"label {k}" for k in range(20)], np.arange(20.0), title="many bars")
    try:
        check_limits(ax.figure)
    finally:
        plt.close(ax.figure)
    ax = viz.plot_curves({"a": ([1, 2, 3], [1, 2, 3]), "b": ([1, 2, 3], [3, 2, 1], "s--")},
                         hlines={"floor": 0.5}, title="curves", xlabel="x", ylabel="y", logx=True)
    try:
        check_limits(ax.figure)
        assert [text.get_text() for text in ax.get_legend().get_texts()] == ["a", "b", "floor"]
    finally:
        plt.close(ax.figure)
