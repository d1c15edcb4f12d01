"""Readers and loaders: IDX ``.gz`` (MNIST, Fashion-MNIST), CIFAR-10 ``.npz``, SR PNG folders.

Two layers:

* low-level readers take a path and the expected checksum: :func:`read_idx`, :func:`read_npz`, :func:`read_image`,
  :func:`read_image_folder`, :func:`verify_file`;
* loaders take a dataset split and the data root and look everything up in :mod:`minilib.data.registry`:
  :func:`load_mnist`, :func:`load_fashion_mnist`, :func:`load_cifar10`, :func:`load_sr_images`, :func:`verify_dataset`.

Nothing is returned before its checksum has matched: a missing file raises :class:`DatasetNotFoundError`
(a ``FileNotFoundError``), a wrong one :class:`DatasetIntegrityError` (a ``ValueError``).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import lzma
import os
import re
import zipfile
import zlib
from pathlib import Path
from typing import Callable, Mapping, NamedTuple

import numpy as np

from .registry import (
    ENV_VAR,
    ArraySpec,
    DatasetIntegrityError,
    DatasetNotFoundError,
    DatasetSpec,
    FileSpec,
    get_spec,
    resolve_root,
)

IDX_IMAGES_MAGIC = 2051  # 0x00000803: unsigned byte, 3 dimensions (N, rows, cols)
IDX_LABELS_MAGIC = 2049  # 0x00000801: unsigned byte, 1 dimension (N,)
_IDX_UBYTE = 0x08  # the only IDX element type MNIST-style files use

_CHUNK = 1 << 20
_GZIP_ERRORS = (gzip.BadGzipFile, EOFError, zlib.error)  # bad header/CRC/length, truncated stream, bad deflate data
_NPZ_ERRORS = (zipfile.BadZipFile, EOFError, ValueError, lzma.LZMAError, zlib.error, OSError)
DEFAULT_FIX = "Delete the file and get a fresh copy."

# --------------------------------------------------------------------------------------------------
# Checksums, with a per-process cache so repeated loads skip re-hashing
# --------------------------------------------------------------------------------------------------

# (absolute path, size, mtime_ns, what was hashed) -> actual SHA-256. Like make and rsync, we trust that a file
# whose size and mtime are unchanged still has the content we hashed.
_VERIFIED: dict[tuple[str, int, int, str], str] = {}


def clear_verification_cache() -> None:
    """Forget every cached checksum, so the next load hashes its files again."""
    _VERIFIED.clear()


def _cache_key(path: Path, what: str) -> tuple[str, int, int, str]:
    st = path.stat()
    return (str(path.resolve()), st.st_size, st.st_mtime_ns, what)


def _sha256_stream(fileobj) -> str:
    h = hashlib.sha256()
    for block in iter(lambda: fileobj.read(_CHUNK), b""):
        h.update(block)
    return h.hexdigest()


def _sha256_array(arr: np.ndarray) -> str:
    """SHA-256 of ``arr.tobytes()`` (C order), without the copy ``tobytes`` would make."""
    return hashlib.sha256(memoryview(np.ascontiguousarray(arr)).cast("B")).hexdigest()


def _check_sha256(path: Path, what: str, expected: str, actual: str, fix_hint: str) -> None:
    if actual != expected:
        raise DatasetIntegrityError(
            f"Checksum mismatch for {path} ({what}):\n  expected SHA-256 {expected}\n  actual   SHA-256 {actual}\n"
            f"The file is corrupted or not the expected version. {fix_hint}",
            path=path, expected=expected, actual=actual)


def _integrity_error(path: Path, problem: str, fix_hint: str) -> DatasetIntegrityError:
    return DatasetIntegrityError(f"Corrupted dataset file {path}: {problem}. {fix_hint}", path=path)


def _require_file(path: Path) -> None:
    if not path.is_file():
        raise DatasetNotFoundError(f"Dataset file not found: {path}")


def _gunzip(path: Path, fix_hint: str) -> bytes:
    """The decompressed content of a gzip file; a truncated or damaged stream is an integrity error."""
    try:
        with gzip.open(path, "rb") as f:
            return f.read()
    except _GZIP_ERRORS as e:
        raise _integrity_error(path, f"cannot decompress gzip stream ({type(e).__name__}: {e})", fix_hint) from e


def file_sha256(path: str | os.PathLike, checksum: str = "file", fix_hint: str = DEFAULT_FIX) -> str:
    """SHA-256 of a file's bytes (``checksum="file"``) or of its decompressed gzip payload (``"gunzip"``).

    Streams in 1 MiB blocks, so memory stays flat for any file size. Results are cached per process
    (see :func:`clear_verification_cache`).
    """
    path = Path(path)
    if checksum not in ("file", "gunzip"):
        raise ValueError(f"checksum={checksum!r} must be 'file' or 'gunzip' (npz arrays are hashed by read_npz)")
    key = _cache_key(path, checksum)
    if key not in _VERIFIED:
        opener = gzip.open if checksum == "gunzip" else open
        try:
            with opener(path, "rb") as f:
                _VERIFIED[key] = _sha256_stream(f)
        except _GZIP_ERRORS as e:
            raise _integrity_error(path, f"cannot decompress gzip stream ({type(e).__name__}: {e})", fix_hint) from e
    return _VERIFIED[key]


# --------------------------------------------------------------------------------------------------
# IDX (.gz)
# --------------------------------------------------------------------------------------------------


def parse_idx(raw: bytes, *, expected_magic: int | None = None, path: Path | str = "<bytes>",
              fix_hint: str = DEFAULT_FIX) -> np.ndarray:
    """Parse decompressed IDX bytes into a writable uint8 array of the shape in the header.

    IDX layout (big-endian): 2 zero bytes, element type (0x08 = unsigned byte), ndim, then ndim uint32 sizes,
    then the data. Checks: the zero bytes, the element type, ``expected_magic`` if given (2051 images, 2049 labels),
    that the header fits, and that the data length equals the product of the sizes exactly.
    """
    path = Path(path)
    if len(raw) < 4:
        raise _integrity_error(path, f"IDX file is {len(raw)} bytes, too short for the 4-byte magic number", fix_hint)
    magic = int.from_bytes(raw[:4], "big")
    if raw[0] != 0 or raw[1] != 0 or raw[2] != _IDX_UBYTE:
        raise _integrity_error(path, f"bad IDX magic number {magic} (0x{magic:08x}); an unsigned-byte IDX file "
                                     f"starts with 0x000008, e.g. {IDX_IMAGES_MAGIC} for images", fix_hint)
    if expected_magic is not None and magic != expected_magic:
        raise _integrity_error(path, f"IDX magic number is {magic} ({raw[3]}-d), expected {expected_magic} "
                                     f"({expected_magic & 0xFF}-d)", fix_hint)
    ndim = raw[3]
    header_len = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header_len:
        raise _integrity_error(path, f"IDX header with {ndim} dimensions does not fit in {len(raw)} bytes", fix_hint)
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    n_data = len(raw) - header_len
    if n_data != int(np.prod(shape, dtype=np.int64)):
        raise _integrity_error(path, f"IDX header says shape {shape} = {int(np.prod(shape))} bytes, "
                                     f"but {n_data} data bytes follow the header", fix_hint)
    # .copy(): frombuffer over immutable bytes is read-only; callers expect an ordinary array.
    return np.frombuffer(raw, dtype=np.uint8, offset=header_len).reshape(shape).copy()


def read_idx(path: str | os.PathLike, expected_sha256: str | None = None, *, expected_magic: int | None = None,
             fix_hint: str = DEFAULT_FIX) -> np.ndarray:
    """Read a gzip-compressed IDX file into a uint8 array, e.g. (N, 28, 28) images or (N,) labels.

    Checks, in order: the file exists (:class:`DatasetNotFoundError`); the gzip stream is complete and its CRC
    matches; the SHA-256 of the **decompressed** bytes equals ``expected_sha256`` (skipped if None); then
    :func:`parse_idx`'s header checks. Any failure but the first raises :class:`DatasetIntegrityError`
    naming the file and ending with ``fix_hint``.
    """
    path = Path(path)
    _require_file(path)
    key = _cache_key(path, "gunzip")
    raw = _gunzip(path, fix_hint)
    if expected_sha256 is not None:
        if key not in _VERIFIED:
            _VERIFIED[key] = hashlib.sha256(raw).hexdigest()
        _check_sha256(path, "SHA-256 of the decompressed content", expected_sha256, _VERIFIED[key], fix_hint)
    return parse_idx(raw, expected_magic=expected_magic, path=path, fix_hint=fix_hint)


# --------------------------------------------------------------------------------------------------
# npz (CIFAR-10)
# --------------------------------------------------------------------------------------------------


def _check_array(path: Path, name: str, arr: np.ndarray, spec: ArraySpec, key: tuple, fix_hint: str) -> None:
    """Shape and dtype first (a hash of bytes cannot see a reshape), then SHA-256 of the raw bytes."""
    if arr.shape != tuple(spec.shape) or arr.dtype != np.dtype(spec.dtype):
        raise _integrity_error(path, f"member {name!r} has shape {arr.shape} dtype {arr.dtype.str}, "
                                     f"expected shape {tuple(spec.shape)} dtype {np.dtype(spec.dtype).str}", fix_hint)
    if key not in _VERIFIED:
        _VERIFIED[key] = _sha256_array(arr)
    _check_sha256(path, f"SHA-256 of member {name!r} array bytes", spec.sha256, _VERIFIED[key], fix_hint)


def read_npz(path: str | os.PathLike, arrays: Mapping[str, ArraySpec] | None = None, *,
             fix_hint: str = DEFAULT_FIX) -> dict[str, np.ndarray]:
    """Read the members of an ``.npz`` file (any zip compression ``np.load`` handles, including LZMA).

    With ``arrays`` (member name -> :class:`ArraySpec`), reads exactly those members and checks each one's shape,
    dtype and SHA-256 of ``arr.tobytes()``; without it, reads every member unchecked. Pickled objects are refused.
    A missing file raises :class:`DatasetNotFoundError`; an unreadable archive, a missing member or a mismatch
    raises :class:`DatasetIntegrityError`.
    """
    path = Path(path)
    _require_file(path)
    out: dict[str, np.ndarray] = {}
    try:
        with np.load(path, allow_pickle=False) as npz:
            names = list(arrays) if arrays is not None else list(npz.files)
            for name in names:
                if name not in npz.files:
                    raise _integrity_error(path, f"member {name!r} is missing (members: {npz.files})", fix_hint)
                key = _cache_key(path, f"array:{name}")
                out[name] = npz[name]
                if arrays is not None:
                    _check_array(path, name, out[name], arrays[name], key, fix_hint)
    except (DatasetIntegrityError, PermissionError):
        raise
    except _NPZ_ERRORS as e:
        raise _integrity_error(path, f"cannot read npz archive ({type(e).__name__}: {e})", fix_hint) from e
    return out


# --------------------------------------------------------------------------------------------------
# Images (SR sets)
# --------------------------------------------------------------------------------------------------


def read_image(path: str | os.PathLike, expected_sha256: str | None = None, *,
               fix_hint: str = DEFAULT_FIX) -> np.ndarray:
    """Read an image file into uint8 (H, W, 3) for colour or (H, W) for grayscale (mode ``L``).

    Checks the SHA-256 of the file bytes against ``expected_sha256`` (skipped if None) before decoding.
    Modes other than ``RGB``/``L`` (palette, alpha) are converted to RGB. Needs Pillow, imported here so the rest
    of minilib does not depend on it.
    """
    from PIL import Image  # lazy: only the SR chapters need Pillow

    path = Path(path)
    _require_file(path)
    key = _cache_key(path, "file")
    raw = path.read_bytes()  # one read serves both the hash and the decoder
    if expected_sha256 is not None:
        if key not in _VERIFIED:
            _VERIFIED[key] = hashlib.sha256(raw).hexdigest()
        _check_sha256(path, "SHA-256 of the file", expected_sha256, _VERIFIED[key], fix_hint)
    try:
        with Image.open(io.BytesIO(raw)) as img:
            img.load()
            if img.mode not in ("RGB", "L"):
                img = img.convert("RGB")
            return np.array(img, dtype=np.uint8)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise _integrity_error(path, f"cannot decode image ({type(e).__name__}: {e})", fix_hint) from e


def _natural_key(stem: str) -> list:
    # "t2" before "t10", as the T91 names are numbered without zero padding.
    return [int(tok) if tok.isdigit() else tok for tok in re.split(r"(\d+)", stem)]


def read_image_folder(folder: str | os.PathLike, expected_sha256: Mapping[str, str] | None = None, *,
                      suffix: str = ".png", fix_hint: str = DEFAULT_FIX) -> dict[str, np.ndarray]:
    """Read images from ``folder`` into ``{stem: uint8 array (H, W, 3) or (H, W)}``.

    With ``expected_sha256`` (stem -> SHA-256 of the file), reads exactly ``folder/<stem><suffix>`` for each stem,
    in the mapping's order, and checks each file; other files in the folder are ignored. Without it, reads every
    ``*<suffix>`` file, unchecked, in natural order (t2 before t10).
    """
    folder = Path(folder)
    if expected_sha256 is None:
        if not folder.is_dir():
            raise DatasetNotFoundError(f"Image folder not found: {folder}")
        stems = sorted((p.stem for p in folder.glob(f"*{suffix}")), key=_natural_key)
        return {stem: read_image(folder / f"{stem}{suffix}", fix_hint=fix_hint) for stem in stems}
    missing = [str(folder / f"{stem}{suffix}") for stem in expected_sha256 if not (folder / f"{stem}{suffix}").is_file()]
    if missing:
        raise DatasetNotFoundError(f"{len(missing)} image(s) not found: " + ", ".join(missing))
    return {stem: read_image(folder / f"{stem}{suffix}", digest, fix_hint=fix_hint)
            for stem, digest in expected_sha256.items()}


def verify_file(spec: FileSpec, path: str | os.PathLike, *, fix_hint: str = DEFAULT_FIX) -> None:
    """Check one registered file against its :class:`FileSpec`; return None if it is good, raise otherwise."""
    path = Path(path)
    _require_file(path)
    if spec.checksum == "arrays":
        read_npz(path, spec.arrays, fix_hint=fix_hint)
        return
    what = "SHA-256 of the decompressed content" if spec.checksum == "gunzip" else "SHA-256 of the file"
    _check_sha256(path, what, spec.sha256, file_sha256(path, spec.checksum, fix_hint), fix_hint)


# --------------------------------------------------------------------------------------------------
# Messages that tell the user what to do
# --------------------------------------------------------------------------------------------------


def _root_origin(root_arg) -> str:
    if root_arg is not None:
        return "from the root argument"
    if os.environ.get(ENV_VAR, "").strip():
        return f"from ${ENV_VAR}"
    return f"default ./data, because ${ENV_VAR} is not set"


def _command(spec: DatasetSpec, root_arg, root: Path) -> str:
    # With an explicit root the bare command would download elsewhere, so spell the root out.
    return spec.fix_command() + ("" if root_arg is None else f" --root {root}")


def _not_found_message(spec: DatasetSpec, missing: list[Path], root: Path, root_arg) -> str:
    shown = [f"  {p}" for p in missing[:5]]  # a whole missing folder would otherwise bury the advice
    if len(missing) > 5:
        shown.append(f"  ... and {len(missing) - 5} more in {missing[0].parent}")
    files = "\n".join(shown)
    lines = [f"{spec.title}: {len(missing)} file(s) not found:\n{files}",
             f"Data root in use: {root} ({_root_origin(root_arg)}). Set {ENV_VAR} to use another folder."]
    if spec.downloadable:
        lines.append(f"To get the files, run: {_command(spec, root_arg, root)}")
    else:
        lines.append(spec.how_to_get_at(root))
    return "\n".join(lines)


def _fix_hint(spec: DatasetSpec, root_arg, root: Path) -> str:
    if spec.downloadable:
        return f"Delete it and run `{_command(spec, root_arg, root)}` to fetch a fresh copy."
    return (f"Delete it and put a good copy in its place ({spec.title} has no download command); "
            f"`python -m minilib.data verify {spec.name}` checks the result.")


def _dataset_paths(spec: DatasetSpec, roles: list[str], root_arg) -> tuple[dict[str, Path], str]:
    """Paths of the requested files under the data root, raising one not-found error listing every missing file."""
    root = resolve_root(root_arg)
    paths = {role: root / spec.files[role].relpath for role in roles}
    missing = [p for p in paths.values() if not p.is_file()]
    if missing:
        raise DatasetNotFoundError(_not_found_message(spec, missing, root, root_arg))
    return paths, _fix_hint(spec, root_arg, root)


def _check_split(split: str) -> None:
    if split not in ("train", "test"):
        raise ValueError(f"split={split!r} must be 'train' or 'test'")


# --------------------------------------------------------------------------------------------------
# Loaders
# --------------------------------------------------------------------------------------------------


def _load_idx_pair(name: str, split: str, root) -> tuple[np.ndarray, np.ndarray]:
    _check_split(split)
    spec = get_spec(name)
    img_fs, lab_fs = spec.files[f"{split}-images"], spec.files[f"{split}-labels"]
    paths, fix = _dataset_paths(spec, [f"{split}-images", f"{split}-labels"], root)
    x = read_idx(paths[f"{split}-images"], img_fs.sha256, expected_magic=IDX_IMAGES_MAGIC, fix_hint=fix)
    y = read_idx(paths[f"{split}-labels"], lab_fs.sha256, expected_magic=IDX_LABELS_MAGIC, fix_hint=fix)
    if x.shape[1:] != (28, 28) or len(x) != len(y):
        raise _integrity_error(paths[f"{split}-images"], f"images {x.shape} and labels {y.shape} do not form "
                                                         f"(N, 28, 28) + (N,)", fix)
    # int64 labels, like CIFAR-10: uint8 arithmetic wraps silently (y - 10 == 246).
    return x, y.astype(np.int64)


def load_mnist(split: str = "train", root: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """MNIST ``split`` ("train": 60000, "test": 10000) from ``<root>/mnist/*.gz``; root defaults to :func:`data_root`.

    Returns ``x`` uint8 (N, 28, 28), values 0..255, and ``y`` int64 (N,), digits 0..9. Verifies the SHA-256 of
    each file's decompressed content and the IDX headers (magic 2051/2049, shape, byte count).
    Raises :class:`DatasetNotFoundError` (with the download command) or :class:`DatasetIntegrityError`.
    """
    return _load_idx_pair("mnist", split, root)


def load_fashion_mnist(split: str = "train", root: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST ``split`` from ``<root>/fashion-mnist/*.gz``; same shapes, dtypes and checks as :func:`load_mnist`.

    Labels 0..9 name ``registry.FASHION_MNIST_CLASSES`` (T-shirt/top ... Ankle boot).
    """
    return _load_idx_pair("fashion-mnist", split, root)


def load_cifar10(split: str = "train", root: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-10 ``split`` from ``<root>/cifar10/cifar10_{split}.npz`` (the JPEG-decoded copy: pixels are LOSSY).

    Returns ``x`` uint8 (N, 32, 32, 3) RGB, NHWC as stored (transpose to NCHW yourself), and ``y`` int64 (N,),
    labels 0..9 naming ``registry.CIFAR10_CLASSES``; N = 50000 (train) or 10000 (test, sorted by class).
    Verifies shape, dtype and the SHA-256 of each array's bytes. The train file takes ~10 s to decompress (LZMA).
    """
    _check_split(split)
    spec = get_spec("cifar10")
    paths, fix = _dataset_paths(spec, [split], root)
    arrays = read_npz(paths[split], spec.files[split].arrays, fix_hint=fix)
    return arrays["x"], arrays["y"]


def load_sr_images(name: str = "Set5", root: str | os.PathLike | None = None) -> dict[str, np.ndarray]:
    """Super-resolution HR images ``name`` in {"Set5", "Set14", "T91"} from ``<root>/sr/<name>/*.png``.

    Returns ``{stem: uint8 (H, W, 3)}`` in registry order, with (H, W) for grayscale images (Set14's bridge).
    Sizes vary and are not cropped to a multiple of the scale factor. Verifies the SHA-256 of every file.
    """
    spec = get_spec(name)
    if not spec.folder.startswith("sr/"):
        raise ValueError(f"name={name!r} must be one of 'Set5', 'Set14', 'T91'")
    _, fix = _dataset_paths(spec, list(spec.files), root)
    folder = resolve_root(root) / spec.folder
    return read_image_folder(folder, {stem: fs.sha256 for stem, fs in spec.files.items()}, fix_hint=fix)


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
