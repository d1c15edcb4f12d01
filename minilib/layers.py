"""Thin layer classes around the pure functions.

A layer holds ``params`` and ``grads`` (dicts with the same keys, named as in the
PyTorch twin so weights copy straight across), ``forward(x)`` keeps in ``cache`` what
``backward(dout)`` needs, and ``backward`` fills ``grads`` and returns ``dx``.

Arguments are checked by :mod:`minilib.checks` (here and in the method layers): ``rng`` is a
``numpy.random.Generator``, an int seed (``default_rng(seed)``) or None (a fresh generator);
flags such as ``bias`` are real bools; inputs are float32 or float64 arrays. A batch of
N = 0 samples gives an empty output and zero weight gradients, as in torch.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from . import checks, functional as F
from .fastconv import conv2d_backward_fast, conv2d_forward_fast
from .pooling import avgpool2d_backward, avgpool2d_forward, maxpool2d_backward, maxpool2d_forward


class Module:
    """Base class: parameters, gradients, buffers, train/eval mode and child modules."""

    def __init__(self):
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.buffers: dict[str, np.ndarray] = {}
        self.training = True
        self.cache = None   # what the last forward kept for backward (None before the first)

    def forward(self, x):
        raise NotImplementedError

    def backward(self, dout):
        raise NotImplementedError

    def __call__(self, x):
        return self.forward(x)

    def children(self) -> list["Module"]:
        return []

    def named_modules(self, prefix: str = ""):
        """Yield ``(name, module)`` for this module and every descendant (PyTorch naming: "0", "1.conv")."""
        yield prefix, self
        for i, child in enumerate(self.children()):
            yield from child.named_modules(f"{prefix}.{i}" if prefix else str(i))

    def unique_parameters(self):
        """Yield ``(name, module, key)`` once per parameter array (by identity), under its first name.

        Several layers may hold one array (a shared filter basis: the same object in each
        layer's ``params``, as torch registers a shared ``Parameter`` in every module using it);
        optimisers and :meth:`num_parameters` see it once, through this method.
        """
        seen = set()
        for prefix, module in self.named_modules():
            for key, param in module.params.items():
                if id(param) not in seen:
                    seen.add(id(param))
                    yield (f"{prefix}.{key}" if prefix else key), module, key

    def state_dict(self) -> dict[str, np.ndarray]:
        """Parameters and buffers by qualified name, as ``torch.nn.Module.state_dict`` names them
        (an array shared by several layers appears under each of their names, as in torch)."""
        state = {}
        for name, module in self.named_modules():
            for key, value in {**module.params, **module.buffers}.items():
                state[f"{name}.{key}" if name else key] = value
        return state

    def load_state_dict(self, state: dict) -> None:
        """Copy NumPy arrays into the parameters and buffers; keys and shapes must match exactly."""
        if not isinstance(state, Mapping):
            raise TypeError(f"state must be a dict of arrays (a state_dict), got {checks.describe(state)}")
        own = self.state_dict()
        if set(own) != set(state):
            missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
            raise KeyError(f"state keys do not match: missing {missing}, unexpected {unexpected}")
        for key, target in own.items():
            value = state[key]
            if not isinstance(value, np.ndarray):     # as torch's load_state_dict wants tensors: no lists
                raise TypeError(f"state[{key!r}] must be a numpy.ndarray, got {checks.describe(value)}")
            if not (np.issubdtype(value.dtype, np.number) or value.dtype == bool):
                raise TypeError(f"state[{key!r}] must be a numeric array, got dtype {value.dtype}")
            if value.shape != target.shape:
                raise ValueError(f"state[{key!r}] has shape {value.shape}, expected {target.shape}")
            target[...] = value

    def train(self, mode: bool = True) -> "Module":
        mode = checks.flag(mode, "mode")
        for _, module in self.named_modules():
            module.training = mode
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def zero_grad(self) -> None:
        """Set every gradient to zero, in place: layers that share a parameter add into one gradient array."""
        for _, module in self.named_modules():
            for key, param in module.params.items():
                grad = module.grads.get(key)
                if grad is not None and grad.shape == param.shape and grad.dtype == param.dtype:
                    grad.fill(0)
                else:
                    module.grads[key] = np.zeros_like(param)

    def astype(self, dtype) -> "Module":
        """Convert every parameter, gradient and buffer to ``dtype`` in place (e.g. float32 for speed).

        ``dtype`` is float32 or float64, the dtypes the layers compute in. An array held by several
        layers (a shared parameter and its gradient) is converted once, so the layers still share
        one array afterwards.
        """
        dtype = checks.float_dtype(dtype, "dtype")
        converted = {}      # id -> (old, new); holding old keeps its id from being reused meanwhile
        for _, module in self.named_modules():
            for store in (module.params, module.grads, module.buffers):
                for key, value in store.items():
                    if id(value) not in converted:
                        converted[id(value)] = (value, value.astype(dtype))
                    store[key] = converted[id(value)][1]
        return self

    def num_parameters(self) -> int:
        """Number of parameter entries; a shared parameter counts once (as ``torch``'s ``parameters()``)."""
        return sum(module.params[key].size for _, module, key in self.unique_parameters())

    def _init_params(self, params: dict[str, np.ndarray]) -> None:
        self.params = params
        self.grads = {key: np.zeros_like(value) for key, value in params.items()}

    def _require_cache(self):
        if self.cache is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        return self.cache


def uniform_init(rng, bound, shape):
    """float64 array of ``shape`` drawn from U(-bound, bound) with ``rng`` (a ``np.random.Generator``).

    The weights and biases of the NumPy layers (here and in :mod:`minilib.versatile`,
    :mod:`minilib.basis`, :mod:`minilib.fullstack`) start from it, with bound = 1/sqrt(fan_in)
    as PyTorch initialises its conv and linear layers.
    """
    return rng.uniform(-bound, bound, size=shape)


def check_parameters(layer: str, shapes, cause: str, dtype=np.float64) -> None:
    """Refuse a layer whose parameters would not fit in memory, before drawing any of them.

    ``shapes`` are (name, shape) pairs, ``cause`` the constructor arguments behind them
    (``"in_channels=100000, out_channels=100000, kernel_size=(3, 3)"``); ``dtype`` the parameters'
    (float64 for the NumPy layers; the torch twins pass their torch dtype).
    """
    for name, shape in shapes:
        checks.fits_in_memory(shape, dtype, f"{layer}'s parameter {name!r}", cause)


class Conv2d(Module):
    """2-D convolution; params ``weight`` (out_channels, in_channels, kh, kw) and ``bias`` (out_channels,).

    Initialised like ``torch.nn.Conv2d``: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with
    fan_in = in_channels*kh*kw (Kaiming-uniform with a = sqrt(5)).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True, rng=None, dilation=1):
        super().__init__()
        self.in_channels = checks.positive_int(in_channels, "in_channels")
        self.out_channels = checks.positive_int(out_channels, "out_channels")
        self.kernel_size = checks.positive_pair(kernel_size, "kernel_size")
        self.stride = checks.positive_pair(stride, "stride")
        self.padding = checks.non_negative_pair(padding, "padding")
        self.dilation = checks.positive_pair(dilation, "dilation")
        bias = checks.flag(bias, "bias")
        rng = checks.rng(rng)
        check_parameters("Conv2d", [("weight", (out_channels, in_channels, *self.kernel_size))],
                         f"in_channels={in_channels}, out_channels={out_channels}, kernel_size={self.kernel_size}")
        bound = 1.0 / np.sqrt(in_channels * self.kernel_size[0] * self.kernel_size[1])
        params = {"weight": uniform_init(rng, bound, (out_channels, in_channels, *self.kernel_size))}
        if bias:
            params["bias"] = uniform_init(rng, bound, (out_channels,))
        self._init_params(params)

    def forward(self, x):
        out, self.cache = conv2d_forward_fast(x, self.params["weight"], self.params.get("bias"),
                                          self.stride, self.padding, self.dilation)
        return out

    def backward(self, dout):
        dx, self.grads["weight"], db = conv2d_backward_fast(dout, self._require_cache())
        if db is not None:
            self.grads["bias"] = db
        return dx

    def __repr__(self):
        return (f"Conv2d({self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, bias={'bias' in self.params})")


class Linear(Module):
    """y = x W^T + b; params ``weight`` (out_features, in_features) and ``bias`` (out_features,)."""

    def __init__(self, in_features, out_features, bias=True, rng=None):
        super().__init__()
        self.in_features = checks.positive_int(in_features, "in_features")
        self.out_features = checks.positive_int(out_features, "out_features")
        bias = checks.flag(bias, "bias")
        rng = checks.rng(rng)
        check_parameters("Linear", [("weight", (out_features, in_features))],
                         f"in_features={in_features}, out_features={out_features}")
        bound = 1.0 / np.sqrt(in_features)
        params = {"weight": uniform_init(rng, bound, (out_features, in_features))}
        if bias:
            params["bias"] = uniform_init(rng, bound, (out_features,))
        self._init_params(params)

    def forward(self, x):
        out, self.cache = F.linear_forward(x, self.params["weight"], self.params.get("bias"))
        return out

    def backward(self, dout):
        dx, self.grads["weight"], db = F.linear_backward(dout, self._require_cache())
        if db is not None:
            self.grads["bias"] = db
        return dx

    def __repr__(self):
        return f"Linear({self.in_features}, {self.out_features}, bias={'bias' in self.params})"


class ReLU(Module):
    def forward(self, x):
        out, self.cache = F.relu_forward(x)
        return out

    def backward(self, dout):
        return F.relu_backward(dout, self._require_cache())

    def __repr__(self):
        return "ReLU()"


class _Pool2d(Module):
    _forward = _backward = None
    _name = ""

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size = checks.positive_pair(kernel_size, "kernel_size")
        self.stride = self.kernel_size if stride is None else checks.positive_pair(stride, "stride")
        self.padding = checks.non_negative_pair(padding, "padding")

    def forward(self, x):
        out, self.cache = type(self)._forward(x, self.kernel_size, self.stride, self.padding)
        return out

    def backward(self, dout):
        return type(self)._backward(dout, self._require_cache())

    def __repr__(self):
        return f"{self._name}(kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding})"


class MaxPool2d(_Pool2d):
    """Max pooling (``stride`` defaults to ``kernel_size``, as in PyTorch)."""
    _forward, _backward, _name = staticmethod(maxpool2d_forward), staticmethod(maxpool2d_backward), "MaxPool2d"


class AvgPool2d(_Pool2d):
    """Average pooling (padded zeros count in the mean, as in PyTorch's default)."""
    _forward, _backward, _name = staticmethod(avgpool2d_forward), staticmethod(avgpool2d_backward), "AvgPool2d"


class Flatten(Module):
    """(N, C, H, W) -> (N, C*H*W)."""

    def forward(self, x):
        checks.array(x, "x")
        if x.ndim < 2:
            raise ValueError(f"x must have at least 2 dimensions (N, ...), got shape {x.shape}")
        self.cache = x.shape
        return x.reshape(x.shape[0], int(np.prod(x.shape[1:])))  # not -1: that fails for an empty batch

    def backward(self, dout):
        x_shape = self._require_cache()
        checks.upstream_gradient(dout, (x_shape[0], int(np.prod(x_shape[1:]))))
        return dout.reshape(x_shape)

    def __repr__(self):
        return "Flatten()"


class BatchNorm2d(Module):
    """Batch normalisation per channel; params ``weight`` (gamma), ``bias`` (beta), buffers
    ``running_mean``, ``running_var`` — PyTorch's names, defaults and update rule.

    ``eps`` > 0 and 0 <= ``momentum`` <= 1, finite numbers (momentum 0 freezes the running
    statistics, 1 keeps only the last batch's). An empty batch gives an empty output and leaves
    the running statistics alone, as in torch.
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        super().__init__()
        self.num_features = checks.positive_int(num_features, "num_features")
        self.eps = checks.positive_number(eps, "eps")
        self.momentum = checks.number(momentum, "momentum", low=0, high=1)
        check_parameters("BatchNorm2d", [("weight", (num_features,))], f"num_features={num_features}")
        self._init_params({"weight": np.ones(num_features), "bias": np.zeros(num_features)})
        self.buffers = {"running_mean": np.zeros(num_features), "running_var": np.ones(num_features)}

    def forward(self, x):
        out, self.cache = F.batchnorm2d_forward(
            x, self.params["weight"], self.params["bias"], self.buffers["running_mean"],
            self.buffers["running_var"], self.training, self.momentum, self.eps)
        return out

    def backward(self, dout):
        dx, self.grads["weight"], self.grads["bias"] = F.batchnorm2d_backward(dout, self._require_cache())
        return dx

    def __repr__(self):
        return f"BatchNorm2d({self.num_features}, eps={self.eps}, momentum={self.momentum})"


class Dropout(Module):
    """Inverted dropout with drop probability 0 <= ``p`` < 1; the identity in eval mode.

    ``rng``: a ``numpy.random.Generator``, an int seed or None (see :func:`minilib.checks.rng`).
    """

    def __init__(self, p=0.5, rng=None):
        super().__init__()
        self.p = checks.probability(p, "p")
        self.rng = checks.rng(rng)

    def forward(self, x):
        out, mask = F.dropout_forward(x, self.p, self.training, self.rng)
        self.cache = (mask,)           # mask is None in eval mode; the tuple marks "forward has run"
        return out

    def backward(self, dout):
        (mask,) = self._require_cache()
        return F.dropout_backward(dout, mask)

    def __repr__(self):
        return f"Dropout(p={self.p})"


class Sequential(Module):
    """Layers applied in order; backward runs them in reverse."""

    def __init__(self, *layers: Module):
        super().__init__()
        for i, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise TypeError(f"layer {i} of Sequential must be a minilib Module, got {type(layer).__name__}")
        self.layers = list(layers)

    def children(self):
        return self.layers

    def __getitem__(self, index):
        return self.layers[index]

    def __len__(self):
        return len(self.layers)

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, dout):
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return dout

    def __repr__(self):
        inner = "\n".join(f"  ({i}): {layer!r}" for i, layer in enumerate(self.layers))
        return f"Sequential(\n{inner}\n)"
