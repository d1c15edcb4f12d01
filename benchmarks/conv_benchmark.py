"""Benchmark minilib's NumPy convolution against the machine's sgemm and PyTorch CPU.

    python benchmarks/conv_benchmark.py [--repeats R] [--batch 128] [--out results/bench_conv.json]
    python benchmarks/conv_benchmark.py --quick        # smoke run: batch 8, 1 repeat

Everything is measured in ONE run, in float32, with NumPy/OpenBLAS and torch on the same
number of threads, because on a shared machine only ratios measured side by side mean
anything. "NumPy" is ``minilib.fastconv`` (what the layers run); "im2col" is the textbook
``minilib.conv`` version, timed alongside to show what the reorganisation buys. For every
layer the timed variants (forward and forward+backward of each) are timed in blocks that alternate over a few
rounds, each block after a pause and an untimed call (see ``bench_common.blocked_times``: the other
library's idle worker threads must not steal the second core), and the best is reported.

FLOPs: forward = 2*N*F*C*kh*kw*OH*OW (bias ignored); forward+backward = 3x forward (the
backward pass is two products of the same size, one for dx and one for dw).

The ceiling of an im2col convolution is not the square sgemm but its own matrix products, so
the run also times them alone on ready-made operands ("same-shape GEMM"): the forward's
(N*OH*OW, kh*kw*C) x (kh*kw*C, F), and for forward+backward also dW = rows^T dY and
dX-rows = dY W^T. ``numpy_forward_pct_of_gemm`` says how much of that product's speed the
whole NumPy convolution keeps (unfolding, layout and bias cost the rest), and
``torch_over_gemm_forward`` whether PyTorch's convolution is faster than those products
alone: where it is, no im2col convolution built on this BLAS can match it.

Before anything is timed, each layer's NumPy output and gradients are checked against torch
(float32, loose tolerance), so the benchmark never times a wrong result; a mismatch exits
with status 1. The targets are reported as measured, pass or fail; nothing is hard-coded.
"""
from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

if str(Path(__file__).resolve().parent) not in sys.path:  # imported rather than run: bench_common is beside it
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_common import (ROOT, blocked_times, check_against_torch, exit_on_mismatch,  # noqa: E402
                          format_targets, run_benchmark, target)
from minilib.conv import conv2d_backward, conv2d_forward  # noqa: E402
from minilib.fastconv import conv2d_backward_fast, conv2d_forward_fast  # noqa: E402

# name -> (forward, backward): the fast path the layers use, and the im2col version the book derives.
IMPLEMENTATIONS = {"numpy": (conv2d_forward_fast, conv2d_backward_fast), "im2col": (conv2d_forward, conv2d_backward)}

DEFAULT_OUT = ROOT / "results" / "bench_conv.json"

# (name, in_channels C, out_channels F, kernel k, input size H=W, padding); stride 1 everywhere.
LAYERS = [
    ("lenet_conv1", 1, 20, 5, 28, 0),
    ("lenet_conv2", 20, 50, 5, 12, 0),
    ("conv3x3_64", 64, 64, 3, 32, 1),
]

# Targets: on these layers the NumPy forward and forward+backward take at most this multiple of torch's time.
TORCH_RATIO_TARGET = 1.0
TORCH_RATIO_LAYERS = ("lenet_conv2", "conv3x3_64")


# ----------------------------------------------------------------------------- one layer

def same_shape_gemms(batch, c, f, k, out_size, rng):
    """``(forward, forward_backward)`` callables timing the im2col convolution's matrix products alone.

    Operands are made once: rows (N*OH*OW, K) with K = kh*kw*C, w_rows (K, F) and dY (N*OH*OW, F).
    forward: rows @ w_rows; forward_backward: that, dW = rows^T @ dY and dX-rows = dY @ w_rows^T,
    each written into a preallocated output, so only the products are timed.
    """
    m, kk = batch * out_size * out_size, c * k * k
    rows = rng.standard_normal((m, kk), dtype=np.float32)
    w_rows = rng.standard_normal((kk, f), dtype=np.float32)
    dy = rng.standard_normal((m, f), dtype=np.float32)
    out, dw, drows = np.empty((m, f), np.float32), np.empty((kk, f), np.float32), np.empty((m, kk), np.float32)

    def forward():
        np.matmul(rows, w_rows, out=out)

    def forward_backward():
        forward()
        np.matmul(rows.T, dy, out=dw)
        np.matmul(dy, w_rows.T, out=drows)

    return forward, forward_backward


def bench_layer(spec, batch, repeats, pause, sgemm_gflops, torch, rng) -> dict:
    F = torch.nn.functional
    name, c, f, k, size, padding = spec
    out_size = size + 2 * padding - k + 1
    x = rng.standard_normal((batch, c, size, size), dtype=np.float32)
    w = (rng.standard_normal((f, c, k, k), dtype=np.float32) / np.float32(math.sqrt(c * k * k)))
    b = rng.standard_normal(f, dtype=np.float32)
    dout = rng.standard_normal((batch, f, out_size, out_size), dtype=np.float32)

    max_rel_error = max(check_against_torch(impl, x, w, b, dout, padding, torch, F) for impl in IMPLEMENTATIONS.values())

    xt, wt, bt = (torch.from_numpy(v.copy()).requires_grad_(True) for v in (x, w, b))
    dout_t = torch.from_numpy(dout)

    def torch_forward():
        with torch.no_grad():  # pure forward cost: no autograd graph
            F.conv2d(xt, wt, bt, padding=padding)

    def torch_forward_backward():
        xt.grad = wt.grad = bt.grad = None  # fresh gradients each time, as NumPy computes them
        F.conv2d(xt, wt, bt, padding=padding).backward(dout_t)

    gemm_forward, gemm_forward_backward = same_shape_gemms(batch, c, f, k, out_size, rng)
    variants = {"torch_forward": torch_forward, "torch_forward_backward": torch_forward_backward,
                "gemm_forward": gemm_forward, "gemm_forward_backward": gemm_forward_backward}
    for lib, (forward, backward) in IMPLEMENTATIONS.items():
        variants[f"{lib}_forward"] = lambda forward=forward: forward(x, w, b, 1, padding)
        variants[f"{lib}_forward_backward"] = (
            lambda forward=forward, backward=backward: backward(dout, forward(x, w, b, 1, padding)[1]))
    times = blocked_times(variants, repeats, pause)

    flops_fwd = 2.0 * batch * f * c * k * k * out_size * out_size
    flops_fb = 3.0 * flops_fwd

    def side(lib):
        t_f, t_f_med = times[f"{lib}_forward"]
        t_fb, t_fb_med = times[f"{lib}_forward_backward"]
        return {"forward_s": t_f, "forward_s_median": t_f_med,
                "forward_backward_s": t_fb, "forward_backward_s_median": t_fb_med,
                "forward_gflops": flops_fwd / t_f / 1e9, "forward_backward_gflops": flops_fb / t_fb / 1e9}

    numpy_side, im2col_side, torch_side, gemm = side("numpy"), side("im2col"), side("torch"), side("gemm")
    return {
        "name": name, "in_channels": c, "out_channels": f, "kernel_size": k, "input_hw": size,
        "padding": padding, "stride": 1, "output_hw": out_size,
        "flops_forward": flops_fwd, "flops_forward_backward": flops_fb,
        "numpy": numpy_side, "numpy_im2col": im2col_side, "torch": torch_side, "gemm_same_shape": gemm,
        "ratio_forward": numpy_side["forward_s"] / torch_side["forward_s"],
        "ratio_forward_backward": numpy_side["forward_backward_s"] / torch_side["forward_backward_s"],
        "numpy_forward_pct_of_sgemm": 100.0 * numpy_side["forward_gflops"] / sgemm_gflops,
        "torch_forward_pct_of_sgemm": 100.0 * torch_side["forward_gflops"] / sgemm_gflops,
        "gemm_forward_pct_of_sgemm": 100.0 * gemm["forward_gflops"] / sgemm_gflops,
        "numpy_forward_pct_of_gemm": 100.0 * gemm["forward_s"] / numpy_side["forward_s"],
        "numpy_forward_backward_pct_of_gemm": 100.0 * gemm["forward_backward_s"] / numpy_side["forward_backward_s"],
        "torch_over_gemm_forward": torch_side["forward_s"] / gemm["forward_s"],
        "torch_over_gemm_forward_backward": torch_side["forward_backward_s"] / gemm["forward_backward_s"],
        "max_rel_error_vs_torch": max_rel_error,
    }


def evaluate_targets(layers: list[dict]) -> list[dict]:
    by_name = {layer["name"]: layer for layer in layers}
    return [target(f"{name}: {label} <= {TORCH_RATIO_TARGET:g}x torch time", by_name[name], metric, "<=",
                   TORCH_RATIO_TARGET)
            for name in TORCH_RATIO_LAYERS
            for label, metric in (("forward", "ratio_forward"), ("forward+backward", "ratio_forward_backward"))]


# ----------------------------------------------------------------------------- report

def format_table(result: dict) -> str:
    lines = [
        f"{'layer':<12} {'np fwd ms':>9} {'torch fwd':>9} {'np GF/s':>8} {'%sgemm':>7} {'torch %':>7} "
        f"{'fwd x':>6} {'np f+b ms':>9} {'torch f+b':>9} {'f+b x':>6} {'im2col fwd':>10} {'im2col f+b':>10} | "
        f"{'GEMM fwd':>8} {'GEMM f+b':>8} {'np %GEMM':>8} {'torch/GEMM':>10}",
    ]
    for layer in result["layers"]:
        n, t, g = layer["numpy"], layer["torch"], layer["gemm_same_shape"]
        lines.append(
            f"{layer['name']:<12} {1e3 * n['forward_s']:9.2f} {1e3 * t['forward_s']:9.2f} "
            f"{n['forward_gflops']:8.1f} {layer['numpy_forward_pct_of_sgemm']:6.1f}% "
            f"{layer['torch_forward_pct_of_sgemm']:6.1f}% {layer['ratio_forward']:6.2f} "
            f"{1e3 * n['forward_backward_s']:9.2f} {1e3 * t['forward_backward_s']:9.2f} "
            f"{layer['ratio_forward_backward']:6.2f} {1e3 * layer['numpy_im2col']['forward_s']:10.2f} "
            f"{1e3 * layer['numpy_im2col']['forward_backward_s']:10.2f} | "
            f"{1e3 * g['forward_s']:8.2f} {1e3 * g['forward_backward_s']:8.2f} "
            f"{layer['numpy_forward_pct_of_gemm']:7.0f}% {layer['torch_over_gemm_forward']:10.2f}")
    lines.append("(times: best of repeats; 'x' = NumPy time / torch time; np = minilib.fastconv, "
                 "im2col = minilib.conv, in ms;")
    lines.append(" GEMM = the convolution's own matrix products alone, same shapes; 'np %GEMM' = GEMM forward time "
                 "/ NumPy forward time; 'torch/GEMM' = torch forward time / GEMM forward time)")
    lines += format_targets(result["targets"], 2)
    return "\n".join(lines)


def main(argv=None) -> int:
    return run_benchmark("conv_benchmark.py", __doc__, DEFAULT_OUT, LAYERS, bench_layer, evaluate_targets, format_table,
                         argv)


if __name__ == "__main__":
    exit_on_mismatch(main, "conv_benchmark")
