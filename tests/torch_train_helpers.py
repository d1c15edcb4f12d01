"""Shared by the tests of the distributed trainer: an autouse fixture (import it into the test module) that runs
every test with one torch thread and restores the thread count and global generators afterwards."""
from __future__ import annotations

import pytest
import torch

from minilib.training import distributed


@pytest.fixture(autouse=True)
def _restore_torch_globals():
    # One thread: fastest for these tiny models, and no contention with the 2-process tests. The trainer also
    # sets the thread count and seeds the global generators, as a command should; undo both afterwards so the
    # tests that run after these see the process as it was.
    threads, rng = torch.get_num_threads(), distributed.capture_rng_state()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
    distributed.restore_rng_state(rng)
