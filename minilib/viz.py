"""All of the book's plotting lives here (the numerical core never imports matplotlib).

Every function draws on a given ``ax`` (or makes one) and returns the figure or axes,
so notebooks stay one line per picture.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

# ----------------------------------------------------------------------------- one style for every figure
# The book shows a figure at most as wide as its column (736 px at 1280 px), shrinking a wider PNG. The sizes below
# are the only text sizes the figures use; drawn at DPI and at most MAX_WIDTH inches wide, their smallest text stays
# above 9 px on the page (tools/page_fit.py checks every figure of the built book against smallest_text_px()).
DPI = 100
MAX_WIDTH = 10.0
TEXT_PT = {"title": 11, "label": 10, "small": 9}
STYLE = {"figure.dpi": DPI, "savefig.dpi": DPI, "font.size": TEXT_PT["label"], "axes.titlesize": TEXT_PT["title"],
         "axes.labelsize": TEXT_PT["label"], "xtick.labelsize": TEXT_PT["small"], "ytick.labelsize": TEXT_PT["small"],
         "legend.fontsize": TEXT_PT["small"], "legend.title_fontsize": TEXT_PT["small"],
         "figure.titlesize": TEXT_PT["title"]}
plt.rcParams.update(STYLE)


def smallest_text_px() -> float:
    """The smallest text of a figure drawn in this style, in pixels of its PNG."""
    return min(TEXT_PT.values()) * DPI / 72


def _axes(ax, figsize):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def show_matrix(matrix, ax=None, title="", xlabel="", ylabel="", cmap="viridis", annotate=False, fmt="{:.0f}"):
    """Heat map of a 2-D array (e.g. an im2col matrix), with optional numbers in the cells."""
    matrix = np.asarray(matrix)
    ax = _axes(ax, (min(MAX_WIDTH, 0.35 * matrix.shape[1] + 2), min(8, 0.35 * matrix.shape[0] + 1.5)))
    image = ax.imshow(matrix, cmap=cmap, aspect="auto", interpolation="nearest")
    if annotate:
        for (r, c), value in np.ndenumerate(matrix):
            ax.text(c, r, fmt.format(value), ha="center", va="center", fontsize=TEXT_PT["small"], color="white")
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
    cell = min(1.1, 10.0 / ncols)       # at most 10 inches wide, so that the title stays legible on a book page
    fig, axes = plt.subplots(nrows, ncols, figsize=(cell * ncols, cell * nrows + (0.4 if title else 0)), squeeze=False)
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
    ax = _axes(ax, (min(MAX_WIDTH, max(4, 1.1 * len(labels))), 3))
    bars = ax.bar(range(len(values)), values)
    ax.set_xticks(range(len(labels)), labels, rotation=20, ha="right")
    for bar, value in zip(bars, values):
        ax.annotate(fmt.format(value), (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center", va="bottom", fontsize=TEXT_PT["small"])
    ax.set(title=title, ylabel=ylabel)
    return ax


def show_im2col(x, kernel_size, stride=1, padding=0, dilation=1, columns=(0,), fmt="{:.0f}", cell=0.42):
    """A tiny input next to its im2col matrix, with the receptive field of some columns outlined.

    ``x`` (N, C, H, W) must be small (at most 6 planes N*C). Left: every plane x[n, c],
    zero-padded (padding hatched). Right: ``cols = im2col(x, ...)`` with rows labelled
    (c, i, j) and columns (n, oh, ow). Each index in ``columns`` gets one colour: its
    column is boxed in the matrix and the input pixels it reads are boxed in the planes.
    Returns the figure.
    """
    from .im2col import im2col, window_geometry

    x = np.asarray(x)
    (kh, kw), (sh, sw), (ph, pw), (dh, dw), (oh, ow) = window_geometry(x.shape, kernel_size, stride, padding, dilation)
    n, c, h, w = x.shape
    if n * c > 6:
        raise ValueError(f"x has N*C={n * c} planes; show_im2col draws at most 6 (use a smaller x)")
    cols = im2col(x, (kh, kw), (sh, sw), (ph, pw), (dh, dw))
    columns = [int(k) for k in np.atleast_1d(columns)]
    for k in columns:
        if not 0 <= k < cols.shape[1]:
            raise ValueError(f"columns contains {k}, but cols has {cols.shape[1]} columns (0..{cols.shape[1] - 1})")
    x_pad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    hp, wp = h + 2 * ph, w + 2 * pw
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"][3:] + ["tab:red", "tab:orange"]
    vmin, vmax = float(min(x.min(), 0)), float(max(x.max(), 0))
    norm = plt.Normalize(vmin, vmax + 1e-12)

    widths = [wp] * (n * c) + [cols.shape[1]]
    height = max(hp, cols.shape[0])
    fig, axes = plt.subplots(1, n * c + 1, figsize=(cell * (sum(widths) + 1.5 * len(widths)) + 0.8, cell * height + 1.3),
                             gridspec_kw={"width_ratios": widths})

    def cells(ax, values):
        ax.imshow(values, cmap="Blues", norm=norm, interpolation="nearest")
        for (r, q), value in np.ndenumerate(values):
            ax.text(q, r, fmt.format(value), ha="center", va="center", fontsize=TEXT_PT["small"],
                    color="white" if norm(value) > 0.6 else "black")

    def box(ax, r, q, colour, inset, height=1, width=1):
        ax.add_patch(plt.Rectangle((q - 0.5 + inset, r - 0.5 + inset), width - 2 * inset, height - 2 * inset,
                                   fill=False, edgecolor=colour, linewidth=2.2))

    for p, ax in enumerate(axes[:-1]):
        b, ch = divmod(p, c)
        cells(ax, x_pad[b, ch])
        for r in range(hp):                                        # hatch the zero padding
            for q in range(wp):
                if not (ph <= r < ph + h and pw <= q < pw + w):
                    ax.add_patch(plt.Rectangle((q - 0.5, r - 0.5), 1, 1, fill=False, hatch="///",
                                               edgecolor="0.6", linewidth=0))
        for idx, k in enumerate(columns):
            kb, y, z = np.unravel_index(k, (n, oh, ow))
            if kb != b:
                continue
            for i in range(kh):
                for j in range(kw):
                    box(ax, y * sh + i * dh, z * sw + j * dw, colours[idx % len(colours)], 0.04 + 0.09 * idx)
        ax.set_xticks(range(wp), [str(q - pw) for q in range(wp)], fontsize=TEXT_PT["small"])
        ax.set_yticks(range(hp), [str(r - ph) for r in range(hp)], fontsize=TEXT_PT["small"])
        ax.set_title(f"x[{b}, {ch}]" + (" (zero-padded)" if ph or pw else ""), fontsize=TEXT_PT["label"])
        ax.set_anchor("N")

    ax = axes[-1]
    cells(ax, cols)
    for idx, k in enumerate(columns):
        box(ax, 0, k, colours[idx % len(colours)], 0.04, height=cols.shape[0])
    ax.set_yticks(range(cols.shape[0]), [f"({a},{i},{j})" for a in range(c) for i in range(kh) for j in range(kw)],
                  fontsize=TEXT_PT["small"])
    ax.set_xticks(range(cols.shape[1]), [f"({a},{y},{z})" for a in range(n) for y in range(oh) for z in range(ow)],
                  fontsize=TEXT_PT["small"], rotation=90)
    ax.set_ylabel("row (c, i, j)")
    ax.set_xlabel("column (n, oh, ow)")
    ax.set_title(f"cols = im2col(x): {cols.shape[0]} x {cols.shape[1]}", fontsize=TEXT_PT["label"])
    ax.set_anchor("N")
    fig.tight_layout()
    return fig


def show_grid(values, ax=None, title="", fmt="{:g}", cmap="Blues", fontsize=TEXT_PT["small"], limits=None):
    """A small 2-D array drawn as square cells with every value written in it (e.g. a kernel,
    a gradient on a tiny image, or how many windows read each pixel). ``limits`` = (vmin, vmax)
    fixes the colour scale (default: the array's own range). Returns the axes."""
    values = np.asarray(values)
    if values.ndim != 2:
        raise ValueError(f"values must be a 2-D array, got shape {values.shape}")
    ax = _axes(ax, (0.45 * values.shape[1] + 1, 0.45 * values.shape[0] + 0.8))
    low, high = (float(values.min()), float(values.max())) if limits is None else limits
    norm = plt.Normalize(low, high + 1e-12)
    ax.imshow(values, cmap=cmap, norm=norm, interpolation="nearest")
    for (r, c), value in np.ndenumerate(values):
        ax.text(c, r, fmt.format(value), ha="center", va="center", fontsize=fontsize,
                color="white" if norm(value) > 0.6 else "black")
    ax.set_xticks(range(values.shape[1]))
    ax.set_yticks(range(values.shape[0]))
    ax.tick_params(labelsize=TEXT_PT["small"], length=0)
    ax.set_title(title, fontsize=TEXT_PT["label"])
    return ax


def plot_conv_benchmark(bench):
    """Two panels from ``results/bench_conv.json`` (written by ``make bench``): forward speed as %
    of the machine's sgemm, and forward+backward time relative to PyTorch, per layer."""
    layers = bench["layers"]
    names = [layer["name"] for layer in layers]
    sgemm = bench["sgemm"]["gflops"]
    variants = [("numpy_im2col", "im2col (minilib.conv)"), ("numpy", "fast (minilib.fastconv)"), ("torch", "PyTorch")]
    fig, (ax_pct, ax_ratio) = plt.subplots(1, 2, figsize=(MAX_WIDTH, 3.8))
    width = 0.8 / len(variants)
    for k, (key, label) in enumerate(variants):
        positions = np.arange(len(layers)) + (k - 1) * width
        pct = [100 * layer[key]["forward_gflops"] / sgemm for layer in layers]
        ratio = [layer[key]["forward_backward_s"] / layer["torch"]["forward_backward_s"] for layer in layers]
        for ax, values in ((ax_pct, pct), (ax_ratio, ratio)):
            bars = ax.bar(positions, values, width, label=label)
            ax.bar_label(bars, fmt="%.2g", fontsize=TEXT_PT["small"])
    ax_pct.set(ylabel="% of sgemm GFLOP/s", title=f"forward (sgemm = {sgemm:.0f} GFLOP/s)")
    ax_ratio.set(ylabel="time / PyTorch time", title="forward + backward")
    ax_ratio.axhline(1.0, color="gray", lw=0.8)
    for ax in (ax_pct, ax_ratio):
        ax.set_xticks(range(len(layers)), names)
        ax.legend(fontsize=TEXT_PT["small"])
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- versatile filters

SECONDARY_COLOURS = ("tab:blue", "tab:green", "tab:red", "tab:purple", "tab:orange", "tab:brown")


def _outline(ax, row, col, size, colour, lw=2.0, ls="-"):
    """A square of ``size`` cells whose top-left cell is (row, col), on an imshow grid."""
    ax.add_patch(plt.Rectangle((col - 0.5, row - 0.5), size, size, fill=False, edgecolor=colour, lw=lw, ls=ls))


def show_secondary_filters(primary, masks, fmt="{:.1f}"):
    """A d x d primary filter and its secondaries M_i ∘ f (Eq. 2), each window outlined in its colour."""
    primary, masks = np.asarray(primary), np.asarray(masks)
    d, s = primary.shape[0], len(masks)
    limits = (-np.abs(primary).max(), np.abs(primary).max())     # one scale for all panels, 0 in the middle
    fig, axes = plt.subplots(1, s + 1, figsize=(min(2.3 * (s + 1), MAX_WIDTH), 2.6))
    show_grid(primary, ax=axes[0], title="primary f", fmt=fmt, cmap="coolwarm", limits=limits)
    for i in range(s):
        k = d - 2 * i
        colour = SECONDARY_COLOURS[i % len(SECONDARY_COLOURS)]
        _outline(axes[0], i, i, k, colour)
        show_grid(masks[i] * primary + 0.0, ax=axes[i + 1], title=f"$f_{i + 1} = M_{i + 1}\\circ f$  ({k}×{k})",
                  fmt=fmt, cmap="coolwarm", limits=limits)          # + 0.0: no "-0.0" in masked cells
        _outline(axes[i + 1], i, i, k, colour)
    fig.tight_layout()
    return fig


def show_spatial_versatile(image, primary, stride, y_standard, y_versatile):
    """The paper's Fig. 1 drawn from real arrays.

    Top row: (a) the input with the windows a d x d filter visits at ``stride`` (the first one split into
    its s nested secondary windows), (b) the primary filter with its secondary windows, (c) the one map a
    standard filter gives. Bottom row: (d), (e), (f), ... the s maps of the versatile filter, the map of
    f_1, f_2, ..., each framed in its window's colour. ``y_standard`` (OH, OW), ``y_versatile`` (s, OH, OW).
    Two rows keep the figure narrow enough to read at the width of a book page.
    """
    image, primary = np.asarray(image), np.asarray(primary)
    y_standard, y_versatile = np.asarray(y_standard), np.asarray(y_versatile)
    d, s = primary.shape[0], len(y_versatile)
    oh, ow = y_standard.shape
    columns = max(3, s)
    fig, axes = plt.subplots(2, columns, figsize=(min(2.8 * columns, MAX_WIDTH), 6.0),
                             gridspec_kw={"height_ratios": [1.25, 1]})
    for ax in axes.flat[3:columns]:
        ax.axis("off")
    for ax in axes[1, s:]:
        ax.axis("off")
    ax = axes[0, 0]
    ax.imshow(image, cmap="gray", interpolation="nearest")
    for r in range(oh):
        for c in range(ow):
            _outline(ax, r * stride, c * stride, d, "0.6", lw=1.0, ls="--")
    for i in range(s):
        _outline(ax, i, i, d - 2 * i, SECONDARY_COLOURS[i % len(SECONDARY_COLOURS)])
    ax.set_title(f"(a) input, {d}×{d} windows, stride {stride}", fontsize=TEXT_PT["label"])
    ax.axis("off")
    show_grid(primary, ax=axes[0, 1], title="(b) primary + secondaries", fmt="{:.1f}", cmap="coolwarm",
              limits=(-np.abs(primary).max(), np.abs(primary).max()))
    for i in range(s):
        _outline(axes[0, 1], i, i, d - 2 * i, SECONDARY_COLOURS[i % len(SECONDARY_COLOURS)])
    show_grid(y_standard, ax=axes[0, 2], title="(c) standard filter: 1 map", fmt="{:.1f}", cmap="Greys")
    for i in range(s):
        ax = axes[1, i]
        panel = chr(ord("d") + i)                       # (d), (e), (f), ...: one panel per secondary
        show_grid(y_versatile[i], ax=ax, title=f"({panel}) map of $f_{i + 1}$ ({d - 2 * i}×{d - 2 * i})",
                  fmt="{:.1f}", cmap="Greys")
        for spine in ax.spines.values():
            spine.set(edgecolor=SECONDARY_COLOURS[i % len(SECONDARY_COLOURS)], lw=3)
    fig.tight_layout()
    return fig


def show_channel_windows(windows, in_channels, stored_channels, title=""):
    """The paper's Fig. 2 from a layer's bookkeeping: which input channels each secondary j reads
    (left) and which stored filter channels it uses (right).

    ``windows`` is a list of (input range, stored range), as :func:`minilib.versatile.channel_windows` returns.
    """
    n = len(windows)
    fig, (ax_in, ax_w) = plt.subplots(1, 2, figsize=(0.45 * (in_channels + stored_channels) + 2, 0.5 * n + 1.4),
                                      gridspec_kw={"width_ratios": [in_channels, stored_channels]})  # equal cells
    for ax, width, key, label in ((ax_in, in_channels, 0, "input channel"), (ax_w, stored_channels, 1, "stored filter channel")):
        grid = np.full((n, width), np.nan)
        for j, window in enumerate(windows):
            grid[j, list(window[key])] = j
        ax.imshow(grid, cmap=plt.matplotlib.colors.ListedColormap(SECONDARY_COLOURS[:max(n, 1)]),
                  vmin=-0.5, vmax=max(n, 1) - 0.5, interpolation="nearest")
        ax.set_xticks(range(width))
        ax.set_yticks(range(n), [f"$f_{j + 1}$" for j in range(n)])
        ax.set_xticks(np.arange(-0.5, width), minor=True)
        ax.set_yticks(np.arange(-0.5, n), minor=True)
        ax.grid(which="minor", color="white", lw=2)
        ax.tick_params(which="both", length=0, labelsize=TEXT_PT["small"])
        ax.set_xlabel(label)
    ax_in.set_title("reads input channels", fontsize=TEXT_PT["label"])
    ax_w.set_title("uses filter channels", fontsize=TEXT_PT["label"])
    if title:
        fig.suptitle(title, fontsize=TEXT_PT["title"])
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- filter basis

def plot_lines(x, series, ax=None, title="", xlabel="", ylabel="", marks=None, logx=False):
    """Curves ``series`` = {label: y values over x}; ``marks`` = {label: (x, y)} adds labelled points."""
    ax = _axes(ax, (5.5, 3.4))
    for label, values in series.items():
        ax.plot(x, values, "o-", ms=4, label=label)
    for label, (mx, my) in (marks or {}).items():
        ax.plot([mx], [my], "*", ms=14, color="black", zorder=5)
        ax.annotate(label, (mx, my), textcoords="offset points", xytext=(8, 8), fontsize=TEXT_PT["small"])
    if logx:
        ax.set_xscale("log", base=2)
        ax.set_xticks(list(x), [str(v) for v in x])
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.grid(alpha=0.3)
    if len(series) > 1:
        ax.legend(fontsize=TEXT_PT["small"])
    return ax


def show_basis_dataflow(in_channels, splits, n_basis, out_channels, kernel_size=3):
    """The paper's Fig. 2 as a data-flow picture drawn to scale in channels.

    The c input channels fall into s splits of p channels (one colour each); every split is
    convolved with the same m basis filters (p x k x k), giving s*m maps ordered split-major
    (channel g*m + b); a 1x1 convolution with the (n, s*m) coefficients mixes them into n outputs.
    """
    c, s, m, n = in_channels, splits, n_basis, out_channels
    p = c // s
    colours = plt.get_cmap("tab10")
    unit = 1.0 / max(c, s * m, n)
    fig, ax = plt.subplots(figsize=(9, 3.8))

    def column(x, count, group, label, width=0.08):
        for k in range(count):
            # a white edge, not a gap, separates the channels: a gap of a pixel or so comes and goes with rounding
            ax.add_patch(plt.Rectangle((x, 1 - (k + 1) * unit), width, unit, ec="white", lw=0.8,
                                       fc=colours((k // group) % 10) if group else "0.55"))
        ax.text(x + width / 2, 1.04, label, ha="center", va="bottom", fontsize=TEXT_PT["small"])
        return x + width

    def arrow(x0, x1):
        ax.annotate("", xy=(x1, 0.5), xytext=(x0, 0.5), arrowprops={"arrowstyle": "->"})

    right = column(0.05, c, p, f"input\n{c} channels = {s} splits × {p}")
    arrow(right + 0.01, 0.20)
    arrow(0.32, 0.355)
    ax.add_patch(plt.Rectangle((0.20, 0.38), 0.12, 0.24, fill=False, lw=1.5))
    ax.text(0.26, 0.5, f"basis\n{m} × {p}×{kernel_size}×{kernel_size}\n(shared by\nall splits)", ha="center",
            va="center", fontsize=TEXT_PT["small"])
    right = column(0.36, s * m, m, f"basis responses\n{s}·{m} maps, split-major")
    arrow(right + 0.01, 0.50)
    arrow(0.64, 0.695)
    ax.add_patch(plt.Rectangle((0.50, 0.40), 0.14, 0.2, fill=False, lw=1.5))
    ax.text(0.57, 0.5, f"1×1 conv\ncoefficients\n{n} × {s * m}", ha="center", va="center",
            fontsize=TEXT_PT["small"])
    column(0.70, n, 0, f"output\n{n} channels")
    ax.set(xlim=(0, 0.85), ylim=(-0.02, 1.2))
    ax.axis("off")
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- full-stack filters

def show_subfilters(filters, masks, shared=True, channel=0, title=""):
    """The paper's Fig. 1 / Fig. 3 from real arrays: full-stack filters b_i (left column), binary masks
    m_j (top row for shared masks; each cell's own mask for separate ones) and sub-filters b_i ∘ m_j.

    ``filters`` (k, c, d, d); ``masks`` (s, c, d, d) with ``shared=True`` or (k*s, c, d, d) ordered
    o = j*k + i (output o uses filter o mod k and mask o, as the layers do) with ``shared=False``;
    entries of masks are ±1. One input ``channel`` is drawn; each cell is scaled to its own range.
    """
    filters, masks = np.asarray(filters), np.asarray(masks)
    k = filters.shape[0]
    s = masks.shape[0] if shared else masks.shape[0] // k
    # shared masks get a row of their own above the sub-filters; separate ones have no row to show, so the
    # column headers go over the first row of sub-filters (no empty band)
    top = 1 if shared else 0
    fig, axes = plt.subplots(k + top, s + 1, figsize=(0.9 * (s + 1) + 0.6, 0.9 * (k + top) + 0.6), squeeze=False)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    if shared:
        axes[0, 0].axis("off")

    def draw(ax, image, cmap="gray", norm=None):
        ax.imshow(image, cmap=cmap, norm=norm, interpolation="nearest")

    for i in range(k):
        draw(axes[i + top, 0], filters[i, channel])
        axes[i + top, 0].set_ylabel(f"$b_{{{i + 1}}}$", rotation=0, labelpad=12)
    if not shared:
        axes[0, 0].set_title("$b_i$", fontsize=TEXT_PT["small"])
    for j in range(s):
        if shared:
            draw(axes[0, j + 1], masks[j, channel], cmap="bwr", norm=plt.Normalize(-1, 1))
        # the sub-filters of column j: b_i ∘ m_j (shared), b_i ∘ m_ij (separate, Eq. 4-5)
        header = f"$m_{{{j + 1}}}$" if shared else f"$b_i \\circ m_{{i{j + 1}}}$"
        axes[0, j + 1].set_title(header, fontsize=TEXT_PT["small"])
        for i in range(k):
            mask = masks[j] if shared else masks[j * k + i]
            draw(axes[i + top, j + 1], filters[i, channel] * mask[channel])
    fig.suptitle(title or ("shared masks (MVNet-A): one mask per column" if shared else
                           "separate masks (MVNet-B): every sub-filter has its own mask"), fontsize=TEXT_PT["label"])
    fig.tight_layout()
    return fig


def plot_sweep(points, ax=None, title="", xlabel="lambda", ylabel="test accuracy (%)"):
    """Curves over a log-scaled x with error bars: ``points`` = {label: [(x, mean, std), ...]} (std NaN: no bar;
    a NaN mean, e.g. every seed diverged, is left out of its curve)."""
    ax = _axes(ax, (7, 4))
    for k, (label, found) in enumerate(points.items()):
        found = [(x, mean, 0.0 if np.isnan(std) else std) for x, mean, std in found if not np.isnan(mean)]
        if found:
            xs, means, stds = zip(*found)
            ax.errorbar(xs, means, yerr=stds, fmt="o-", ms=4, capsize=3, color=f"C{k % 10}", label=label)
    ax.set(xscale="log", title=title, xlabel=xlabel, ylabel=ylabel)
    ax.grid(alpha=0.3)
    if points:
        ax.legend(fontsize=TEXT_PT["small"])
    return ax


def plot_ours_vs_paper(ours, paper, ax=None, title="", xlabel="", ylabel="test accuracy (%)", logx=False):
    """Scatter of measured points beside printed ones.

    ``ours`` = {label: (x, y, yerr)} (yerr NaN for one seed: no bar), ``paper`` = {label: (x, y)};
    a thin line joins the two points of the same label, so each gap can be read off. Labels are placed by
    :func:`_place_labels`, clear of each other and of the points where there is room.
    """
    ax = _axes(ax, (6, 4))
    labels, obstacles = [], []
    for label, (x, y, yerr) in ours.items():
        ax.errorbar([x], [y], yerr=None if np.isnan(yerr) else [yerr], fmt="o", color="C0", ms=6, capsize=3,
                    label="ours (mean ± std over seeds)" if label == next(iter(ours)) else None)
        labels.append((x, y, label, "C0"))
        if not np.isnan(yerr):
            obstacles.append((x, y - yerr, x, y + yerr))
        if label in paper:
            ax.plot([x, paper[label][0]], [y, paper[label][1]], "-", color="0.7", lw=0.8, zorder=0)
    for k, (label, (x, y)) in enumerate(paper.items()):
        ax.plot([x], [y], "s", mfc="none", color="C3", ms=7, label="paper (as printed)" if k == 0 else None)
        if label not in ours:
            labels.append((x, y, label, "C3"))
        else:
            obstacles.append((x, y, x, y))              # the square: a point without a label of its own
    if logx:
        _compact_log_x(ax)                              # before the labels: their room is measured on this scale
    _place_labels(ax, labels, obstacles=obstacles)
    return _finish(ax, title, xlabel, ylabel, logx)


def _finish(ax, title, xlabel, ylabel, logx, legend_size=TEXT_PT["small"]):
    """The common end of the result plots: compact log x if asked, labels, a light grid and the legend (its text
    never below :data:`TEXT_PT` ["small"])."""
    if logx:
        _compact_log_x(ax)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=max(legend_size, TEXT_PT["small"]))
    return ax


def _place_labels(ax, labels, obstacles=(), size=TEXT_PT["small"]):
    """Write short labels beside points without letting them overlap each other, the points or ``obstacles``,
    as far as the room allows.

    ``labels`` = [(x, y, text, colour), ...] in data coordinates; ``obstacles`` = [(x0, y0, x1, y1), ...] thin
    boxes in data coordinates (error bars, a point without a label); every labelled point is an obstacle too.
    Each label goes to the place around its point, on rings of offsets (right, left, the diagonals, above, below,
    then farther out with a thin leader line), that overlaps other labels, points and bars least, a label most,
    a bar least, and that is near its point; the most crowded points choose first. Boxes are estimated in points
    from the axes as they are now (set the scale first); the offsets are in points, so a later change of the
    layout moves every label with its point."""
    to_pt = 72 / ax.figure.dpi
    ax.autoscale_view()

    def point(x, y):
        px, py = ax.transData.transform((x, y))
        return px * to_pt, py * to_pt

    def overlap(a, b):
        return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))

    frame = tuple(v * to_pt for v in ax.bbox.extents)
    marker, bar = 3.5, 1.5                          # half the side of a marker of size 6; half a bar, in points
    bars = []
    for x0, y0, x1, y1 in obstacles:
        (ax0, ay0), (ax1, ay1) = point(x0, y0), point(x1, y1)
        bars.append((min(ax0, ax1) - bar, min(ay0, ay1) - bar, max(ax0, ax1) + bar, max(ay0, ay1) + bar))
    centres = [point(x, y) for x, y, *_ in labels]
    markers = [(px - marker, py - marker, px + marker, py + marker) for px, py in centres]
    placed = []
    directions = [(1, 0), (-1, 0), (1, 1), (1, -1), (-1, 1), (-1, -1), (0, 1), (0, -1)]
    width = 0.62 * size                             # an average character of the sans-serif font, in points
    crowding = [sum(abs(px - qx) < 40 and abs(py - qy) < 20 for qx, qy in centres) for px, py in centres]
    for k in sorted(range(len(labels)), key=lambda k: -crowding[k]):
        x, y, text, colour = labels[k]
        (px, py), w, h = centres[k], width * len(text), size
        best = None
        for radius in (5, 12, 20, 30):
            for ux, uy in directions:
                # the label's box: beside the point for a sideways offset, centred over or under it otherwise
                left = px + ux * radius - (w if ux < 0 else w / 2 if ux == 0 else 0)
                bottom = py + uy * radius - (h if uy < 0 else h / 2 if uy == 0 else 0)
                box = (left, bottom, left + w, bottom + h)
                score = (3 * sum(overlap(box, other) for other in placed)
                         + sum(overlap(box, other) for other in markers)
                         + 0.3 * sum(overlap(box, other) for other in bars)
                         + 10 * (w * h - overlap(box, frame)) + 2 * radius)
                if best is None or score < best[0]:
                    best = (score, box, ux, uy, radius)
        _, box, ux, uy, radius = best
        placed.append(box)
        ax.annotate(text, (x, y), textcoords="offset points", xytext=(ux * radius, uy * radius), fontsize=size,
                    color=colour, ha={1: "left", 0: "center", -1: "right"}[ux],
                    va={1: "bottom", 0: "center", -1: "top"}[uy],
                    arrowprops=None if radius <= 5 else {"arrowstyle": "-", "color": colour, "lw": 0.6,
                                                         "shrinkA": 0, "shrinkB": 3})


def _compact_log_x(ax):
    """Log x scale labelled 20k, 50k, 100k, 2M ... (1, 2 and 5 times powers of ten), without crowded minor labels."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    def compact(value, _):
        for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
            if value >= size:
                return f"{value / size:g}{suffix}"
        return f"{value:g}"

    ax.set_xscale("log")
    # less than about a decade in view: more ticks, so that at least three are labelled
    low, high = sorted(ax.get_xlim())
    narrow = low > 0 and high / low < 15
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 3.0, 4.0, 5.0, 7.0) if narrow else (1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(compact))
    ax.xaxis.set_minor_formatter(NullFormatter())


def plot_seed_curves(curves, epochs=None, ax=None, title="", xlabel="epoch", ylabel=""):
    """Per-epoch curves over seeds: ``curves`` = {label: array (seeds, epochs)}; the mean as a line and the
    spread of the seeds (min to max) as a band."""
    ax = _axes(ax, (5.5, 3.4))
    for label, values in curves.items():
        values = np.atleast_2d(np.asarray(values, dtype=float))
        x = np.arange(1, values.shape[1] + 1) if epochs is None else epochs
        line, = ax.plot(x, values.mean(axis=0), "o-", ms=3, label=f"{label} ({len(values)})")
        if len(values) > 1:
            ax.fill_between(x, values.min(axis=0), values.max(axis=0), color=line.get_color(), alpha=0.2)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=TEXT_PT["small"], title="model (seeds)", title_fontsize=TEXT_PT["small"])
    return ax


def show_images(images, ncols=None, size=2.4, title=""):
    """uint8 images side by side: ``images`` = {caption: (H, W, 3) or (H, W) array}; captions may hold numbers.

    Panels of ``size`` inches, ``ncols`` to a row (default: as many as fit in MAX_WIDTH); a row wider than MAX_WIDTH
    gets smaller panels. Captions are drawn at the style's smallest size and broken at spaces where they would be
    wider than their panel."""
    import textwrap

    ncols = ncols or max(1, min(len(images), int(MAX_WIDTH // size)))
    size = min(size, MAX_WIDTH / ncols)
    nrows = -(-len(images) // ncols)
    # about 0.6 em per character: the widest caption line that fits a panel
    chars = max(8, int(size * 72 / (0.6 * TEXT_PT["small"])))
    captions = ["\n".join(textwrap.fill(line, chars, break_long_words=False, break_on_hyphens=False)
                          for line in str(caption).splitlines()) for caption in images]
    lines = max(caption.count("\n") + 1 for caption in captions)
    row = size + (lines * 1.4 * TEXT_PT["small"] + 16) / 72     # a panel and its caption, in inches
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, row * nrows + (0.3 if title else 0)),
                             squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, caption, image in zip(axes.flat, captions, images.values()):
        ax.imshow(image, cmap="gray" if np.asarray(image).ndim == 2 else None, interpolation="nearest")
        ax.set_title(caption, fontsize=TEXT_PT["small"])
    if title:
        fig.suptitle(title, fontsize=TEXT_PT["title"])
    fig.tight_layout()
    return fig


def plot_curves(curves, ax=None, title="", xlabel="", ylabel="", logx=False, hlines=None):
    """Curves with their own x values: ``curves`` = {label: (x, y)} or {label: (x, y, fmt)}; ``hlines`` =
    {label: y} adds dashed reference lines (a baseline, a floor)."""
    ax = _axes(ax, (5.5, 3.6))
    for label, curve in curves.items():
        x, y, *fmt = curve
        ax.plot(x, y, fmt[0] if fmt else "o-", ms=5, label=label)
    for k, (label, y) in enumerate((hlines or {}).items()):
        ax.axhline(y, ls="--", lw=1, color=f"C{(len(curves) + k) % 10}", label=label)
    return _finish(ax, title, xlabel, ylabel, logx, legend_size=TEXT_PT["small"])


def plot_pareto(series, front=(), ax=None, title="", xlabel="", ylabel="test accuracy (%)", logx=False, legend=True):
    """Accuracy against a cost, one colour and marker per method.

    ``series`` = {method: [(x, y, yerr, label), ...]} (yerr NaN: one seed, no bar; ``label`` is written beside the
    point, e.g. its budget, where it overlaps no other label, point or bar if there is room: :func:`_place_labels`); ``front`` = [(x, y), ...], the Pareto front cheapest first, drawn as a dashed
    staircase: no point above and to the left of it exists. ``legend=False`` leaves the legend out, for a figure
    of several panels that shows one legend for all (``ax.get_legend_handles_labels()``).
    """
    ax = _axes(ax, (6, 4))
    markers = "osD^vP*Xh"
    labels, bars = [], []
    for k, (method, points) in enumerate(series.items()):
        xs, ys, errs, texts = zip(*points)
        errs = [0.0 if np.isnan(e) else e for e in errs]
        ax.errorbar(xs, ys, yerr=errs, fmt=markers[k % len(markers)], color=f"C{k % 10}", ms=6, capsize=3,
                    label=method)
        labels += [(x, y, text, f"C{k % 10}") for x, y, text in zip(xs, ys, texts) if text]
        bars += [(x, y - e, x, y + e) for x, y, e in zip(xs, ys, errs) if e > 0]
    if len(front) > 0:
        # the staircase runs on to the costliest point: beyond the last front point nothing is more accurate
        right = max(x for points in series.values() for x, *_ in points)
        fx, fy = [x for x, _ in front] + [right], [y for _, y in front] + [front[-1][1]]
        ax.step(fx, fy, where="post", ls="--", color="0.4", lw=1, zorder=0, label="Pareto front")
        bars += [(x0, y0, x1, y0) for x0, x1, y0 in zip(fx, fx[1:], fy)]        # keep labels off the staircase
        bars += [(x1, y0, x1, y1) for x1, y0, y1 in zip(fx[1:], fy, fy[1:])]
    if logx:
        _compact_log_x(ax)                              # before the labels: their room is measured on this scale
    _place_labels(ax, labels, obstacles=bars)
    _finish(ax, title, xlabel, ylabel, logx)
    if not legend:
        ax.get_legend().remove()
    return ax


# ----------------------------------------------------------------------------- the three ideas side by side

def _cell_grid(ax, values, x, y, size, cmap="coolwarm", norm=None, edge="white"):
    """A 2-D array as square cells of side ``size`` whose top-left corner is (x, y) on a y-up axes; NaN cells grey."""
    values = np.asarray(values, dtype=float)
    rows, cols = values.shape
    colormap = plt.get_cmap(cmap).with_extremes(bad="0.9")
    ax.pcolormesh(x + size * np.arange(cols + 1), y - size * np.arange(rows + 1), np.ma.masked_invalid(values),
                  cmap=colormap, norm=norm, edgecolors=edge, linewidth=0.6)


def _arrow(ax, start, end, colour="0.3"):
    ax.annotate("", xy=end, xytext=start, arrowprops={"arrowstyle": "-|>", "color": colour, "lw": 1.2,
                                                      "shrinkA": 0, "shrinkB": 0})


_LABEL, _NOTE = 13, 11.5        # point sizes; the figure is drawn for about 700 pixels of page width


def _idea_panel(ax, title):
    """A drawing area 12 units wide without axes, the method's name above."""
    ax.set(xlim=(0, 12), ylim=(1.2, 9.6), aspect="equal")
    ax.axis("off")
    ax.set_title(title, fontsize=15, fontweight="bold")


def _versatile_idea(ax, primary, secondaries):
    d, s = primary.shape[0], len(secondaries)
    limit = np.abs(primary).max()
    norm = plt.Normalize(-limit, limit)
    _idea_panel(ax, "Versatile filters")
    cell, left, centre = 0.8, 0.4, 5.2
    top = centre + d * cell / 2
    _cell_grid(ax, primary, left, top, cell, norm=norm)
    for i in range(s):
        colour = SECONDARY_COLOURS[i % len(SECONDARY_COLOURS)]
        ax.add_patch(plt.Rectangle((left + i * cell, top - (d - i) * cell), (d - 2 * i) * cell, (d - 2 * i) * cell,
                                   fill=False, edgecolor=colour, lw=2.2))
    ax.text(left + d * cell / 2, top + 0.25, "primary $f$", ha="center", va="bottom", fontsize=_LABEL)
    ax.text(left + d * cell / 2, top - d * cell - 0.2, "stored", ha="center", va="top", fontsize=_NOTE)
    small, gap, x = 0.36, 0.5, 6.9
    block = d * small
    y_top = centre + (s * block + (s - 1) * gap) / 2
    for i, secondary in enumerate(secondaries):
        colour = SECONDARY_COLOURS[i % len(SECONDARY_COLOURS)]
        y = y_top - i * (block + gap)
        masked = np.where(secondary != 0, secondary, np.nan)      # weights outside the window are not used
        _cell_grid(ax, masked, x, y, small, norm=norm)
        ax.add_patch(plt.Rectangle((x + i * small, y - (d - i) * small), (d - 2 * i) * small, (d - 2 * i) * small,
                                   fill=False, edgecolor=colour, lw=2.0))
        ax.text(x + block + 0.2, y - block / 2, f"$f_{i + 1}$ {d - 2 * i}×{d - 2 * i}", va="center",
                fontsize=_LABEL, color=colour)
        _arrow(ax, (left + d * cell + 0.1, centre), (x - 0.15, y - block / 2), colour)


def _basis_idea(ax, basis, coeff, in_channels):
    m, p, kh, kw = basis.shape
    n, s = coeff.shape[0], in_channels // p
    split_colours = plt.get_cmap("tab10")
    _idea_panel(ax, "Filter basis")
    bar_h, centre = 0.6, 5.0

    def bars(x, colours, label, width=0.5):
        y_top = centre + len(colours) * bar_h / 2
        for k, colour in enumerate(colours):
            ax.add_patch(plt.Rectangle((x, y_top - (k + 1) * bar_h), width, bar_h * 0.86, color=colour))
        ax.text(x + width / 2, y_top + 0.2, label, ha="center", va="bottom", fontsize=_LABEL)
        return x + width

    right = bars(1.0, [split_colours(k // p) for k in range(in_channels)], f"$c$ = {in_channels}")
    for g in range(s):
        y = centre + in_channels * bar_h / 2 - (g + 0.5) * p * bar_h
        ax.text(0.9, y, f"$\\bar x_{g + 1}$", ha="right", va="center", fontsize=_LABEL, color=split_colours(g))
    cell, gap, box_x = 0.3, 0.3, 2.5
    box_w, box_h = kw * cell + 0.4, m * (kh * cell + gap) + gap
    limit = np.abs(basis).max()
    for b in range(m):
        _cell_grid(ax, basis[b, 0], box_x + 0.2, centre + box_h / 2 - gap - b * (kh * cell + gap), cell,
                   norm=plt.Normalize(-limit, limit))
    ax.add_patch(plt.Rectangle((box_x, centre - box_h / 2), box_w, box_h, fill=False, lw=1.4, ec="0.3"))
    ax.text(box_x + box_w / 2, centre - box_h / 2 - 0.15, f"basis\n$m$ = {m}", ha="center", va="top",
            fontsize=_NOTE)
    for g in range(s):
        y = centre + in_channels * bar_h / 2 - (g + 0.5) * p * bar_h
        _arrow(ax, (right + 0.05, y), (box_x - 0.1, centre + (0.5 - g) * 0.6), split_colours(g))
    maps_x = 5.2
    right = bars(maps_x, [split_colours(j // m) for j in range(s * m)], f"$sm$ = {s * m}")
    _arrow(ax, (box_x + box_w + 0.1, centre), (maps_x - 0.1, centre))
    small = min(0.36, 2.6 / max(n, s * m))
    coeff_x = 6.65
    limit = np.abs(coeff).max()
    _cell_grid(ax, coeff, coeff_x, centre + n * small / 2, small, cmap="PuOr", norm=plt.Normalize(-limit, limit))
    ax.text(coeff_x + s * m * small / 2, centre + n * small / 2 + 0.2, "$1 \\times 1$", ha="center", va="bottom",
            fontsize=_LABEL)
    ax.text(coeff_x + s * m * small / 2, centre - n * small / 2 - 0.15, "mix", ha="center", va="top",
            fontsize=_NOTE)
    _arrow(ax, (right + 0.05, centre), (coeff_x - 0.1, centre))
    out_x = 10.1
    bars(out_x, ["0.45"] * n, f"$n$ = {n}")
    _arrow(ax, (coeff_x + s * m * small + 0.1, centre), (out_x - 0.1, centre))


def _fullstack_idea(ax, filters, masks, sub_filters):
    k, s = len(filters), len(masks)
    d = filters.shape[-1]
    limit = np.abs(filters).max()
    norm = plt.Normalize(-limit, limit)
    _idea_panel(ax, "Full-stack filters")
    cell, step = 0.4, 1.6
    block = d * cell
    left, x0, top = 0.9, 3.1, 6.6
    for j in range(s):                                    # masks on top, one per column (shared, MVNet-A)
        _cell_grid(ax, masks[j], x0 + j * step, top + 1.75, cell, cmap="Greys_r", norm=plt.Normalize(-1, 1),
                   edge="0.6")
        ax.text(x0 + j * step + block / 2, top + 1.9, f"$m_{j + 1}$", ha="center", va="bottom", fontsize=_LABEL)
    for i in range(k):                                    # full-stack filters on the left, one per row
        _cell_grid(ax, filters[i], left, top - i * step, cell, norm=norm)
        ax.text(left - 0.1, top - i * step - block / 2, f"$b_{i + 1}$", ha="right", va="center", fontsize=_LABEL)
        for j in range(s):                                # sub-filter b_i ∘ m_j is output channel j*k + i
            _cell_grid(ax, sub_filters[j * k + i], x0 + j * step, top - i * step, cell, norm=norm)
    frame_w, frame_h = (s - 1) * step + block + 0.4, (k - 1) * step + block + 0.4
    ax.add_patch(plt.Rectangle((x0 - 0.2, top + 0.2 - frame_h), frame_w, frame_h, fill=False, lw=1.2, ls="--",
                               ec="0.4"))
    ax.text(x0 - 0.2 + frame_w / 2, top + 0.05 - frame_h, f"{k * s} sub-filters $b_i \\circ m_j$", ha="center",
            va="top", fontsize=_LABEL)
    ax.text(left + block / 2, top + 0.25, f"$k$ = {k}", ha="center", va="bottom", fontsize=_LABEL)
    ax.text(x0 + frame_w + 0.1, top + 1.75 - block / 2, f"$s$ = {s}", ha="left", va="center", fontsize=_LABEL)
    middle = top - (k - 1) * step / 2 - block / 2
    _arrow(ax, (left + block + 0.1, middle), (x0 - 0.3, middle))


def show_three_ideas(versatile, basis, fullstack):
    """The book's landing figure: the three methods side by side, each drawn from real arrays.

    ``versatile`` = (primary (d, d), secondaries (s, d, d)): one channel of a primary filter and its masked
    secondaries M_i ∘ f. ``basis`` = (basis (m, p, k, k), coeff (n, s*m), in_channels c): a basis layer's
    arrays, its basis filters drawn by their first channel. ``fullstack`` = (filters (k, d, d), masks (s, d, d),
    sub_filters (k*s, d, d)) with sub-filter o = j*k + i = b_i ∘ m_j, as the layers order their outputs.
    Returns a figure with exactly one axes per method.
    """
    fig, axes = plt.subplots(1, 3, figsize=(MAX_WIDTH, 3.3))
    _versatile_idea(axes[0], *(np.asarray(a) for a in versatile))
    _basis_idea(axes[1], np.asarray(basis[0]), np.asarray(basis[1]), int(basis[2]))
    _fullstack_idea(axes[2], *(np.asarray(a) for a in fullstack))
    fig.subplots_adjust(left=0.005, right=0.995, bottom=0.01, top=0.92, wspace=0.03)
    return fig
