"""Benchmark versatile convolution against a standard convolution with as many output channels.

    python benchmarks/versatile_benchmark.py [--repeats R] [--batch 128] [--out results/bench_versatile.json]
    python benchmarks/versatile_benchmark.py --quick        # smoke run: batch 8, 1 repeat

Proposition 1 of the versatile-filters paper says a spatial versatile layer needs fewer
multiplications than the standard layer it replaces: secondary i of a d x d primary filter
has only (d-2i)^2 nonzero taps, so a layer with the same number of OUTPUT channels costs

    sum_i (d - 2i)^2 / (s * d^2)        (s = ceil(d/2) secondaries per primary)

of the standard layer's multiplications: 35/75 = 0.467 for 5x5, 10/18 = 0.556 for 3x3. The
ratio is computed here from :func:`minilib.versatile.versatile_cost`, not typed in. This
benchmark asks whether the saving shows up as TIME, for the same input and the same output
channels:

* NumPy: what :class:`minilib.versatile.VersatileConv2d` runs,
  :func:`minilib.versatile.versatile_conv2d_forward_fast` / ``_backward_fast`` (one
  ring-ordered unfold, one GEMM per ring of taps: d^2 multiplications per tap set, 1/s of the
  standard layer's), against :func:`minilib.fastconv.conv2d_forward_fast` /
  ``conv2d_backward_fast`` (what :class:`minilib.layers.Conv2d` runs); and, as an extra column,
  the readable :func:`minilib.versatile.versatile_conv2d_forward` / ``_backward`` (one unfold and
  one GEMM per secondary, on the cropped kernel), to show what the reorganisation buys;
* torch: ``minilib.torch.VersatileConv2d`` against ``nn.Conv2d``; forward under ``no_grad``,
  forward+backward through autograd.

Per layer it reports forward and forward+backward times, the time ratios versatile/standard
for NumPy (fast and cropped) and for torch next to the multiplication ratio, and the NumPy
versatile forward's effective GFLOP/s (2 x Proposition-1 multiplications / time) as a
percentage of this machine's sgemm measured in the same run: smaller, separate GEMMs run
below the BLAS peak, which is why a time ratio can exceed the multiplication ratio (and the
fast path's effective rate can exceed the peak: it needs fewer multiplications than
Proposition 1 counts).

Timing uses the helpers ``conv_benchmark`` uses too (``bench_common``): everything in ONE run,
float32, NumPy/OpenBLAS and torch on the same number of threads, each variant timed in
alternating blocks after a pause and an untimed call (see ``bench_common.blocked_times``),
best reported; on a shared machine only ratios measured side by side mean anything. Before
anything is timed, each layer's NumPy versatile output and gradients are checked against the
torch twin, and the NumPy standard convolution against torch (float32, loose tolerance); a
mismatch exits with status 1. The targets are reported as measured, pass or fail; nothing is
hard-coded.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

if str(Path(__file__).resolve().parent) not in sys.path:  # imported rather than run: bench_common is beside it
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_common import (ROOT, blocked_times, check_against_torch, compare_with_torch, exit_on_mismatch,  # noqa: E402
                          format_targets, run_benchmark, target, torch_step_functions)
from minilib.fastconv import conv2d_backward_fast, conv2d_forward_fast  # noqa: E402
from minilib.versatile import (VersatileConv2d, versatile_conv2d_backward, versatile_conv2d_backward_fast,  # noqa: E402
                               versatile_conv2d_forward, versatile_conv2d_forward_fast, versatile_cost)

DEFAULT_OUT = ROOT / "results" / "bench_versatile.json"

# (name, in_channels c, out_channels, kernel d, input size H=W, padding); stride 1 everywhere.
# out_channels is the same for both layers: the versatile one stores out_channels / s primaries.
LAYERS = [
    ("lenet_v3_conv2", 21, 51, 5, 12, 0),   # second layer of Versatile-Model 3: 17 primaries x 3 secondaries
    ("conv5x5_48", 48, 96, 5, 16, 2),
    ("conv3x3_64", 64, 128, 3, 16, 1),
]

# Targets: on 5x5 layers (multiplication ratio 0.467) the NumPy versatile forward takes at most
# FORWARD_RATIO_TARGET of the standard forward's time, forward+backward at most
# FORWARD_BACKWARD_RATIO_TARGET of the standard forward+backward's.
FORWARD_RATIO_TARGET = 0.55
FORWARD_BACKWARD_RATIO_TARGET = 0.6
FORWARD_RATIO_KERNEL = 5

# What each side of a layer record times.
IMPLEMENTATIONS = {
    "numpy_standard": "minilib.fastconv.conv2d_forward_fast / conv2d_backward_fast",
    "numpy_versatile": "minilib.versatile.versatile_conv2d_forward_fast / versatile_conv2d_backward_fast "
                       "(what minilib.versatile.VersatileConv2d runs)",
    "numpy_versatile_cropped": "minilib.versatile.versatile_conv2d_forward / versatile_conv2d_backward "
                               "(the readable cropped-kernel version)",
    "torch_standard": "torch.nn.Conv2d",
    "torch_versatile": "minilib.torch.VersatileConv2d",
}

# The NumPy versatile implementations that are timed: the fast path and the readable cropped one.
FAST = (versatile_conv2d_forward_fast, versatile_conv2d_backward_fast)
CROPPED = (versatile_conv2d_forward, versatile_conv2d_backward)


# ----------------------------------------------------------------------------- correctness


def check_versatile_against_torch(x, weight, bias, dout, padding, twin, torch, implementation=FAST) -> float:
    """Max abs error of a NumPy versatile forward and its gradients vs the torch twin, scaled; raise if too large."""
    forward, backward = implementation
    out, cache = forward(x, weight, bias, 1, padding)
    dx, dweight, dbias = backward(dout, cache)
    with torch.no_grad():
        twin.weight.copy_(torch.from_numpy(weight))
        twin.bias.copy_(torch.from_numpy(bias))
    twin.zero_grad(set_to_none=True)
    xt = torch.tensor(x, requires_grad=True)
    ref = twin(xt)
    ref.backward(torch.from_numpy(dout))
    return compare_with_torch((("output", out, ref.detach().numpy()), ("dx", dx, xt.grad.numpy()),
                               ("dweight", dweight, twin.weight.grad.numpy()),
                               ("dbias", dbias, twin.bias.grad.numpy())),
                              "versatile " if implementation is FAST else "versatile (cropped) ",
                              "minilib.torch.VersatileConv2d")


# ----------------------------------------------------------------------------- one layer

def bench_layer(spec, batch, repeats, pause, sgemm_gflops, torch, rng) -> dict:
    from minilib.torch import VersatileConv2d as TorchVersatileConv2d

    name, c, f, k, size, padding = spec
    out_size = size + 2 * padding - k + 1
    layer = VersatileConv2d(c, f, k, padding=padding, rng=rng)   # validates the configuration; defines the cost
    x = rng.standard_normal((batch, c, size, size), dtype=np.float32)
    w_std = rng.standard_normal((f, c, k, k), dtype=np.float32) / np.float32(np.sqrt(c * k * k))
    b_std = rng.standard_normal(f, dtype=np.float32)
    w_vers = layer.weight.astype(np.float32)     # (P, c, d, d), P = out_channels / s
    b_vers = layer.bias.astype(np.float32)       # (out_channels,)
    dout = rng.standard_normal((batch, f, out_size, out_size), dtype=np.float32)

    twin = TorchVersatileConv2d(c, f, k, padding=padding, dtype=torch.float32)
    standard_t = torch.nn.Conv2d(c, f, k, padding=padding, dtype=torch.float32)
    err_vers = check_versatile_against_torch(x, w_vers, b_vers, dout, padding, twin, torch)
    err_cropped = check_versatile_against_torch(x, w_vers, b_vers, dout, padding, twin, torch, CROPPED)
    err_std = check_against_torch((conv2d_forward_fast, conv2d_backward_fast), x, w_std, b_std, dout, padding,
                                  torch, torch.nn.functional)
    with torch.no_grad():
        standard_t.weight.copy_(torch.from_numpy(w_std))
        standard_t.bias.copy_(torch.from_numpy(b_std))

    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    dout_t = torch.from_numpy(dout)

    torch_forward, torch_forward_backward = torch_step_functions(xt, dout_t, torch)

    numpy_fns = {"standard": (conv2d_forward_fast, conv2d_backward_fast, w_std, b_std),
                 "versatile": (*FAST, w_vers, b_vers), "versatile_cropped": (*CROPPED, w_vers, b_vers)}
    variants = {}
    for kind, (forward, backward, w, b) in numpy_fns.items():
        variants[f"numpy_{kind}_forward"] = lambda forward=forward, w=w, b=b: forward(x, w, b, 1, padding)
        variants[f"numpy_{kind}_forward_backward"] = (
            lambda forward=forward, backward=backward, w=w, b=b: backward(dout, forward(x, w, b, 1, padding)[1]))
    for kind, module in (("standard", standard_t), ("versatile", twin)):
        variants[f"torch_{kind}_forward"] = lambda module=module: torch_forward(module)
        variants[f"torch_{kind}_forward_backward"] = lambda module=module: torch_forward_backward(module)
    times = blocked_times(variants, repeats, pause)

    # Multiplications per sample: dense conv vs Proposition 1 (nonzero taps of each secondary only).
    mults_standard = f * c * k * k * out_size * out_size
    mults_versatile = versatile_cost(layer, (out_size, out_size))["flops"]
    flops = {"standard": 2.0 * batch * mults_standard, "versatile": 2.0 * batch * mults_versatile,
             "versatile_cropped": 2.0 * batch * mults_versatile}

    def side(lib, kind):
        t_f, t_f_med = times[f"{lib}_{kind}_forward"]
        t_fb, t_fb_med = times[f"{lib}_{kind}_forward_backward"]
        # forward+backward = 3x forward: dx and dW are each a product of the forward's size.
        return {"forward_s": t_f, "forward_s_median": t_f_med,
                "forward_backward_s": t_fb, "forward_backward_s_median": t_fb_med,
                "forward_gflops": flops[kind] / t_f / 1e9, "forward_backward_gflops": 3.0 * flops[kind] / t_fb / 1e9}

    sides = {f"{lib}_{kind}": side(lib, kind) for lib in ("numpy", "torch") for kind in ("standard", "versatile")}
    sides["numpy_versatile_cropped"] = side("numpy", "versatile_cropped")

    def ratio(lib, key, kind="versatile"):
        return sides[f"{lib}_{kind}"][key] / sides[f"{lib}_standard"][key]

    return {
        "name": name, "in_channels": c, "out_channels": f, "kernel_size": k, "input_hw": size,
        "padding": padding, "stride": 1, "output_hw": out_size,
        "secondaries": layer.s, "primaries": layer.primaries,
        "weights_standard": f * c * k * k, "weights_versatile": int(w_vers.size),
        "mults_standard_per_sample": mults_standard, "mults_versatile_per_sample": mults_versatile,
        "mult_ratio": mults_versatile / mults_standard,
        "flops_forward_standard": flops["standard"], "flops_forward_versatile": flops["versatile"],
        **sides,
        "numpy_ratio_forward": ratio("numpy", "forward_s"),
        "numpy_ratio_forward_backward": ratio("numpy", "forward_backward_s"),
        "torch_ratio_forward": ratio("torch", "forward_s"),
        "torch_ratio_forward_backward": ratio("torch", "forward_backward_s"),
        "numpy_cropped_ratio_forward": ratio("numpy", "forward_s", "versatile_cropped"),
        "numpy_cropped_ratio_forward_backward": ratio("numpy", "forward_backward_s", "versatile_cropped"),
        "numpy_versatile_forward_pct_of_sgemm": 100.0 * sides["numpy_versatile"]["forward_gflops"] / sgemm_gflops,
        "numpy_standard_forward_pct_of_sgemm": 100.0 * sides["numpy_standard"]["forward_gflops"] / sgemm_gflops,
        "max_rel_error_vs_torch": {"versatile": err_vers, "versatile_cropped": err_cropped, "standard": err_std},
    }


def evaluate_targets(layers: list[dict]) -> list[dict]:
    """On every 5x5 layer: the forward ratio, then the forward+backward ratio."""
    kernel = f"{FORWARD_RATIO_KERNEL}x{FORWARD_RATIO_KERNEL}"
    targets = []
    for layer in layers:
        if layer["kernel_size"] != FORWARD_RATIO_KERNEL:
            continue
        targets.append(target(f"{layer['name']}: NumPy {kernel} versatile/standard forward time ratio "
                              f"<= {FORWARD_RATIO_TARGET:g}", layer, "numpy_ratio_forward", "<=", FORWARD_RATIO_TARGET))
        targets.append(target(f"{layer['name']}: NumPy {kernel} versatile/standard forward+backward time ratio "
                              f"<= {FORWARD_BACKWARD_RATIO_TARGET:g}", layer, "numpy_ratio_forward_backward", "<=",
                              FORWARD_BACKWARD_RATIO_TARGET))
    return targets


# ----------------------------------------------------------------------------- report

def format_table(result: dict) -> str:
    lines = [
        f"{'layer':<16} {'d':>2} {'mults x':>7} | {'std fwd':>8} {'vers fwd':>8} {'fwd x':>6} "
        f"{'std f+b':>8} {'vers f+b':>8} {'f+b x':>6} | {'vers GF/s':>9} {'%sgemm':>7} {'std %':>6} "
        f"| {'crop fwd x':>10} {'crop f+b x':>10}",
    ]
    for lib in ("numpy", "torch"):
        lines.append(f"{lib}:")
        for layer in result["layers"]:
            std, vers = layer[f"{lib}_standard"], layer[f"{lib}_versatile"]
            line = (f"  {layer['name']:<14} {layer['kernel_size']:>2} {layer['mult_ratio']:7.3f} | "
                    f"{1e3 * std['forward_s']:8.2f} {1e3 * vers['forward_s']:8.2f} "
                    f"{layer[f'{lib}_ratio_forward']:6.2f} "
                    f"{1e3 * std['forward_backward_s']:8.2f} {1e3 * vers['forward_backward_s']:8.2f} "
                    f"{layer[f'{lib}_ratio_forward_backward']:6.2f}")
            if lib == "numpy":
                line += (f" | {vers['forward_gflops']:9.1f} {layer['numpy_versatile_forward_pct_of_sgemm']:6.1f}% "
                         f"{layer['numpy_standard_forward_pct_of_sgemm']:5.1f}% "
                         f"| {layer['numpy_cropped_ratio_forward']:10.2f} "
                         f"{layer['numpy_cropped_ratio_forward_backward']:10.2f}")
            lines.append(line)
    lines.append("(times in ms, best of repeats; 'x' = versatile time / standard time; 'mults x' = Proposition-1 "
                 "multiplications / standard;")
    lines.append(" GF/s = 2 x Proposition-1 multiplications / NumPy versatile forward time; '%sgemm' of it and "
                 "'std %' of the NumPy standard forward;")
    lines.append(" NumPy versatile = the fast path VersatileConv2d runs; 'crop x' = the readable cropped version's "
                 "time / standard time)")
    lines += format_targets(result["targets"], 3)
    return "\n".join(lines)


def main(argv=None) -> int:
    return run_benchmark("versatile_benchmark.py", __doc__, DEFAULT_OUT, LAYERS, bench_layer, evaluate_targets,
                         format_table, argv, extra={"implementations": IMPLEMENTATIONS})


if __name__ == "__main__":
    exit_on_mismatch(main, "versatile_benchmark")
