"""Dataset registry: where each file lives under the data root, how to check it, and where to fetch it.

Every file the loaders read is listed here with a SHA-256 (the values are in :mod:`.checksums`), so a loader never
uses a file it cannot vouch for. *What* is hashed depends on the format, chosen so that any faithful copy passes and
any changed pixel fails:

* IDX ``.gz`` (MNIST, Fashion-MNIST): the SHA-256 of the **decompressed** bytes (``checksum="gunzip"``).
  The ``.gz`` bytes change whenever a file is recompressed (gzip level, header mtime, Debian's repack), while the
  IDX payload does not. MNIST values are from the data folder's ``README.md`` §1 (and match the canonical MD5s there);
  Fashion-MNIST values were computed with ``gzip`` + ``hashlib`` from the data folder's ``fashion-mnist/`` after
  checking that the decompressed MD5s equal the canonical ones listed in that README.
* CIFAR-10 ``.npz``: the SHA-256 of each member array's raw bytes, ``sha256(arr.tobytes())`` (``checksum="arrays"``),
  plus its shape and dtype. The whole-file SHA-256 would tie us to one zip container: the shared copy uses LZMA members,
  and the README itself recommends re-saving with ``np.savez_compressed`` to load ~7x faster, which changes every file
  byte but no array byte. Hashing the arrays costs nothing extra because the loader decompresses them anyway.
  ``x`` values are from the README; ``y`` values were computed from the shared files after their whole-file SHA-256
  matched ``SHA256SUMS`` and their ``x`` hashes matched the README.
  The official CIFAR-10 release (``cifar10``) is converted from its python tarball to the same layout. No public
  source gives a hash of the converted arrays, so its training labels are checked against the JPEG copy's (the same
  official order), and the rest of the bytes are vouched for by the MD5s published for the tarball and each batch,
  checked during the conversion; afterwards the npz's own CRCs, the shapes and the class counts are checked.
* SR images (Set5, Set14, T91): the SHA-256 of the decoded pixels (``checksum="pixels"``), so that a PNG and a BMP
  of the same image both pass.

Each dataset also lists its public :mod:`.sources`; the JPEG-decoded CIFAR-10 copy has none (it exists only in the
project's shared data folder), and the embedded samples (:mod:`.samples`) need none.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from . import checksums, sources
from .location import ENV_VAR, data_root, resolve_root  # noqa: F401  (re-exported: the registry was their home)
from .sources import Source

# --------------------------------------------------------------------------------------------------
# Errors (defined here, the bottom module, so every other module can raise and catch them)
# --------------------------------------------------------------------------------------------------


class DatasetNotFoundError(FileNotFoundError):
    """A dataset file is missing. The message says which file, the data root, and how to get the file."""


class DatasetIntegrityError(ValueError):
    """A dataset file exists but is not the expected content (checksum, gzip stream, header, shape).

    Attributes ``path``, ``expected`` and ``actual`` (SHA-256 hex strings, or None for structural errors)
    let callers and tests inspect what went wrong without parsing the message.
    """

    def __init__(self, message: str, *, path: Path | str | None = None, expected: str | None = None,
                 actual: str | None = None):
        super().__init__(message)
        self.path = None if path is None else Path(path)
        self.expected = expected
        self.actual = actual


class DownloadUnavailableError(ValueError):
    """``download`` was asked for a dataset that has no public source, or fetching is turned off
    (``MINILIB_OFFLINE=1`` or ``download=False``)."""


class DownloadError(OSError):
    """Every source failed to deliver a file (network error, HTTP error; the message lists each URL and error), or
    a file or folder is in the way of the fetched files."""


# --------------------------------------------------------------------------------------------------
# Specs
# --------------------------------------------------------------------------------------------------

CHECKSUM_KINDS = ("gunzip", "file", "arrays", "pixels")


@dataclass(frozen=True)
class ArraySpec:
    """Expected shape, dtype (numpy dtype string, e.g. ``"uint8"``, ``"<i8"``) and SHA-256 of ``arr.tobytes()``;
    ``sha256`` is None where no independent value exists (see the module docstring)."""

    shape: tuple[int, ...]
    dtype: str
    sha256: str | None


@dataclass(frozen=True)
class FileSpec:
    """One file of a dataset.

    ``relpath`` is relative to the data root (POSIX separators). ``checksum`` says what ``sha256`` covers:
    ``"gunzip"`` = the decompressed gzip payload, ``"file"`` = the file bytes, ``"pixels"`` = the decoded image
    (:func:`minilib.data.readers.pixels_sha256`), ``"arrays"`` = each npz member's raw bytes, in which case ``arrays``
    maps member name -> :class:`ArraySpec` and ``sha256`` is None. ``class_counts`` (npz only): the number of
    examples of each label in member ``y``, checked where the arrays have no known hash. ``size`` (``"gunzip"``
    files): the decompressed size in bytes; the readers stop decompressing there, so a gzip bomb under the file's
    name fails at once instead of filling the memory.
    """

    relpath: str
    checksum: str
    sha256: str | None = None
    arrays: Mapping[str, ArraySpec] = field(default_factory=dict)
    class_counts: tuple[int, ...] = ()
    size: int | None = None

    def __post_init__(self):
        if self.checksum not in CHECKSUM_KINDS:
            raise ValueError(f"checksum={self.checksum!r} must be one of {CHECKSUM_KINDS}")
        if (self.checksum == "arrays") != (self.sha256 is None):
            raise ValueError(f"{self.relpath}: give sha256 for checksum={self.checksum!r} files, arrays for npz files")

    @property
    def filename(self) -> str:
        return self.relpath.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset: its files (``role -> FileSpec``), its public sources, and how to get it if there are none.

    ``sources`` (:class:`minilib.data.sources.Source`) say where each file can be fetched; empty ``sources`` means
    no public source publishes these files, and ``how_to_get`` explains where to place them. ``variant`` names the
    copy for results and tables (e.g. "official" or "JPEG-decoded" for CIFAR-10).
    """

    name: str
    title: str
    folder: str
    files: Mapping[str, FileSpec]
    sources: tuple[Source, ...] = ()
    how_to_get: str = ""
    note: str = ""
    variant: str = ""

    @property
    def downloadable(self) -> bool:
        return bool(self.sources)

    def how_to_get_at(self, root: Path) -> str:
        """``how_to_get`` with the actual data root filled in."""
        return self.how_to_get.replace("<data root>", str(root))

    def missing_files(self, root: Path) -> list[Path]:
        """The dataset's files that are not under ``root`` (presence only: the readers check the content)."""
        return [root / fs.relpath for fs in self.files.values() if not (root / fs.relpath).is_file()]

    def fix_command(self) -> str:
        """The shell command that fetches this dataset (only meaningful when downloadable)."""
        return f"python -m minilib.data download {self.name}"


def idx_sizes(n_train: int, n_test: int) -> dict[str, int]:
    """Decompressed bytes of the four IDX files of 28x28 images: a 16-byte header and N*784 pixels, an 8-byte
    header and N labels."""
    return {"train-images": 16 + 784 * n_train, "train-labels": 8 + n_train,
            "test-images": 16 + 784 * n_test, "test-labels": 8 + n_test}


def _idx_files(folder: str, sha256: Mapping[str, str]) -> dict[str, FileSpec]:
    # Role names "train-images" etc. mirror the standard IDX file names, which are the same for both datasets.
    sizes = idx_sizes(60000, 10000)
    return {role: FileSpec(f"{folder}/{fname}", "gunzip", sha256[role], size=sizes[role])
            for role, fname in sources.IDX_FILENAMES.items()}


def _image_files(folder: str, sha256: Mapping[str, str]) -> dict[str, FileSpec]:
    return {stem: FileSpec(f"{folder}/{stem}.png", "pixels", digest) for stem, digest in sha256.items()}


def _cifar10_files(folder: str, hashes: Mapping[str, Mapping[str, str | None]]) -> dict[str, FileSpec]:
    sizes = {"train": 50000, "test": 10000}
    return {split: FileSpec(f"{folder}/cifar10_{split}.npz", "arrays", arrays={
        "x": ArraySpec((n, 32, 32, 3), "uint8", hashes[split]["x"]),
        "y": ArraySpec((n,), "<i8", hashes[split]["y"]),
    }, class_counts=(n // 10,) * 10) for split, n in sizes.items()}


# The official release: only the training labels have an independent hash (see the module docstring).
_CIFAR10_OFFICIAL_SHA256 = {"train": {"x": None, "y": checksums.CIFAR10_JPEG_ARRAYS_SHA256["train"]["y"]},
                            "test": {"x": None, "y": None}}

MNIST_CLASSES = tuple(str(d) for d in range(10))
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

_IDX_NOTE = "IDX .gz files, checked by their decompressed content"
_SR_NOTE = "PNG folder, checked by decoded pixels"


def _sr_spec(name: str, title: str, sha256: Mapping[str, str], found: tuple[Source, ...], note: str) -> DatasetSpec:
    return DatasetSpec(name, title, f"sr/{title}", _image_files(f"sr/{title}", sha256), found, note=note)


DATASETS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec("mnist", "MNIST", "mnist", _idx_files("mnist", checksums.MNIST_GUNZIP_SHA256),
                         sources.idx_sources(sources.MNIST_MIRRORS), note=_IDX_NOTE),
    "fashion-mnist": DatasetSpec(
        "fashion-mnist", "Fashion-MNIST", "fashion-mnist",
        _idx_files("fashion-mnist", checksums.FASHION_MNIST_GUNZIP_SHA256),
        sources.idx_sources(sources.FASHION_MNIST_MIRRORS), note=_IDX_NOTE),
    "cifar10": DatasetSpec(
        "cifar10", "CIFAR-10", "cifar10-official", _cifar10_files("cifar10-official", _CIFAR10_OFFICIAL_SHA256),
        sources.cifar10_official_sources(), variant="official",
        note="the official release, converted from its python tarball; lossless"),
    "cifar10-jpeg": DatasetSpec(
        "cifar10-jpeg", "CIFAR-10 (JPEG-decoded copy)", "cifar10",
        _cifar10_files("cifar10", checksums.CIFAR10_JPEG_ARRAYS_SHA256), variant="JPEG-decoded",
        how_to_get=("No public source publishes this copy: it was decoded from a public set of JPEG re-encodings "
                    "and exists only in the project's shared data folder (set MINILIB_DATA to a folder that has "
                    "cifar10/ in it, as CI does). `python -m minilib.data download cifar10` fetches the official, "
                    "lossless release instead."),
        note="LOSSY: decoded from JPEG, not the original pixels; test split sorted by class"),
    "set5": _sr_spec("set5", "Set5", checksums.SET5_PIXELS_SHA256, sources.set5_sources(), _SR_NOTE),
    "set14": _sr_spec("set14", "Set14", checksums.SET14_PIXELS_SHA256, sources.set14_sources(),
                      _SR_NOTE + "; bridge is grayscale"),
    "t91": _sr_spec("t91", "T91", checksums.T91_PIXELS_SHA256, sources.t91_sources(),
                    _SR_NOTE + "; published as BMP, stored as PNG"),
}


def get_spec(name: str) -> DatasetSpec:
    """Look up a dataset by name, case-insensitively; ``_`` and ``-`` are interchangeable (``Fashion_MNIST`` works).

    Raises ``ValueError`` listing the known names when ``name`` is unknown.
    """
    key = str(name).strip().lower().replace("_", "-")
    key = {"cifar-10": "cifar10", "cifar-10-jpeg": "cifar10-jpeg"}.get(key, key)
    if key not in DATASETS:
        raise ValueError(f"unknown dataset name={name!r}; known datasets: {', '.join(DATASETS)}")
    return DATASETS[key]
