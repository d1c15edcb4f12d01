"""Time the networks of chapters 7 and 10 together, in one process (their time columns).

Each ``compare`` and ``cifar10`` run also records a latency, measured right after it trained, while other runs
may have shared the 2-core machine: the same network can then measure quite differently in two files. This command
times the networks of a set in ONE process, in rounds (:func:`minilib.timing.interleaved_times`):
every round runs each timed call below once, in a new random order, so changes of the machine's load reach all
networks alike and the medians over rounds can be compared with each other. The two sets, each timed on its own:

- ``networks``: every LeNet of chapter 10's plan (``basis-from-conv`` has the architecture of ``basis-scratch``
  and is reported with its numbers); NumPy layer conv2 (batch 128, 12x12 input);
- ``cifar10_networks``: the ResNet-20 of every CIFAR-10 run of chapter 7; NumPy layer
  :data:`minilib.reproduce.cifar10.LATENCY_LAYER` (batch 32, 16x16 input).

Timed per network, with weights drawn from ``np.random.default_rng(seed)`` (the time of a dense layer does not
depend on the values):

- the torch model in eval mode under ``torch.no_grad`` at batch 1 and batch 128 (milliseconds per image);
- the NumPy layer through the method's fast path (:func:`minilib.torch.to_numpy.numpy_twin`) and the standard
  NumPy convolution of the same shapes; ``numpy_ratio`` = fast path / standard. The baseline's layer IS a
  standard convolution, so its ratio shows what the timing noise is.

Every number is a median over the rounds; ``halves`` repeats them for the first and the second half of the rounds,
so a reader can see how much a number moves within one run.

Torch and NumPy's BLAS both use ``--threads`` threads (default 1). One JSON, ``results/compare_timing.json``, with
the command, date and git revision; a file that does not count for the request (damaged, a ``--quick`` one for a
real request, other rounds or batches: :func:`minilib.results.check_result`) is set aside and timed again::

    python -m minilib.reproduce compare-timing                   # a few minutes; --force re-times
    python -m minilib.reproduce compare-timing --quick --out /tmp/timing.json
"""
from __future__ import annotations

import argparse
import pathlib
import statistics
import sys
import tempfile
import time

import numpy as np

from ..results import RESULTS_DIR, pin_revision, remove_stale_temp_files, write_result
from . import budgets, cifar10, compare
from ..timing import blas_threads, interleaved_times
from .common import log, result_status, set_aside_rejected, versions

HELP = "time the networks of chapters 7 and 10 in one process, interleaved (their time columns)"

OUT = RESULTS_DIR / "compare_timing.json"
SIZES = {"full": {"rounds": 50, "batches": (1, 128), "numpy_batch": {"lenet": 128, "cifar10": 32}},
         "quick": {"rounds": 2, "batches": (1, 8), "numpy_batch": {"lenet": 8, "cifar10": 8}}}
INPUT_SHAPE = {"lenet": budgets.INPUT_SHAPE, "cifar10": cifar10.INPUT_SHAPE}     # one image
# the layer timed in NumPy and its input's height and width: LeNet's conv2 (28 - 5 + 1 = 24, pooled to 12), and
# the ResNet's stage-2 convolution that chapter 7's runs time (32x32 input, halved by stage 2's first block)
NUMPY_LAYER = {"lenet": (compare.LATENCY_LAYER[0], str(compare.LATENCY_LAYER[1]), (12, 12)),
               "cifar10": (cifar10.LATENCY_LAYER, cifar10.LATENCY_LAYER, (16, 16))}


def timed_as(run: compare.Run) -> str:
    """The run whose architecture ``run`` has: basis-from-conv only differs from basis-scratch in its start."""
    if run.method == "basis-from-conv":
        return compare.Run("basis-scratch", run.budget).name
    return run.name


def lenet_networks(rng) -> tuple:
    """``({architecture: torch LeNet}, {run: architecture})`` for every run of chapter 10's plan."""
    from ..torch.models import build as build_torch

    runs = {run.name: timed_as(run) for run in compare.default_runs()}
    models = {architecture: build_torch(compare.parse_run(architecture).choice.spec, rng=rng, dtype="float32")
              for architecture in dict.fromkeys(runs.values())}
    return models, runs


def cifar10_networks(rng) -> tuple:
    """``({run: torch ResNet-20}, {run: run})`` for chapter 7's CIFAR-10 runs (:data:`cifar10.RUNS`)."""
    models = {run: cifar10.build_model(run, rng=rng).float() for run in cifar10.RUNS}
    return models, {run: run for run in models}


def _shape(layer) -> tuple:
    """What a standard convolution must share with ``layer`` to stand in for it."""
    return (layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride, layer.padding,
            "bias" in layer.params)


def time_networks(models: dict, runs: dict, kind: str, rounds: int, batches=(1, 128), numpy_batch: int = 128,
                  seed: int = 0) -> dict:
    """``{run: timings}``: the torch ``models`` (architecture -> model) timed in interleaved rounds, reported for
    every run of ``runs`` (run -> architecture); ``kind`` ("lenet" or "cifar10") picks :data:`NUMPY_LAYER`.

    Timings: ``timed_as`` (the architecture measured), ``torch_per_image_ms`` (``{"batch_<b>": ms}``),
    ``numpy_layer`` (the NumPy layer and its input), ``numpy_method_seconds``, ``numpy_standard_seconds``,
    ``numpy_ratio`` (medians over all rounds), and ``halves``: the same four numbers over the first and over the
    second half of the rounds.
    """
    from ..layers import Conv2d
    from ..torch.to_numpy import numpy_twin
    from ..training.timing import inference, random_inputs

    name, path, size = NUMPY_LAYER[kind]
    rng = np.random.default_rng(seed)
    inputs = random_inputs({batch: (batch, *INPUT_SHAPE[kind]) for batch in batches}, seed)
    calls, layers, standards = {}, {}, {}
    for architecture, model in models.items():
        for batch, x in inputs.items():
            calls[architecture, f"batch_{batch}"] = lambda model=model, x=x: model(x)
        layer = layers[architecture] = numpy_twin(model.get_submodule(path))
        x = rng.standard_normal((numpy_batch, layer.in_channels, *size)).astype(np.float32)
        calls[architecture, "numpy"] = lambda layer=layer, x=x: layer.forward(x)
        shape = _shape(layer)
        if shape not in standards:          # one standard convolution per shape, shared by the networks that have it
            standards[shape] = Conv2d(*shape[:3], stride=shape[3], padding=shape[4], bias=shape[5],
                                      rng=rng).astype(np.float32)
            calls[shape, "standard"] = lambda conv=standards[shape], x=x: conv.forward(x)
    with inference(models.values()):
        times = interleaved_times(calls, rounds=rounds, seed=seed)
    # medians over all rounds, and over each half of them: how far the halves differ shows the timing noise
    half = max(1, rounds // 2)
    parts = {"all": slice(None), "first_half": slice(0, half), "second_half": slice(half, None)}
    seconds = {part: {key: statistics.median(values[cut] or values) for key, values in times.items()}
               for part, cut in parts.items()}
    timings = {}
    for run, architecture in runs.items():
        layer = layers[architecture]

        def measured(part):
            method, standard = seconds[part][architecture, "numpy"], seconds[part][_shape(layer), "standard"]
            return {"torch_per_image_ms": {f"batch_{b}": 1000 * seconds[part][architecture, f"batch_{b}"] / b
                                           for b in batches},
                    "numpy_method_seconds": method, "numpy_standard_seconds": standard,
                    "numpy_ratio": method / standard}

        timings[run] = {
            "timed_as": architecture,
            "numpy_layer": {"name": name, "layer": repr(layer), "input_shape": [numpy_batch, layer.in_channels, *size]},
            **measured("all"), "halves": [measured("first_half"), measured("second_half")]}
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


def expected_result(seed: int, quick: bool, sizes: dict) -> dict:
    """What the file must hold to count as done (:func:`minilib.results.check_result`): the seed, quickness and
    ``sizes`` (rounds, batches, NumPy batches) of the request."""
    return {"experiment": "compare-timing", "seed": seed, "quick": quick,
            **{key: sizes[key] for key in ("rounds", "batches", "numpy_batch")}}


def main(args: argparse.Namespace) -> int:
    from threadpoolctl import threadpool_limits

    from ..training import set_threads

    for option in ("rounds", "threads"):
        if getattr(args, option) is not None and getattr(args, option) < 1:
            print(f"error: --{option} must be a positive integer, got {getattr(args, option)}", file=sys.stderr)
            return 2
    mode = "quick" if args.quick else "full"
    sizes = {**SIZES[mode], **({"rounds": args.rounds} if args.rounds is not None else {})}
    out = args.out or (pathlib.Path(tempfile.mkdtemp(prefix="minilib-timing-")) / OUT.name if args.quick else OUT)
    full = {**SIZES["full"], **({"rounds": args.rounds} if args.rounds is not None else {})}
    problem = result_status(out, expected_result(args.seed, args.quick, sizes),
                            expected_result(args.seed, False, full) if args.quick else None)
    if problem is None and not args.force:
        print(f"skip: {out} exists (--force re-times)")
        return 0
    for stale in remove_stale_temp_files(out.parent):
        log(f"removed {stale}: the temporary file of a writer that is gone")
    set_aside_rejected(out, problem, "compare-timing")
    pin_revision()
    start = time.perf_counter()
    torch_threads = set_threads(args.threads)
    with threadpool_limits(args.threads, user_api="blas"):
        timings = {}
        for kind, networks in (("lenet", lenet_networks), ("cifar10", cifar10_networks)):
            models, runs = networks(np.random.default_rng(args.seed))
            timings[kind] = time_networks(models, runs, kind, sizes["rounds"], sizes["batches"],
                                          sizes["numpy_batch"][kind], args.seed)
        threads = {"torch": torch_threads, "blas": blas_threads()}
    payload = {"experiment": "compare-timing", "quick": args.quick, **sizes, "threads": threads,
               "versions": versions(), "networks": timings["lenet"], "cifar10_networks": timings["cifar10"],
               "wall_seconds": time.perf_counter() - start}
    write_result(out, payload, seed=args.seed)
    print(f"{len(timings['lenet'])} LeNets and {len(timings['cifar10'])} CIFAR-10 ResNets timed in "
          f"{payload['wall_seconds']:.0f} s -> {out}")
    return 0
