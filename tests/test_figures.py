"""The landing figure is drawn from the library's own arrays, has one panel per method, and regenerates as a valid
SVG (the committed copy under book/figures/ is checked the same way)."""
import re
import xml.etree.ElementTree as ET

import matplotlib.pyplot as plt
import numpy as np
import pytest

from minilib import figures
from minilib import versatile as V

TITLES = ["Versatile filters", "Filter basis", "Full-stack filters"]
SVG = "{http://www.w3.org/2000/svg}"


def svg_panels(path):
    """(width, height, number of matplotlib axes) of an SVG written by matplotlib; fails if it is not valid XML."""
    root = ET.parse(path).getroot()
    assert root.tag == f"{SVG}svg", f"{path} is not an SVG document (root <{root.tag}>)"
    width, height = (float(re.match(r"[\d.]+", root.get(key)).group()) for key in ("width", "height"))
    axes = [g for g in root.iter(f"{SVG}g") if re.fullmatch(r"axes_\d+", g.get("id", ""))]
    return width, height, len(axes)


def test_figure_arrays_come_from_the_layers():
    arrays = figures.three_ideas_arrays()
    primary, secondaries = arrays["versatile"]
    np.testing.assert_array_equal(secondaries, V.secondary_masks(5) * primary)       # f_i = M_i ∘ f (Eq. 2)
    filters, masks, sub_filters = arrays["fullstack"]
    k, s = len(filters), len(masks)
    assert set(np.unique(masks)) <= {-1.0, 1.0}
    for i in range(k):
        for j in range(s):
            np.testing.assert_array_equal(sub_filters[j * k + i], filters[i] * masks[j])   # b_i ∘ m_j (Eq. 3)
    basis, coeff, in_channels = arrays["basis"]
    assert coeff.shape == (6, in_channels // basis.shape[1] * basis.shape[0])


def test_figure_has_one_panel_per_method_and_renders():
    fig = figures.three_ideas_figure()
    try:
        assert [ax.get_title() for ax in fig.axes] == TITLES
        fig.canvas.draw()
        pixels = np.asarray(fig.canvas.buffer_rgba())
        assert pixels.shape[0] > 100 and (pixels[..., :3] < 250).any(), "the figure rendered blank"
    finally:
        plt.close(fig)


def test_regenerated_svg_is_valid_with_three_panels(tmp_path):
    (path,) = figures.save_figures(tmp_path)
    width, height, panels = svg_panels(path)
    assert panels == 3 and width > height > 0


def test_committed_svg_is_valid_with_three_panels():
    path = figures.FIGURES_DIR / figures.THREE_IDEAS
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make figures` and commit it")
    assert svg_panels(path)[2] == 3
