"""Training with torch, apart from the twins (:mod:`minilib.torch`) and from the NumPy fit (:mod:`minilib.train`).

Today the package holds the full-scale trainer, run as ``python -m minilib.training`` or
``torchrun --nproc_per_node N -m minilib.training ...``:

* :mod:`~minilib.training.trainer`: :class:`~minilib.training.trainer.TrainConfig`, the presets (the papers'
  recipes), :class:`~minilib.training.trainer.Trainer` and :func:`~minilib.training.trainer.train`;
* :mod:`~minilib.training.__main__`: the command line (``parse_args``, ``main``);
* :mod:`~minilib.training.data`: examples addressed by (epoch, index), so augmentation does not depend on the
  process that reads them;
* :mod:`~minilib.training.distributed`: process group, per-rank seeding, sharded batches;
* :mod:`~minilib.training.checkpoint`: atomic, verified checkpoints.

The one training loop every experiment uses (MNIST, CIFAR-10, SR, the comparison) is to join it as
``loop.py``. The networks come from :mod:`minilib.torch` (the twins, ``convert`` and the builders, e.g.
:mod:`minilib.torch.zoo`). ``torch`` is imported only here and in :mod:`minilib.torch`; the NumPy core never
imports it. This file imports nothing, so importing one module of the package does not load the others.
"""
