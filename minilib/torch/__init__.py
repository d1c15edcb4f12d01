"""PyTorch twins of minilib's efficient-filter layers, and ``convert`` to put them into any model.

Each twin takes the same constructor arguments and has the same parameter names and shapes
as its NumPy layer, so ``state_dict``s copy straight across (:mod:`minilib.methods` names each
method's layer and twin). Importing this package needs torch; the NumPy core never imports it.
Importing it also lets :func:`minilib.accounting.summarize` cost torch models
(:mod:`minilib.torch.accounting`). :func:`choose_formulations` times each twin's equal formulations on a
model's own shapes and keeps the fastest (:mod:`minilib.torch.formulations`).
"""
from . import accounting  # noqa: F401  (registers the torch tracer with minilib.accounting)
from .basis import BasisConv2d, SharedBasis
from .convert import METHODS, convert
from .formulations import choose_formulations, formulations_of, set_formulations
from .fullstack import FullStackConv2d, binarize, ortho_loss, ortho_loss_released, ortho_penalty
from .versatile import VersatileConv2d

__all__ = ["VersatileConv2d", "BasisConv2d", "SharedBasis", "FullStackConv2d", "binarize", "ortho_loss",
           "ortho_loss_released", "ortho_penalty", "convert", "METHODS", "choose_formulations", "formulations_of",
           "set_formulations"]
