"""How a download becomes the registered files: copied as is, decoded and re-saved as PNG, or converted.

Each unpacker reads one downloaded file and writes the files ``targets`` (role -> path in a staging folder);
:mod:`minilib.data.fetch` then checks every written file against the registry before moving it into place. Archives
are read member by member (never extracted to disk, so a member's path cannot escape the staging folder); a damaged
or truncated archive raises :class:`DatasetIntegrityError`.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import shutil
import tarfile
import zipfile
import zlib
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from .checksums import CIFAR10_BATCH_MD5
from .registry import DatasetIntegrityError

_ARCHIVE_ERRORS = (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, KeyError, OSError)
CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_SPLITS = {"train": ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5"),
                  "test": ("test_batch",)}


def _only_target(targets: Mapping[str, Path]) -> Path:
    if len(targets) != 1:
        raise ValueError(f"this unpacker writes one file, got targets {sorted(targets)}")
    return next(iter(targets.values()))


def as_is(download: Path, member: str, targets: Mapping[str, Path]) -> None:
    """The download is the file (an IDX ``.gz``): copy it."""
    shutil.copyfile(download, _only_target(targets))


def _save_png(raw: bytes, origin: str, target: Path) -> None:
    from PIL import Image  # lazy, as in readers.read_image

    try:
        with Image.open(io.BytesIO(raw)) as img:
            img.load()
            if img.mode not in ("RGB", "L"):
                img = img.convert("RGB")
            img.save(target, format="PNG")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise DatasetIntegrityError(f"cannot decode image {origin} ({type(e).__name__}: {e})", path=origin) from e


def image(download: Path, member: str, targets: Mapping[str, Path]) -> None:
    """The download is one image (PNG or BMP): decode it and save the pixels as PNG (lossless)."""
    _save_png(download.read_bytes(), str(download), _only_target(targets))


def zip_image(download: Path, member: str, targets: Mapping[str, Path]) -> None:
    """One image ``member`` of a zip archive, saved as PNG."""
    try:
        with zipfile.ZipFile(download) as archive:
            raw = archive.read(member)
    except _ARCHIVE_ERRORS as e:
        raise DatasetIntegrityError(f"cannot read {member!r} from zip archive {download} "
                                    f"({type(e).__name__}: {e})", path=download) from e
    _save_png(raw, f"{download}:{member}", _only_target(targets))


def _cifar10_batch(archive: tarfile.TarFile, name: str, download: Path) -> tuple[np.ndarray, np.ndarray]:
    """One pickled batch: its published MD5 first (only then is it unpickled), then (x NHWC uint8, y int64)."""
    handle = archive.extractfile(f"{CIFAR10_FOLDER}/{name}")
    if handle is None:
        raise KeyError(f"{CIFAR10_FOLDER}/{name} is not a regular file")
    raw = handle.read()
    actual = hashlib.md5(raw).hexdigest()
    if actual != CIFAR10_BATCH_MD5[name]:
        raise DatasetIntegrityError(f"{download}: batch {name} has MD5 {actual}, the published value is "
                                    f"{CIFAR10_BATCH_MD5[name]}", path=download,
                                    expected=CIFAR10_BATCH_MD5[name], actual=actual)
    batch = pickle.loads(raw, encoding="bytes")  # the bytes are the published ones (MD5 above)
    x = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(x), np.asarray(batch[b"labels"], dtype=np.int64)


def cifar10_python(download: Path, member: str, targets: Mapping[str, Path]) -> None:
    """The official ``cifar-10-python.tar.gz`` -> ``train`` / ``test`` npz files with ``x`` (N, 32, 32, 3) uint8
    (RGB, NHWC, the official order) and ``y`` (N,) int64, the layout of the JPEG-decoded copy."""
    try:
        with tarfile.open(download, "r:gz") as archive:
            for split, path in targets.items():
                xs, ys = zip(*(_cifar10_batch(archive, name, download) for name in CIFAR10_SPLITS[split]))
                np.savez_compressed(path, x=np.concatenate(xs), y=np.concatenate(ys))
    except DatasetIntegrityError:
        raise
    except _ARCHIVE_ERRORS + (pickle.UnpicklingError, ValueError) as e:
        raise DatasetIntegrityError(f"cannot read the CIFAR-10 tarball {download} ({type(e).__name__}: {e})",
                                    path=download) from e


UNPACKERS: dict[str, Callable[[Path, str, Mapping[str, Path]], None]] = {
    "as_is": as_is, "image": image, "zip_image": zip_image, "cifar10_python": cifar10_python,
}
