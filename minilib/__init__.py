"""minilib: a small NumPy reference library for the Efficient Filters textbook.

The core (im2col, conv, pooling, functional, layers, losses, optim, the method layers and their registry
``minilib.methods``) needs only NumPy; PyTorch appears only in tests, benchmarks, ``minilib.torch`` (the twins,
``convert``, the network builders) and ``minilib.training`` (the one training loop, the full-scale trainer).
``minilib.reproduce`` holds the commands that write ``results/``, ``minilib.reports`` what the chapters read.
The book's page "Where a change belongs" (``book/where_changes_go.md``) maps each kind of change to its place.
"""
from .conv import conv2d_backward, conv2d_backward_naive, conv2d_forward, conv2d_forward_naive
from .fastconv import conv2d_backward_fast, conv2d_forward_fast
from .gradcheck import check_layer_gradients, numeric_gradient, rel_error
from .im2col import col2im, col2im_naive, conv_output_size, im2col, im2col_naive
from .layers import AvgPool2d, BatchNorm2d, Conv2d, Dropout, Flatten, Linear, MaxPool2d, Module, ReLU, Sequential
from .losses import l1, mse, softmax_cross_entropy
from .optim import SGD, Adam, CosineLR, StepLR

__version__ = "0.1.0"

__all__ = [
    "im2col", "col2im", "im2col_naive", "col2im_naive", "conv_output_size",
    "conv2d_forward", "conv2d_backward", "conv2d_forward_naive", "conv2d_backward_naive",
    "conv2d_forward_fast", "conv2d_backward_fast",
    "Module", "Conv2d", "Linear", "ReLU", "MaxPool2d", "AvgPool2d", "Flatten", "BatchNorm2d", "Dropout", "Sequential",
    "softmax_cross_entropy", "mse", "l1", "SGD", "Adam", "StepLR", "CosineLR",
    "numeric_gradient", "rel_error", "check_layer_gradients",
]
