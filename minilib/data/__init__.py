"""Datasets for the textbook: MNIST, Fashion-MNIST, CIFAR-10 (official, or the JPEG-decoded copy) and SR images
(Set5, Set14, T91), plus a small embedded sample.

Files live under the data root, ``$MINILIB_DATA`` or else the per-user cache folder (``~/.cache/minilib`` on Linux;
see :mod:`minilib.data.location`), are fetched from public sources on first use (:mod:`minilib.data.fetch`; off with
``MINILIB_OFFLINE=1``), and are checked against a SHA-256 of their content before use (:mod:`minilib.data.registry`).
Command line::

    python -m minilib.data where             # the data root in use, and why
    python -m minilib.data status            # each dataset: present / missing / corrupt
    python -m minilib.data download mnist    # fetch now (loaders also fetch on first use)
    python -m minilib.data verify [NAME]     # check every file, with the reason for each failure
"""

from .choice import DataChoice, choose_data
from .fetch import download
from .loaders import (
    FileCheck,
    cifar10_description,
    cifar10_variant,
    load_cifar10,
    load_fashion_mnist,
    load_mnist,
    load_sr_images,
    verify_dataset,
)
from .location import data_root, default_root, offline
from .readers import (
    clear_verification_cache,
    read_idx,
    read_image,
    read_image_folder,
    read_npz,
)
from .registry import (
    CIFAR10_CLASSES,
    DATASETS,
    FASHION_MNIST_CLASSES,
    MNIST_CLASSES,
    DatasetIntegrityError,
    DatasetNotFoundError,
    DownloadError,
    DownloadUnavailableError,
    get_spec,
)
from .samples import SAMPLES, sample_spec

__all__ = [
    "data_root", "default_root", "offline", "load_mnist", "load_fashion_mnist", "load_cifar10", "load_sr_images",
    "cifar10_variant", "cifar10_description", "choose_data", "DataChoice",
    "download", "verify_dataset", "FileCheck", "clear_verification_cache",
    "read_idx", "read_npz", "read_image", "read_image_folder",
    "DATASETS", "SAMPLES", "get_spec", "sample_spec", "MNIST_CLASSES", "FASHION_MNIST_CLASSES", "CIFAR10_CLASSES",
    "DatasetNotFoundError", "DatasetIntegrityError", "DownloadError", "DownloadUnavailableError",
]
