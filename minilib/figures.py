"""Figures of the book's markdown pages, drawn from the library's own layers.

Markdown pages run no code, so their figures are files: ``python -m minilib.figures`` (or ``make figures``)
writes them under ``book/figures/``, and the files are committed so that the book builds without this step.
The SVG carries no date and fixed element ids, so regenerating an unchanged figure gives the same file.
"""
from __future__ import annotations

import argparse
import pathlib

import matplotlib.pyplot as plt
import numpy as np

from . import basis as B
from . import fullstack as FS
from . import versatile as V
from . import viz

FIGURES_DIR = pathlib.Path(__file__).resolve().parents[1] / "book" / "figures"
THREE_IDEAS = "three_ideas.svg"


def three_ideas_arrays(seed=0):
    """The arrays the landing figure shows, taken from freshly initialised layers of each method.

    Versatile: a 5x5 primary and its s = 3 secondaries from :func:`minilib.versatile.dense_weight`.
    Filter basis: a c = 8 -> n = 6 layer with s = 2 splits of p = 4 channels and m = 3 basis filters.
    Full-stack: k = 3 filters and s = 4 shared masks (MVNet-A); the sub-filters from
    :func:`minilib.fullstack.dense_weight`, ordered o = j*k + i.
    """
    rng = np.random.default_rng(seed)
    versatile = V.VersatileConv2d(1, 3, kernel_size=5, rng=rng)          # one primary, s = 3 outputs
    secondaries = V.dense_weight(versatile.weight, in_channels=1)[:, 0]   # (s, 5, 5): M_i ∘ f
    basis = B.BasisConv2d(8, 6, 3, n_basis=3, basis_channels=4, rng=rng)
    fullstack = FS.FullStackConv2d(1, 12, 3, s=4, masks="shared", rng=rng)
    return {
        "versatile": (versatile.weight[0, 0], secondaries),
        "basis": (basis.basis, basis.coeff, basis.in_channels),
        "fullstack": (fullstack.filters[:, 0], fullstack.binary_masks()[:, 0], fullstack.dense_weight()[:, 0]),
    }


def three_ideas_figure(seed=0):
    """Versatile filters, filter basis and full-stack filters side by side (:func:`minilib.viz.show_three_ideas`)."""
    return viz.show_three_ideas(**three_ideas_arrays(seed))


def save_svg(fig, path):
    """Write ``fig`` as SVG without a timestamp and with ids that do not change between runs."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with plt.rc_context({"svg.hashsalt": "efficient-filters", "svg.fonttype": "path"}):
        fig.savefig(path, format="svg", metadata={"Date": None})
    return path


def save_figures(out_dir=FIGURES_DIR):
    """Draw every figure of the markdown pages into ``out_dir``; returns the paths written."""
    fig = three_ideas_figure()
    try:
        return [save_svg(fig, pathlib.Path(out_dir) / THREE_IDEAS)]
    finally:
        plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path, default=FIGURES_DIR, help="folder to write into (%(default)s)")
    args = parser.parse_args(argv)
    for path in save_figures(args.out):
        print(f"wrote {path} ({path.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
