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


def fake_payload(expected: dict, **changes) -> dict:
    """A payload that :func:`minilib.results.check_result` takes as done for ``expected`` (an experiment's
    ``expected_result``) before ``changes``: every key of the experiment's schema filled with a value of its type,
    then the expected values (but the seed, which :func:`minilib.results.write_result` adds)."""
    payload = {key: filler(types) for key, types in SCHEMAS[expected["experiment"]].items()}
    payload.update({key: value for key, value in expected.items() if key != "seed"})
    return {**payload, **changes}


def mnist_payload(name: str = "baseline", seed: int = 0, quick: bool = False, backend: str = "numpy",
                  **changes) -> dict:
    """:func:`fake_payload` of :func:`minilib.reproduce.mnist.expected_result` for the run of variant ``name`` on
    ``backend`` (numpy by default: the commands then need no torch)."""
    expected = mnist.expected_result(mnist.parse_run(name, backend), seed, quick)
    return fake_payload(expected, **{"test_accuracy": 0.99, "diverged": None, **changes})


def write_mnist_result(folder, name: str = "baseline", seed: int = 0, quick: bool = False, backend: str = "numpy",
                       **changes) -> Path:
    """:func:`mnist_payload` written as ``<folder>/<run>_seed<seed>.json`` (the run's name: ``<name>-numpy`` for the
    NumPy backend) by :func:`minilib.results.write_result`."""
    payload = mnist_payload(name, seed, quick, backend, **changes)
    run = mnist.parse_run(name, backend).name
    return write_result(Path(folder) / f"{run}_seed{seed}.json", payload, seed=seed)
