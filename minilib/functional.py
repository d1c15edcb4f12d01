"""Pure forward/backward functions for the non-convolutional layers.

Each ``*_forward`` returns ``(out, cache)`` and each ``*_backward(dout, cache)`` returns
the gradients in the order of the forward arguments. Layouts follow PyTorch:
``Linear`` weights are (out_features, in_features), activations are NCHW.
"""
from __future__ import annotations

import numpy as np

from . import checks


def linear_forward(x, w, b=None):
    """y = x w^T + b for x (N, in_features), w (out_features, in_features), b (out_features,)."""
    checks.array(x, "x", 2, "(N, in_features)")
    checks.array(w, "w", 2, "(out_features, in_features)")
    if x.shape[1] != w.shape[1]:
        raise ValueError(f"x has {x.shape[1]} features but w expects in_features={w.shape[1]} (w.shape={w.shape})")
    if b is not None:  # a (N, out) or (1,) bias would broadcast silently
        checks.vector(b, "b", w.shape[0], "(out_features,)")
    out = x @ w.T
    if b is not None:
        out += b
    return out, (x, w, b is not None)


def linear_backward(dout, cache):
    """dx = dy w, dw = dy^T x, db = sum_n dy; returns ``(dx, dw, db)`` (db None without bias)."""
    x, w, has_bias = cache
    checks.upstream_gradient(dout, (x.shape[0], w.shape[0]))
    return dout @ w, dout.T @ x, (dout.sum(axis=0) if has_bias else None)


def relu_forward(x):
    """max(0, x), elementwise."""
    checks.array(x, "x")
    return np.maximum(x, 0), x > 0


def relu_backward(dout, cache):
    """The gradient passes where the input was positive (PyTorch's convention: 0 at x == 0)."""
    checks.upstream_gradient(dout, cache.shape)
    return dout * cache


def batchnorm2d_forward(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-5):
    """Batch normalisation over (N, H, W) for every channel of x (N, C, H, W).

    Training: normalise with the batch mean and biased variance, and update the running
    statistics *in place* with the unbiased variance, exactly as ``torch.nn.BatchNorm2d``:
    ``running = (1 - momentum) * running + momentum * batch``. Evaluation: use the running
    statistics. gamma, beta and the running statistics are (C,) arrays, ``training`` a bool,
    0 <= momentum <= 1 and eps > 0 finite numbers. Returns ``(out, cache)``.
    """
    checks.array(x, "x", 4, "(N, C, H, W)")
    checks.array(gamma, "gamma", 1, "(C,)")
    if x.shape[1] != gamma.shape[0]:
        raise ValueError(f"x has {x.shape[1]} channels but the layer has num_features={gamma.shape[0]}")
    for value, name in ((beta, "beta"), (running_mean, "running_mean"), (running_var, "running_var")):
        checks.vector(value, name, gamma.shape[0], "(C,)")
    checks.flag(training, "training")       # validated, then used as given: the numbers stay bit for bit
    checks.number(momentum, "momentum", low=0, high=1)
    checks.positive_number(eps, "eps")
    count = x.shape[0] * x.shape[2] * x.shape[3]
    if training and count == 1:
        raise ValueError(f"batch norm in training mode needs more than one value per channel, got x.shape={x.shape}")
    # An empty batch (count 0) has no statistics: as torch, it gives an empty output, leaves the
    # running statistics alone and has zero gradients (the evaluation path below does exactly that).
    batch_stats = training and count > 1
    if batch_stats:
        mean = x.mean(axis=(0, 2, 3))
        var = x.var(axis=(0, 2, 3))
        running_mean *= 1 - momentum
        running_mean += momentum * mean
        running_var *= 1 - momentum
        running_var += momentum * var * count / (count - 1)
    else:
        mean, var = running_mean, running_var
    inv_std = 1.0 / np.sqrt(var + eps)
    x_hat = (x - mean[:, None, None]) * inv_std[:, None, None]
    out = gamma[:, None, None] * x_hat + beta[:, None, None]
    return out, (x_hat, gamma, inv_std, batch_stats)


def batchnorm2d_backward(dout, cache):
    """Gradients ``(dx, dgamma, dbeta)`` of :func:`batchnorm2d_forward`.

    In training mode the mean and variance depend on x, which gives the compact form
    dx = gamma * inv_std * (dy - mean(dy) - x_hat * mean(dy * x_hat)),
    means taken over (N, H, W). In evaluation mode they are constants: dx = gamma * inv_std * dy.
    """
    x_hat, gamma, inv_std, training = cache
    checks.upstream_gradient(dout, x_hat.shape)   # a (N, C, 1, 1) dout would broadcast silently
    axes = (0, 2, 3)
    dbeta = dout.sum(axis=axes)
    dgamma = (dout * x_hat).sum(axis=axes)
    scale = (gamma * inv_std)[:, None, None]
    if not training:
        return scale * dout, dgamma, dbeta
    mean_dy = dout.mean(axis=axes)[:, None, None]
    mean_dy_xhat = (dout * x_hat).mean(axis=axes)[:, None, None]
    return scale * (dout - mean_dy - x_hat * mean_dy_xhat), dgamma, dbeta


def dropout_forward(x, p, training, rng):
    """Inverted dropout: zero each value with probability p and scale survivors by 1/(1-p).

    Scaling at training time keeps the expected activation unchanged, so evaluation is
    the identity. ``rng`` is a ``numpy.random.Generator`` (an int seed or None also work, see
    :func:`minilib.checks.rng`; a seed draws the same mask on every call).
    """
    checks.array(x, "x")
    checks.probability(p, "p")
    if not checks.flag(training, "training") or p == 0.0:
        return x, None
    rng = checks.rng(rng)
    mask = (rng.random(x.shape) >= p).astype(x.dtype) / (1.0 - p)
    return x * mask, mask


def dropout_backward(dout, cache):
    """Survivors get ``dout / (1 - p)``, dropped values 0 (the identity when ``cache`` is None)."""
    if cache is None:
        return dout
    checks.upstream_gradient(dout, cache.shape)
    return dout * cache
