"""Mini-batches: the one shuffle that both training loops use (:func:`minilib.train.fit` for NumPy models,
:func:`minilib.training.fit` for torch ones), so one seed draws the same batches in both backends."""
from __future__ import annotations

import numpy as np

from .. import checks


def minibatches(n, batch_size, rng=None):
    """Yield index arrays covering range(n) in batches; shuffled when ``rng`` is given."""
    checks.positive_int(batch_size, "batch_size")
    order = np.arange(n) if rng is None else rng.permutation(n)
    for start in range(0, n, batch_size):
        yield order[start:start + batch_size]
