"""CPU inference latency, measured the same way for every chapter's reproduction command (NumPy; the torch
side is :mod:`minilib.training.timing`).

- :func:`minilib.training.timing.torch_model_latency` (torch is imported only there): a whole PyTorch model in
  eval mode under ``torch.no_grad``, at batch 1 and batch 128, with :func:`median_seconds` of this module;
- :func:`numpy_layer_latency`: ONE method layer's NumPy forward pass (:mod:`minilib.versatile`,
  :mod:`minilib.basis`, :mod:`minilib.fullstack`: the fast paths) against the NumPy standard
  convolution :class:`minilib.layers.Conv2d` at the same shapes, timed in alternation so both
  see the same machine load; the ratio is what to compare, never the absolute seconds (a
  2-core machine shared with other work);
- :func:`interleaved_times` and :func:`interleaved_medians`: many calls timed together in rounds, each
  round in a fresh random order, so that times of different networks measured in one process can be compared.

:func:`minilib.torch.to_numpy.numpy_twin` turns a torch twin (or ``nn.Conv2d``) into the NumPy layer with the
same arguments and weights, so the NumPy numbers belong to the very layer the model trained.
"""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np

from . import checks


def blas_threads():
    """Threads of NumPy's BLAS (threadpoolctl), or None when it cannot be told."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    pools = [pool["num_threads"] for pool in threadpool_info() if pool.get("user_api") == "blas"]
    return pools[0] if pools else None


def timings(fn: Callable[[], object], repeats: int = 5, warmup: int = 1) -> list:
    """Wall times (seconds) of ``repeats`` calls of ``fn()``, after ``warmup`` untimed calls."""
    repeats = checks.positive_int(repeats, "repeats")
    for _ in range(checks.non_negative_int(warmup, "warmup")):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def interleaved_times(calls: dict, rounds: int = 30, warmup: int = 1, seed: int = 0,
                      clock: Callable[[], float] = time.perf_counter) -> dict:
    """Wall times (seconds) of every callable in ``calls`` (name -> ``fn()``), timed together: ``{name: [one time
    per round]}``.

    After ``warmup`` untimed calls of each, every one of ``rounds`` rounds calls each function once, in a
    new random order (``np.random.default_rng(seed)``): a slow drift of the machine's load then reaches all
    of them alike instead of whichever happened to be timed during it, and a fixed order cannot favour the
    one that runs after a cache-warming neighbour.
    """
    if not calls:
        raise ValueError("calls must name at least one function to time, got none")
    rounds = checks.positive_int(rounds, "rounds")
    for _ in range(checks.non_negative_int(warmup, "warmup")):
        for fn in calls.values():
            fn()
    names = list(calls)
    rng = np.random.default_rng(seed)
    times = {name: [] for name in names}
    for _ in range(rounds):
        for index in rng.permutation(len(names)):
            name = names[index]
            start = clock()
            calls[name]()
            times[name].append(clock() - start)
    return times


def interleaved_medians(calls: dict, rounds: int = 30, warmup: int = 1, seed: int = 0,
                        clock: Callable[[], float] = time.perf_counter) -> dict:
    """``{name: median seconds}`` of :func:`interleaved_times`."""
    return {name: statistics.median(values)
            for name, values in interleaved_times(calls, rounds, warmup, seed, clock).items()}


def median_seconds(fn: Callable[[], object], repeats: int = 5, warmup: int = 1) -> float:
    """Median wall time of ``repeats`` calls of ``fn()`` after ``warmup`` untimed calls."""
    return statistics.median(timings(fn, repeats, warmup))


def numpy_layer_latency(layer, input_shape, repeats: int = 5, warmup: int = 1, seed: int = 0) -> dict:
    """Forward time of the NumPy ``layer`` vs :class:`minilib.layers.Conv2d` of the same shapes, float32.

    ``layer``: a NumPy method layer (or a torch twin, converted by :func:`minilib.torch.to_numpy.numpy_twin`);
    ``input_shape``: the full input (N, C, H, W). The two forwards alternate (warm-up calls of
    each first), and each median is over its ``repeats`` timed calls. Returns ``{"layer",
    "input_shape", "output_shape", "method_seconds", "standard_seconds", "ratio"
    (method / standard), "repeats", "warmup", "blas_threads"}``.
    """
    from .layers import Conv2d, Module

    if not isinstance(layer, Module):
        from .torch.to_numpy import numpy_twin

        layer = numpy_twin(layer)
    repeats = checks.positive_int(repeats, "repeats")
    warmup = checks.non_negative_int(warmup, "warmup")
    rng = np.random.default_rng(seed)
    standard = Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size, stride=layer.stride,
                      padding=layer.padding, bias="bias" in layer.params, rng=rng).astype(np.float32)
    x = rng.standard_normal(tuple(input_shape)).astype(np.float32)
    for _ in range(warmup):
        layer.forward(x)
        standard.forward(x)
    method_times, standard_times = [], []
    for _ in range(repeats):
        for model, times in ((layer, method_times), (standard, standard_times)):
            start = time.perf_counter()
            model.forward(x)
            times.append(time.perf_counter() - start)
    out_shape = layer.forward(x).shape
    method_seconds, standard_seconds = statistics.median(method_times), statistics.median(standard_times)
    return {"layer": repr(layer), "input_shape": list(x.shape), "output_shape": list(out_shape),
            "method_seconds": method_seconds, "standard_seconds": standard_seconds,
            "ratio": method_seconds / standard_seconds, "repeats": repeats, "warmup": warmup,
            "blas_threads": blas_threads()}
