"""All of the book's plotting lives here (the numerical core never imports matplotlib).

Every function draws on a given ``ax`` (or makes one) and returns the figure or axes,
so notebooks stay one line per picture.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np


def _axes(ax, figsize):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def show_matrix(matrix, ax=None, title="", xlabel="", ylabel="", cmap="viridis", annotate=False, fmt="{:.0f}"):
    """Heat map of a 2-D array (e.g. an im2col matrix), with optional numbers in the cells."""
    matrix = np.asarray(matrix)
    ax = _axes(ax, (min(12, 0.35 * matrix.shape[1] + 2), min(8, 0.35 * matrix.shape[0] + 1.5)))
    image = ax.imshow(matrix, cmap=cmap, aspect="auto", interpolation="nearest")
    if annotate:
        for (r, c), value in np.ndenumerate(matrix):
            ax.text(c, r, fmt.format(value), ha="center", va="center", fontsize=7, color="white")
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.figure.colorbar(image, ax=ax, fraction=0.03)
    return ax


def show_filters(weight, ncols=10, title="", channel=None, cmap="gray"):
    """Grid of convolution filters from a weight (out, in, kh, kw).

    3-channel filters are shown as RGB; otherwise ``channel`` (default 0) is shown.
    Each filter is scaled to its own [min, max] so its pattern is visible.
    """
    weight = np.asarray(weight)
    if weight.ndim != 4:
        raise ValueError(f"weight must have shape (out, in, kh, kw), got {weight.shape}")
    rgb = weight.shape[1] == 3 and channel is None
    count = weight.shape[0]
    ncols = min(ncols, count)
    nrows = -(-count // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.1 * ncols, 1.1 * nrows + (0.4 if title else 0)), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k >= count:
            continue
        f = weight[k].transpose(1, 2, 0) if rgb else weight[k, channel or 0]
        f = (f - f.min()) / (np.ptp(f) + 1e-12)
        ax.imshow(f, cmap=None if rgb else cmap, interpolation="nearest")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def show_images(images, labels=None, ncols=10, cmap="gray"):
    """A row-major grid of (N, H, W) or (N, H, W, 3) images with optional labels as titles."""
    images = np.asarray(images)
    count = len(images)
    ncols = min(ncols, count)
    nrows = -(-count // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.2 * ncols, 1.3 * nrows), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k < count:
            ax.imshow(images[k], cmap=cmap if images.ndim == 3 else None)
            if labels is not None:
                ax.set_title(str(labels[k]), fontsize=9)
    fig.tight_layout()
    return fig


def plot_history(history, title=""):
    """Loss and accuracy per epoch from :func:`minilib.train.fit` (validation curves when present)."""
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.2))
    epochs = history["epoch"]
    ax_loss.plot(epochs, history["loss"], "o-", label="train")
    if history.get("val_loss"):
        ax_loss.plot(epochs, history["val_loss"], "s--", label="validation")
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
    if any(a is not None for a in history["accuracy"]):
        ax_acc.plot(epochs, history["accuracy"], "o-", label="train")
    if history.get("val_accuracy"):
        ax_acc.plot(epochs, history["val_accuracy"], "s--", label="validation")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.legend()
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_bars(labels, values, ax=None, title="", ylabel="", fmt="{:.3g}"):
    """Bar chart with the value written on each bar."""
    ax = _axes(ax, (max(4, 1.1 * len(labels)), 3))
    bars = ax.bar(range(len(values)), values)
    ax.set_xticks(range(len(labels)), labels, rotation=20, ha="right")
    for bar, value in zip(bars, values):
        ax.annotate(fmt.format(value), (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center", va="bottom", fontsize=8)
    ax.set(title=title, ylabel=ylabel)
    return ax
