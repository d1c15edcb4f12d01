"""Argument validation shared by the NumPy core: the one place its rules live.

Every public function checks its inputs at the top and raises an error that names
the argument, the value it got and the rule it broke, so that a mistake surfaces as
one readable line instead of a shape error deep inside NumPy:

    TypeError: rng must be a numpy.random.Generator, an int seed or None, got str 'x'
    ValueError: lr=inf must be a finite number >= 0

``TypeError`` for a wrong type (a string for a number, ``'no'`` for a flag, an integer or
float16 array where float32/float64 is needed), ``ValueError`` for a wrong value or shape.
The checks only look at arguments, never at the numbers inside the data: layers and losses
propagate NaN and inf as torch does, and the training loop (:func:`minilib.train.fit`) stops
when the loss stops being finite.

Memory: a call whose output, unfolded matrix or parameters would be larger than
:func:`memory_limit` (at most :data:`MAX_ARRAY_BYTES`, 8 GiB) is refused up front by
:func:`fits_in_memory` with a ``ValueError`` giving the size and the arguments that cause it,
instead of a ``MemoryError`` from NumPy halfway through.
"""
from __future__ import annotations

import math
import numbers
import os

import numpy as np

# Floating dtypes the NumPy core computes in: float16 loses too much in the long sums of a
# convolution (and BLAS has no float16 GEMM), longdouble has no BLAS at all.
FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

# The largest single array one call may allocate (see :func:`memory_limit`).
MAX_ARRAY_BYTES = 8 << 30


def describe(value, limit: int = 60) -> str:
    """``str 'x'``: the type and a short repr of a bad value, for messages."""
    text = repr(value)
    if len(text) > limit:
        text = text[:limit - 3] + "..."
    return f"{type(value).__name__} {text}"


def is_int(value) -> bool:
    """An integer that is not a bool (``True`` is not a channel count)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


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


def integer(value, name: str, minimum: int = 1, allow_none: bool = False) -> int | None:
    """An integer >= ``minimum`` (NumPy integers too; bools are rejected: ``True`` is not a channel count);
    None too with ``allow_none`` (returned as None)."""
    if value is None and allow_none:
        return None
    if not is_int(value):
        raise TypeError(f"{name} must be an int{' or None' if allow_none else ''}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name}={value} must be >= {minimum}")
    return int(value)


def positive_int(value, name: str) -> int:
    """An integer >= 1 (bools are rejected: ``True`` is not a channel count)."""
    return integer(value, name, 1)


def non_negative_int(value, name: str) -> int:
    """An integer >= 0 (bools are rejected)."""
    return integer(value, name, 0)


def one_of(value, name: str, choices) -> str:
    """One of a few allowed strings (a non-string is a TypeError, an unknown string a ValueError)."""
    if all(isinstance(c, str) for c in choices) and not isinstance(value, str):
        raise TypeError(f"{name} must be one of {', '.join(map(repr, choices))}, got {describe(value)}")
    if value not in choices:
        raise ValueError(f"{name}={value!r} must be one of {', '.join(map(repr, choices))}")
    return value


def flag(value, name: str, allow_none: bool = False):
    """A real bool (not 1, not "yes"; NumPy's ``np.bool_`` counts); None too with ``allow_none``.

    Returns the value as a Python bool (or None).
    """
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if allow_none and value is None:
        return None
    raise TypeError(f"{name}={value!r} must be True or False" + (" or None" if allow_none else ""))


def rng(value, name: str = "rng") -> np.random.Generator:
    """The random generator a layer draws from: a ``numpy.random.Generator`` (used as is), an int seed
    (``numpy.random.default_rng(seed)``, so ``rng=0`` and ``rng=np.random.default_rng(0)`` draw the same
    numbers) or None (a fresh ``default_rng()`` seeded from the OS: not repeatable).

    The legacy ``numpy.random.RandomState`` is refused: its methods draw different numbers.
    """
    if isinstance(value, np.random.Generator):
        return value
    if value is None:
        return np.random.default_rng()
    if is_int(value):
        if value < 0:
            raise ValueError(f"{name}={value} must be a seed >= 0 (or a numpy.random.Generator, or None)")
        return np.random.default_rng(int(value))
    raise TypeError(f"{name} must be a numpy.random.Generator, an int seed or None, got {describe(value)}")


def show(value) -> str:
    """repr of a value for messages, NumPy scalars as the Python number they hold (``inf``, not ``np.float64(inf)``)."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def number(value, name: str, low=None, high=None, low_open: bool = False, high_open: bool = False,
           finite: bool = True) -> float:
    """A real number (not a bool, not a string) in a range, returned as a float.

    ``low``/``high`` bound it (``None``: unbounded), ``low_open``/``high_open`` make a bound strict;
    ``finite`` (the default) also refuses inf and NaN (NaN fails every rule in any case). Messages:
    ``lr=-0.1 must be >= 0``, ``lr=inf must be a finite number >= 0``, ``momentum=2.0 must be in [0, 1)``.
    """
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise TypeError(f"{name} must be a number, got {describe(value)}")
    parts = []
    if low is not None and high is not None:
        parts.append(f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}")
    elif low is not None:
        parts.append(f"{'>' if low_open else '>='} {low:g}")
    elif high is not None:
        parts.append(f"{'<' if high_open else '<='} {high:g}")
    rule = " ".join(parts)
    v = float(value)
    if math.isnan(v) or (finite and math.isinf(v)):
        raise ValueError(f"{name}={show(value)} must be a {'finite ' if finite else ''}number {rule}".rstrip())
    in_range = ((low is None or (v > low if low_open else v >= low))
                and (high is None or (v < high if high_open else v <= high)))
    if not in_range:
        raise ValueError(f"{name}={show(value)} must be {rule}")
    return v


def positive_number(value, name: str) -> float:
    """A finite real number > 0 (NaN and inf fail the rule, bools are rejected)."""
    return number(value, name, low=0, low_open=True)


def non_negative_number(value, name: str) -> float:
    """A finite real number >= 0 (NaN and inf fail the rule, bools are rejected)."""
    return number(value, name, low=0)


def probability(value, name: str) -> float:
    """A float in [0, 1) (a drop probability: 1 would drop everything)."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise TypeError(f"{name} must be a number in [0, 1), got {describe(value)}")
    if not 0.0 <= float(value) < 1.0:
        raise ValueError(f"{name}={value!r} must be a number in [0, 1)")
    return float(value)


def float_dtype(dtype, name: str = "dtype") -> np.dtype:
    """``float32`` or ``float64`` (as a type, a dtype or its name), the dtypes the NumPy core computes in."""
    try:
        resolved = np.dtype(dtype)
    except (TypeError, ValueError):
        resolved = None
    if resolved is None or resolved not in FLOAT_DTYPES:   # (a dtype compares equal to None: float64)
        got = dtype.__name__ if isinstance(dtype, type) else describe(dtype)
        raise TypeError(f"{name} must be float32 or float64, got {got}")
    return resolved


def array(x, name: str, ndim: int | None = None, layout: str = "") -> np.ndarray:
    """Check that ``x`` is a float32 or float64 NumPy array with ``ndim`` dimensions.

    ``layout`` (for example ``"(N, C, H, W)"``) is only used in the message. Integer arrays,
    float16 and longdouble are a ``TypeError`` (see :data:`FLOAT_DTYPES`).
    """
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(x).__name__}")
    if ndim is not None and x.ndim != ndim:
        shape_hint = f" {layout}" if layout else ""
        raise ValueError(f"{name} must have {ndim} dimensions{shape_hint}, got shape {x.shape}")
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must have a floating dtype, got {x.dtype}: float32 or float64 "
                        f"(float16, longdouble and integers are not supported)")
    return x


def vector(x, name: str, length: int, layout: str = "") -> np.ndarray:
    """A 1-D float array of exactly ``length`` entries (a bias: a (3, 2) or (1,) one would broadcast silently)."""
    array(x, name, 1, layout)
    if x.shape != (length,):
        raise ValueError(f"{name} has shape {x.shape} but must have shape ({length},)"
                         + (f" {layout}" if layout else ""))
    return x


def shape_tuple(value, name: str, ndim: int, layout: str = "") -> tuple[int, ...]:
    """A shape: a tuple or list of ``ndim`` ints >= 0 (e.g. ``x_shape`` (N, C, H, W) of a fold)."""
    if not isinstance(value, (tuple, list)) or not all(is_int(v) for v in value):
        raise TypeError(f"{name} must be a tuple of ints{' ' + layout if layout else ''}, got {describe(value)}")
    if len(value) != ndim:
        raise ValueError(f"{name}={tuple(value)} must have {ndim} entries{' ' + layout if layout else ''}")
    if min(value, default=0) < 0:
        raise ValueError(f"{name}={tuple(value)} must not have negative entries")
    return tuple(int(v) for v in value)


def samples(x, name: str) -> int:
    """The number of samples N = len(x) of a non-empty batch; a mean over nothing is undefined."""
    n = len(x)
    if n == 0:
        shape = getattr(x, "shape", None)
        raise ValueError(f"{name} has no samples" + (f" (shape {shape})" if shape is not None else "")
                         + ": a mean over nothing is undefined")
    return n


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


# ----------------------------------------------------------------------------- memory
def memory_limit() -> int:
    """The most bytes one array of one call may take: :data:`MAX_ARRAY_BYTES` (8 GiB), or less where the
    machine has less: half of its physical memory, half of the address-space limit (``ulimit -v``) if one is set.

    Fixed per machine (not the momentarily free memory), so a valid call is never refused because
    something else happens to run. It bounds each large array separately (an output, an unfolded
    matrix, a parameter), which catches the absurd sizes a typo makes; several arrays near the
    limit together can still exhaust a small machine.
    """
    limits = [MAX_ARRAY_BYTES]
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        if physical > 0:                               # -1 where the platform does not know
            limits.append(physical // 2)
    except (AttributeError, OSError, ValueError):  # not on this platform
        pass
    try:
        import resource
        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY and soft > 0:
            limits.append(soft // 2)
    except (ImportError, OSError, ValueError):
        pass
    return int(min(limits))


def gib(nbytes) -> str:
    """Bytes as GiB for messages: ``2.5 GiB``, ``67,055 GiB``."""
    value = nbytes / 2 ** 30
    return f"{value:,.0f} GiB" if value >= 100 else f"{value:.3g} GiB"


def fits_in_memory(shape, dtype, what: str, cause: str) -> None:
    """Refuse up front an array of ``shape`` and ``dtype`` (a NumPy dtype, or a torch one) larger than
    :func:`memory_limit`.

    ``what`` names the array (``"the output (N, F, OH, OW)"``), ``cause`` the arguments that make it
    so large (``"x.shape=(1, 1, 5, 5), padding=(100000, 100000)"``). NumPy would otherwise fail with a
    ``MemoryError`` (or the OS kill the process) after minutes of work, or not at all until swapping.
    """
    try:
        itemsize, dtype_name = np.dtype(dtype).itemsize, np.dtype(dtype).name
    except TypeError:                   # a torch dtype (the twins' parameters): it knows its size too
        itemsize, dtype_name = dtype.itemsize, str(dtype)
    nbytes = math.prod(int(v) for v in shape) * itemsize
    limit = memory_limit()
    if nbytes > limit:
        raise ValueError(f"{what} of shape {tuple(int(v) for v in shape)} ({dtype_name}) would need "
                         f"{gib(nbytes)}, more than the {gib(limit)} one array may take "
                         f"(minilib.checks.memory_limit); caused by {cause}")
