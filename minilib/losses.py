"""Losses. Each returns ``(loss, dpred)``: the scalar mean loss and its gradient
with respect to the prediction, ready to feed into ``model.backward``.

A mean over nothing is undefined, so an empty batch is a ``ValueError`` (torch returns NaN);
NaN or inf inside the predictions propagate into the loss, as in torch.
"""
from __future__ import annotations

import numpy as np

from . import checks


def softmax_cross_entropy(logits, labels):
    """Mean cross-entropy of softmax(logits) against integer class labels.

    logits (N, K), labels (N,) ints in [0, K). dlogits = (softmax(logits) - onehot) / N.
    The max is subtracted before exponentiating so large logits do not overflow.
    """
    checks.array(logits, "logits", 2, "(N, num_classes)")
    checks.samples(logits, "logits")
    if not isinstance(labels, np.ndarray):
        raise TypeError(f"labels must be a numpy.ndarray of integer class labels, got {checks.describe(labels)}")
    if labels.shape != (logits.shape[0],) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integers of shape ({logits.shape[0]},), got {labels.dtype} {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= logits.shape[1]):
        raise ValueError(f"labels must lie in [0, {logits.shape[1]}), got range [{labels.min()}, {labels.max()}]")
    n = logits.shape[0]
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -log_probs[np.arange(n), labels].mean()
    dlogits = np.exp(log_probs)
    dlogits[np.arange(n), labels] -= 1.0
    return loss, dlogits / n


def mse(pred, target):
    """Mean squared error over all elements; d/dpred = 2 (pred - target) / size."""
    checks.array(pred, "pred")
    checks.array(target, "target")
    checks.same_shape(pred, target, "pred", "target")
    _not_empty(pred)
    diff = pred - target
    return np.mean(diff ** 2), 2.0 * diff / diff.size


def l1(pred, target):
    """Mean absolute error over all elements; d/dpred = sign(pred - target) / size (0 where equal)."""
    checks.array(pred, "pred")
    checks.array(target, "target")
    checks.same_shape(pred, target, "pred", "target")
    _not_empty(pred)
    diff = pred - target
    return np.mean(np.abs(diff)), np.sign(diff) / diff.size


def _not_empty(pred):
    if pred.size == 0:
        raise ValueError(f"pred has no elements (shape {pred.shape}): a mean over nothing is undefined")
