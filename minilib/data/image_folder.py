"""A class-per-folder image dataset (the ImageNet layout), and the crops that bring its images to one size.

Layout::

    root/<class name>/<image>.png | .jpg | .jpeg | .npy      (suffixes in any case: ImageNet's are ".JPEG")

Classes are the sub-folder names in sorted order (label = position in that list); examples are ordered by class,
then by file name, so every process and every run sees the same index -> file mapping. PNG and JPEG are decoded
with Pillow (a project dependency, imported only when an image is read); ``.npy`` files hold a uint8 array
(H, W) or (H, W, C) and need nothing but NumPy, which is what the tests and pre-decoded datasets use.

Nothing is decoded when the dataset is built: :meth:`ImageFolder.read` decodes one image on demand, so a
million-image folder costs one directory scan. A missing or empty folder raises
:class:`~minilib.data.registry.DatasetNotFoundError` naming it; an undecodable file raises
:class:`~minilib.data.registry.DatasetIntegrityError` naming the file.

The crop functions follow the usual ImageNet recipe (the official Versatile-filters script uses
torchvision's ``RandomResizedCrop(224)`` for training and ``Resize(256)`` + ``CenterCrop(224)`` for
evaluation); they are written here on NumPy arrays so torchvision is not needed.
"""
from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .readers import read_image
from .registry import DatasetIntegrityError, DatasetNotFoundError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".npy")
_PILLOW_SUFFIXES = (".png", ".jpg", ".jpeg")


def _visible_entries(folder: Path) -> list[os.DirEntry]:
    # Hidden entries (".DS_Store", ".ipynb_checkpoints") are never classes or images.
    with os.scandir(folder) as entries:
        return sorted((e for e in entries if not e.name.startswith(".")), key=lambda e: e.name)


class ImageFolder:
    """The images under ``root/<class>/``: ``len(folder)`` examples, ``folder.read(i) -> (image, label)``.

    ``classes`` (optional) fixes the class list, e.g. a validation folder must have exactly the training
    folder's classes so that label i means the same class in both; a mismatch is an error.
    ``channels`` (1 or 3) is the channel count every image is brought to: grey images are repeated to
    RGB, colour images are reduced to luma (ITU-R 601) for 1, so a folder with a few grey JPEGs (ImageNet
    has some) still gives arrays of one shape.

    Attributes: ``classes`` (sorted names), ``samples`` (list of (Path, label)), ``root``.
    """

    def __init__(self, root: str | os.PathLike, classes: Sequence[str] | None = None, channels: int = 3):
        self.root = Path(root).expanduser().resolve()
        if channels not in (1, 3):
            raise ValueError(f"channels={channels!r} must be 1 (grey) or 3 (RGB)")
        self.channels = channels
        if not self.root.is_dir():
            raise DatasetNotFoundError(f"Image folder not found: {self.root} (expected root/<class>/<image> files)")
        found = [e.name for e in _visible_entries(self.root) if e.is_dir()]
        if not found:
            raise DatasetNotFoundError(f"Image folder {self.root} has no class sub-folders; the layout is "
                                       f"root/<class>/<image> with suffixes {', '.join(IMAGE_SUFFIXES)}")
        if classes is not None and list(classes) != found:
            missing, extra = sorted(set(classes) - set(found)), sorted(set(found) - set(classes))
            raise ValueError(f"Image folder {self.root} must have the same classes as the training folder; "
                             f"missing {missing[:5]}{' ...' if len(missing) > 5 else ''}, "
                             f"extra {extra[:5]}{' ...' if len(extra) > 5 else ''}")
        self.classes = found
        self.samples: list[tuple[Path, int]] = []
        for label, name in enumerate(found):
            files = [Path(e.path) for e in _visible_entries(self.root / name)
                     if e.is_file() and Path(e.name).suffix.lower() in IMAGE_SUFFIXES]
            if not files:
                raise DatasetNotFoundError(f"Class folder {self.root / name} has no images "
                                           f"(suffixes {', '.join(IMAGE_SUFFIXES)}, any case)")
            self.samples.extend((path, label) for path in files)

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def labels(self) -> np.ndarray:
        """Every example's label, int64 (N,)."""
        return np.array([label for _, label in self.samples], dtype=np.int64)

    def read(self, index: int) -> tuple[np.ndarray, int]:
        """Example ``index``: a uint8 (H, W, channels) array and its label."""
        path, label = self.samples[index]
        return to_channels(read_any_image(path), self.channels, path), label

    def __repr__(self) -> str:
        return f"ImageFolder({str(self.root)!r}, {len(self.classes)} classes, {len(self)} images)"


def read_any_image(path: str | os.PathLike) -> np.ndarray:
    """A uint8 image array from a PNG/JPEG (Pillow) or ``.npy`` file; (H, W) or (H, W, C)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        try:
            image = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as err:
            raise DatasetIntegrityError(f"Cannot read image file {path}: {type(err).__name__}: {err}",
                                        path=path) from err
        if image.dtype != np.uint8 or image.ndim not in (2, 3):
            raise DatasetIntegrityError(f"Image file {path} must hold a uint8 array (H, W) or (H, W, C), "
                                        f"got {image.dtype} {image.shape}", path=path)
        return image
    if suffix not in _PILLOW_SUFFIXES:
        raise ValueError(f"{path}: suffix {path.suffix!r} is not one of {', '.join(IMAGE_SUFFIXES)}")
    try:
        import PIL  # noqa: F401  (read_image imports it lazily; check first for a clearer message)
    except ImportError as err:
        raise ImportError(f"reading {path} needs Pillow (pip install pillow); without it only .npy images "
                          f"can be read") from err
    return read_image(path)  # raises DatasetIntegrityError naming the file when it cannot be decoded


def to_channels(image: np.ndarray, channels: int, path="<array>") -> np.ndarray:
    """``image`` as (H, W, channels): grey -> repeated RGB, RGB -> ITU-R 601 luma, RGBA -> RGB."""
    if image.ndim == 2:
        image = image[:, :, None]
    have = image.shape[2]
    if have == 4:
        image, have = image[:, :, :3], 3
    if have == channels:
        return image
    if have == 1 and channels == 3:
        return np.repeat(image, 3, axis=2)
    if have == 3 and channels == 1:
        luma = image.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        return np.clip(np.rint(luma), 0, 255).astype(np.uint8)[:, :, None]
    raise DatasetIntegrityError(f"Image {path} has {have} channels; expected 1, 3 or 4", path=path)


# --------------------------------------------------------------------------------------------------
# Bringing images of any size to the network's size
# --------------------------------------------------------------------------------------------------


def resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """``image`` (H, W, C) uint8 resized to (height, width, C) by Pillow's antialiased bilinear filter."""
    from PIL import Image

    if image.shape[:2] == (height, width):
        return image
    planes = [np.asarray(Image.fromarray(image[:, :, c]).resize((width, height), Image.BILINEAR))
              for c in range(image.shape[2])]  # per plane, so any channel count works with mode "L"
    return np.stack(planes, axis=2)


def random_resized_crop(image: np.ndarray, size: int, rng: np.random.Generator, scale=(0.08, 1.0),
                        ratio=(3 / 4, 4 / 3)) -> np.ndarray:
    """A random crop covering ``scale`` of the area with aspect ratio in ``ratio``, resized to size x size.

    The Inception-style crop of torchvision's ``RandomResizedCrop``: up to 10 draws of (area, log-ratio);
    if none fits inside the image, the largest centred crop whose ratio is within ``ratio``.
    """
    height, width = image.shape[:2]
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        w, h = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            top, left = int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1))
            return resize(image[top:top + h, left:left + w], size, size)
    in_ratio = width / height
    if in_ratio < ratio[0]:
        w, h = width, round(width / ratio[0])
    elif in_ratio > ratio[1]:
        w, h = round(height * ratio[1]), height
    else:
        w, h = width, height
    top, left = (height - h) // 2, (width - w) // 2
    return resize(image[top:top + h, left:left + w], size, size)


def resize_center_crop(image: np.ndarray, size: int, crop_fraction: float = 0.875) -> np.ndarray:
    """Evaluation view: shorter side resized to round(size / crop_fraction), then the centred size x size crop
    (256 then 224 for size=224, the standard ImageNet validation protocol)."""
    height, width = image.shape[:2]
    shorter = round(size / crop_fraction)
    if height <= width:
        new_h, new_w = shorter, max(shorter, round(width * shorter / height))
    else:
        new_h, new_w = max(shorter, round(height * shorter / width)), shorter
    image = resize(image, new_h, new_w)
    top, left = (new_h - size) // 2, (new_w - size) // 2
    return image[top:top + size, left:left + size]
