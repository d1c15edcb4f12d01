"""Turn stored uint8 images into network inputs."""
from __future__ import annotations

import numpy as np


def images_to_nchw(images, dtype=np.float32):
    """uint8 images -> floats in [0, 1], layout (N, C, H, W).

    Accepts (N, H, W) grey images (MNIST) or (N, H, W, C) colour images (CIFAR-10 as stored).
    """
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise TypeError(f"images must be uint8 as stored on disk, got {images.dtype}")
    if images.ndim == 3:
        images = images[:, None]
    elif images.ndim == 4:
        images = images.transpose(0, 3, 1, 2)
    else:
        raise ValueError(f"images must have shape (N, H, W) or (N, H, W, C), got {images.shape}")
    return np.ascontiguousarray(images, dtype=dtype) / dtype(255)


def standardize(x, mean=None, std=None):
    """Per-channel (x - mean) / std for x (N, C, H, W); mean and std default to x's own.

    Returns ``(x_standardized, mean, std)`` so test data can reuse the training statistics.
    """
    if mean is None:
        mean = x.mean(axis=(0, 2, 3))
        std = x.std(axis=(0, 2, 3))
    mean, std = np.asarray(mean, dtype=x.dtype), np.asarray(std, dtype=x.dtype)
    return (x - mean[:, None, None]) / std[:, None, None], mean, std
