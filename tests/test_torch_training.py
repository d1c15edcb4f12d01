"""The small torch training loop of the reproductions (minilib.torch.training)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from minilib.torch.training import evaluate, train_epoch


def _task(n=64, seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 4, 4, generator=generator)
    return x, (x.sum(dim=(1, 2, 3)) > 0).long()


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 2))


def test_an_epoch_learns_and_reports_no_divergence():
    model, (x, y) = _model(), _task()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    before = evaluate(model, x, y)[0]
    for _ in range(5):
        stats = train_epoch(model, optimizer, x, y, batch_size=16, rng=np.random.default_rng(0))
    assert stats["diverged"] is None and stats["penalty"] is None
    assert evaluate(model, x, y)[0] < before


@pytest.mark.parametrize("bad_batch", [1, 3])
def test_a_non_finite_objective_stops_the_epoch_before_its_step(bad_batch):
    model, (x, y) = _model(), _task()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    calls = []

    def penalty():
        calls.append(1)
        return torch.tensor(float("nan") if len(calls) == bad_batch else 0.0)

    snapshots = []
    stats = train_epoch(model, optimizer, x, y, batch_size=16, rng=np.random.default_rng(0), penalty=penalty,
                        on_batch=lambda loss: snapshots.append([p.detach().clone() for p in model.parameters()]))
    assert stats["diverged"] == bad_batch and len(calls) == bad_batch
    assert len(snapshots) == bad_batch - 1                  # no step, no callback for the bad batch
    after = list(model.parameters())
    expected = snapshots[-1] if snapshots else [p.detach() for p in _model().parameters()]
    assert all(torch.equal(a, b) for a, b in zip(after, expected))
    assert all(torch.isfinite(p).all() for p in after) and np.isfinite(stats["loss"])
