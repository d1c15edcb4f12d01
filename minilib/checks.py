"""Argument validation shared by the NumPy core.

Every public function checks its inputs at the top and raises an error that names
the argument, the value it got and the rule it broke, so that a mistake surfaces as
one readable line instead of a shape error deep inside NumPy.
"""
from __future__ import annotations

import numbers

import numpy as np


def as_pair(value, name: str) -> tuple[int, int]:
    """Return ``(value, value)`` for an int, or the pair itself; reject anything else."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value), int(value)
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(
        isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in value
    ):
        return int(value[0]), int(value[1])
    raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")


def positive_pair(value, name: str) -> tuple[int, int]:
    """``as_pair`` plus the rule that both entries are >= 1."""
    pair = as_pair(value, name)
    if min(pair) < 1:
        raise ValueError(f"{name}={value!r} must be >= 1")
    return pair


def non_negative_pair(value, name: str) -> tuple[int, int]:
    """``as_pair`` plus the rule that both entries are >= 0."""
    pair = as_pair(value, name)
    if min(pair) < 0:
        raise ValueError(f"{name}={value!r} must be >= 0")
    return pair


def positive_int(value, name: str) -> int:
    """An integer >= 1 (bools are rejected: ``True`` is not a channel count)."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < 1:
        raise ValueError(f"{name}={value} must be >= 1")
    return int(value)


def non_negative_int(value, name: str) -> int:
    """An integer >= 0 (bools are rejected)."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < 0:
        raise ValueError(f"{name}={value} must be >= 0")
    return int(value)


def one_of(value, name: str, choices) -> str:
    """One of a few allowed strings."""
    if value not in choices:
        raise ValueError(f"{name}={value!r} must be one of {', '.join(map(repr, choices))}")
    return value


def flag(value, name: str, allow_none: bool = False):
    """A real bool (not 1, not "yes"); None too with ``allow_none``."""
    if not (isinstance(value, bool) or (allow_none and value is None)):
        raise TypeError(f"{name}={value!r} must be True or False" + (" or None" if allow_none else ""))
    return value


def positive_number(value, name: str) -> float:
    """A real number > 0 (NaN fails the rule, bools are rejected)."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise TypeError(f"{name} must be a number, got {value!r}")
    if not value > 0:
        raise ValueError(f"{name}={value!r} must be > 0")
    return float(value)


def non_negative_number(value, name: str) -> float:
    """A real number >= 0 (NaN fails the rule, bools are rejected)."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise TypeError(f"{name} must be a number, got {value!r}")
    if not value >= 0:
        raise ValueError(f"{name}={value!r} must be >= 0")
    return float(value)


def probability(value, name: str) -> float:
    """A float in [0, 1)."""
    if not isinstance(value, numbers.Real) or not 0.0 <= float(value) < 1.0:
        raise ValueError(f"{name}={value!r} must be a number in [0, 1)")
    return float(value)


def array(x, name: str, ndim: int | None = None, layout: str = "") -> np.ndarray:
    """Check that ``x`` is a floating NumPy array with ``ndim`` dimensions.

    ``layout`` (for example ``"(N, C, H, W)"``) is only used in the message.
    """
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(x).__name__}")
    if ndim is not None and x.ndim != ndim:
        shape_hint = f" {layout}" if layout else ""
        raise ValueError(f"{name} must have {ndim} dimensions{shape_hint}, got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"{name} must have a floating dtype, got {x.dtype}")
    return x


def same_shape(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{name_a} has shape {a.shape} but {name_b} has shape {b.shape}; they must match")


def upstream_gradient(dout, shape, name: str = "dout") -> np.ndarray:
    """Check the gradient handed to a backward pass against the shape of the forward output.

    Without this, a wrongly shaped ``dout`` either fails deep inside NumPy or, worse,
    broadcasts silently into a wrong gradient.
    """
    array(dout, name)
    if dout.shape != tuple(shape):
        raise ValueError(f"{name} has shape {dout.shape} but the forward output had shape {tuple(shape)}; they must match")
    return dout
