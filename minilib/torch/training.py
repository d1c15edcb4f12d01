"""A small PyTorch training loop for classifiers: one epoch of mini-batch SGD, and evaluation.

Mini-batches come from :func:`minilib.train.minibatches` with an explicit NumPy ``rng``, as in
:func:`minilib.train.fit`, so one seed shuffles the data the same way in both backends.
"""
from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from ..train import minibatches


def train_epoch(model, optimizer, x, y, *, batch_size, rng, penalty=None, on_batch=None) -> dict:
    """One pass over ``(x, y)`` in shuffled mini-batches; returns the epoch's averages.

    ``x`` (N, C, H, W) and ``y`` (N,) int64 tensors; the objective is cross-entropy plus, when
    given, ``penalty()`` (a scalar tensor, e.g. ``lambda: ortho_penalty(model, 0.1)``, Eq. 8).
    ``on_batch(loss)`` is called after every step (a progress bar). Returns ``{"loss",
    "accuracy", "penalty", "seconds"}``: cross-entropy and accuracy averaged over the training
    mini-batches, the penalty's average (None without one) and the epoch's wall time.

    A non-finite objective stops the epoch before its step (a NaN gradient would poison every weight):
    ``"diverged"`` is then the 1-based index of that mini-batch, and the averages cover the batches before it;
    otherwise ``"diverged"`` is None.
    """
    start = time.perf_counter()
    model.train()
    total_loss, total_penalty, correct, seen, diverged = 0.0, 0.0, 0, 0, None
    for batch, idx in enumerate(minibatches(len(x), batch_size, rng), start=1):
        idx = torch.from_numpy(idx)
        scores = model(x[idx])
        loss = F.cross_entropy(scores, y[idx])
        objective = loss
        if penalty is not None:
            term = penalty()
            objective = loss + term
        if not torch.isfinite(objective):
            diverged = batch
            break
        if penalty is not None:
            total_penalty += term.item() * len(idx)
        optimizer.zero_grad(set_to_none=True)
        objective.backward()
        optimizer.step()
        total_loss += loss.item() * len(idx)
        correct += int((scores.argmax(dim=1) == y[idx]).sum())
        seen += len(idx)
        if on_batch is not None:
            on_batch(loss.item())
    seen = max(seen, 1)      # a divergence at the first batch leaves nothing to average
    return {"loss": total_loss / seen, "accuracy": correct / seen,
            "penalty": None if penalty is None else total_penalty / seen, "seconds": time.perf_counter() - start,
            "diverged": diverged}


@torch.no_grad()
def evaluate(model, x, y, batch_size=1000) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` on ``(x, y)`` in eval mode (the mode is restored)."""
    was_training = model.training
    model.eval()
    total_loss, correct = 0.0, 0
    for start in range(0, len(x), batch_size):
        scores = model(x[start:start + batch_size])
        target = y[start:start + batch_size]
        total_loss += F.cross_entropy(scores, target, reduction="sum").item()
        correct += int((scores.argmax(dim=1) == target).sum())
    model.train(was_training)
    return total_loss / len(x), correct / len(x)
