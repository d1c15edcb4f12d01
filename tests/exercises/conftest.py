"""The function an exercise's checks call: the library's reference, or the reader's stub.

Each test module names its exercise (``EXERCISE = "im2col"``) and takes the ``implementation``
fixture. Plain ``pytest`` checks the library's reference implementations; ``--exercise NAME`` checks
the reader's stub of NAME (and skips the other exercises); ``--exercise-target stub`` checks every stub.
"""
import pytest

from minilib.exercises.registry import lookup


def _target(config) -> str:
    target = config.getoption("--exercise-target")
    if target is None:
        target = "stub" if config.getoption("--exercise") else "reference"
    return target


@pytest.fixture
def implementation(request):
    name = getattr(request.module, "EXERCISE", None)
    if name is None:
        raise RuntimeError(f"{request.module.__name__} must set EXERCISE to the name of its exercise")
    chosen = request.config.getoption("--exercise")
    if chosen and chosen != name:
        pytest.skip(f"only exercise {chosen!r} is being checked")
    return lookup(name).function(_target(request.config))
