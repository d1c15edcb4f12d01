"""Benchmark minilib's NumPy convolution against the machine's sgemm and PyTorch CPU.

    python benchmarks/conv_benchmark.py [--repeats R] [--batch 128] [--out results/bench_conv.json]
    python benchmarks/conv_benchmark.py --quick        # smoke run: batch 8, 1 repeat

Everything is measured in ONE run, in float32, with NumPy/OpenBLAS and torch on the same
number of threads, because on a shared machine only ratios measured side by side mean
anything. "NumPy" is ``minilib.fastconv`` (what the layers run); "im2col" is the textbook
``minilib.conv`` version, timed alongside to show what the reorganisation buys. For every
layer the timed variants (forward and forward+backward of each) are timed in blocks that alternate over a few
rounds, each block after a pause and an untimed call (see :func:`blocked_times`: the other
library's idle worker threads must not steal the second core), and the best is reported.

FLOPs: forward = 2*N*F*C*kh*kw*OH*OW (bias ignored); forward+backward = 3x forward (the
backward pass is two products of the same size, one for dx and one for dw).

Before anything is timed, each layer's NumPy output and gradients are checked against torch
(float32, loose tolerance), so the benchmark never times a wrong result; a mismatch exits
with status 1. The targets are reported as measured, pass or fail; nothing is hard-coded.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere: import the working tree's minilib
    sys.path.insert(0, str(ROOT))

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

# Targets: forward GFLOP/s as a percentage of sgemm on these layers, and fwd+bwd time vs torch on all.
FORWARD_SGEMM_PCT_TARGET = 60.0
FORWARD_SGEMM_PCT_LAYERS = ("lenet_conv2", "conv3x3_64")
FWD_BWD_TORCH_RATIO_TARGET = 1.5


# ----------------------------------------------------------------------------- environment

def blas_info() -> dict:
    """The BLAS that NumPy uses, as threadpoolctl reports it (first BLAS pool found)."""
    from threadpoolctl import threadpool_info

    pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
    if not pools:
        return {"internal_api": "unknown", "architecture": "unknown", "threads": 1, "version": "unknown"}
    pool = pools[0]
    return {
        "internal_api": pool.get("internal_api", "unknown"),
        "architecture": pool.get("architecture") or "unknown",
        "threads": int(pool.get("num_threads") or 1),
        "version": pool.get("version") or "unknown",
        "threading_layer": pool.get("threading_layer") or "unknown",
    }


def load_average() -> list[float] | None:
    """1, 5 and 15 minute load averages (None where the OS has none): other work on the machine
    disturbs these timings, so the JSON records how busy it was."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def git_state() -> dict:
    """``git rev-parse HEAD`` and whether tracked or untracked files differ from it (None if unknown)."""
    def run(*args):
        return subprocess.run(["git", "--no-optional-locks", *args], cwd=ROOT, capture_output=True,
                              text=True, timeout=30, check=True).stdout
    try:
        revision = run("rev-parse", "HEAD").strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return {"revision": "unknown", "dirty": None}
    try:
        dirty = bool(run("status", "--porcelain").strip())
    except (OSError, subprocess.SubprocessError):
        dirty = None
    return {"revision": revision, "dirty": dirty}


# ----------------------------------------------------------------------------- timing

def best_time(fn, repeats: int) -> tuple[float, float]:
    """Run ``fn`` once to warm up, then ``repeats`` times; return (best, median) seconds."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times), float(np.median(times))


def blocked_times(fns: dict, repeats: int, pause: float) -> dict:
    """Best and median seconds per name, timing each variant in blocks of consecutive calls.

    The repeats are split over up to three rounds, so drift and bursts of background load
    reach every variant; within a round each variant runs as one block: a pause, one untimed
    call, then its timed calls. The pause matters: OpenBLAS keeps its worker threads spinning
    for a while after a call returns, and measured here a torch call right after a NumPy
    call ran more than 2x slower; torch's OpenMP threads slow a following NumPy call a little.
    """
    rounds = min(3, repeats)
    times = {name: [] for name in fns}
    for r in range(rounds):
        share = repeats // rounds + (1 if r < repeats % rounds else 0)
        for name, fn in fns.items():
            time.sleep(pause)
            fn()
            for _ in range(share):
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
    return {name: (min(ts), float(np.median(ts))) for name, ts in times.items()}


def measure_sgemm(size: int, repeats: int) -> dict:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    out = np.empty((size, size), dtype=np.float32)
    best, median = best_time(lambda: np.matmul(a, b, out=out), max(repeats, 3))
    flops = 2.0 * size ** 3
    return {"size": size, "seconds": best, "seconds_median": median, "gflops": flops / best / 1e9}


# ----------------------------------------------------------------------------- one layer

def check_against_torch(implementation, x, w, b, dout, padding, torch, F) -> float:
    """Max abs error of one NumPy implementation's forward and gradients vs torch, scaled; raise if too large."""
    forward, backward = implementation
    out, cache = forward(x, w, b, 1, padding)
    dx, dw, db = backward(dout, cache)
    xt, wt, bt = (torch.tensor(v, requires_grad=True) for v in (x, w, b))
    ref = F.conv2d(xt, wt, bt, padding=padding)
    ref.backward(torch.from_numpy(dout))
    worst = 0.0
    for name, mine, theirs in (("output", out, ref.detach().numpy()), ("dx", dx, xt.grad.numpy()),
                               ("dw", dw, wt.grad.numpy()), ("db", db, bt.grad.numpy())):
        if mine.dtype != np.float32:
            raise AssertionError(f"NumPy {name} has dtype {mine.dtype}, expected float32")
        scale = float(np.abs(theirs).max()) or 1.0
        # float32 sums of up to thousands of products: allow 1e-3 of the largest magnitude.
        np.testing.assert_allclose(mine, theirs, rtol=1e-3, atol=1e-3 * scale,
                                   err_msg=f"NumPy conv {name} does not match torch")
        worst = max(worst, float(np.abs(mine - theirs).max()) / scale)
    return worst


def bench_layer(spec, batch, repeats, pause, sgemm_gflops, torch, F, rng) -> dict:
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

    variants = {"torch_forward": torch_forward, "torch_forward_backward": torch_forward_backward}
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

    numpy_side, im2col_side, torch_side = side("numpy"), side("im2col"), side("torch")
    return {
        "name": name, "in_channels": c, "out_channels": f, "kernel_size": k, "input_hw": size,
        "padding": padding, "stride": 1, "output_hw": out_size,
        "flops_forward": flops_fwd, "flops_forward_backward": flops_fb,
        "numpy": numpy_side, "numpy_im2col": im2col_side, "torch": torch_side,
        "ratio_forward": numpy_side["forward_s"] / torch_side["forward_s"],
        "ratio_forward_backward": numpy_side["forward_backward_s"] / torch_side["forward_backward_s"],
        "numpy_forward_pct_of_sgemm": 100.0 * numpy_side["forward_gflops"] / sgemm_gflops,
        "torch_forward_pct_of_sgemm": 100.0 * torch_side["forward_gflops"] / sgemm_gflops,
        "max_rel_error_vs_torch": max_rel_error,
    }


def evaluate_targets(layers: list[dict]) -> list[dict]:
    by_name = {layer["name"]: layer for layer in layers}
    targets = []
    for name in FORWARD_SGEMM_PCT_LAYERS:
        value = by_name[name]["numpy_forward_pct_of_sgemm"]
        targets.append({"name": f"{name}: forward >= {FORWARD_SGEMM_PCT_TARGET:g}% of sgemm",
                        "layer": name, "metric": "numpy_forward_pct_of_sgemm", "comparison": ">=",
                        "threshold": FORWARD_SGEMM_PCT_TARGET, "value": value,
                        "passed": bool(value >= FORWARD_SGEMM_PCT_TARGET)})
    for layer in layers:
        value = layer["ratio_forward_backward"]
        targets.append({"name": f"{layer['name']}: forward+backward <= {FWD_BWD_TORCH_RATIO_TARGET:g}x torch time",
                        "layer": layer["name"], "metric": "ratio_forward_backward", "comparison": "<=",
                        "threshold": FWD_BWD_TORCH_RATIO_TARGET, "value": value,
                        "passed": bool(value <= FWD_BWD_TORCH_RATIO_TARGET)})
    return targets


# ----------------------------------------------------------------------------- report

def format_table(result: dict) -> str:
    lines = [
        f"sgemm ({result['sgemm']['size']}^2 float32 matmul): {result['sgemm']['gflops']:.1f} GFLOP/s",
        "",
        f"{'layer':<12} {'np fwd ms':>9} {'torch fwd':>9} {'np GF/s':>8} {'%sgemm':>7} {'torch %':>7} "
        f"{'fwd x':>6} {'np f+b ms':>9} {'torch f+b':>9} {'f+b x':>6} {'im2col fwd':>10} {'im2col f+b':>10}",
    ]
    for layer in result["layers"]:
        n, t = layer["numpy"], layer["torch"]
        lines.append(
            f"{layer['name']:<12} {1e3 * n['forward_s']:9.2f} {1e3 * t['forward_s']:9.2f} "
            f"{n['forward_gflops']:8.1f} {layer['numpy_forward_pct_of_sgemm']:6.1f}% "
            f"{layer['torch_forward_pct_of_sgemm']:6.1f}% {layer['ratio_forward']:6.2f} "
            f"{1e3 * n['forward_backward_s']:9.2f} {1e3 * t['forward_backward_s']:9.2f} "
            f"{layer['ratio_forward_backward']:6.2f} {1e3 * layer['numpy_im2col']['forward_s']:10.2f} "
            f"{1e3 * layer['numpy_im2col']['forward_backward_s']:10.2f}")
    lines.append("(times: best of repeats; 'x' = NumPy time / torch time; np = minilib.fastconv, "
                 "im2col = minilib.conv, in ms)")
    lines.append("")
    lines.append("targets:")
    for target in result["targets"]:
        lines.append(f"  [{'PASS' if target['passed'] else 'FAIL'}] {target['name']}: "
                     f"measured {target['value']:.2f}")
    return "\n".join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed repeats per variant, best is reported (default 10; 1 with --quick)")
    parser.add_argument("--batch", type=int, default=None, help="batch size N (default 128; 8 with --quick)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON output (default {DEFAULT_OUT})")
    parser.add_argument("--sgemm-size", type=int, default=2048, help="square matrix size for sgemm (default 2048)")
    parser.add_argument("--pause", type=float, default=None,
                        help="seconds to wait before each timed block, so the other library's worker threads "
                             "go idle (default 0.5; 0.05 with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run (batch 8, 1 repeat unless given): checks the pipeline, not the speed")
    args = parser.parse_args(argv)
    if args.repeats is None:
        args.repeats = 1 if args.quick else 10
    if args.batch is None:
        args.batch = 8 if args.quick else 128
    if args.pause is None:
        args.pause = 0.05 if args.quick else 0.5
    if args.pause < 0:
        parser.error(f"--pause={args.pause} must be >= 0")
    for name in ("repeats", "batch", "sgemm_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')}={getattr(args, name)} must be >= 1")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch
    import torch.nn.functional as F

    blas = blas_info()
    torch.set_num_threads(blas["threads"])
    print(f"NumPy {np.__version__} BLAS: {blas['internal_api']} {blas['version']} ({blas['architecture']}), "
          f"threads {blas['threads']}; torch {torch.__version__} threads {torch.get_num_threads()}")
    print(f"CPU: {cpu_model()}; batch {args.batch}, float32, best of {args.repeats} repeats"
          f"{' (quick smoke run: numbers are not meaningful)' if args.quick else ''}")

    git = git_state()
    load_start = load_average()
    print(f"load average at start (1/5/15 min): {load_start} on {os.cpu_count()} CPUs")
    sgemm = measure_sgemm(args.sgemm_size, args.repeats)
    rng = np.random.default_rng(0)
    layers = []
    for spec in LAYERS:
        print(f"  timing {spec[0]} ...", file=sys.stderr, flush=True)
        layers.append(bench_layer(spec, args.batch, args.repeats, args.pause, sgemm["gflops"], torch, F, rng))
    targets = evaluate_targets(layers)

    result = {
        "command": shlex.join([Path(sys.executable).name, *sys.argv]) if argv is None
        else shlex.join(["conv_benchmark.py", *argv]),
        "date_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "git": git,
        "versions": {"python": platform.python_version(), "numpy": np.__version__, "torch": torch.__version__},
        "blas": blas,
        "torch_threads": torch.get_num_threads(),
        "cpu_model": cpu_model(),
        "dtype": "float32",
        "batch": args.batch,
        "repeats": args.repeats,
        "quick": bool(args.quick),
        "load_average_start": load_start,
        "load_average_end": load_average(),
        "timing": ("best of repeats; each variant timed in blocks (up to 3 rounds), each block after a "
                   "pause and one untimed call; torch forward under no_grad"),
        "pause_s": args.pause,
        "sgemm": sgemm,
        "layers": layers,
        "targets": targets,
        "all_targets_passed": all(t["passed"] for t in targets),
    }
    print()
    print(format_table(result))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except AssertionError as error:  # a wrong result must never be timed or reported as a speed
        print(f"conv_benchmark: NumPy result does not match torch:\n{error}", file=sys.stderr)
        sys.exit(1)
