"""Small reference networks built from minilib layers."""
from __future__ import annotations

import numpy as np

from .im2col import conv_output_size
from .layers import Conv2d, Flatten, Linear, MaxPool2d, ReLU, Sequential


def lenet(rng=None, in_channels=1, image_size=28, channels=(20, 50), hidden=500, num_classes=10, kernel_size=5):
    """LeNet as in Caffe's MNIST example (the model of the versatile-filters paper's MNIST table):

    conv5x5(in -> channels[0]) - ReLU - maxpool2 - conv5x5(-> channels[1]) - ReLU - maxpool2
    - flatten - linear(-> hidden) - ReLU - linear(-> num_classes).
    With the defaults: 20 and 50 filters, 28x28 input -> 24 -> 12 -> 8 -> 4, so 800 features.
    """
    rng = np.random.default_rng() if rng is None else rng
    size = conv_output_size(image_size, kernel_size) // 2
    size = conv_output_size(size, kernel_size) // 2
    c1, c2 = channels
    return Sequential(
        Conv2d(in_channels, c1, kernel_size, rng=rng), ReLU(), MaxPool2d(2),
        Conv2d(c1, c2, kernel_size, rng=rng), ReLU(), MaxPool2d(2),
        Flatten(), Linear(c2 * size * size, hidden, rng=rng), ReLU(), Linear(hidden, num_classes, rng=rng),
    )
