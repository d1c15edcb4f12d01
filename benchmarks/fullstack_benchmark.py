"""Benchmark full-stack convolution (Eq. 12-13 and the dense M∘B path) against a standard convolution.

    python benchmarks/fullstack_benchmark.py [--repeats R] [--batch 64] [--out results/bench_fullstack.json]
    python benchmarks/fullstack_benchmark.py --quick        # smoke run: batch 8, 1 repeat

A full-stack layer (Han et al., MVNet) makes n = k*s sub-filters f̂ = b_i ∘ m_j out of k
full-stack filters b_i and ±1 masks m_j (Eq. 3-5). Per output position an ordinary
convolution multiplies n*c*d^2 times (Eq. 11); Eq. 13 multiplies each patch by each
full-stack filter once, c_i = vec(x) ∘ b_i, k*c*d^2 multiplications, and forms every sub-filter
response as a ±1-masked sum of those products, s times fewer multiplications (Eq. 14). The
counts come from :func:`minilib.fullstack.multiplication_count`, not typed in. This benchmark
asks whether that saving shows up as TIME, for the same input and the same output channels:

* ``numpy_fast``: :func:`minilib.fullstack.fullstack_conv2d_forward` / ``_backward``, Eq. 13 as
  products C_i = X ∘ b_i (k*D per position) followed by a matrix product with the ±1 masks;
* ``numpy_dense``: :func:`minilib.fullstack.fullstack_conv2d_forward_dense` / ``_backward_dense``,
  the dense weight M∘B and one convolution, as the released (inference-only) code computes;
* ``numpy_conv``: :func:`minilib.fastconv.conv2d_forward_fast` / ``conv2d_backward_fast`` with an
  ordinary (n, c, d, d) weight (what :class:`minilib.layers.Conv2d` runs);
* ``torch_fullstack`` / ``torch_conv``: ``minilib.torch.FullStackConv2d`` (dense weight, one
  ``F.conv2d``) and ``nn.Conv2d``; forward under ``no_grad``, forward+backward through autograd.

On a CPU the ±1 "multiplications" of the mask product are executed by BLAS like any other:
the NumPy fast path runs k*D products plus a (P, D) x (D, s) product per filter, that is
(k + k*s)*D machine multiplications per position (``machine_mults_fast_per_sample``), more
than the dense path's n*D. The paper's saving needs hardware where masking is cheaper than a
multiply (Sec. 2.4: FPGA, NPU), so NO wall-time target is set; the report gives the times,
the time ratios and the counts side by side.

Why nothing is saved, measured (``mask_arithmetic`` of each layer record): one filter's mask
product of Eq. 13, the products C (N*OH*OW, D) times its s masks (D, s), timed three ways on
the same numbers: as a BLAS product with the ±1 masks, as the same product with an ordinary
float matrix in their place, and with additions only (each mask's sum of the products where it
is +1 minus the sum where it is -1). The first two take the same time: a multiply-add by ±1
costs what any multiply-add costs, because this CPU's vector units issue a fused multiply-add
as fast as an add. The add-only form is slower, because it leaves BLAS for passes over memory.
What bit-packing the masks (``np.packbits``) buys is storage, 32 times less than float32 ±1
masks, and unpacking them costs little next to the product (``unpack_over_pm1``); an
arithmetic saving would need binary activations as well (XNOR and popcount), which MVNet does
not have.

Layers: LeNet's second convolution (20 -> 50, 5x5 on 12x12) with s = 10 as in Table 1, and a
3x3 64 -> 64 convolution on 16x16 with s = 4 and s = 8 (the VGG-16 / ResNet settings of Tables
2-3 use s = 4), each with shared (MVNet-A) and separate (MVNet-B) masks.

Timing uses ``bench_common``: everything in ONE run, float32, NumPy/OpenBLAS and torch on the
same number of threads, each variant timed in alternating blocks after a pause and an untimed
call, best reported; on a shared machine only ratios measured side by side mean anything. The
default batch is 64 (``--batch`` overrides it). Before anything is timed, both NumPy full-stack
paths (output, dx, dfilters, dmask_latent, dbias) are checked against the torch twin and the
NumPy standard convolution against torch (float32, loose tolerance); a mismatch exits with status 1.
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
                          format_targets, run_benchmark, torch_step_functions)
from minilib.fastconv import conv2d_backward_fast, conv2d_forward_fast  # noqa: E402
from minilib.fullstack import (FullStackConv2d, fullstack_conv2d_backward,  # noqa: E402
                               fullstack_conv2d_backward_dense, fullstack_conv2d_forward,
                               fullstack_conv2d_forward_dense, multiplication_count)

DEFAULT_OUT = ROOT / "results" / "bench_fullstack.json"
DEFAULT_BATCH = 64

# (name, in_channels c, out_channels n, kernel d, input size H=W, padding, masks per filter s, masks); stride 1.
LAYERS = [
    ("lenet_conv2_s10_shared", 20, 50, 5, 12, 0, 10, "shared"),        # Table 1: MVNet-A (s=10), k = 5
    ("lenet_conv2_s10_separate", 20, 50, 5, 12, 0, 10, "separate"),    # Table 1: MVNet-B (s=10)
    ("conv3x3_64_s4_shared", 64, 64, 3, 16, 1, 4, "shared"),           # k = 16
    ("conv3x3_64_s4_separate", 64, 64, 3, 16, 1, 4, "separate"),
    ("conv3x3_64_s8_shared", 64, 64, 3, 16, 1, 8, "shared"),           # k = 8
    ("conv3x3_64_s8_separate", 64, 64, 3, 16, 1, 8, "separate"),
]

# What each side of a layer record times.
IMPLEMENTATIONS = {
    "numpy_fast": "minilib.fullstack.fullstack_conv2d_forward / fullstack_conv2d_backward (Eq. 13)",
    "numpy_dense": "minilib.fullstack.fullstack_conv2d_forward_dense / fullstack_conv2d_backward_dense (M∘B)",
    "numpy_conv": "minilib.fastconv.conv2d_forward_fast / conv2d_backward_fast (ordinary weight)",
    "torch_fullstack": "minilib.torch.FullStackConv2d (dense weight, one F.conv2d)",
    "torch_conv": "torch.nn.Conv2d",
}
SIDES = tuple(IMPLEMENTATIONS)
NO_TARGETS = ("none: Eq. 14 counts multiplications, and on a CPU the ±1 masking runs as ordinary "
              "multiply-adds, so the saving need not become wall time here (Sec. 2.4)")


# ----------------------------------------------------------------------------- correctness

def check_fullstack_against_torch(path, x, params, dout, padding, masks, twin, torch) -> float:
    """Max scaled error of one NumPy full-stack path's forward and gradients vs the torch twin; raise if too large."""
    forward, backward = path
    out, cache = forward(x, *params, 1, padding, twin.out_channels, masks)
    dx, dfilters, dmask_latent, dbias = backward(dout, cache)
    with torch.no_grad():
        for name, value in zip(("filters", "mask_latent", "bias"), params):
            getattr(twin, name).copy_(torch.from_numpy(value))
    twin.zero_grad(set_to_none=True)
    xt = torch.tensor(x, requires_grad=True)
    ref = twin(xt)
    ref.backward(torch.from_numpy(dout))
    label = "fullstack (dense) " if forward is fullstack_conv2d_forward_dense else "fullstack (Eq. 13) "
    return compare_with_torch([("output", out, ref.detach().numpy()), ("dx", dx, xt.grad.numpy()),
                               ("dfilters", dfilters, twin.filters.grad.numpy()),
                               ("dmask_latent", dmask_latent, twin.mask_latent.grad.numpy()),
                               ("dbias", dbias, twin.bias.grad.numpy())], label, "minilib.torch.FullStackConv2d")


# ----------------------------------------------------------------------------- Eq. 13's arithmetic

def mask_arithmetic(positions, taps, s, repeats, pause, rng) -> dict:
    """Times of one filter's mask product of Eq. 13, C (positions, D) x masks (D, s), computed three ways.

    ``pm1_s``: BLAS with the ±1 masks as float32; ``float_s``: BLAS with a Gaussian matrix in their
    place; ``add_only_s``: no multiplication, each mask's sum of C's columns where it is +1 minus
    the sum where it is -1; ``unpack_s``: turning bit-packed masks back into the ±1 matrix. The
    three sums are checked equal before timing.
    """
    products = rng.standard_normal((positions, taps), dtype=np.float32)
    signs = rng.random((taps, s)) < 0.5
    pm1 = np.where(signs, np.float32(1), np.float32(-1))
    gaussian = rng.standard_normal((taps, s), dtype=np.float32)
    packed = np.packbits(signs, axis=0)
    plus = [np.flatnonzero(signs[:, j]) for j in range(s)]
    minus = [np.flatnonzero(~signs[:, j]) for j in range(s)]
    out = np.empty((positions, s), np.float32)

    def add_only():
        for j in range(s):
            np.subtract(products[:, plus[j]].sum(axis=1), products[:, minus[j]].sum(axis=1), out=out[:, j])

    def unpack():
        return np.unpackbits(packed, axis=0, count=taps).astype(np.float32) * 2 - 1

    add_only()
    np.testing.assert_allclose(out, products @ pm1, rtol=1e-4, atol=1e-3)
    np.testing.assert_array_equal(unpack(), pm1)
    times = blocked_times({"pm1": lambda: np.matmul(products, pm1, out=out),
                           "float": lambda: np.matmul(products, gaussian, out=out),
                           "add_only": add_only, "unpack": unpack}, repeats, pause)
    best = {name: t for name, (t, _) in times.items()}
    return {"positions": positions, "taps": taps, "masks": s,
            **{f"{name}_s": t for name, t in best.items()},
            "pm1_over_float": best["pm1"] / best["float"], "add_only_over_pm1": best["add_only"] / best["pm1"],
            "unpack_over_pm1": best["unpack"] / best["pm1"],
            "mask_bytes_float32": int(pm1.nbytes), "mask_bytes_packed": int(packed.nbytes)}


# ----------------------------------------------------------------------------- one layer

def bench_layer(spec, batch, repeats, pause, sgemm_gflops, torch, rng) -> dict:
    from minilib.torch import FullStackConv2d as TorchFullStackConv2d

    name, c, n, d, size, padding, s, masks = spec
    out_size = size + 2 * padding - d + 1
    layer = FullStackConv2d(c, n, d, s, padding=padding, masks=masks, rng=rng)   # validates the configuration
    params = tuple(a.astype(np.float32) for a in (layer.filters, layer.mask_latent, layer.bias))
    x = rng.standard_normal((batch, c, size, size), dtype=np.float32)
    w_conv = rng.standard_normal((n, c, d, d), dtype=np.float32) / np.float32(np.sqrt(c * d * d))
    b_conv = rng.standard_normal(n, dtype=np.float32)
    dout = rng.standard_normal((batch, n, out_size, out_size), dtype=np.float32)

    twin = TorchFullStackConv2d(c, n, d, s, padding=padding, masks=masks, dtype=torch.float32)
    paths = {"fast": (fullstack_conv2d_forward, fullstack_conv2d_backward),
             "dense": (fullstack_conv2d_forward_dense, fullstack_conv2d_backward_dense)}
    errors = {kind: check_fullstack_against_torch(path, x, params, dout, padding, masks, twin, torch)
              for kind, path in paths.items()}
    errors["conv"] = check_against_torch((conv2d_forward_fast, conv2d_backward_fast), x, w_conv, b_conv, dout,
                                         padding, torch, torch.nn.functional)
    conv_t = torch.nn.Conv2d(c, n, d, padding=padding, dtype=torch.float32)
    with torch.no_grad():
        conv_t.weight.copy_(torch.from_numpy(w_conv))
        conv_t.bias.copy_(torch.from_numpy(b_conv))

    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    torch_forward, torch_forward_backward = torch_step_functions(xt, torch.from_numpy(dout), torch)

    fs_args = (n, masks)
    numpy_fns = {
        "numpy_fast": (lambda: fullstack_conv2d_forward(x, *params, 1, padding, *fs_args),
                       lambda cache: fullstack_conv2d_backward(dout, cache)),
        "numpy_dense": (lambda: fullstack_conv2d_forward_dense(x, *params, 1, padding, *fs_args),
                        lambda cache: fullstack_conv2d_backward_dense(dout, cache)),
        "numpy_conv": (lambda: conv2d_forward_fast(x, w_conv, b_conv, 1, padding),
                       lambda cache: conv2d_backward_fast(dout, cache)),
    }
    variants = {}
    for side, (forward, backward) in numpy_fns.items():
        variants[f"{side}_forward"] = forward
        variants[f"{side}_forward_backward"] = lambda forward=forward, backward=backward: backward(forward()[1])
    for side, module in {"torch_fullstack": twin, "torch_conv": conv_t}.items():
        variants[f"{side}_forward"] = lambda module=module: torch_forward(module)
        variants[f"{side}_forward_backward"] = lambda module=module: torch_forward_backward(module)
    times = blocked_times(variants, repeats, pause)

    mults = multiplication_count(layer, (out_size, out_size))            # per sample: fast (Eq. 13), dense (Eq. 11)
    k, taps, positions = layer.n_filters, c * d * d, out_size * out_size

    def side(name):
        t_f, t_f_med = times[f"{name}_forward"]
        t_fb, t_fb_med = times[f"{name}_forward_backward"]
        return {"forward_s": t_f, "forward_s_median": t_f_med,
                "forward_backward_s": t_fb, "forward_backward_s_median": t_fb_med}

    sides = {name: side(name) for name in SIDES}

    def ratio(num, den, key):
        return sides[num][key] / sides[den][key]

    return {
        "name": name, "in_channels": c, "out_channels": n, "kernel_size": d, "input_hw": size, "padding": padding,
        "stride": 1, "output_hw": out_size, "s": s, "n_filters": k, "masks": masks,
        "weights_conv": n * taps, "weights_fullstack": int(layer.filters.size),
        "mask_bits": int(layer.mask_latent.size),
        "mults_fast_per_sample": mults["fast"], "mults_dense_per_sample": mults["dense"],
        "mults_conv_per_sample": n * taps * positions,
        "mult_reduction": mults["dense"] / mults["fast"],
        "machine_mults_fast_per_sample": (k + k * s) * taps * positions,
        **sides,
        "numpy_fast_over_dense_forward": ratio("numpy_fast", "numpy_dense", "forward_s"),
        "numpy_fast_over_dense_forward_backward": ratio("numpy_fast", "numpy_dense", "forward_backward_s"),
        "numpy_fast_over_conv_forward": ratio("numpy_fast", "numpy_conv", "forward_s"),
        "numpy_fast_over_conv_forward_backward": ratio("numpy_fast", "numpy_conv", "forward_backward_s"),
        "numpy_dense_over_conv_forward": ratio("numpy_dense", "numpy_conv", "forward_s"),
        "numpy_dense_over_conv_forward_backward": ratio("numpy_dense", "numpy_conv", "forward_backward_s"),
        "torch_fullstack_over_conv_forward": ratio("torch_fullstack", "torch_conv", "forward_s"),
        "torch_fullstack_over_conv_forward_backward": ratio("torch_fullstack", "torch_conv", "forward_backward_s"),
        "max_rel_error_vs_torch": errors,
        "mask_arithmetic": mask_arithmetic(batch * positions, taps, s, repeats, pause, rng),
    }


def evaluate_targets(layers: list[dict]) -> list[dict]:
    """No wall-time targets (see the module docstring): the multiply saving is a count, not a CPU speed-up."""
    return []


# ----------------------------------------------------------------------------- report

def format_table(result: dict) -> str:
    lines = [f"{'layer':<25} {'k':>3} {'s':>3} | {'mults fast':>10} {'dense':>10} {'x':>5} | "
             f"{'conv fwd':>8} {'dense':>8} {'fast':>8} {'fast/dns':>8} | {'conv f+b':>8} {'dense':>8} {'fast':>8} "
             f"{'fast/dns':>8}"]
    for layer in result["layers"]:
        conv, dense, fast = (layer[side] for side in ("numpy_conv", "numpy_dense", "numpy_fast"))
        lines.append(f"{layer['name']:<25} {layer['n_filters']:>3} {layer['s']:>3} | "
                     f"{layer['mults_fast_per_sample']:>10,} {layer['mults_dense_per_sample']:>10,} "
                     f"{layer['mult_reduction']:5.1f} | {1e3 * conv['forward_s']:8.2f} {1e3 * dense['forward_s']:8.2f} "
                     f"{1e3 * fast['forward_s']:8.2f} {layer['numpy_fast_over_dense_forward']:8.2f} | "
                     f"{1e3 * conv['forward_backward_s']:8.2f} {1e3 * dense['forward_backward_s']:8.2f} "
                     f"{1e3 * fast['forward_backward_s']:8.2f} {layer['numpy_fast_over_dense_forward_backward']:8.2f}")
    lines += ["", f"torch: {'layer':<25} | {'conv fwd':>8} {'twin fwd':>8} {'x':>5} | {'conv f+b':>8} "
                  f"{'twin f+b':>8} {'x':>5}"]
    for layer in result["layers"]:
        conv, twin = layer["torch_conv"], layer["torch_fullstack"]
        lines.append(f"       {layer['name']:<25} | {1e3 * conv['forward_s']:8.2f} {1e3 * twin['forward_s']:8.2f} "
                     f"{layer['torch_fullstack_over_conv_forward']:5.2f} | {1e3 * conv['forward_backward_s']:8.2f} "
                     f"{1e3 * twin['forward_backward_s']:8.2f} "
                     f"{layer['torch_fullstack_over_conv_forward_backward']:5.2f}")
    lines.append("(NumPy times in ms, best of repeats; 'mults' per sample, Eq. 13 (fast) and Eq. 11 (dense), "
                 "'x' = dense / fast = s (Eq. 14); fast/dns = Eq. 13 path time / dense path time; torch 'x' = twin / "
                 "nn.Conv2d)")
    lines += ["", f"Eq. 13's mask product of one filter, C (N*OH*OW, D) x masks (D, s): {'±1 / float':>10} "
                  f"{'adds only / ±1':>14} {'unpack bits / ±1':>16}"]
    for layer in result["layers"]:
        a = layer["mask_arithmetic"]
        lines.append(f"  {layer['name']:<25} ({a['positions']:>6} x {a['taps']:>3}) x ({a['taps']:>3} x {a['masks']:>2})"
                     f"{'':>16}{a['pm1_over_float']:10.2f} {a['add_only_over_pm1']:14.2f} {a['unpack_over_pm1']:16.2f}")
    lines += format_targets(result["targets"], 3)
    lines.append(f"  {NO_TARGETS}")
    return "\n".join(lines)


def main(argv=None) -> int:
    return run_benchmark("fullstack_benchmark.py", __doc__, DEFAULT_OUT, LAYERS, bench_layer, evaluate_targets,
                         format_table, argv, extra={"implementations": IMPLEMENTATIONS, "targets_note": NO_TARGETS},
                         default_batch=DEFAULT_BATCH)


if __name__ == "__main__":
    exit_on_mismatch(main, "fullstack_benchmark")
