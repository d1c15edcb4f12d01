"""Training with torch: :func:`fit`, the one loop every experiment of the book trains with, under a
:class:`Recipe`. Torch is imported only here and in :mod:`minilib.torch`."""
from .loop import Diverged, Recipe, evaluate, fit, predict, set_threads, train_step, windows
