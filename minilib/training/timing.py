"""Timing torch models: a whole network's inference latency (:func:`torch_model_latency`) and what the interleaved
timings of :mod:`minilib.reproduce.compare_timing` need from torch (:func:`random_inputs`, :func:`inference`).
The clocks and medians are :mod:`minilib.timing`'s, shared with the NumPy timings."""
from __future__ import annotations

import contextlib

import torch

from .. import checks
from ..timing import median_seconds


def random_inputs(shapes: dict, seed: int = 0, dtype=torch.float32) -> dict:
    """``{key: standard normal tensor of shapes[key]}``, drawn in ``shapes``' order from one generator seeded with
    ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    return {key: torch.randn(tuple(shape), generator=generator, dtype=dtype) for key, shape in shapes.items()}


@contextlib.contextmanager
def inference(models):
    """Every model of ``models`` in eval mode and gradients off for the block; the modes are restored after."""
    modes = [(model, model.training) for model in models]
    for model, _ in modes:
        model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        for model, mode in modes:
            model.train(mode)


def torch_model_latency(model, input_shape, batch_sizes=(1, 128), repeats: int = 5, warmup: int = 2,
                        seed: int = 0) -> dict:
    """Inference time of ``model`` on random inputs of one sample's ``input_shape``, per batch size.

    Eval mode and ``torch.no_grad`` (the model's mode is restored). Returns ``{"batch_<b>":
    {"batch", "median_seconds", "per_image_ms"}, ..., "repeats", "warmup", "threads"}`` with
    ``threads`` = ``torch.get_num_threads()`` during the measurement.
    """
    first = next(model.parameters())
    generator = torch.Generator().manual_seed(seed)
    was_training = model.training
    model.eval()
    result = {}
    try:
        with torch.no_grad():
            for batch in batch_sizes:
                batch = checks.positive_int(batch, "batch size")
                x = torch.randn((batch, *input_shape), generator=generator, dtype=first.dtype)
                seconds = median_seconds(lambda x=x: model(x), repeats, warmup)
                result[f"batch_{batch}"] = {"batch": batch, "median_seconds": seconds,
                                            "per_image_ms": 1000 * seconds / batch}
    finally:
        model.train(was_training)
    return {**result, "repeats": repeats, "warmup": warmup, "threads": torch.get_num_threads()}
