"""Training with torch, apart from the twins (:mod:`minilib.torch`) and from the NumPy fit (:mod:`minilib.train`).

* :mod:`~minilib.training.loop`: :func:`fit`, the one loop every experiment of the book trains with (MNIST,
  CIFAR-10, SR, the comparison) under a :class:`Recipe` (optimiser, schedule and when it is stepped, MVNet's
  penalty and its scale, what a non-finite loss does), and :func:`forward_objective` / :func:`update`, the step
  that the full-scale trainer shares with it;
* the full-scale trainer, run as ``python -m minilib.training`` or
  ``torchrun --nproc_per_node N -m minilib.training ...``:

  * :mod:`~minilib.training.trainer`: :class:`~minilib.training.trainer.TrainConfig`, the presets (the papers'
    recipes), :class:`~minilib.training.trainer.Trainer` and :func:`~minilib.training.trainer.train`;
  * :mod:`~minilib.training.__main__`: the command line (``parse_args``, ``main``);
  * :mod:`~minilib.training.data`: examples addressed by (epoch, index), so augmentation does not depend on the
    process that reads them;
  * :mod:`~minilib.training.distributed`: process group, per-rank seeding, sharded batches;
  * :mod:`~minilib.training.checkpoint`: atomic, verified checkpoints.

The networks come from :mod:`minilib.torch` (the twins, ``convert`` and the builders, e.g.
:mod:`minilib.torch.zoo`). ``torch`` is imported only here and in :mod:`minilib.torch`; the NumPy core never
imports it.
"""
from .loop import (Diverged, Recipe, evaluate, fit, forward_objective, predict, set_threads, torch_version, update,
                   windows)
