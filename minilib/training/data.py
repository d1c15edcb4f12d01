"""The data of ``python -m minilib.training``: examples addressed by (epoch, index), so that augmentation is a
function of the example and not of the process that reads it (the same batches on 1 GPU and on N, and after a
resume).

Built-in sets (CIFAR-10, MNIST, a synthetic one) are held in memory and standardised with their training set's
channel mean and std; an image folder (``<root>/train/<class>/...``, ``<root>/val/<class>/...``) is read lazily and
standardised with the ImageNet statistics the released Versatile script uses.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch

from ..data.image_folder import ImageFolder, random_resized_crop, resize_center_crop
from ..torch.zoo import MODELS
from . import distributed

SYNTHETIC = {"train": 256, "test": 128, "classes": 4, "channels": 3, "size": 8}
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # as the released Versatile script


class ArrayImages:
    """In-memory uint8 images (N, H, W, C) and labels with the ``read(i) -> (image, label)`` of ImageFolder."""

    def __init__(self, images: np.ndarray, labels: np.ndarray):
        self.images = images if images.ndim == 4 else images[..., None]
        self.labels = np.asarray(labels, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.labels)

    def read(self, index: int):
        return self.images[index], int(self.labels[index])


class PadCropFlip:
    """CIFAR's standard augmentation: zero-pad by ``pad``, random crop back to size, flip half the images."""

    def __init__(self, pad: int):
        self.pad = pad

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        height, width = image.shape[:2]
        padded = np.pad(image, ((self.pad, self.pad), (self.pad, self.pad), (0, 0)))
        top, left = rng.integers(0, 2 * self.pad + 1, size=2)
        image = padded[top:top + height, left:left + width]
        return image[:, ::-1] if rng.random() < 0.5 else image


class CropFlip:
    """ImageNet training view: random resized crop to size x size, flip half the images."""

    def __init__(self, size: int):
        self.size = size

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        image = random_resized_crop(image, self.size, rng)
        return image[:, ::-1] if rng.random() < 0.5 else image


class CenterView:
    """ImageNet evaluation view: resize the shorter side to size/0.875, centre crop size x size."""

    def __init__(self, size: int):
        self.size = size

    def __call__(self, image: np.ndarray, rng=None) -> np.ndarray:
        return resize_center_crop(image, self.size)


class KeyedImages(torch.utils.data.Dataset):
    """``dataset[(epoch, index)] -> (float32 tensor (C, H, W), label)``: read, augment with
    :func:`~minilib.training.distributed.example_rng` (seed, epoch, index), scale to [0, 1], standardise."""

    def __init__(self, source, mean, std, transform=None, seed: int = 0):
        self.source, self.transform, self.seed = source, transform, seed
        self.mean = np.asarray(mean, dtype=np.float32)
        self.std = np.asarray(std, dtype=np.float32)

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, key):
        epoch, index = key
        image, label = self.source.read(index)
        if self.transform is not None:
            image = self.transform(image, distributed.example_rng(self.seed, epoch, index))
        x = (image.astype(np.float32) / np.float32(255) - self.mean) / self.std
        return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1))), label


@dataclasses.dataclass
class Data:
    train: KeyedImages
    test: KeyedImages | None
    num_classes: int
    in_channels: int
    description: str


def _channel_stats(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std of uint8 images (N, H, W, C) in [0, 1] (the papers standardise CIFAR so)."""
    x = images.reshape(-1, images.shape[-1]).astype(np.float64) / 255
    return x.mean(axis=0), x.std(axis=0)


def synthetic_images(n: int, split_seed: int, size: int):
    """A small learnable set: each class is a fixed random pattern, each example its pattern plus noise."""
    classes, channels = SYNTHETIC["classes"], SYNTHETIC["channels"]
    patterns = np.random.default_rng(0).integers(0, 256, size=(classes, size, size, channels))
    rng = np.random.default_rng(split_seed)
    labels = rng.integers(0, classes, size=n)
    noise = rng.integers(-64, 65, size=(n, size, size, channels))
    return np.clip(patterns[labels] // 2 + 64 + noise, 0, 255).astype(np.uint8), labels


def evenly_spaced(n: int, limit: int | None) -> np.ndarray:
    """Indices of an evenly spaced subset of at most ``limit`` of ``n`` examples (all of them for None).

    Not the first ``limit``: CIFAR-10's test split and every image folder are ordered by class, so a prefix
    would hold only the first classes."""
    if limit is None or limit >= n:
        return np.arange(n)
    return np.linspace(0, n - 1, num=limit).round().astype(np.int64)


def _limited(images, labels, limit):
    keep = evenly_spaced(len(labels), limit)
    return images[keep], labels[keep]


def load_data(config) -> Data:
    """The training and test sets ``config.data`` names (a :class:`minilib.training.trainer.TrainConfig`), with the
    augmentation its recipe uses."""
    augment = config.augment
    if config.data in ("cifar10", "mnist", "synthetic"):
        if config.data == "synthetic":
            size = config.image_size or SYNTHETIC["size"]
            train = synthetic_images(SYNTHETIC["train"], 1, size)
            test = synthetic_images(SYNTHETIC["test"], 2, size)
            num_classes, pad, name = SYNTHETIC["classes"], max(1, size // 8), "synthetic"
        else:
            from ..data import cifar10_description, cifar10_variant, load_cifar10, load_mnist
            if config.data == "cifar10":
                variant = cifar10_variant()
                train, test = (load_cifar10(split, variant=variant) for split in ("train", "test"))
                name = cifar10_description(variant)
            else:
                train, test, name = load_mnist("train"), load_mnist("test"), "MNIST"
            num_classes, pad = 10, 4
            augment = augment and config.data == "cifar10"  # MNIST is trained without augmentation
        train, test = _limited(*train, config.limit), _limited(*test, config.limit)
        train_src, test_src = ArrayImages(*train), ArrayImages(*test)
        mean, std = _channel_stats(train_src.images)
        transform = PadCropFlip(pad) if augment else None
        description = f"{name}: {len(train_src)} training, {len(test_src)} test examples"
        return Data(KeyedImages(train_src, mean, std, transform, config.seed), KeyedImages(test_src, mean, std),
                    num_classes, train_src.images.shape[-1], description)
    root = Path(config.data)
    train_root = root / "train" if (root / "train").is_dir() else root
    train_src = ImageFolder(train_root)
    test_src = ImageFolder(root / "val", classes=train_src.classes) if (root / "val").is_dir() else None
    for folder in (train_src, test_src):
        if folder is not None and config.limit is not None:
            folder.samples = [folder.samples[i] for i in evenly_spaced(len(folder.samples), config.limit)]
    size = config.image_size or MODELS[config.model].image_size
    train = KeyedImages(train_src, IMAGENET_MEAN, IMAGENET_STD, CropFlip(size) if augment else CenterView(size),
                        config.seed)
    test = None if test_src is None else KeyedImages(test_src, IMAGENET_MEAN, IMAGENET_STD, CenterView(size))
    description = (f"{root}: {len(train_src)} training images in {len(train_src.classes)} classes, "
                   f"{0 if test_src is None else len(test_src)} validation images, {size}x{size}")
    return Data(train, test, len(train_src.classes), 3, description)
