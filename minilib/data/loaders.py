"""Loaders: a dataset split from the data root, fetched on first use, checked before it is returned.

:func:`load_mnist`, :func:`load_fashion_mnist`, :func:`load_cifar10` and :func:`load_sr_images` look their files up in
:mod:`minilib.data.registry`. A missing file is fetched from the dataset's public sources (:mod:`minilib.data.fetch`)
unless fetching is off (``download=False``, or ``$MINILIB_OFFLINE`` set); ``sample=True`` reads the embedded sample
(:mod:`minilib.data.samples`) instead, which never needs a network. A file that cannot be had raises
:class:`DatasetNotFoundError` (a ``FileNotFoundError``) saying where it was looked for and what to do; a wrong one
:class:`DatasetIntegrityError` (a ``ValueError``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np

from .. import checks
from .location import OFFLINE_VAR, offline, resolve_root, root_origin
from .readers import (
    IDX_IMAGES_MAGIC,
    IDX_LABELS_MAGIC,
    check_class_counts,
    integrity_error,
    read_idx,
    read_image_folder,
    read_npz,
    verify_file,
)
from .registry import (
    ENV_VAR,
    DatasetIntegrityError,
    DatasetNotFoundError,
    DatasetSpec,
    DownloadError,
    DownloadUnavailableError,
    get_spec,
)
from .samples import SAMPLE_ROOT, sample_spec

CIFAR10_VARIANTS = {"official": "cifar10", "jpeg": "cifar10-jpeg"}

# --------------------------------------------------------------------------------------------------
# Messages that tell the user what to do
# --------------------------------------------------------------------------------------------------


def _command(spec: DatasetSpec, root_arg, root: Path) -> str:
    # With an explicit root the bare command would download elsewhere, so spell the root out.
    return spec.fix_command() + ("" if root_arg is None else f" --root {root}")


def _not_found_message(spec: DatasetSpec, missing: list[Path], root: Path, root_arg, why_not_fetched: str) -> str:
    shown = [f"  {p}" for p in missing[:5]]  # a whole missing folder would otherwise bury the advice
    if len(missing) > 5:
        shown.append(f"  ... and {len(missing) - 5} more in {missing[0].parent}")
    files = "\n".join(shown)
    lines = [f"{spec.title}: {len(missing)} file(s) not found:\n{files}",
             f"Data root in use: {root} ({root_origin(root_arg)}). Set {ENV_VAR} to use another folder."]
    if spec.downloadable:
        lines.append(f"{why_not_fetched} To fetch the files, run: {_command(spec, root_arg, root)}")
    else:
        lines.append(spec.how_to_get_at(root))
    return "\n".join(lines)


def _fix_hint(spec: DatasetSpec, root_arg, root: Path) -> str:
    if spec.downloadable:
        return f"Delete it and run `{_command(spec, root_arg, root)}` to fetch a fresh copy."
    return (f"Delete it and put a good copy in its place ({spec.title} has no download command); "
            f"`python -m minilib.data verify {spec.name}` checks the result.")


def _fetch_refusal(download: bool | None) -> str | None:
    """Why a missing file is not fetched, or None when it may be."""
    if download is False:
        return "Fetching is off (download=False)."
    if offline():
        return f"Fetching is off ({OFFLINE_VAR} is set)."
    return None


def _dataset_paths(spec: DatasetSpec, roles: list[str], root_arg, download: bool | None) -> tuple[dict[str, Path], str]:
    """Paths of the requested files under the data root, fetching the dataset first if any is missing.

    Raises one :class:`DatasetNotFoundError` listing every missing file when they cannot be had, and at once,
    before any fetch, one naming a directory that stands where a file goes (no download could replace it).
    """
    from .fetch import (
        download as fetch,  # fetch imports the readers; importing it here keeps the modules acyclic
    )

    root = resolve_root(root_arg)
    paths = {role: root / spec.files[role].relpath for role in roles}
    in_the_way = [path for path in paths.values() if path.is_dir()]
    if in_the_way:
        raise DatasetNotFoundError(f"{spec.title}: " + "; ".join(f"{path} is a directory, where the file {path.name} "
                                                                 f"goes" for path in in_the_way)
                                   + ". Move it away and retry; nothing was downloaded.")
    missing = [p for p in paths.values() if not p.is_file()]
    if missing and spec.downloadable:
        refusal = _fetch_refusal(download)
        if refusal is not None:
            raise DatasetNotFoundError(_not_found_message(spec, missing, root, root_arg, refusal))
        try:
            fetch(spec.name, root, log=print)
        except (DownloadError, DownloadUnavailableError, DatasetIntegrityError, OSError) as e:
            raise DatasetNotFoundError(_not_found_message(
                spec, missing, root, root_arg, f"Fetching failed: {e}\n")) from e
    elif missing:
        raise DatasetNotFoundError(_not_found_message(spec, missing, root, root_arg, ""))
    return paths, _fix_hint(spec, root_arg, root)


def _check_split(split: str) -> None:
    if split not in ("train", "test"):
        raise ValueError(f"split={split!r} must be 'train' or 'test'")


# --------------------------------------------------------------------------------------------------
# Loaders
# --------------------------------------------------------------------------------------------------


def _load_idx_pair(spec: DatasetSpec, split: str, root, download) -> tuple[np.ndarray, np.ndarray]:
    _check_split(split)
    img_fs, lab_fs = spec.files[f"{split}-images"], spec.files[f"{split}-labels"]
    paths, fix = _dataset_paths(spec, [f"{split}-images", f"{split}-labels"], root, download)
    x = read_idx(paths[f"{split}-images"], img_fs.sha256, expected_magic=IDX_IMAGES_MAGIC, expected_size=img_fs.size,
                 fix_hint=fix)
    y = read_idx(paths[f"{split}-labels"], lab_fs.sha256, expected_magic=IDX_LABELS_MAGIC, expected_size=lab_fs.size,
                 fix_hint=fix)
    if x.shape[1:] != (28, 28) or len(x) != len(y):
        raise integrity_error(paths[f"{split}-images"], f"images {x.shape} and labels {y.shape} do not form "
                                                        f"(N, 28, 28) + (N,)", fix)
    # int64 labels, like CIFAR-10: uint8 arithmetic wraps silently (y - 10 == 246).
    return x, y.astype(np.int64)


def load_mnist(split: str = "train", root: str | os.PathLike | None = None, *, sample: bool = False,
               download: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """MNIST ``split`` ("train": 60000, "test": 10000) from ``<root>/mnist/*.gz``; root defaults to :func:`data_root`.

    Returns ``x`` uint8 (N, 28, 28), values 0..255, and ``y`` int64 (N,), digits 0..9. Verifies the SHA-256 of
    each file's decompressed content and the IDX headers (magic 2051/2049, shape, byte count). Missing files are
    fetched first unless ``download=False`` or ``$MINILIB_OFFLINE`` is set. ``sample=True`` reads the embedded sample
    instead (the first 2,048 training and 1,000 test images; ``root`` and ``download`` do not apply).
    Raises :class:`DatasetNotFoundError` (with the download command) or :class:`DatasetIntegrityError`.
    """
    checks.flag(sample, "sample")
    checks.flag(download, "download", allow_none=True)
    if sample:
        return _load_idx_pair(sample_spec("mnist"), split, SAMPLE_ROOT, False)
    return _load_idx_pair(get_spec("mnist"), split, root, download)


def load_fashion_mnist(split: str = "train", root: str | os.PathLike | None = None, *,
                       download: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST ``split`` from ``<root>/fashion-mnist/*.gz``; same shapes, dtypes and checks as :func:`load_mnist`.

    Labels 0..9 name ``registry.FASHION_MNIST_CLASSES`` (T-shirt/top ... Ankle boot).
    """
    checks.flag(download, "download", allow_none=True)
    return _load_idx_pair(get_spec("fashion-mnist"), split, root, download)


def cifar10_variant(root: str | os.PathLike | None = None, variant: str | None = None) -> str:
    """Which CIFAR-10 copy :func:`load_cifar10` reads: ``variant`` if given, else "official" when the official
    release is under the data root, else "jpeg" when the JPEG-decoded copy is, else "official" (fetched)."""
    if variant is not None:
        return checks.one_of(variant, "variant", tuple(CIFAR10_VARIANTS))
    base = resolve_root(root)
    for name in CIFAR10_VARIANTS:
        if not get_spec(CIFAR10_VARIANTS[name]).missing_files(base):
            return name
    return "official"


def cifar10_description(variant: str) -> str:
    """How tables and results name a CIFAR-10 copy, e.g. "CIFAR-10 (JPEG-decoded copy)"."""
    return get_spec(CIFAR10_VARIANTS[cifar10_variant(variant=variant)]).title


def load_cifar10(split: str = "train", root: str | os.PathLike | None = None, *, variant: str | None = None,
                 download: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-10 ``split`` from the data root: the official release (``variant="official"``, under
    ``cifar10-official/``, fetched from its python tarball when missing) or the JPEG-decoded copy (``"jpeg"``,
    under ``cifar10/``: LOSSY pixels, test split sorted by class, no public source). ``variant=None`` picks with
    :func:`cifar10_variant`; record that in results, as :mod:`minilib.reproduce.cifar10` does.

    Returns ``x`` uint8 (N, 32, 32, 3) RGB, NHWC as stored (transpose to NCHW yourself), and ``y`` int64 (N,),
    labels 0..9 naming ``registry.CIFAR10_CLASSES``; N = 50000 (train) or 10000 (test). Verifies shape, dtype, the
    SHA-256 of each array's bytes where one is known, the archive's CRCs and the class counts.
    """
    _check_split(split)
    checks.flag(download, "download", allow_none=True)
    spec = get_spec(CIFAR10_VARIANTS[cifar10_variant(root, variant)])
    paths, fix = _dataset_paths(spec, [split], root, download)
    arrays = read_npz(paths[split], spec.files[split].arrays, fix_hint=fix)
    check_class_counts(paths[split], arrays, spec.files[split].class_counts, fix)
    return arrays["x"], arrays["y"]


def load_sr_images(name: str = "Set5", root: str | os.PathLike | None = None, *, sample: bool = False,
                   download: bool | None = None) -> dict[str, np.ndarray]:
    """Super-resolution HR images ``name`` in {"Set5", "Set14", "T91"} from ``<root>/sr/<name>/*.png``.

    Returns ``{stem: uint8 (H, W, 3)}`` in registry order, with (H, W) for grayscale images (Set14's bridge).
    Sizes vary and are not cropped to a multiple of the scale factor. Verifies the SHA-256 of every image's
    decoded pixels; missing images are fetched first, as in :func:`load_mnist`. ``sample=True`` reads the
    embedded sample: Set5 butterfly, Set14 barbara and comic (T91 has none).
    """
    checks.flag(sample, "sample")
    checks.flag(download, "download", allow_none=True)
    spec = get_spec(name)
    if not spec.folder.startswith("sr/"):
        raise ValueError(f"name={name!r} must be one of 'Set5', 'Set14', 'T91'")
    if sample:
        spec, root, download = sample_spec(spec.name), SAMPLE_ROOT, False
    _, fix = _dataset_paths(spec, list(spec.files), root, download)
    folder = resolve_root(root) / spec.folder
    return read_image_folder(folder, {stem: fs.sha256 for stem, fs in spec.files.items()}, checksum="pixels",
                             fix_hint=fix)


# --------------------------------------------------------------------------------------------------
# Checking what is there
# --------------------------------------------------------------------------------------------------


class FileCheck(NamedTuple):
    """Result of checking one file: ``status`` is "ok", "missing" or "corrupt"; ``message`` explains the last two."""

    path: Path
    status: str
    message: str = ""


def verify_dataset(name: str, root: str | os.PathLike | None = None,
                   on_file: Callable[[FileCheck], None] | None = None) -> list[FileCheck]:
    """Check every registered file of dataset ``name`` under the data root; never raises for bad files.

    Returns one :class:`FileCheck` per file (``on_file`` is called with each as it completes, for progress output).
    """
    spec = get_spec(name)
    root_path = resolve_root(root)
    fix = _fix_hint(spec, root, root_path)
    results = []
    for fs in spec.files.values():
        path = root_path / fs.relpath
        try:
            verify_file(fs, path, fix_hint=fix)
            check = FileCheck(path, "ok")
        except DatasetNotFoundError:
            check = FileCheck(path, "missing", f"not found: {path}")
        except DatasetIntegrityError as e:
            check = FileCheck(path, "corrupt", str(e))
        results.append(check)
        if on_file is not None:
            on_file(check)
    return results
