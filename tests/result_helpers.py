"""Small result files that have the full schema of :data:`minilib.results.SCHEMAS`, for the tests of what counts as
done and of the readers: made without training, from the experiment's own ``expected_result``."""
from __future__ import annotations

from pathlib import Path

from minilib.reproduce import mnist
from minilib.results import SCHEMAS, write_result

_FILLERS = {str: "x", int: 1, float: 0.5, bool: False, dict: {}, list: []}


def filler(types):
    """A value of the first type of a schema entry."""
    first = types[0] if isinstance(types, tuple) else types
    return None if first is type(None) else _FILLERS[first]


def mnist_payload(run: str = "baseline", seed: int = 0, quick: bool = False, **changes) -> dict:
    """A payload that :func:`minilib.results.check_result` takes as done for ``run`` and ``seed`` (before
    ``changes``): the expected values of :func:`minilib.reproduce.mnist.expected_result`, every other schema key
    filled with a value of its type."""
    expected = mnist.expected_result(mnist.parse_run(run), seed, quick)
    payload = {key: filler(types) for key, types in SCHEMAS["mnist"].items()}
    payload.update({key: value for key, value in expected.items() if key != "seed"})
    payload["test_accuracy"] = 0.99
    return {**payload, **changes}


def write_mnist_result(folder, run: str = "baseline", seed: int = 0, quick: bool = False, **changes) -> Path:
    """:func:`mnist_payload` written as ``<folder>/<run>_seed<seed>.json`` by :func:`minilib.results.write_result`."""
    return write_result(Path(folder) / f"{run}_seed{seed}.json", mnist_payload(run, seed, quick, **changes), seed=seed)
