"""What the benchmark scripts share: command line, environment, timing, correctness check, report.

``conv_benchmark.py`` and ``versatile_benchmark.py`` differ only in their layers, what they time
on each, their targets and their table; :func:`run_benchmark` does the rest for both: the
options (:func:`parse_args`), torch on as many threads as NumPy's BLAS and the environment
header (:func:`start_run`), the loop over the layers, the metadata at the top of the JSON
(:func:`run_metadata`), the report and the JSON file. The scripts time their variants with
:func:`blocked_times`, check every NumPy result against torch before timing it
(:func:`compare_with_torch`, :func:`check_against_torch`), build their targets with
:func:`target`, and end their tables with :func:`format_targets`; :func:`exit_on_mismatch`
turns a mismatch into exit status 1.

Importing this module puts the repository root on ``sys.path``, so the scripts import the
working tree's ``minilib`` wherever they are run from.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from minilib.tempfiles import atomic_write
from minilib.timing import timings

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


# ----------------------------------------------------------------------------- command line

def parse_args(description: str, default_out: Path, argv=None, default_batch: int = 128):
    """The options every benchmark takes, with the --quick defaults filled in and checked."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed repeats per variant, best is reported (default 10; 1 with --quick)")
    parser.add_argument("--batch", type=int, default=None,
                        help=f"batch size N (default {default_batch}; 8 with --quick)")
    parser.add_argument("--out", type=Path, default=default_out, help=f"JSON output (default {default_out})")
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
        args.batch = 8 if args.quick else default_batch
    if args.pause is None:
        args.pause = 0.05 if args.quick else 0.5
    if args.pause < 0:
        parser.error(f"--pause={args.pause} must be >= 0")
    for name in ("repeats", "batch", "sgemm_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')}={getattr(args, name)} must be >= 1")
    return args


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


def start_run(args, torch) -> dict:
    """Give torch as many threads as NumPy's BLAS, print the environment header and time sgemm.

    Returns what the run's metadata needs from its start: ``blas``, ``git``, ``load_average_start``
    and ``sgemm`` (see :func:`measure_sgemm`).
    """
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
    return {"blas": blas, "git": git, "load_average_start": load_start, "sgemm": sgemm}


def run_metadata(start: dict, args, torch, script: str, argv=None) -> dict:
    """The keys every benchmark JSON begins with, from ``command`` to ``pause_s``, taken when the timing is done.

    ``start`` is what :func:`start_run` returned; ``command`` is the command line as run, or
    ``script`` followed by ``argv`` when ``main`` was called with arguments.
    """
    return {
        "command": shlex.join([Path(sys.executable).name, *sys.argv]) if argv is None
        else shlex.join([script, *argv]),
        "date_utc": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "git": start["git"],
        "versions": {"python": platform.python_version(), "numpy": np.__version__, "torch": torch.__version__},
        "blas": start["blas"],
        "torch_threads": torch.get_num_threads(),
        "cpu_model": cpu_model(),
        "dtype": "float32",
        "batch": args.batch,
        "repeats": args.repeats,
        "quick": bool(args.quick),
        "load_average_start": start["load_average_start"],
        "load_average_end": load_average(),
        "timing": ("best of repeats; each variant timed in blocks (up to 3 rounds), each block after a "
                   "pause and one untimed call; torch forward under no_grad"),
        "pause_s": args.pause,
    }


# ----------------------------------------------------------------------------- timing

def best_time(fn, repeats: int) -> tuple[float, float]:
    """Run ``fn`` once to warm up, then ``repeats`` times; return (best, median) seconds."""
    times = timings(fn, repeats, warmup=1)
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


# ----------------------------------------------------------------------------- correctness

def compare_with_torch(pairs, label: str = "", reference: str = "torch") -> float:
    """Max abs error of NumPy float32 arrays vs torch's, each scaled by torch's largest magnitude; raise if too large.

    ``pairs`` holds (name, NumPy array, torch array); ``label`` prefixes the names in the error
    messages ("versatile "), ``reference`` names what NumPy was compared with.
    """
    worst = 0.0
    for name, mine, theirs in pairs:
        if mine.dtype != np.float32:
            raise AssertionError(f"NumPy {label}{name} has dtype {mine.dtype}, expected float32")
        scale = float(np.abs(theirs).max()) or 1.0
        # float32 sums of up to thousands of products: allow 1e-3 of the largest magnitude.
        np.testing.assert_allclose(mine, theirs, rtol=1e-3, atol=1e-3 * scale,
                                   err_msg=f"NumPy {label}conv {name} does not match {reference}")
        worst = max(worst, float(np.abs(mine - theirs).max()) / scale)
    return worst


def check_against_torch(implementation, x, w, b, dout, padding, torch, F) -> float:
    """Max abs error of one NumPy implementation's forward and gradients vs torch, scaled; raise if too large."""
    forward, backward = implementation
    out, cache = forward(x, w, b, 1, padding)
    dx, dw, db = backward(dout, cache)
    xt, wt, bt = (torch.tensor(v, requires_grad=True) for v in (x, w, b))
    ref = F.conv2d(xt, wt, bt, padding=padding)
    ref.backward(torch.from_numpy(dout))
    return compare_with_torch((("output", out, ref.detach().numpy()), ("dx", dx, xt.grad.numpy()),
                               ("dw", dw, wt.grad.numpy()), ("db", db, bt.grad.numpy())))


# ----------------------------------------------------------------------------- report

def target(name: str, layer: dict, metric: str, comparison: str, threshold: float) -> dict:
    """The record of one target, ``layer[metric]`` ``comparison`` (">=" or "<=") ``threshold``, as measured."""
    value = layer[metric]
    passed = value >= threshold if comparison == ">=" else value <= threshold
    return {"name": name, "layer": layer["name"], "metric": metric, "comparison": comparison,
            "threshold": threshold, "value": value, "passed": bool(passed)}


def format_targets(targets: list[dict], digits: int) -> list[str]:
    """The report's footer: a blank line, ``targets:``, then PASS or FAIL and the measured value of each target."""
    lines = ["", "targets:"]
    for t in targets:
        lines.append(f"  [{'PASS' if t['passed'] else 'FAIL'}] {t['name']}: measured {t['value']:.{digits}f}")
    return lines


def run_benchmark(script: str, doc: str, default_out: Path, layers, bench_layer, evaluate_targets, format_table,
                  argv=None, extra: dict | None = None, default_batch: int = 128) -> int:
    """One benchmark run: parse the options, print the header, time every layer, print the report, write the JSON.

    ``script`` is the script's file name (for ``command`` when ``argv`` is given), ``doc`` its
    docstring (the first paragraph is the ``--help`` description). For each spec in ``layers``,
    ``bench_layer(spec, batch, repeats, pause, sgemm_gflops, torch, rng)`` returns the layer's
    record; ``evaluate_targets(records)`` the targets; ``format_table(result)`` the report's table,
    printed under the sgemm speed. The JSON holds the metadata of :func:`run_metadata`, then the
    ``extra`` keys, then ``sgemm``, ``layers``, ``targets`` and ``all_targets_passed``.
    """
    args = parse_args(doc.split("\n\n")[0], default_out, argv, default_batch)
    import torch

    start = start_run(args, torch)
    rng = np.random.default_rng(0)
    records = []
    for spec in layers:
        print(f"  timing {spec[0]} ...", file=sys.stderr, flush=True)
        records.append(bench_layer(spec, args.batch, args.repeats, args.pause, start["sgemm"]["gflops"], torch, rng))
    targets = evaluate_targets(records)

    result = {
        **run_metadata(start, args, torch, script, argv),
        **(extra or {}),
        "sgemm": start["sgemm"],
        "layers": records,
        "targets": targets,
        "all_targets_passed": all(t["passed"] for t in targets),
    }
    return report(result, start["sgemm"], format_table, args.out)


def report(result: dict, sgemm: dict, format_table, out: Path) -> int:
    """Print the sgemm speed and ``format_table(result)``, write ``result`` to ``out`` as JSON; return 0."""
    print()
    print(f"sgemm ({sgemm['size']}^2 float32 matmul): {sgemm['gflops']:.1f} GFLOP/s")
    print()
    print(format_table(result))
    text = json.dumps(result, indent=2) + "\n"
    atomic_write(out, lambda f: f.write(text.encode("utf-8")))     # a killed run leaves the old file whole
    print(f"\nwrote {out}")
    return 0


def exit_on_mismatch(main, name: str) -> None:
    """Run a script's ``main()`` and exit with its status, or with status 1 when a NumPy result does not match torch."""
    try:
        sys.exit(main())
    except AssertionError as error:  # a wrong result must never be timed or reported as a speed
        print(f"{name}: NumPy result does not match torch:\n{error}", file=sys.stderr)
        sys.exit(1)


def torch_step_functions(xt, dout_t, torch):
    """``(forward, forward_backward)`` callables timing a torch module on ``xt``: the forward under
    no_grad (pure forward cost, no autograd graph) and a forward+backward from fresh gradients,
    as the NumPy side computes them."""
    def forward(module):
        with torch.no_grad():
            module(xt)

    def forward_backward(module):
        xt.grad = None
        module.zero_grad(set_to_none=True)
        module(xt).backward(dout_t)

    return forward, forward_backward

