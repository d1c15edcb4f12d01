"""Datasets for the textbook: MNIST, Fashion-MNIST, CIFAR-10 (JPEG-decoded copy) and SR images (Set5, Set14, T91).

Files live under the data root, ``$MINILIB_DATA`` or else ``./data``, and every file is checked against a SHA-256
before use (see :mod:`minilib.data.registry` for what is hashed and why). Command line::

    python -m minilib.data list              # what is registered, what is present
    python -m minilib.data download mnist    # MNIST and Fashion-MNIST have public mirrors
    python -m minilib.data verify [NAME]     # check checksums of what is present
"""

from .download import download
from .readers import (
    FileCheck,
    clear_verification_cache,
    load_cifar10,
    load_fashion_mnist,
    load_mnist,
    load_sr_images,
    read_idx,
    read_image,
    read_image_folder,
    read_npz,
    verify_dataset,
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
    data_root,
    get_spec,
)

__all__ = [
    "data_root", "load_mnist", "load_fashion_mnist", "load_cifar10", "load_sr_images",
    "download", "verify_dataset", "FileCheck", "clear_verification_cache",
    "read_idx", "read_npz", "read_image", "read_image_folder",
    "DATASETS", "get_spec", "MNIST_CLASSES", "FASHION_MNIST_CLASSES", "CIFAR10_CLASSES",
    "DatasetNotFoundError", "DatasetIntegrityError", "DownloadError", "DownloadUnavailableError",
]
