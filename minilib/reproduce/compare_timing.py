"""Time every network of the side-by-side comparison together, in one process (chapter 10's time columns).

Each ``compare`` run also records a latency, measured right after it trained, while other runs may have shared
the 2-core machine: the same network can then measure quite differently in two files. This command times all
networks of the plan in ONE process, in rounds (:func:`minilib.reproduce.latency.interleaved_medians`): every
round runs each timed call below once, in a new random order, so changes of the machine's load reach all
networks alike and the medians over rounds can be compared with each other.

Timed per network (weights drawn from ``np.random.default_rng(seed)``: the time of a dense layer does not depend
on the values; ``basis-from-conv`` has the architecture of ``basis-scratch`` and is reported with its numbers):

- the torch model in eval mode under ``torch.no_grad`` at batch 1 and batch 128 (milliseconds per image);
- conv2 through the method's NumPy fast path (:func:`minilib.reproduce.latency.numpy_twin`) and the standard
  NumPy convolution of the same shapes (batch 128, 12x12 input); ``numpy_ratio`` = fast path / standard. The
  baseline's conv2 IS a standard convolution, so its ratio shows what the timing noise is.

Torch and NumPy's BLAS both use ``--threads`` threads (default 1). One JSON, ``results/compare_timing.json``, with
the command, date and git revision::

    python -m minilib.reproduce compare-timing                   # a few minutes; --force re-times
    python -m minilib.reproduce compare-timing --quick --out /tmp/timing.json
"""
from __future__ import annotations

import argparse
import pathlib
import sys
import tempfile
import time

import numpy as np

from ..results import RESULTS_DIR, pin_revision, write_result
from . import budgets, compare
from .common import blas_threads, versions
from .latency import interleaved_medians, numpy_twin

HELP = "time every network of the comparison in one process, interleaved (chapter 10's time columns)"

OUT = RESULTS_DIR / "compare_timing.json"
SIZES = {"full": {"rounds": 50, "batches": (1, 128), "numpy_batch": 128},
         "quick": {"rounds": 2, "batches": (1, 8), "numpy_batch": 8}}
NUMPY_INPUT = (12, 12)      # conv2's input in LeNet: 28 - 5 + 1 = 24, pooled to 12


def timed_as(run: compare.Run) -> str:
    """The run whose architecture ``run`` has: basis-from-conv only differs from basis-scratch in its start."""
    if run.method == "basis-from-conv":
        return compare.Run("basis-scratch", run.budget).name
    return run.name


def time_networks(runs, rounds: int, batches=(1, 128), numpy_batch: int = 128, seed: int = 0) -> dict:
    """``{run name: timings}`` for ``runs`` (:class:`minilib.reproduce.compare.Run`), timed in interleaved rounds.

    Timings: ``timed_as`` (the run measured), ``torch_per_image_ms`` (``{"batch_<b>": ms}``), ``numpy_layer``
    (the NumPy layer), ``numpy_method_seconds``, ``numpy_standard_seconds`` and ``numpy_ratio``.
    """
    import torch

    from ..layers import Conv2d
    from ..torch.models import build as build_torch

    name, index = compare.LATENCY_LAYER
    rng = np.random.default_rng(seed)
    generator = torch.Generator().manual_seed(seed)
    inputs = {batch: torch.randn((batch, *budgets.INPUT_SHAPE), generator=generator) for batch in batches}
    calls, layers, standards = {}, {}, {}
    for architecture in dict.fromkeys(timed_as(run) for run in runs):
        model = build_torch(compare.parse_run(architecture).choice.spec, rng=rng, dtype=torch.float32).eval()
        for batch, x in inputs.items():
            calls[architecture, f"batch_{batch}"] = lambda model=model, x=x: model(x)
        layer = layers[architecture] = numpy_twin(model[index])
        x = rng.standard_normal((numpy_batch, layer.in_channels, *NUMPY_INPUT)).astype(np.float32)
        calls[architecture, "numpy"] = lambda layer=layer, x=x: layer.forward(x)
        shape = (layer.in_channels, layer.out_channels, layer.kernel_size)
        if shape not in standards:          # one standard convolution per shape, shared by the networks that have it
            standards[shape] = Conv2d(*shape, rng=rng).astype(np.float32)
            calls[shape, "standard"] = lambda conv=standards[shape], x=x: conv.forward(x)
    with torch.no_grad():
        seconds = interleaved_medians(calls, rounds=rounds, seed=seed)
    timings = {}
    for run in runs:
        architecture = timed_as(run)
        layer = layers[architecture]
        method = seconds[architecture, "numpy"]
        standard = seconds[(layer.in_channels, layer.out_channels, layer.kernel_size), "standard"]
        timings[run.name] = {
            "timed_as": architecture,
            "torch_per_image_ms": {f"batch_{b}": 1000 * seconds[architecture, f"batch_{b}"] / b for b in batches},
            "numpy_layer": {"name": name, "index": index, "layer": repr(layer),
                            "input_shape": [numpy_batch, layer.in_channels, *NUMPY_INPUT]},
            "numpy_method_seconds": method, "numpy_standard_seconds": standard, "numpy_ratio": method / standard}
    return timings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rounds", type=int, help=f"timed rounds (default {SIZES['full']['rounds']}, "
                        f"--quick {SIZES['quick']['rounds']})")
    parser.add_argument("--threads", type=int, default=1, help="threads of torch and of NumPy's BLAS (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights, inputs and round orders")
    parser.add_argument("--quick", action="store_true", help="smoke test in seconds: 2 rounds, batch 8, written "
                        "to --out or a new temporary folder")
    parser.add_argument("--out", type=pathlib.Path, help=f"the JSON file (default {OUT})")
    parser.add_argument("--force", action="store_true", help="re-time when the file exists")


def main(args: argparse.Namespace) -> int:
    import torch
    from threadpoolctl import threadpool_limits

    for option in ("rounds", "threads"):
        if getattr(args, option) is not None and getattr(args, option) < 1:
            print(f"error: --{option} must be a positive integer, got {getattr(args, option)}", file=sys.stderr)
            return 2
    mode = "quick" if args.quick else "full"
    sizes = {**SIZES[mode], **({"rounds": args.rounds} if args.rounds is not None else {})}
    out = args.out or (pathlib.Path(tempfile.mkdtemp(prefix="minilib-timing-")) / OUT.name if args.quick else OUT)
    if out.exists() and not args.force:
        print(f"skip: {out} exists (--force re-times)")
        return 0
    pin_revision()
    runs = compare.default_runs()
    start = time.perf_counter()
    torch.set_num_threads(args.threads)
    with threadpool_limits(args.threads, user_api="blas"):
        timings = time_networks(runs, sizes["rounds"], sizes["batches"], sizes["numpy_batch"], args.seed)
        threads = {"torch": torch.get_num_threads(), "blas": blas_threads()}
    payload = {"experiment": "compare-timing", "quick": args.quick, **sizes, "threads": threads,
               "versions": versions(), "networks": timings, "wall_seconds": time.perf_counter() - start}
    write_result(out, payload, seed=args.seed)
    base = timings["baseline"]["torch_per_image_ms"]
    print(f"{len(timings)} networks timed in {payload['wall_seconds']:.0f} s (baseline: "
          + ", ".join(f"{key} {value:.3f} ms/image" for key, value in base.items()) + f") -> {out}")
    return 0
