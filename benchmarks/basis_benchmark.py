"""Benchmark a filter-basis convolution against the dense convolution it replaces, and its two torch split modes.

    python benchmarks/basis_benchmark.py [--repeats R] [--batch 64] [--out results/bench_basis.json]
    python benchmarks/basis_benchmark.py --quick        # smoke run: batch 8, 1 repeat

A basis layer (Li et al., ICCV 2019) computes a c -> n, k x k convolution as Eq. 11: the s
input splits of p = c/s channels are convolved with m basis filters (p x k x k), and a 1x1
convolution (s*m -> n) mixes the responses. Per sample it multiplies

    m*c*k^2*OH*OW + n*s*m*OH*OW   instead of   n*c*k^2*OH*OW,   a ratio of m/n + m/(p*k^2)

(:func:`minilib.basis.basis_flops`; the ratio is computed from it, not typed in). This benchmark
asks whether that shows up as TIME, for the same input and the same output channels:

* NumPy: :func:`minilib.basis.basis_conv2d_forward` / ``_backward`` (what ``BasisConv2d`` runs:
  :mod:`minilib.basis_fast`, tap products or one unfold per chunk, never the k^2*c unfold for m
  columns) against :func:`minilib.fastconv.conv2d_forward_fast` / ``conv2d_backward_fast`` (what
  ``Conv2d`` runs), and the readable :func:`minilib.basis.basis_conv2d_forward_reshaped` (one
  convolution of the batch reshaped to (N*s, p, H, W), then a matrix product) for comparison;
* torch: ``minilib.torch.BasisConv2d`` against ``nn.Conv2d``; forward under ``no_grad``,
  forward+backward through autograd;
* torch, the two ways of running the s basis convolutions (Sec. 3.3): ``split_mode="reshape"``
  (one convolution of N*s images, the default) and ``"loop"`` (s convolutions sharing the
  basis, as the paper's implementation).

Layers: the paper's Basis-64-14 (SRResNet) and Basis-128-27 (EDSR-8-128) operating points of
Table 2 (s = 1), and layers with s = 4 and 8 splits and a 1x1 layer (Sec. 3.4), at 16x16.

Timing uses ``bench_common``: everything in ONE run, float32, NumPy/OpenBLAS and torch on the
same number of threads, each variant timed in alternating blocks after a pause and an untimed
call, best reported; on a shared machine only ratios measured side by side mean anything. The
default batch is 64 (``--batch`` overrides it). Before anything is timed, each layer's NumPy
basis output and gradients are checked against the torch twin (both split modes), and the
NumPy dense convolution against torch (float32, loose tolerance); a mismatch exits with
status 1. The targets are reported as measured, pass or fail; nothing is hard-coded.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

BENCHMARKS = Path(__file__).resolve().parent
for _path in (BENCHMARKS.parent, BENCHMARKS):  # run as a script from anywhere: this tree's minilib and bench_common
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from bench_common import (ROOT, blocked_times, check_against_torch, compare_with_torch, exit_on_mismatch,  # noqa: E402
                          format_targets, run_benchmark, target, torch_step_functions)
from minilib.basis import (BasisConv2d, basis_conv2d_backward, basis_conv2d_backward_reshaped,  # noqa: E402
                           basis_conv2d_forward, basis_conv2d_forward_reshaped, basis_flops)
from minilib.fastconv import conv2d_backward_fast, conv2d_forward_fast  # noqa: E402

DEFAULT_OUT = ROOT / "results" / "bench_basis.json"
DEFAULT_BATCH = 64

# (name, in_channels c, out_channels n, kernel k, input size H=W, padding, n_basis m, splits s); stride 1.
LAYERS = [
    ("srresnet_basis_64_14", 64, 64, 3, 16, 1, 14, 1),      # Table 2: Basis-64-14, p = 64
    ("edsr8_basis_128_27", 128, 128, 3, 16, 1, 27, 1),      # Table 2: Basis-128-27, p = 128
    ("conv3x3_64_s4", 64, 64, 3, 16, 1, 32, 4),             # p = 16, as Table 1's s = 4 splits
    ("conv3x3_64_s8", 64, 64, 3, 16, 1, 32, 8),             # p = 8
    ("conv1x1_128_s2", 128, 128, 1, 16, 0, 32, 2),          # a 1x1 convolution (Sec. 3.4), p = 64
]
SPLIT_MODES = ("reshape", "loop")

# NumPy targets, basis time / dense time: (1) on layers with at most a quarter of the dense
# multiplications (the s = 1 layers, ratio about 0.24) the forward takes at most
# NUMPY_FORWARD_RATIO_TARGET and forward+backward at most NUMPY_FORWARD_BACKWARD_RATIO_TARGET of
# the dense time; (2) on the others (s = 2, 4, 8, ratio 0.72-0.94) neither is slower than the
# dense convolution by more than the multiplication ratio says: ratio <= max(1, mult_ratio).
FEW_MULTS_RATIO = 0.25
NUMPY_FORWARD_RATIO_TARGET = 0.4
NUMPY_FORWARD_BACKWARD_RATIO_TARGET = 0.5
# torch target: on the layers with s > 1 the default split mode "reshape" is at least as fast
# as "loop" (loop / reshape time >= 1), forward+backward.
SPLIT_RATIO_TARGET = 1.0

# What each side of a layer record times.
IMPLEMENTATIONS = {
    "numpy_dense": "minilib.fastconv.conv2d_forward_fast / conv2d_backward_fast",
    "numpy_basis": "minilib.basis.basis_conv2d_forward / basis_conv2d_backward",
    "numpy_basis_reshaped": "minilib.basis.basis_conv2d_forward_reshaped / basis_conv2d_backward_reshaped",
    "torch_dense": "torch.nn.Conv2d",
    "torch_basis_reshape": "minilib.torch.BasisConv2d(split_mode='reshape')",
    "torch_basis_loop": "minilib.torch.BasisConv2d(split_mode='loop')",
}
SIDES = tuple(IMPLEMENTATIONS)


# ----------------------------------------------------------------------------- correctness

def check_basis_against_torch(x, params, dout, padding, twin, torch) -> float:
    """Max scaled error of the NumPy basis forward and gradients vs one torch twin; raise if too large."""
    out, cache = basis_conv2d_forward(x, *params, 1, padding)
    dx, dbasis, dcoeff, dbias = basis_conv2d_backward(dout, cache)
    with torch.no_grad():
        for name, value in zip(("basis", "coeff", "bias"), params):
            getattr(twin, name).copy_(torch.from_numpy(value))
    twin.zero_grad(set_to_none=True)
    xt = torch.tensor(x, requires_grad=True)
    ref = twin(xt)
    ref.backward(torch.from_numpy(dout))
    return compare_with_torch([("output", out, ref.detach().numpy()), ("dx", dx, xt.grad.numpy()),
                               ("dbasis", dbasis, twin.basis.grad.numpy()), ("dcoeff", dcoeff, twin.coeff.grad.numpy()),
                               ("dbias", dbias, twin.bias.grad.numpy())],
                              "basis ", f"minilib.torch.BasisConv2d(split_mode={twin.split_mode!r})")


# ----------------------------------------------------------------------------- one layer

def bench_layer(spec, batch, repeats, pause, sgemm_gflops, torch, rng) -> dict:
    from minilib.torch import BasisConv2d as TorchBasisConv2d

    name, c, n, k, size, padding, m, s = spec
    out_size = size + 2 * padding - k + 1
    layer = BasisConv2d(c, n, k, m, c // s, padding=padding, rng=rng)   # validates the configuration
    params = tuple(a.astype(np.float32) for a in (layer.basis, layer.coeff, layer.bias))
    x = rng.standard_normal((batch, c, size, size), dtype=np.float32)
    w_dense = rng.standard_normal((n, c, k, k), dtype=np.float32) / np.float32(np.sqrt(c * k * k))
    b_dense = rng.standard_normal(n, dtype=np.float32)
    dout = rng.standard_normal((batch, n, out_size, out_size), dtype=np.float32)

    twins = {mode: TorchBasisConv2d(c, n, k, m, c // s, padding=padding, split_mode=mode, dtype=torch.float32)
             for mode in SPLIT_MODES}
    errors = {f"basis_{mode}": check_basis_against_torch(x, params, dout, padding, twin, torch)
              for mode, twin in twins.items()}
    errors["dense"] = check_against_torch((conv2d_forward_fast, conv2d_backward_fast), x, w_dense, b_dense, dout,
                                          padding, torch, torch.nn.functional)
    dense_t = torch.nn.Conv2d(c, n, k, padding=padding, dtype=torch.float32)
    with torch.no_grad():
        dense_t.weight.copy_(torch.from_numpy(w_dense))
        dense_t.bias.copy_(torch.from_numpy(b_dense))

    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    dout_t = torch.from_numpy(dout)

    torch_forward, torch_forward_backward = torch_step_functions(xt, dout_t, torch)

    numpy_fns = {"dense": (conv2d_forward_fast, conv2d_backward_fast, (w_dense, b_dense)),
                 "basis": (basis_conv2d_forward, basis_conv2d_backward, params),
                 "basis_reshaped": (basis_conv2d_forward_reshaped, basis_conv2d_backward_reshaped, params)}
    variants = {}
    for kind, (forward, backward, p) in numpy_fns.items():
        variants[f"numpy_{kind}_forward"] = lambda forward=forward, p=p: forward(x, *p, 1, padding)
        variants[f"numpy_{kind}_forward_backward"] = (
            lambda forward=forward, backward=backward, p=p: backward(dout, forward(x, *p, 1, padding)[1]))
    modules = {"torch_dense": dense_t, **{f"torch_basis_{mode}": twin for mode, twin in twins.items()}}
    for side, module in modules.items():
        variants[f"{side}_forward"] = lambda module=module: torch_forward(module)
        variants[f"{side}_forward_backward"] = lambda module=module: torch_forward_backward(module)
    times = blocked_times(variants, repeats, pause)

    mults = basis_flops(c, n, k, m, s, out_size)            # per sample, Eq. 11 as two convolutions
    flops = {"dense": 2.0 * batch * mults["original"], "basis": 2.0 * batch * mults["total"]}

    def side(name):
        kind = "dense" if name.endswith("dense") else "basis"
        t_f, t_f_med = times[f"{name}_forward"]
        t_fb, t_fb_med = times[f"{name}_forward_backward"]
        # forward+backward = 3x forward: the gradients are products of the forward's size.
        return {"forward_s": t_f, "forward_s_median": t_f_med,
                "forward_backward_s": t_fb, "forward_backward_s_median": t_fb_med,
                "forward_gflops": flops[kind] / t_f / 1e9, "forward_backward_gflops": 3.0 * flops[kind] / t_fb / 1e9}

    sides = {name: side(name) for name in SIDES}

    def ratio(num, den, key):
        return sides[num][key] / sides[den][key]

    return {
        "name": name, "in_channels": c, "out_channels": n, "kernel_size": k, "input_hw": size,
        "padding": padding, "stride": 1, "output_hw": out_size, "n_basis": m, "splits": s, "basis_channels": c // s,
        "weights_dense": n * c * k * k, "weights_basis": int(layer.basis.size + layer.coeff.size),
        "mults_dense_per_sample": mults["original"], "mults_basis_per_sample": mults["total"],
        "mults_basis_conv_per_sample": mults["basis"], "mults_coefficients_per_sample": mults["coefficients"],
        "mult_ratio": mults["total"] / mults["original"],
        "flops_forward_dense": flops["dense"], "flops_forward_basis": flops["basis"],
        **sides,
        "numpy_ratio_forward": ratio("numpy_basis", "numpy_dense", "forward_s"),
        "numpy_ratio_forward_backward": ratio("numpy_basis", "numpy_dense", "forward_backward_s"),
        "numpy_route": basis_conv2d_forward(x[:1], *params, 1, padding)[1][0],
        "numpy_reshaped_ratio_forward": ratio("numpy_basis_reshaped", "numpy_dense", "forward_s"),
        "numpy_reshaped_ratio_forward_backward": ratio("numpy_basis_reshaped", "numpy_dense", "forward_backward_s"),
        "torch_ratio_forward": ratio("torch_basis_reshape", "torch_dense", "forward_s"),
        "torch_ratio_forward_backward": ratio("torch_basis_reshape", "torch_dense", "forward_backward_s"),
        "torch_loop_over_reshape_forward": ratio("torch_basis_loop", "torch_basis_reshape", "forward_s"),
        "torch_loop_over_reshape_forward_backward": ratio("torch_basis_loop", "torch_basis_reshape",
                                                          "forward_backward_s"),
        "numpy_basis_forward_pct_of_sgemm": 100.0 * sides["numpy_basis"]["forward_gflops"] / sgemm_gflops,
        "numpy_dense_forward_pct_of_sgemm": 100.0 * sides["numpy_dense"]["forward_gflops"] / sgemm_gflops,
        "max_rel_error_vs_torch": errors,
    }


def numpy_thresholds(mult_ratio: float) -> tuple[float, float, str]:
    """(forward, forward+backward) time-ratio targets of a layer and why, from its multiplication ratio."""
    if mult_ratio <= FEW_MULTS_RATIO:
        return (NUMPY_FORWARD_RATIO_TARGET, NUMPY_FORWARD_BACKWARD_RATIO_TARGET,
                f"multiplication ratio {mult_ratio:.3f} <= {FEW_MULTS_RATIO:g}")
    limit = max(1.0, mult_ratio)
    return limit, limit, f"max(1, multiplication ratio {mult_ratio:.3f})"


def evaluate_targets(layers: list[dict]) -> list[dict]:
    targets = []
    for layer in layers:
        forward, forward_backward, why = numpy_thresholds(layer["mult_ratio"])
        for metric, threshold, what in (("numpy_ratio_forward", forward, "forward"),
                                        ("numpy_ratio_forward_backward", forward_backward, "forward+backward")):
            targets.append(target(f"{layer['name']}: NumPy basis/dense {what} time ratio <= {threshold:.3g} ({why})",
                                  layer, metric, "<=", threshold))
        if layer["splits"] > 1:
            targets.append(target(f"{layer['name']}: torch loop/reshape forward+backward time ratio >= "
                                  f"{SPLIT_RATIO_TARGET:g} (s={layer['splits']}: the default 'reshape' is not slower)",
                                  layer, "torch_loop_over_reshape_forward_backward", ">=", SPLIT_RATIO_TARGET))
    return targets


# ----------------------------------------------------------------------------- report

def format_table(result: dict) -> str:
    lines = [f"{'layer':<22} {'s':>2} {'mults x':>7} | {'dense fwd':>9} {'basis fwd':>9} {'fwd x':>6} "
             f"{'dense f+b':>9} {'basis f+b':>9} {'f+b x':>6}"]
    for lib in ("numpy", "torch"):
        lines.append(f"{lib}:")
        basis_side = "numpy_basis" if lib == "numpy" else "torch_basis_reshape"
        for layer in result["layers"]:
            dense, basis = layer[f"{lib}_dense"], layer[basis_side]
            lines.append(f"  {layer['name']:<20} {layer['splits']:>2} {layer['mult_ratio']:7.3f} | "
                         f"{1e3 * dense['forward_s']:9.2f} {1e3 * basis['forward_s']:9.2f} "
                         f"{layer[f'{lib}_ratio_forward']:6.2f} {1e3 * dense['forward_backward_s']:9.2f} "
                         f"{1e3 * basis['forward_backward_s']:9.2f} {layer[f'{lib}_ratio_forward_backward']:6.2f}")
    lines += ["", "torch split modes:", f"  {'layer':<20} {'s':>2} | {'reshape fwd':>11} {'loop fwd':>9} "
                                        f"{'loop/resh':>9} {'reshape f+b':>11} {'loop f+b':>9} {'loop/resh':>9}"]
    for layer in result["layers"]:
        reshape, loop = layer["torch_basis_reshape"], layer["torch_basis_loop"]
        lines.append(f"  {layer['name']:<20} {layer['splits']:>2} | {1e3 * reshape['forward_s']:11.2f} "
                     f"{1e3 * loop['forward_s']:9.2f} {layer['torch_loop_over_reshape_forward']:9.2f} "
                     f"{1e3 * reshape['forward_backward_s']:11.2f} {1e3 * loop['forward_backward_s']:9.2f} "
                     f"{layer['torch_loop_over_reshape_forward_backward']:9.2f}")
    lines += ["", "NumPy, the readable reshaped version (basis_conv2d_forward_reshaped) and the fast one:",
              f"  {'layer':<20} {'s':>2} {'route':>8} | {'resh fwd':>9} {'fwd x':>6} {'fast fwd x':>10} "
              f"{'resh f+b':>9} {'f+b x':>6} {'fast f+b x':>10}"]
    for layer in result["layers"]:
        reshaped = layer["numpy_basis_reshaped"]
        lines.append(f"  {layer['name']:<20} {layer['splits']:>2} {layer['numpy_route']:>8} | "
                     f"{1e3 * reshaped['forward_s']:9.2f} {layer['numpy_reshaped_ratio_forward']:6.2f} "
                     f"{layer['numpy_ratio_forward']:10.2f} {1e3 * reshaped['forward_backward_s']:9.2f} "
                     f"{layer['numpy_reshaped_ratio_forward_backward']:6.2f} "
                     f"{layer['numpy_ratio_forward_backward']:10.2f}")
    lines.append("(times in ms, best of repeats; 'x' = basis time / dense time, torch basis with split_mode='reshape'; "
                 "'mults x' = basis_flops total / original)")
    lines += format_targets(result["targets"], 3)
    return "\n".join(lines)


def main(argv=None) -> int:
    return run_benchmark("basis_benchmark.py", __doc__, DEFAULT_OUT, LAYERS, bench_layer, evaluate_targets,
                         format_table, argv, extra={"implementations": IMPLEMENTATIONS}, default_batch=DEFAULT_BATCH)


if __name__ == "__main__":
    exit_on_mismatch(main, "basis_benchmark")
