"""Bad calls to minilib's public API, generated: the one place that says what a bad input is and what a good
answer to it looks like. ``tools/fuzz_api.py`` (the outcome counter, each call in a forked child) and
``tests/test_bad_input_fuzz.py`` (the hypothesis suite of ``make test``, in-process) both draw from here.

A :class:`Family` is one public entry point (a constructor, a ``forward``/``backward``, a function); it knows
a valid call (``valid(context)`` -> keyword arguments) and, for each argument, a pool of :class:`Bad` values
that turn the valid value into a bad one (a wrong type, a string for a number, a bool for an int, a
negative/zero/huge size, NaN/inf, a float16 or integer dtype, a wrong rank or shape, mismatched channels, a bad
``rng``, a flag that is not a bool). A :class:`Case` is a family, an argument, a bad value and a
:class:`Context` (batch size, height, width, seed), drawn through a :class:`Draw`: a seeded
``random.Random`` for the tool, hypothesis's ``data`` for the test.

What each case expects (the conventions of issue 21):

* ``"error"``: a ``ValueError`` or ``TypeError``, raised by minilib's own code, whose message names the
  argument (as a word: ``lr``, ``x``, ``rng``...). Non-finite DATA values are not bad inputs (layers
  propagate NaN/inf as torch does), so none are generated; non-finite HYPERPARAMETERS are.
* ``"empty"``: an empty batch (N = 0) where torch returns an empty output: an empty output of torch's shape,
  and a backward pass with empty input gradients and zero parameter gradients.
* ``"accept"``: a valid value that must simply work (``rng=42``: an int seed).

:func:`classify` names the outcome of a call: ``clear`` and ``ok`` pass; ``unnamed`` (a ValueError/TypeError
whose message does not name the argument, or raised inside NumPy/torch/Python), ``internal`` (any other
exception: IndexError, AttributeError, ZeroDivisionError, torch's RuntimeError...), ``memory``
(MemoryError, an allocation failure, or a child killed under the memory cap), ``silent`` (no error; the
details say whether the output held NaN/inf), ``refused`` (an error where an empty batch or a valid value
had to work), ``wrong`` (an empty batch that gave the wrong shape or gradient) and ``timeout`` fail.
"""
from __future__ import annotations

import contextlib
import dataclasses
import gzip
import math
import os
import re
import resource
import shutil
import signal
import struct
import tempfile
import traceback
import warnings
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

OUTCOMES = ("clear", "ok", "unnamed", "internal", "memory", "silent", "refused", "wrong", "timeout")
PASSING = ("clear", "ok")
AREAS = ("layers", "versatile", "basis", "fullstack", "pooling", "functional", "conv", "fastconv", "im2col",
         "losses", "optim", "torch", "convert", "training", "data")
NAN, INF = float("nan"), float("inf")
HUGE = 2 ** 40                      # a size whose arrays would need terabytes
MINILIB = str(Path(__file__).resolve().parents[1] / "minilib") + os.sep


# ----------------------------------------------------------------------------- cases
@dataclasses.dataclass(frozen=True)
class Context:
    """The valid part of a call that varies from case to case: batch size n, height h, width w, a seed."""
    n: int = 2
    h: int = 6
    w: int = 6
    seed: int = 0

    def rng(self) -> np.random.Generator:
        return np.random.default_rng(self.seed)


CONTEXT_CHOICES = {"n": (1, 2, 3), "h": (5, 6, 7), "w": (5, 6, 7), "seed": tuple(range(64))}


class Draw:
    """How a case's choices are drawn; ``choice(options)`` returns one of ``options``."""

    def choice(self, options):
        raise NotImplementedError


class RandomDraw(Draw):
    """Seeded draws for the tool: ``random.Random(seed)``."""

    def __init__(self, random):
        self.random = random

    def choice(self, options):
        return self.random.choice(list(options))


class HypothesisDraw(Draw):
    """Draws through hypothesis (``st.data()``), so that a failing case shrinks and replays."""

    def __init__(self, data):
        from hypothesis import strategies as st
        self.data, self.st = data, st

    def choice(self, options):
        return self.data.draw(self.st.sampled_from(list(options)))


def draw_context(draw: Draw) -> Context:
    return Context(**{key: draw.choice(values) for key, values in CONTEXT_CHOICES.items()})


@dataclasses.dataclass(frozen=True)
class Bad:
    """One bad value: ``make(context, valid_value)`` builds it from the valid value of its argument (fresh for
    every call, and lazily, so that nothing touches torch before a tool's child is forked). ``names``: further
    words an error message may use instead of the argument's name (``x has 2 channels but the layer expects
    in_channels=3`` names x; ``kernel_size=(3, 3) is larger than the padded input`` names kernel_size)."""
    label: str
    make: Callable[[Context, Any], Any]
    names: tuple = ()
    expect: str = "error"


def const(label, value, names=(), expect="error") -> Bad:
    """A bad value that does not depend on the valid one (immutable values only: it is shared; a list is made
    fresh by its own ``Bad``)."""
    return Bad(label, lambda ctx, like: value, names, expect)


def same(label, names=(), expect="error") -> Bad:
    """The valid value itself: for families whose whole valid call is the bad one (an empty batch)."""
    return Bad(label, lambda ctx, like: like, names, expect)


@dataclasses.dataclass(frozen=True)
class Family:
    """A public entry point: ``valid(context)`` -> keyword arguments of a valid call (keys starting with
    ``_`` are not arguments but state the call needs, such as a layer after its forward pass),
    ``call(kwargs)`` makes the call, ``pools`` maps each argument tried to its bad values."""
    area: str
    api: str
    valid: Callable[[Context], dict]
    call: Callable[[dict], Any]
    pools: Mapping[str, tuple]
    valid_works: bool = True        # False where the valid call is itself the case (an empty batch)

    def arguments(self) -> list:
        return list(self.pools)


@dataclasses.dataclass(frozen=True)
class Case:
    family: Family
    argument: str
    bad: Bad
    context: Context = Context()

    @property
    def area(self) -> str:
        return self.family.area

    @property
    def names(self) -> tuple:
        return (self.argument, *self.bad.names)

    @property
    def expect(self) -> str:
        return self.bad.expect

    @property
    def id(self) -> str:
        return f"{self.family.api}({self.argument}={self.bad.label})"

    def __str__(self) -> str:
        c = self.context
        return f"{self.area}: {self.id} [n={c.n}, h={c.h}, w={c.w}, seed={c.seed}; expects {self.expect}]"

    def call(self):
        kwargs = self.family.valid(self.context)
        kwargs[self.argument] = self.bad.make(self.context, kwargs.get(self.argument))
        return self.family.call(kwargs)


def draw_case(draw: Draw, family: Family, argument: str | None = None, index: int | None = None,
              context: Context | None = None) -> Case:
    """A case of ``family``: the argument and bad value given or drawn, the context drawn unless given."""
    argument = draw.choice(family.arguments()) if argument is None else argument
    pool = family.pools[argument]
    bad = draw.choice(pool) if index is None else pool[index]
    return Case(family, argument, bad, draw_context(draw) if context is None else context)


def valid_call_problem(family: Family, context: Context = Context()) -> str | None:
    """The family's valid call, made: None when it works, else the error (a generator that is wrong)."""
    try:
        family.call(family.valid(context))
    except Exception as error:
        return f"{family.area}: {family.api} valid call failed: {type(error).__name__}: {error}"
    return None


def space(families) -> list:
    """Every (family, argument, index of the bad value): what the tool covers once by default."""
    return [(family, argument, index) for family in families for argument, pool in family.pools.items()
            for index in range(len(pool))]


# ----------------------------------------------------------------------------- running and classifying
class CallTimeout(BaseException):
    """A call ran past its time limit (a BaseException, so that the code under test cannot swallow it)."""


@contextlib.contextmanager
def time_limit(seconds: float):
    """Raise :class:`CallTimeout` in the main thread after ``seconds`` (no limit elsewhere or for 0)."""
    import threading
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum, frame):
        raise CallTimeout(f"the call ran longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def address_space() -> int:
    """This process's virtual memory size in bytes (VmSize)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise OSError("no VmSize in /proc/self/status")


@contextlib.contextmanager
def memory_cap(headroom_mb: int):
    """Limit the address space (RLIMIT_AS) to what the process uses now plus ``headroom_mb``, so that an
    allocation of terabytes fails at once (MemoryError) instead of swapping or waking the OOM killer; the old
    soft limit comes back afterwards (0: no cap)."""
    if not headroom_mb:
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = address_space() + headroom_mb * 2 ** 20
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _arrays(value):
    """Every NumPy array or torch tensor in a result (nested tuples, lists, dicts, modules' parameters)."""
    if isinstance(value, np.ndarray):
        yield value
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from _arrays(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _arrays(item)
    elif hasattr(value, "detach") and hasattr(value, "dtype"):
        yield value.detach().cpu().numpy() if value.dtype.is_floating_point else np.zeros(0)
    elif hasattr(value, "state_dict"):
        try:
            yield from _arrays(dict(value.state_dict()))
        except Exception:           # a module whose state_dict fails says nothing about the call
            return


def non_finite(value) -> bool:
    """Whether a result holds a NaN or an infinity anywhere."""
    try:
        return any(a.dtype.kind in "fc" and not np.all(np.isfinite(a)) for a in _arrays(value))
    except Exception:
        return False


def _raised_in(error: BaseException) -> str:
    """Where an exception was raised: "minilib/<file>" for minilib's code, else the library or "python"."""
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return "python"
    path = frames[-1].filename
    if path.startswith(MINILIB):
        return "minilib/" + path[len(MINILIB):]
    for library in ("numpy", "torch", "hypothesis"):
        if f"{os.sep}{library}{os.sep}" in path:
            return library
    return "python" if "python3" in path else os.path.basename(path)


def run(case: Case) -> dict:
    """Make the call and describe what happened (JSON-ready): ``status`` "returned" or "raised", and for an
    exception its type, message and where it was raised; for a result, whether it was non-finite and, for an
    empty batch, the problem found (None when it is right)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")         # NaN hyperparameters warn in NumPy; the outcome says enough
            result = case.call()
    except CallTimeout:
        raise
    except BaseException as error:          # MemoryError and SystemExit too: everything is an outcome
        return {"status": "raised", "type": type(error).__name__, "message": str(error)[:500],
                "where": _raised_in(error), "value_or_type_error": isinstance(error, (ValueError, TypeError)),
                "memory_error": isinstance(error, MemoryError)}
    record = {"status": "returned", "non_finite": non_finite(result)}
    if case.expect == "empty":
        record["problem"] = result
    return record


def run_in_process(case: Case, *, seconds: float = 20, headroom_mb: int = 2048) -> dict:
    """:func:`run` under a time limit and a memory cap, in this process (the test suite's way)."""
    try:
        with memory_cap(headroom_mb), time_limit(seconds):
            return run(case)
    except CallTimeout as error:
        return {"status": "timeout", "message": str(error)}


def names_argument(message: str, names) -> bool:
    """Whether ``message`` names one of ``names`` as a word (``lr`` in "lr=inf must be ...", not in "lrn")."""
    return any(re.search(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])", message) for name in names)


ALLOCATION = re.compile(r"can't allocate memory|not enough memory|out of memory|DefaultCPUAllocator", re.I)


def classify(case: Case, record: dict) -> str:
    """The outcome of ``case`` from :func:`run`'s record (see the module docstring)."""
    status = record["status"]
    if status == "timeout":
        return "timeout"
    if status == "killed":
        return "memory"
    if status == "returned":
        if case.expect == "error":
            return "silent"
        if case.expect == "empty" and record.get("problem"):
            return "wrong"
        return "ok"
    kind, message = record["type"], record["message"]
    if record["memory_error"] or (kind == "RuntimeError" and ALLOCATION.search(message)):
        return "memory"
    if not record["value_or_type_error"]:
        return "internal"
    if case.expect != "error":
        return "refused"
    if record["where"].startswith("minilib/") and names_argument(message, case.names):
        return "clear"
    return "unnamed"


# ----------------------------------------------------------------------------- value pools
def _np_float(ctx, shape):
    return ctx.rng().standard_normal(shape)


def _torch():
    import torch
    return torch


def _with_channels(like, channels, axis=1):
    """``like`` with ``channels`` entries along ``axis`` (cut or padded with zeros)."""
    if hasattr(like, "detach"):
        torch = _torch()
        shape = list(like.shape)
        shape[axis] = channels
        return torch.zeros(shape, dtype=like.dtype)
    shape = list(like.shape)
    shape[axis] = channels
    return np.zeros(shape, dtype=like.dtype)


def count_pool(*, huge=True, none_ok=False, zero_ok=False, extra=()) -> tuple:
    """Bad values for a count (channels, features, sizes): an int >= 1."""
    pool = [const("str '3'", "3"), const("float 3.0", 3.0), const("float 2.5", 2.5), const("bool True", True),
            const("negative -1", -1), const("nan", NAN), const("inf", INF), Bad("list [3]", lambda ctx, like: [3])]
    if not zero_ok:
        pool.append(const("zero", 0))
    if not none_ok:
        pool.append(const("None", None))
    if huge:
        pool.append(const("huge 2**40", HUGE))
    return tuple(pool) + tuple(extra)


def pair_pool(*, huge=True, zero_ok=False, none_ok=False, extra=()) -> tuple:
    """Bad values for an int-or-pair argument (kernel_size, stride, padding, dilation)."""
    pairs = (const("pair (3,)", (3,)), const("triple (3, 3, 3)", (3, 3, 3)),
             const("pair with float (3, 2.5)", (3, 2.5)),
             const("pair with str ('3', 3)", ("3", 3)), const("pair with bool (True, 3)", (True, 3)),
             const("pair (3, -1)", (3, -1)))
    if not zero_ok:
        pairs += (const("pair (3, 0)", (3, 0)),)
    plain = [b for b in count_pool(huge=huge, none_ok=none_ok, zero_ok=zero_ok) if b.label != "list [3]"]
    return tuple(plain) + pairs + tuple(extra)


FLAG_POOL = (const("str 'no'", "no"), const("str 'False'", "False"), const("int 1", 1), const("int 0", 0),
             const("float 0.0", 0.0), Bad("empty list", lambda ctx, like: []))
RNG_POOL = (const("str 'x'", "x"), const("str '42'", "42"), const("float 1.5", 1.5), const("bool True", True),
            const("negative seed -1", -1), Bad("list [1, 2]", lambda ctx, like: [1, 2]),
            Bad("RandomState", lambda ctx, like: np.random.RandomState(0)))
RNG_ACCEPT = (const("int seed 42", 42, expect="accept"),)


def number_pool(*, zero_ok=True, one_ok=True, above_one_ok=True, negative_ok=False, none_ok=False) -> tuple:
    """Bad values for a real hyperparameter; which finite values are bad depends on its range."""
    pool = [const("nan", NAN), const("inf", INF), const("-inf", -INF), const("str '0.1'", "0.1"),
            const("bool True", True), const("complex 0.1j", 0.1j), Bad("list [0.1]", lambda ctx, like: [0.1])]
    if not negative_ok:
        pool.append(const("negative -0.5", -0.5))
    if not zero_ok:
        pool.append(const("zero", 0.0))
    if not one_ok:
        pool.append(const("1.0", 1.0))
    if not above_one_ok:
        pool.append(const("1.5", 1.5))
    if not none_ok:
        pool.append(const("None", None))
    return tuple(pool)


LR_POOL = number_pool()                                         # lr >= 0, finite
EPS_POOL = number_pool(zero_ok=False)                           # eps > 0
MOMENTUM_POOL = number_pool(one_ok=False, above_one_ok=False)   # 0 <= momentum < 1
BN_MOMENTUM_POOL = number_pool(above_one_ok=False)              # BatchNorm: 0 <= momentum <= 1
PROBABILITY_POOL = number_pool(one_ok=False, above_one_ok=False)  # dropout 0 <= p < 1
DECAY_POOL = number_pool()                                      # weight_decay >= 0
GAMMA_POOL = number_pool(zero_ok=False)                         # gamma > 0
BETAS_POOL = (const("one value (0.9,)", (0.9,)), const("(0.9, 1.0)", (0.9, 1.0)), const("(1.0, 0.999)", (1.0, 0.999)),
              const("(-0.1, 0.999)", (-0.1, 0.999)), const("(nan, 0.999)", (NAN, 0.999)),
              const("(0.9, inf)", (0.9, INF)), const("float 0.9", 0.9), const("str 'ab'", "ab"), const("None", None),
              const("three values", (0.9, 0.999, 0.5)), const("('0.9', 0.999)", ("0.9", 0.999)))


def choice_pool(*extra) -> tuple:
    """Bad values for an argument that takes one of a few strings."""
    return (const("str 'nope'", "nope"), const("None", None), const("int 3", 3), const("empty str", "")) + extra


MISMATCH_NAMES = ("in_channels", "num_features", "x", "w", "weight", "filters", "basis")


def array_pool(*, rank=True, channels=None, small=None, kind="numpy", layer=True) -> tuple:
    """Bad values for an array argument, made from its valid value: other types, dtypes and ranks.

    ``channels``: the valid channel count along axis 1 (bad: one more; one fewer when >= 2); ``small``: the
    kernel size, for an input too small for it (1 x 1); ``kind``: "numpy" (a torch tensor is bad) or "torch"
    (a NumPy array is bad; so is a float32 tensor to a float64 ``layer``).
    """
    pool = [Bad("list", lambda ctx, like: _as_numpy(like).tolist()), const("None", None), const("str 'x'", "x"),
            const("float 1.0", 1.0)]
    if kind == "numpy":
        pool += [Bad("int64", lambda ctx, like: like.astype(np.int64)),
                 Bad("int32", lambda ctx, like: like.astype(np.int32)),
                 Bad("bool", lambda ctx, like: like > 0),
                 Bad("float16", lambda ctx, like: like.astype(np.float16)),
                 Bad("complex128", lambda ctx, like: like.astype(np.complex128)),
                 Bad("object dtype", lambda ctx, like: like.astype(object)),
                 Bad("torch tensor", lambda ctx, like: _torch().from_numpy(like.copy()))]
    else:
        pool += [Bad("numpy array", lambda ctx, like: like.detach().numpy().copy()),
                 Bad("int64 tensor", lambda ctx, like: like.detach().to(_torch().int64)),
                 Bad("bool tensor", lambda ctx, like: like.detach() > 0),
                 Bad("float16 tensor", lambda ctx, like: like.detach().to(_torch().float16)),
                 Bad("complex tensor", lambda ctx, like: like.detach().to(_torch().complex128))]
    if rank:
        pool += [Bad("one dimension fewer", lambda ctx, like: like[0]),
                 Bad("one dimension more", lambda ctx, like: like[None]),
                 Bad("0-d", lambda ctx, like: like.reshape(-1)[0].reshape(()) if kind == "numpy"
                     else like.reshape(-1)[0])]
    if kind == "torch" and layer:
        pool.append(Bad("float32 tensor to a float64 layer", lambda ctx, like: like.detach().to(_torch().float32),
                        names=("dtype",)))
    if channels is not None:
        # a mismatch is between two arguments: naming the other side (in_channels, the weight) is clear too
        pool.append(Bad(f"{channels + 1} channels", lambda ctx, like: _with_channels(like, channels + 1),
                        MISMATCH_NAMES))
        if channels >= 2:
            pool.append(Bad(f"{channels - 1} channels", lambda ctx, like: _with_channels(like, channels - 1),
                            MISMATCH_NAMES))
    if small is not None:
        pool.append(Bad("1x1 image", lambda ctx, like: like[..., :1, :1], names=("kernel_size",)))
    return tuple(pool)


def _as_numpy(like):
    return like.detach().numpy() if hasattr(like, "detach") else like


def dout_pool() -> tuple:
    """Bad upstream gradients, made from a valid one (the forward output's shape); several would broadcast."""
    return (Bad("list", lambda ctx, like: _as_numpy(like).tolist()), const("None", None), const("float 1.0", 1.0),
            Bad("one more in the last axis", lambda ctx, like: np.zeros(like.shape[:-1] + (like.shape[-1] + 1,))),
            Bad("one dimension more", lambda ctx, like: like[None]),
            Bad("another batch size", lambda ctx, like: np.ones((1 if like.shape[0] != 1 else 2,) + like.shape[1:])),
            Bad("broadcastable (N, C, 1, 1)", lambda ctx, like: np.ones(like.shape[:2] + (1,) * (like.ndim - 2))
                if like.ndim > 2 else np.ones(like.shape[:1] + (1,))),
            Bad("int64", lambda ctx, like: like.astype(np.int64)),
            Bad("float16", lambda ctx, like: like.astype(np.float16)),
            Bad("torch tensor", lambda ctx, like: _torch().from_numpy(like.copy())))


def bias_pool(out_channels: int) -> tuple:
    """Bad biases for ``out_channels`` outputs: wrong lengths and ranks (a (1,) bias would broadcast)."""
    return (Bad(f"length {out_channels + 1}", lambda ctx, like: np.zeros(out_channels + 1)),
            Bad("length 1 (would broadcast)", lambda ctx, like: np.zeros(1)),
            Bad(f"2-D ({out_channels}, 1)", lambda ctx, like: np.zeros((out_channels, 1))),
            Bad(f"2-D (3, {out_channels})", lambda ctx, like: np.zeros((3, out_channels))),
            Bad("0-d", lambda ctx, like: np.zeros(())),
            Bad("int64", lambda ctx, like: like.astype(np.int64)),
            Bad("list", lambda ctx, like: like.tolist()), const("str 'x'", "x"))


def weight_pool(channels=None) -> tuple:
    """Bad weights: dtypes, types, ranks and (with ``channels``, axis 1) channel counts."""
    return array_pool(channels=channels)[:1] + tuple(
        b for b in array_pool(channels=channels) if b.label not in ("list", "None", "float 1.0"))


EMPTY = same("N=0", expect="empty")


def empty_family(area: str, api: str, valid: Callable[[Context], dict], check: Callable[[dict], str | None],
                 argument: str = "x") -> Family:
    """An empty-batch family: ``valid(ctx)`` gives the N=0 call, ``check(kwargs)`` makes it and returns the problem
    (None when the result matches torch's: an empty output of the right shape, zero gradients)."""
    return Family(area, f"{api} [N=0]", valid, check, {argument: (EMPTY,)}, valid_works=False)


def _shape_problem(what, got, want):
    shape = getattr(got, "shape", None)
    if shape is None or tuple(shape) != tuple(want):
        return f"{what} has shape {None if shape is None else tuple(shape)}, expected {tuple(want)}"
    return None


def _zero_problem(what, grad):
    if grad is None:
        return None
    grad = _as_numpy(grad)
    if grad.size and not np.all(grad == 0):
        return f"{what} is not zero on an empty batch"
    return None


def empty_layer_problem(make_layer, x0: np.ndarray, grads=True) -> str | None:
    """A NumPy layer on an empty batch: output (0, ...) of the shape a one-sample batch gives, input gradient
    (0, ...), parameter gradients zero."""
    reference = make_layer().forward(np.ones((1,) + x0.shape[1:], dtype=x0.dtype))
    layer = make_layer()
    out = layer.forward(x0)
    problem = _shape_problem("the output", out, (0,) + reference.shape[1:])
    if problem:
        return problem
    dx = layer.backward(np.zeros(out.shape, dtype=out.dtype))
    problem = _shape_problem("dx", dx, x0.shape)
    if problem or not grads:
        return problem
    for key, grad in getattr(layer, "grads", {}).items():
        problem = _zero_problem(f"grads[{key!r}]", grad)
        if problem:
            return problem
    return None


def empty_function_problem(forward, backward, x0, **kwargs) -> str | None:
    """A functional forward (``(out, cache)``) and its backward on an empty batch."""
    reference, _ = forward(np.ones((1,) + x0.shape[1:], dtype=x0.dtype), **kwargs)
    out, cache = forward(x0, **kwargs)
    problem = _shape_problem("the output", out, (0,) + reference.shape[1:])
    if problem or backward is None:
        return problem
    grads = backward(np.zeros(out.shape, dtype=out.dtype), cache)
    grads = grads if isinstance(grads, tuple) else (grads,)
    problem = _shape_problem("dx", grads[0], x0.shape)
    if problem:
        return problem
    for k, grad in enumerate(grads[1:], 1):
        problem = _zero_problem(f"gradient {k}", grad)
        if problem:
            return problem
    return None


def empty_twin_problem(make_twin, x0) -> str | None:
    """A torch module on an empty batch: output (0, ...), input gradient (0, ...), parameter gradients zero."""
    torch = _torch()
    reference = make_twin()(torch.ones((1,) + tuple(x0.shape[1:]), dtype=x0.dtype))
    twin = make_twin()
    x0 = x0.clone().requires_grad_(True)
    out = twin(x0)
    problem = _shape_problem("the output", out, (0,) + tuple(reference.shape[1:]))
    if problem:
        return problem
    out.sum().backward()
    problem = _shape_problem("x.grad", x0.grad if x0.grad is not None else torch.zeros(x0.shape), x0.shape)
    if problem:
        return problem
    for name, param in twin.named_parameters():
        problem = _zero_problem(f"{name}.grad", param.grad)
        if problem:
            return problem
    return None


# ----------------------------------------------------------------------------- the families, area by area
def _ctor(area, api, factory, valid, pools) -> Family:
    """A constructor: ``valid(ctx)`` its keyword arguments; the result is the object made."""
    return Family(area, api, valid, lambda kw: factory(**kw), pools)


def _method(area, api, make, call, pools) -> Family:
    """A method of an object made by ``make(ctx)`` -> (object, valid keyword arguments)."""
    def valid(ctx):
        obj, kwargs = make(ctx)
        return {"_obj": obj, **kwargs}

    def invoke(kw):
        obj = kw.pop("_obj")
        return call(obj, **kw)

    return Family(area, api, valid, invoke, pools)


def _function(area, api, function, valid, pools, name=None) -> Family:
    """A function called with the keyword arguments ``valid(ctx)`` gives (``name``: the API's name if not ``api``;
    a family named apart calls with its valid arguments the bad call itself)."""
    return Family(area, name or api, valid,
                  lambda kw: function(**{k: v for k, v in kw.items() if not k.startswith("_")}), pools,
                  valid_works=name is None)


def _backward(area, api, forward, backward, valid, extra=None) -> Family:
    """``backward(dout, cache, **extra)`` after a valid ``forward(**valid(ctx))``; ``extra``: more arguments of
    the backward pass, {name: (valid value, pool)}."""
    extra = extra or {}

    def make(ctx):
        out, cache = forward(**valid(ctx))
        return {"dout": np.ones_like(out), "_cache": cache, **{name: value for name, (value, _) in extra.items()}}

    def call(kw):
        return backward(kw.pop("dout"), kw.pop("_cache"), **kw)

    return Family(area, api, make, call, {"dout": dout_pool(), **{name: pool for name, (_, pool) in extra.items()}})


def _forward_backward(area, pairs, args, pools, channels, backward_extra=None) -> list:
    """For each ``(forward, backward)`` of ``pairs`` (``backward`` may be None): the forward function's
    family, its backward pass's, and its empty batch (``channels`` input channels)."""
    families = []
    for forward, backward in pairs:
        families.append(_function(area, forward.__name__, forward, args, pools))
        if backward is not None:
            families.append(_backward(area, backward.__name__, forward, backward, args, backward_extra))
        families.append(empty_family(
            area, forward.__name__, lambda ctx: {**args(ctx), "x": np.zeros((0, channels, ctx.h, ctx.w))},
            lambda kw, f=forward, b=backward: empty_function_problem(f, b, kw.pop("x"), **kw)))
    return families


def numpy_layer_families(area, name, make_layer, ctor, ctor_pools, x_shape, *, x_pool, grads=True):
    """The families of one NumPy layer: constructor (``ctor``: (class, valid(ctx)) or None), forward,
    backward, empty batch."""
    def after_forward(ctx):
        layer = make_layer(ctx)
        out = layer.forward(_np_float(ctx, x_shape(ctx)))
        return layer, {"dout": np.ones_like(out)}

    families = []
    if ctor_pools:
        families.append(_ctor(area, name, ctor[0], ctor[1], ctor_pools))
    families += [
        _method(area, f"{name}.forward", lambda ctx: (make_layer(ctx), {"x": _np_float(ctx, x_shape(ctx))}),
                lambda layer, x: layer.forward(x), {"x": x_pool}),
        _method(area, f"{name}.backward", after_forward, lambda layer, dout: layer.backward(dout),
                {"dout": dout_pool()}),
        empty_family(area, name, lambda ctx: {"x": np.zeros((0,) + tuple(x_shape(ctx)[1:]))},
                     lambda kw: empty_layer_problem(lambda: make_layer(Context()), kw["x"], grads)),
    ]
    return families


def _dropout_used(**kwargs):
    """A Dropout layer, made and used once: it draws from its rng only in forward."""
    import minilib as ml
    layer = ml.Dropout(**kwargs)
    layer.forward(np.ones((2, 3)))
    return layer


def _x4(c):
    return lambda ctx: (ctx.n, c, ctx.h, ctx.w)


def layers_families():
    import minilib as ml
    area = "layers"
    conv = dict(in_channels=3, out_channels=2, kernel_size=3, stride=1, padding=0, bias=True, dilation=1)
    families = []
    families += numpy_layer_families(
        area, "Conv2d", lambda ctx: ml.Conv2d(3, 2, 3, rng=ctx.rng()),
        (ml.Conv2d, lambda ctx: {**conv, "rng": ctx.rng()}),
        {"in_channels": count_pool(), "out_channels": count_pool(), "kernel_size": pair_pool(),
         "stride": pair_pool(huge=False), "padding": pair_pool(huge=False, zero_ok=True),
         "dilation": pair_pool(huge=False), "bias": FLAG_POOL, "rng": RNG_POOL + RNG_ACCEPT},
        _x4(3), x_pool=array_pool(channels=3, small=3))
    families += numpy_layer_families(
        area, "Linear", lambda ctx: ml.Linear(4, 3, rng=ctx.rng()),
        (ml.Linear, lambda ctx: dict(in_features=4, out_features=3, bias=True, rng=ctx.rng())),
        {"in_features": count_pool(), "out_features": count_pool(), "bias": FLAG_POOL,
         "rng": RNG_POOL + RNG_ACCEPT},
        lambda ctx: (ctx.n, 4), x_pool=array_pool() + (
            Bad("5 features", lambda ctx, like: np.zeros((like.shape[0], 5))),
            Bad("3 features", lambda ctx, like: np.zeros((like.shape[0], 3)))))
    for pool_name, cls in (("MaxPool2d", ml.MaxPool2d), ("AvgPool2d", ml.AvgPool2d)):
        families += numpy_layer_families(
            area, pool_name, lambda ctx, cls=cls: cls(2),
            (cls, lambda ctx: dict(kernel_size=2, stride=None, padding=0)),
            {"kernel_size": pair_pool(huge=False), "stride": pair_pool(huge=False, none_ok=True),
             "padding": pair_pool(huge=False, zero_ok=True)},
            _x4(3), x_pool=array_pool(small=2))
    families += numpy_layer_families(
        area, "BatchNorm2d", lambda ctx: ml.BatchNorm2d(3),
        (ml.BatchNorm2d, lambda ctx: dict(num_features=3, eps=1e-5, momentum=0.1)),
        {"num_features": count_pool(), "eps": EPS_POOL, "momentum": BN_MOMENTUM_POOL},
        _x4(3), x_pool=array_pool(channels=3))
    families += numpy_layer_families(
        area, "BatchNorm2d(eval)", lambda ctx: ml.BatchNorm2d(3).eval(), None, None, _x4(3),
        x_pool=array_pool(channels=3))
    families += numpy_layer_families(
        area, "Dropout", lambda ctx: ml.Dropout(0.5, rng=ctx.rng()),
        (_dropout_used, lambda ctx: dict(p=0.5, rng=ctx.rng())),
        {"p": PROBABILITY_POOL, "rng": RNG_POOL + RNG_ACCEPT}, _x4(3), x_pool=array_pool(rank=False))
    families += numpy_layer_families(area, "ReLU", lambda ctx: ml.ReLU(), None, None, _x4(3),
                                     x_pool=array_pool(rank=False))
    families += numpy_layer_families(
        area, "Flatten", lambda ctx: ml.Flatten(), None, None, _x4(3),
        x_pool=array_pool(rank=False) + (Bad("1-D", lambda ctx, like: like.reshape(-1)),))
    families += numpy_layer_families(
        area, "Sequential", lambda ctx: ml.Sequential(ml.Conv2d(3, 2, 3, rng=ctx.rng()), ml.ReLU(), ml.Flatten()),
        None, None, _x4(3), x_pool=array_pool(channels=3, small=3))
    families.append(Family(area, "Sequential", lambda ctx: {"layers": (ml.ReLU(),)},
                           lambda kw: ml.Sequential(*kw["layers"]),
                           {"layers": (const("None", (None,), ("layer",)), const("str 'relu'", ("relu",), ("layer",)),
                                       const("a class, not a layer", (ml.ReLU,), ("layer",)),
                                       Bad("a torch module", lambda ctx, like: (_torch().nn.ReLU(),), ("layer",)),
                                       Bad("a function", lambda ctx, like: (np.tanh,), ("layer",)))}))
    families.append(_method(
        area, "Linear.load_state_dict", lambda ctx: (ml.Linear(4, 3, rng=ctx.rng()),
                                                     {"state": ml.Linear(4, 3, rng=ctx.rng()).state_dict()}),
        lambda layer, state: layer.load_state_dict(state),
        {"state": (const("None", None), const("str 'x'", "x"),
                   Bad("weight transposed", lambda ctx, like: {**like, "weight": like["weight"].T.copy()},
                       names=("weight",)),
                   Bad("list weight", lambda ctx, like: {**like, "weight": like["weight"].tolist()},
                       names=("weight",)))}))
    return families


def _conv_args(ctx, c=3, f=2, k=3):
    rng = ctx.rng()
    return {"x": rng.standard_normal((ctx.n, c, ctx.h, ctx.w)), "w": rng.standard_normal((f, c, k, k)),
            "b": rng.standard_normal(f), "stride": 1, "padding": 0, "dilation": 1}


def _geometry_pools(huge_padding=True):
    """stride, padding, dilation of a forward call (a huge padding would make a terabyte output)."""
    return {"stride": pair_pool(huge=False), "padding": pair_pool(huge=huge_padding, zero_ok=True),
            "dilation": pair_pool(huge=False)}


def conv_function_families(area, forward_api, forward, backward_api, backward):
    """A convolution function (x, w, b, stride, padding, dilation) and its backward(dout, cache)."""
    families = [
        _function(area, forward_api, forward, _conv_args,
                  {"x": array_pool(channels=3, small=3), "w": weight_pool(channels=3), "b": bias_pool(2),
                   **_geometry_pools()}),
        _backward(area, backward_api, forward, backward, _conv_args),
        empty_family(area, forward_api, lambda ctx: {**_conv_args(ctx), "x": np.zeros((0, 3, ctx.h, ctx.w))},
                     lambda kw: empty_function_problem(forward, backward, kw.pop("x"), **kw)),
    ]
    return families


def conv_families():
    from minilib import conv
    return (conv_function_families("conv", "conv2d_forward", conv.conv2d_forward, "conv2d_backward",
                                   conv.conv2d_backward)
            + conv_function_families("conv", "conv2d_forward_naive", conv.conv2d_forward_naive,
                                     "conv2d_backward_naive", conv.conv2d_backward_naive))


def fastconv_families():
    from minilib import fastconv
    return conv_function_families("fastconv", "conv2d_forward_fast", fastconv.conv2d_forward_fast,
                                  "conv2d_backward_fast", fastconv.conv2d_backward_fast)


def _im2col_args(ctx):
    return {"x": ctx.rng().standard_normal((ctx.n, 3, ctx.h, ctx.w)), "kernel_size": 3, "stride": 1, "padding": 0,
            "dilation": 1}


def _col2im_args(ctx):
    cols = ctx.rng().standard_normal((27, ctx.n * (ctx.h - 2) * (ctx.w - 2)))
    return {"cols": cols, "x_shape": (ctx.n, 3, ctx.h, ctx.w), "kernel_size": 3, "stride": 1, "padding": 0,
            "dilation": 1}


X_SHAPE_POOL = (const("three sizes (2, 3, 5)", (2, 3, 5)), const("five sizes", (2, 3, 5, 5, 1)),
                Bad("a float size", lambda ctx, like: like[:3] + (float(like[3]),)),
                Bad("a negative size", lambda ctx, like: (-like[0],) + like[1:]),
                Bad("a str size", lambda ctx, like: like[:3] + (str(like[3]),)),
                Bad("a bool size", lambda ctx, like: (True,) + like[1:]),
                const("str 'abc'", "abc"), const("None", None),
                Bad("4 channels (cols has 3)", lambda ctx, like: like[:1] + (4,) + like[2:], names=("cols",)),
                Bad("huge 2**40 image", lambda ctx, like: like[:2] + (HUGE, HUGE)))


def im2col_families():
    import importlib
    m = importlib.import_module("minilib.im2col")       # minilib.im2col, the attribute, is the function
    area = "im2col"
    families = []
    for name, function in (("im2col", m.im2col), ("im2col_naive", m.im2col_naive)):
        families.append(_function(area, name, function, _im2col_args,
                                  {"x": array_pool(small=3), "kernel_size": pair_pool(), **_geometry_pools()}))
        families.append(empty_family(
            area, name, lambda ctx: {**_im2col_args(ctx), "x": np.zeros((0, 3, ctx.h, ctx.w))},
            lambda kw, function=function: _shape_problem("cols", function(**kw), (27, 0))))
    for name, function in (("col2im", m.col2im), ("col2im_naive", m.col2im_naive)):
        families.append(_function(area, name, function, _col2im_args,
                                  {"cols": array_pool(channels=None) + (
                                      Bad("one column fewer", lambda ctx, like: like[:, :-1]),),
                                   "x_shape": X_SHAPE_POOL, "kernel_size": pair_pool(),
                                   **_geometry_pools(huge_padding=False)}))
        families.append(empty_family(
            area, name, lambda ctx: {**_col2im_args(ctx), "cols": np.zeros((27, 0)), "x_shape": (0, 3, ctx.h, ctx.w)},
            lambda kw, function=function: _shape_problem("x", function(**kw), kw["x_shape"]), "cols"))
    families.append(_function(area, "conv_output_size", m.conv_output_size,
                              lambda ctx: {"size": ctx.h, "kernel": 3, "stride": 1, "padding": 0, "dilation": 1},
                              {"size": count_pool(huge=False), "kernel": count_pool(huge=False) + (
                                  const("larger than the input", 9, names=("size",)),),
                               "stride": count_pool(huge=False), "padding": count_pool(huge=False, zero_ok=True),
                               "dilation": count_pool(huge=False)}))
    return families


def pooling_families():
    from minilib import pooling
    area = "pooling"
    families = []
    for name, forward, backward in (("maxpool2d", pooling.maxpool2d_forward, pooling.maxpool2d_backward),
                                    ("avgpool2d", pooling.avgpool2d_forward, pooling.avgpool2d_backward)):
        def valid(ctx):
            return {"x": ctx.rng().standard_normal((ctx.n, 3, ctx.h, ctx.w)), "kernel_size": 2, "stride": None,
                    "padding": 0}

        families += [
            _function(area, f"{name}_forward", forward, valid,
                      {"x": array_pool(small=2), "kernel_size": pair_pool(),
                       "stride": pair_pool(huge=False, none_ok=True),
                       "padding": pair_pool(huge=True, zero_ok=True, extra=(
                           const("more than half the kernel", 2),))}),
            _backward(area, f"{name}_backward", forward, backward, valid),
            empty_family(area, f"{name}_forward", lambda ctx, valid=valid: {**valid(ctx), "x": np.zeros((0, 3, 6, 6))},
                         lambda kw, f=forward, b=backward: empty_function_problem(f, b, kw.pop("x"), **kw)),
        ]
    return families


def functional_families():
    from minilib import functional as F
    area = "functional"

    def linear(ctx):
        rng = ctx.rng()
        return {"x": rng.standard_normal((ctx.n, 4)), "w": rng.standard_normal((3, 4)), "b": rng.standard_normal(3)}

    def batchnorm(ctx):
        return {"x": ctx.rng().standard_normal((ctx.n, 3, ctx.h, ctx.w)), "gamma": np.ones(3), "beta": np.zeros(3),
                "running_mean": np.zeros(3), "running_var": np.ones(3), "training": True, "momentum": 0.1,
                "eps": 1e-5}

    def dropout(ctx):
        return {"x": ctx.rng().standard_normal((ctx.n, 3, ctx.h, ctx.w)), "p": 0.5, "training": True,
                "rng": ctx.rng()}

    def relu(ctx):
        return {"x": ctx.rng().standard_normal((ctx.n, 3, ctx.h, ctx.w))}

    channel_vector = (Bad("length 4", lambda ctx, like: np.ones(4), ("num_features",)),
                      Bad("2-D", lambda ctx, like: like[None], ("num_features",)),
                      Bad("int64", lambda ctx, like: like.astype(np.int64)),
                      Bad("list", lambda ctx, like: like.tolist()), const("None", None))
    families = [
        _function(area, "linear_forward", F.linear_forward, linear,
                  {"x": array_pool() + (Bad("5 features", lambda ctx, like: np.zeros((like.shape[0], 5))),),
                   "w": weight_pool(), "b": bias_pool(3)}),
        _backward(area, "linear_backward", F.linear_forward, F.linear_backward, linear),
        _function(area, "relu_forward", F.relu_forward, relu, {"x": array_pool(rank=False)}),
        _backward(area, "relu_backward", F.relu_forward, F.relu_backward, relu),
        _function(area, "batchnorm2d_forward", F.batchnorm2d_forward, batchnorm,
                  {"x": array_pool(channels=3), "gamma": channel_vector, "beta": channel_vector,
                   "running_mean": channel_vector, "running_var": channel_vector, "training": FLAG_POOL,
                   "momentum": BN_MOMENTUM_POOL, "eps": EPS_POOL}),
        _backward(area, "batchnorm2d_backward", F.batchnorm2d_forward, F.batchnorm2d_backward, batchnorm),
        _function(area, "dropout_forward", F.dropout_forward, dropout,
                  {"x": array_pool(rank=False), "p": PROBABILITY_POOL, "training": FLAG_POOL, "rng": RNG_POOL}),
        _backward(area, "dropout_backward", F.dropout_forward, F.dropout_backward, dropout),
    ]
    for name, forward, backward, valid in (("linear_forward", F.linear_forward, F.linear_backward, linear),
                                           ("relu_forward", F.relu_forward, F.relu_backward, relu),
                                           ("batchnorm2d_forward", F.batchnorm2d_forward, F.batchnorm2d_backward,
                                            batchnorm),
                                           ("dropout_forward", F.dropout_forward, F.dropout_backward, dropout)):
        families.append(empty_family(
            area, name, lambda ctx, valid=valid: {**valid(ctx), "x": valid(ctx)["x"][:0]},
            lambda kw, f=forward, b=backward: empty_function_problem(f, b, kw.pop("x"), **kw)))
    return families


DELTA_POOL = count_pool(huge=False, zero_ok=True, extra=(const("as large as in_channels", 4),))


def versatile_ctor():
    """Valid constructor arguments of a versatile layer (NumPy or twin) and their bad values."""
    valid = dict(in_channels=4, out_channels=8, kernel_size=3, stride=1, padding=0, bias=True, delta=0, g=1,
                 shared_bias=False, combine="concat", channel_mode="paper")
    pools = {"in_channels": count_pool(), "out_channels": count_pool(extra=(const("not divisible by s*n", 7),)),
             "kernel_size": pair_pool(extra=(const("not square (3, 5)", (3, 5)),)),
             "stride": pair_pool(huge=False), "padding": pair_pool(huge=False, zero_ok=True),
             "bias": FLAG_POOL, "shared_bias": FLAG_POOL, "delta": DELTA_POOL, "g": count_pool(huge=False),
             "combine": choice_pool(), "channel_mode": choice_pool(), "rng": RNG_POOL + RNG_ACCEPT}
    return valid, pools


def versatile_families():
    from minilib import versatile as v
    area = "versatile"
    ctor, ctor_pools = versatile_ctor()
    families = numpy_layer_families(
        area, "VersatileConv2d", lambda ctx: v.VersatileConv2d(4, 8, 3, rng=ctx.rng()),
        (v.VersatileConv2d, lambda ctx: {**ctor, "rng": ctx.rng()}), ctor_pools, _x4(4),
        x_pool=array_pool(channels=4, small=3))

    def args(ctx):
        rng = ctx.rng()
        return {"x": rng.standard_normal((ctx.n, 4, ctx.h, ctx.w)), "weight": rng.standard_normal((4, 4, 3, 3)),
                "bias": rng.standard_normal(8), "stride": 1, "padding": 0, "delta": 0, "g": 1, "combine": "concat",
                "channel_mode": "paper"}

    pools = {"x": array_pool(channels=4, small=3), "weight": weight_pool(channels=4), "bias": bias_pool(8),
             "stride": pair_pool(huge=False), "padding": pair_pool(zero_ok=True), "delta": DELTA_POOL,
             "g": count_pool(huge=False), "combine": choice_pool(), "channel_mode": choice_pool()}
    families += _forward_backward(area, ((v.versatile_conv2d_forward, v.versatile_conv2d_backward),
                                         (v.versatile_conv2d_forward_reference, v.versatile_conv2d_backward_reference)),
                                  args, pools, channels=4)
    return families


def basis_ctor(twin: bool):
    """Valid constructor arguments of a basis layer (NumPy or, ``twin``, torch) and their bad values."""
    valid = dict(in_channels=4, out_channels=4, kernel_size=3, n_basis=2, basis_channels=2, stride=1, padding=0,
                 bias=True, basis=None)

    def shared(*args):
        from minilib import basis
        return (_twins() if twin else basis).SharedBasis(*args)

    def other_side():
        from minilib import basis
        return basis.SharedBasis(2, 2, 3) if twin else _twins().SharedBasis(2, 2, 3)

    pools = {"in_channels": count_pool(extra=(const("not divisible by basis_channels", 3),)),
             "out_channels": count_pool(), "kernel_size": pair_pool(), "n_basis": count_pool(),
             "basis_channels": count_pool(extra=(const("not dividing in_channels", 3),)),
             "stride": pair_pool(huge=False), "padding": pair_pool(huge=False, zero_ok=True),
             "bias": FLAG_POOL, "rng": RNG_POOL + RNG_ACCEPT,
             "basis": (const("str 'shared'", "shared"), Bad("an array", lambda ctx, like: np.ones((2, 2, 3, 3))),
                       Bad("a SharedBasis of 5x5 filters", lambda ctx, like: shared(2, 2, 5), names=("kernel_size",)),
                       Bad("a SharedBasis of 1 channel", lambda ctx, like: shared(2, 1, 3),
                           names=("basis_channels",)),
                       Bad("the other backend's SharedBasis", lambda ctx, like: other_side()))}
    return valid, pools


def _twins():
    import minilib.torch as twins
    return twins


def basis_families():
    from minilib import basis as bm
    area = "basis"
    ctor, ctor_pools = basis_ctor(twin=False)
    families = numpy_layer_families(
        area, "BasisConv2d", lambda ctx: bm.BasisConv2d(4, 4, 3, 2, 2, rng=ctx.rng()),
        (bm.BasisConv2d, lambda ctx: {**ctor, "rng": ctx.rng()}), ctor_pools, _x4(4),
        x_pool=array_pool(channels=4, small=3))
    families.append(_ctor(area, "SharedBasis", bm.SharedBasis,
                          lambda ctx: dict(n_basis=2, basis_channels=2, kernel_size=3, rng=ctx.rng()),
                          {"n_basis": count_pool(), "basis_channels": count_pool(), "kernel_size": pair_pool(),
                           "rng": RNG_POOL + RNG_ACCEPT}))

    def args(ctx):
        rng = ctx.rng()
        return {"x": rng.standard_normal((ctx.n, 4, ctx.h, ctx.w)), "basis": rng.standard_normal((2, 2, 3, 3)),
                "coeff": rng.standard_normal((4, 4)), "bias": rng.standard_normal(4), "stride": 1, "padding": 0}

    pools = {"x": array_pool(channels=4, small=3), "basis": weight_pool(channels=2) + (
                 Bad("3 channels (does not divide 4)", lambda ctx, like: np.ones((2, 3, 3, 3)), names=("x",)),),
             "coeff": weight_pool() + (Bad("one column fewer", lambda ctx, like: like[:, :-1]),),
             "bias": bias_pool(4), "stride": pair_pool(huge=False), "padding": pair_pool(zero_ok=True)}
    families += _forward_backward(area, ((bm.basis_conv2d_forward, bm.basis_conv2d_backward),
                                         (bm.basis_conv2d_forward_reference, bm.basis_conv2d_backward_reference)),
                                  args, pools, channels=4)
    families.append(_function(area, "from_conv", bm.from_conv,
                              lambda ctx: {"weight": ctx.rng().standard_normal((4, 4, 3, 3)), "n_basis": 2,
                                           "basis_channels": 2},
                              {"weight": weight_pool(), "n_basis": count_pool(extra=(const("above p*k*k", 19),)),
                               "basis_channels": count_pool(extra=(const("not dividing in_channels", 3),))}))
    return families


def fullstack_ctor():
    """Valid constructor arguments of a full-stack layer (NumPy or twin) and their bad values."""
    valid = dict(in_channels=3, out_channels=4, kernel_size=3, s=2, stride=1, padding=0, bias=True, masks="shared",
                 learn_masks=True, n_filters=None)
    pools = {"in_channels": count_pool(), "out_channels": count_pool(extra=(const("not divisible by s", 5),)),
             "kernel_size": pair_pool(), "s": count_pool(), "stride": pair_pool(huge=False),
             "padding": pair_pool(huge=False, zero_ok=True), "bias": FLAG_POOL, "masks": choice_pool(),
             "learn_masks": FLAG_POOL, "rng": RNG_POOL + RNG_ACCEPT,
             "n_filters": count_pool(none_ok=True, extra=(const("too few (1*2 < 4)", 1),
                                                          const("more than out_channels", 5)))}
    return valid, pools


def fullstack_families():
    from minilib import fullstack as fs
    area = "fullstack"
    ctor, ctor_pools = fullstack_ctor()
    families = numpy_layer_families(
        area, "FullStackConv2d", lambda ctx: fs.FullStackConv2d(3, 4, 3, 2, rng=ctx.rng()),
        (fs.FullStackConv2d, lambda ctx: {**ctor, "rng": ctx.rng()}), ctor_pools, _x4(3),
        x_pool=array_pool(channels=3, small=3))

    def args(ctx):
        rng = ctx.rng()
        return {"x": rng.standard_normal((ctx.n, 3, ctx.h, ctx.w)), "filters": rng.standard_normal((2, 3, 3, 3)),
                "mask_latent": rng.uniform(-1, 1, (2, 3, 3, 3)), "bias": rng.standard_normal(4), "stride": 1,
                "padding": 0, "out_channels": 4, "masks": "shared"}

    pools = {"x": array_pool(channels=3, small=3), "filters": weight_pool(channels=3),
             "mask_latent": weight_pool(channels=3), "bias": bias_pool(4), "stride": pair_pool(huge=False),
             "padding": pair_pool(zero_ok=True), "out_channels": count_pool(none_ok=True), "masks": choice_pool()}
    families += _forward_backward(area, ((fs.fullstack_conv2d_forward, fs.fullstack_conv2d_backward),
                                         (fs.fullstack_conv2d_forward_dense, fs.fullstack_conv2d_backward_dense),
                                         (fs.fullstack_conv2d_forward_naive, None)),
                                  args, pools, channels=3, backward_extra={"mask_grad": (True, FLAG_POOL)})
    families.append(_function(area, "ortho_loss", fs.ortho_loss,
                              lambda ctx: {"mask_latent": ctx.rng().uniform(-1, 1, (2, 3, 3, 3)), "n_filters": None},
                              {"mask_latent": weight_pool(), "n_filters": count_pool(none_ok=True, extra=(
                                  const("not dividing the masks", 3, names=("mask_latent",)),))}))
    return families


def _transposed(ctx, like):
    """``like`` (N, K) transposed; for a square one (N = K = 3) one row is dropped first, since the transpose of a
    square target has the right shape and is no bad input."""
    return (like if like.shape[0] != like.shape[1] else like[:-1]).T.copy()


def losses_families():
    from minilib import losses
    area = "losses"

    def ce(ctx):
        rng = ctx.rng()
        return {"logits": rng.standard_normal((ctx.n, 3)), "labels": rng.integers(0, 3, ctx.n)}

    def regression(ctx):
        rng = ctx.rng()
        return {"pred": rng.standard_normal((ctx.n, 3)), "target": rng.standard_normal((ctx.n, 3))}

    labels = (Bad("float labels", lambda ctx, like: like.astype(float)), Bad("label 3 of 3 classes", lambda ctx, like:
              np.full_like(like, 3)), Bad("label -1", lambda ctx, like: np.full_like(like, -1)),
              Bad("one label more", lambda ctx, like: np.append(like, 0)), Bad("2-D", lambda ctx, like: like[:, None]),
              Bad("list", lambda ctx, like: like.tolist()), const("None", None),
              Bad("bool", lambda ctx, like: like > 0),
              Bad("torch tensor", lambda ctx, like: _torch().from_numpy(like.copy())))
    target = array_pool(rank=False) + (Bad("other shape", lambda ctx, like: np.zeros(like.shape[:1] + (4,)),
                                           names=("pred",)),
                                       Bad("transposed", _transposed, names=("pred",)))
    families = [
        _function(area, "softmax_cross_entropy", losses.softmax_cross_entropy, ce,
                  {"logits": array_pool() + (Bad("N=0 (labels N>0)", lambda ctx, like: like[:0], names=("labels",)),),
                   "labels": labels}),
        _function(area, "softmax_cross_entropy", losses.softmax_cross_entropy,
                  lambda ctx: {"logits": np.zeros((0, 3)), "labels": np.zeros(0, dtype=np.int64)},
                  {"logits": (same("N=0 (loss over nothing)", names=("labels",)),)}, "softmax_cross_entropy [N=0]"),
    ]
    for name, function in (("mse", losses.mse), ("l1", losses.l1)):
        families += [
            _function(area, name, function, regression,
                      {"pred": array_pool(rank=False) + (Bad("other shape", lambda ctx, like: np.zeros(
                          like.shape[:1] + (4,)), names=("target",)),), "target": target}),
            _function(area, name, function, lambda ctx: {"pred": np.zeros((0, 3)), "target": np.zeros((0, 3))},
                      {"pred": (same("N=0 (loss over nothing)", names=("target",)),)}, f"{name} [N=0]"),
        ]
    return families


def _numpy_model(ctx):
    """A small NumPy model with gradients, so that an optimiser's step changes it."""
    import minilib as ml
    model = ml.Sequential(ml.Linear(4, 3, rng=ctx.rng()))
    out = model.forward(ctx.rng().standard_normal((2, 4)))
    model.backward(np.ones_like(out))
    return model


def _step(optimizer):
    """Construct, then one step: an accepted bad hyperparameter shows up as NaN/inf weights."""
    optimizer.step()
    return optimizer.model.state_dict()


def optim_families():
    import minilib as ml
    area = "optim"
    model_pool = (const("None", None), const("str 'model'", "model"),
                  Bad("a list of arrays", lambda ctx, like: [np.ones(3)]),
                  Bad("a torch module", lambda ctx, like: _torch().nn.Linear(4, 3)))

    def schedule_step(schedule):
        schedule.step()
        return schedule.optimizer.lr

    optimizer_pool = (const("None", None), const("str 'sgd'", "sgd"),
                      Bad("a model", lambda ctx, like: _numpy_model(ctx)),
                      Bad("a torch optimizer", lambda ctx, like: _torch().optim.SGD(
                          _torch().nn.Linear(4, 3).parameters(), lr=0.1)))
    return [
        Family(area, "SGD", lambda ctx: {"model": _numpy_model(ctx), "lr": 0.1, "momentum": 0.9, "nesterov": False,
                                         "weight_decay": 1e-4},
               lambda kw: _step(ml.SGD(**kw)),
               {"model": model_pool, "lr": LR_POOL, "momentum": MOMENTUM_POOL, "nesterov": FLAG_POOL,
                "weight_decay": DECAY_POOL}),
        Family(area, "Adam", lambda ctx: {"model": _numpy_model(ctx), "lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8,
                                          "weight_decay": 0.0},
               lambda kw: _step(ml.Adam(**kw)),
               {"model": model_pool, "lr": LR_POOL, "betas": BETAS_POOL, "eps": EPS_POOL, "weight_decay": DECAY_POOL}),
        Family(area, "StepLR", lambda ctx: {"optimizer": ml.SGD(_numpy_model(ctx), lr=0.1), "step_size": 1,
                                            "gamma": 0.5},
               lambda kw: schedule_step(ml.StepLR(**kw)),
               {"optimizer": optimizer_pool, "step_size": count_pool(huge=False), "gamma": GAMMA_POOL}),
        Family(area, "CosineLR", lambda ctx: {"optimizer": ml.SGD(_numpy_model(ctx), lr=0.1), "epochs": 3},
               lambda kw: schedule_step(ml.CosineLR(**kw)),
               {"optimizer": optimizer_pool, "epochs": count_pool(huge=False)}),
    ]


TWIN_DTYPE_POOL = tuple(Bad(f"torch.{name}", lambda ctx, like, name=name: getattr(_torch(), name))
                        for name in ("int64", "bool", "complex64", "float16"))


def twin_families():
    area = "torch"
    families = []
    specs = (("VersatileConv2d", versatile_ctor(), 4, lambda t, rng=None: t.VersatileConv2d(
                 4, 8, 3, rng=rng, dtype=_torch().float64)),
             ("BasisConv2d", basis_ctor(twin=True), 4, lambda t, rng=None: t.BasisConv2d(
                 4, 4, 3, 2, 2, rng=rng, dtype=_torch().float64)),
             ("FullStackConv2d", fullstack_ctor(), 3, lambda t, rng=None: t.FullStackConv2d(
                 3, 4, 3, 2, rng=rng, dtype=_torch().float64)))
    for name, (valid, pools), channels, make in specs:
        api = f"torch.{name}"
        cls_name = name
        families += [
            _ctor(area, api, lambda cls_name=cls_name, **kw: getattr(_twins(), cls_name)(**kw),
                  lambda ctx, valid=valid: {**valid, "rng": ctx.rng(), "dtype": _torch().float64},
                  {**pools, "dtype": TWIN_DTYPE_POOL}),
            _method(area, f"{api}.forward",
                    lambda ctx, make=make, channels=channels: (
                        make(_twins(), ctx.rng()),
                        {"x": _torch().from_numpy(ctx.rng().standard_normal((ctx.n, channels, ctx.h, ctx.w)))}),
                    lambda twin, x: twin(x), {"x": array_pool(channels=channels, small=3, kind="torch")}),
            empty_family(area, api, lambda ctx, channels=channels: {
                             "x": _torch().zeros((0, channels, ctx.h, ctx.w), dtype=_torch().float64)},
                         lambda kw, make=make: empty_twin_problem(lambda: make(_twins(), np.random.default_rng(0)),
                                                                  kw["x"])),
        ]
    families.append(_ctor(area, "torch.SharedBasis", lambda **kw: _twins().SharedBasis(**kw),
                          lambda ctx: dict(n_basis=2, basis_channels=2, kernel_size=3, rng=ctx.rng()),
                          {"n_basis": count_pool(), "basis_channels": count_pool(), "kernel_size": pair_pool(),
                           "rng": RNG_POOL + RNG_ACCEPT, "dtype": TWIN_DTYPE_POOL}))
    families.append(_function(area, "torch.ortho_loss", lambda **kw: _twins().ortho_loss(**kw),
                              lambda ctx: {"mask_latent": _torch().from_numpy(ctx.rng().uniform(-1, 1, (2, 3, 3, 3))),
                                           "n_filters": None},
                              {"mask_latent": array_pool(kind="torch", layer=False),
                               "n_filters": count_pool(none_ok=True, extra=(
                                   const("not dividing the masks", 3, names=("mask_latent",)),))}))
    families.append(_function(area, "torch.ortho_penalty", lambda **kw: _twins().ortho_penalty(**kw),
                              lambda ctx: {"model": _twins().FullStackConv2d(3, 4, 3, 2, rng=ctx.rng()), "lam": 0.1,
                                           "released": False},
                              {"model": (const("None", None), const("str 'model'", "model"),
                                         Bad("a NumPy model", lambda ctx, like: _numpy_model(ctx))),
                               "lam": number_pool(), "released": FLAG_POOL}))
    return families


def _torch_model(ctx=None):
    torch = _torch()
    return torch.nn.Sequential(torch.nn.Conv2d(4, 8, 3, dtype=torch.float64), torch.nn.ReLU(),
                               torch.nn.Conv2d(8, 8, 3, dtype=torch.float64))


def convert_families():
    area = "convert"

    def convert(**kw):
        return _twins().convert(**kw)

    def valid(ctx, method="versatile", **kw):
        return {"module": _torch_model(), "method": method, "exclude": (), "rng": ctx.rng(), "per_layer": None, **kw}

    families = [
        _function(area, "convert", convert, valid, {
            "module": (const("None", None), const("str 'model'", "model"), const("int 3", 3),
                       Bad("a NumPy model", lambda ctx, like: _numpy_model(ctx)),
                       Bad("a list of layers", lambda ctx, like: [_torch().nn.Conv2d(4, 8, 3)])),
            "method": choice_pool(const("'baseline'", "baseline"), const("'Versatile'", "Versatile")),
            # exclude="0" is ONE layer name, a documented form (convert's docstring): "02" names no layer, where
            # splitting a string into its letters would find layers "0" and "2" and pass silently
            "exclude": (const("str '02' (one name, not its letters)", "02"), const("int 3", 3),
                        const("unknown name", ("9",)),
                        const("a non-str name", (0,))),
            "rng": RNG_POOL + RNG_ACCEPT,
            "per_layer": (const("str 'x'", "x"), const("int 3", 3), const("a dict", {"delta": 0}))}),
        _function(area, "convert(versatile)", convert,
                  lambda ctx: valid(ctx, delta=0, g=1, shared_bias=False, combine="concat"),
                  {"delta": DELTA_POOL, "g": count_pool(huge=False), "shared_bias": FLAG_POOL,
                   "combine": choice_pool()}),
        _function(area, "convert(basis)", convert, lambda ctx: valid(ctx, "basis", n_basis=2, basis_channels=2),
                  {"n_basis": count_pool(), "basis_channels": count_pool(extra=(const("not dividing 4", 3),))}),
        _function(area, "convert(fullstack)", convert, lambda ctx: valid(ctx, "fullstack", s=2),
                  {"s": count_pool(extra=(const("not dividing 8", 3),)), "masks": choice_pool(),
                   "learn_masks": FLAG_POOL}),
    ]
    return families


DROP_AT_POOL = (const("zero denominator (2, 0)", (2, 0)), const("negative (-1, 3)", (-1, 3)),
                const("one number (1,)", (1,)), const("str '2/3'", "2/3"),
                const("float (1.5, 3)", (1.5, 3)), const("None", None), const("bools", (True, True)))


def training_families():
    area = "training"

    def recipe(**kw):
        from minilib.training import Recipe
        return Recipe(**kw)

    def torch_evaluate(**kw):
        from minilib.training.loop import evaluate
        return evaluate(**kw)

    def torch_valid(ctx):
        torch, rng = _torch(), ctx.rng()
        model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3, dtype=torch.float64))
        return {"model": model, "x": rng.standard_normal((ctx.n, 3, 2, 2)), "y": rng.integers(0, 3, ctx.n),
                "batch_size": 2}

    def numpy_evaluate(**kw):
        from minilib.train import evaluate
        return evaluate(**kw)

    def numpy_valid(ctx):
        import minilib as ml
        rng = ctx.rng()
        return {"model": ml.Sequential(ml.Flatten(), ml.Linear(12, 3, rng=rng)), "loss_fn": ml.softmax_cross_entropy,
                "x": rng.standard_normal((ctx.n, 3, 2, 2)), "y": rng.integers(0, 3, ctx.n), "batch_size": 2}

    data_pools = {"x": (Bad("N=0 (nothing to evaluate)", lambda ctx, like: like[:0], names=("y",)),
                        Bad("int64", lambda ctx, like: like.astype(np.int64)),
                        Bad("list", lambda ctx, like: like.tolist()),
                        Bad("one sample more than y", lambda ctx, like: np.concatenate([like, like[:1]]),
                            names=("y",))),
                  "y": (Bad("float labels", lambda ctx, like: like.astype(float)),
                        Bad("label 3 of 3 classes", lambda ctx, like: np.full_like(like, 3)),
                        Bad("one label fewer", lambda ctx, like: like[:-1], names=("x",)))}
    choices = {name: choice_pool() for name in ("optimizer", "schedule", "schedule_step", "loss", "penalty_scale",
                                                "on_nonfinite")}
    return [
        _function(area, "Recipe", recipe, lambda ctx: {"optimizer": "sgd", "lr": 0.1, "batch_size": 8}, {
            **choices, "lr": LR_POOL, "batch_size": count_pool(huge=False), "momentum": MOMENTUM_POOL,
            "nesterov": FLAG_POOL, "weight_decay": DECAY_POOL, "betas": BETAS_POOL, "eps": EPS_POOL,
            "drop_at": DROP_AT_POOL, "drop_factor": number_pool(), "lam": number_pool(none_ok=True),
            "mask_weight_decay": FLAG_POOL}),
        _function(area, "training.evaluate", torch_evaluate, torch_valid,
                  {**data_pools, "batch_size": count_pool(huge=False)}),
        _function(area, "train.evaluate", numpy_evaluate, numpy_valid,
                  {**data_pools, "batch_size": count_pool(huge=False)}),
    ]


# ----------------------------------------------------------------------------- data: tiny bad IDX files
_SCRATCH: dict = {}


def scratch() -> Path:
    """A temporary folder of this process (a forked child gets its own) for the bad files."""
    if os.getpid() not in _SCRATCH:
        _SCRATCH[os.getpid()] = Path(tempfile.mkdtemp(prefix="minilib-bad-inputs-"))
    return _SCRATCH[os.getpid()]


def remove_scratch() -> None:
    folder = _SCRATCH.pop(os.getpid(), None)
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


def idx(dims, payload=None, *, element=0x08, zero=b"\0\0") -> bytes:
    """An IDX file's bytes: magic (two zero bytes, the element type, the number of dimensions), the sizes, data."""
    header = zero + bytes([element, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)
    return header + (bytes(math.prod(dims)) if payload is None else payload)


BAD_IDX = {      # file name -> bytes on disk (gzip applied here where the name ends in .gz)
    "not-gzip.gz": lambda: b"this is not a gzip stream at all",
    "empty-file.gz": lambda: b"",
    "truncated-gzip.gz": lambda: gzip.compress(idx((100,)))[:30],
    "empty-gzip.gz": lambda: gzip.compress(b""),
    "nonzero-magic.gz": lambda: gzip.compress(idx((10,), zero=b"\1\2")),
    "float-elements.gz": lambda: gzip.compress(idx((10,), element=0x0D)),
    "zero-dimensions.gz": lambda: gzip.compress(idx(())),
    "header-cut-short.gz": lambda: gzip.compress(b"\0\0\x08\x01\0"),
    "declares-more-than-it-holds.gz": lambda: gzip.compress(idx((1000,), bytes(10))),
    "trailing-bytes.gz": lambda: gzip.compress(idx((10,), bytes(20))),
    "declares-2-billion-images.gz": lambda: gzip.compress(idx((2 ** 31 - 1, 28, 28), bytes(100))),
    "zip-bomb-64MiB.gz": lambda: gzip.compress(idx((8,)) + bytes(64 * 2 ** 20), compresslevel=1),
}


def _bad_file(name):
    def make(ctx, like):
        path = scratch() / name
        if not path.exists():
            path.write_bytes(BAD_IDX[name]())
        return path
    return Bad(name, make, names=(name,))


def data_families():
    area = "data"

    def read_idx(**kw):
        from minilib.data.readers import read_idx
        return read_idx(**kw)

    def valid(ctx):
        path = scratch() / f"labels-{ctx.n}.gz"
        if not path.exists():
            path.write_bytes(gzip.compress(idx((ctx.n,))))
        return {"path": path, "expected_sha256": None, "expected_magic": None}

    return [_function(area, "read_idx", read_idx, valid, {
        "path": tuple(_bad_file(name) for name in BAD_IDX) + (const("None", None), const("int 3", 3)),
        "expected_sha256": (const("int 123", 123), const("str 'xyz'", "xyz"), const("a list", ("a",)),
                            const("bytes", b"\0" * 32)),
        "expected_magic": (const("str '2049'", "2049"), const("float 2049.5", 2049.5), const("negative -1", -1),
                           const("bool True", True))})]


# ----------------------------------------------------------------------------- all of it
FAMILY_MAKERS = {"layers": layers_families, "versatile": versatile_families, "basis": basis_families,
                 "fullstack": fullstack_families, "pooling": pooling_families, "functional": functional_families,
                 "conv": conv_families, "fastconv": fastconv_families, "im2col": im2col_families,
                 "losses": losses_families, "optim": optim_families, "torch": twin_families,
                 "convert": convert_families, "training": training_families, "data": data_families}
_FAMILIES: list = []


def families(areas=None) -> list:
    """Every family (of ``areas`` when given), in area order; their APIs are unique within an area."""
    if not _FAMILIES:
        for area in AREAS:
            _FAMILIES.extend(FAMILY_MAKERS[area]())
        seen = [(family.area, family.api) for family in _FAMILIES]
        duplicates = {key for key in seen if seen.count(key) > 1}
        if duplicates:
            raise AssertionError(f"families named twice: {sorted(duplicates)}")
    return [family for family in _FAMILIES if areas is None or family.area in areas]
