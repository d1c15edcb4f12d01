"""Low-level readers: IDX ``.gz`` (MNIST, Fashion-MNIST), CIFAR-10 ``.npz``, images; each takes a path and the
expected checksum (:func:`read_idx`, :func:`read_npz`, :func:`read_image`, :func:`read_image_folder`,
:func:`verify_file`).
The loaders that look files up in the registry are in :mod:`minilib.data.loaders`.

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
from typing import Mapping

import numpy as np

from .registry import ArraySpec, DatasetIntegrityError, DatasetNotFoundError, FileSpec

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


def integrity_error(path: Path, problem: str, fix_hint: str) -> DatasetIntegrityError:
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
        raise integrity_error(path, f"cannot decompress gzip stream ({type(e).__name__}: {e})", fix_hint) from e


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
            raise integrity_error(path, f"cannot decompress gzip stream ({type(e).__name__}: {e})", fix_hint) from e
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
        raise integrity_error(path, f"IDX file is {len(raw)} bytes, too short for the 4-byte magic number", fix_hint)
    magic = int.from_bytes(raw[:4], "big")
    if raw[0] != 0 or raw[1] != 0 or raw[2] != _IDX_UBYTE:
        raise integrity_error(path, f"bad IDX magic number {magic} (0x{magic:08x}); an unsigned-byte IDX file "
                                     f"starts with 0x000008, e.g. {IDX_IMAGES_MAGIC} for images", fix_hint)
    if expected_magic is not None and magic != expected_magic:
        raise integrity_error(path, f"IDX magic number is {magic} ({raw[3]}-d), expected {expected_magic} "
                                     f"({expected_magic & 0xFF}-d)", fix_hint)
    ndim = raw[3]
    header_len = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header_len:
        raise integrity_error(path, f"IDX header with {ndim} dimensions does not fit in {len(raw)} bytes", fix_hint)
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    n_data = len(raw) - header_len
    if n_data != int(np.prod(shape, dtype=np.int64)):
        raise integrity_error(path, f"IDX header says shape {shape} = {int(np.prod(shape))} bytes, "
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
        raise integrity_error(path, f"member {name!r} has shape {arr.shape} dtype {arr.dtype.str}, "
                                     f"expected shape {tuple(spec.shape)} dtype {np.dtype(spec.dtype).str}", fix_hint)
    if spec.sha256 is None:
        return  # no independent value: read_npz has checked the archive's CRCs instead
    if key not in _VERIFIED:
        _VERIFIED[key] = _sha256_array(arr)
    _check_sha256(path, f"SHA-256 of member {name!r} array bytes", spec.sha256, _VERIFIED[key], fix_hint)


def read_npz(path: str | os.PathLike, arrays: Mapping[str, ArraySpec] | None = None, *,
             fix_hint: str = DEFAULT_FIX) -> dict[str, np.ndarray]:
    """Read the members of an ``.npz`` file (any zip compression ``np.load`` handles, including LZMA).

    With ``arrays`` (member name -> :class:`ArraySpec`), reads exactly those members and checks each one's shape,
    dtype and SHA-256 of ``arr.tobytes()`` (where an ArraySpec has no hash, the zip CRC of every member instead);
    without it, reads every member unchecked. Pickled objects are refused.
    A missing file raises :class:`DatasetNotFoundError`; an unreadable archive, a missing member or a mismatch
    raises :class:`DatasetIntegrityError`.
    """
    path = Path(path)
    _require_file(path)
    out: dict[str, np.ndarray] = {}
    try:
        if arrays is not None and any(spec.sha256 is None for spec in arrays.values()):
            with zipfile.ZipFile(path) as archive:
                damaged = archive.testzip()  # reads every member and checks its CRC-32
            if damaged is not None:
                raise integrity_error(path, f"member {damaged!r} fails its CRC-32 check", fix_hint)
        with np.load(path, allow_pickle=False) as npz:
            names = list(arrays) if arrays is not None else list(npz.files)
            for name in names:
                if name not in npz.files:
                    raise integrity_error(path, f"member {name!r} is missing (members: {npz.files})", fix_hint)
                key = _cache_key(path, f"array:{name}")
                out[name] = npz[name]
                if arrays is not None:
                    _check_array(path, name, out[name], arrays[name], key, fix_hint)
    except (DatasetIntegrityError, PermissionError):
        raise
    except _NPZ_ERRORS as e:
        raise integrity_error(path, f"cannot read npz archive ({type(e).__name__}: {e})", fix_hint) from e
    return out


# --------------------------------------------------------------------------------------------------
# Images (SR sets)
# --------------------------------------------------------------------------------------------------


def pixels_sha256(pixels: np.ndarray) -> str:
    """SHA-256 of a decoded image: the text of its shape, e.g. ``"(256, 256, 3)"``, then its uint8 bytes (C order).

    The shape is part of the hash so that the same bytes read as another shape do not pass.
    """
    pixels = np.ascontiguousarray(pixels)
    digest = hashlib.sha256(repr(tuple(pixels.shape)).encode())
    digest.update(memoryview(pixels).cast("B"))
    return digest.hexdigest()


def read_image(path: str | os.PathLike, expected_sha256: str | None = None, *, checksum: str = "file",
               fix_hint: str = DEFAULT_FIX) -> np.ndarray:
    """Read an image file into uint8 (H, W, 3) for colour or (H, W) for grayscale (mode ``L``).

    Checks ``expected_sha256`` (skipped if None) against the SHA-256 of the file bytes (``checksum="file"``, before
    decoding) or of the decoded pixels (``checksum="pixels"``, :func:`pixels_sha256`). Modes other than ``RGB``/``L``
    (palette, alpha) are converted to RGB. Needs Pillow, imported here so the rest of minilib does not depend on it.
    """
    from PIL import Image  # lazy: only the SR chapters need Pillow

    if checksum not in ("file", "pixels"):
        raise ValueError(f"checksum={checksum!r} must be 'file' or 'pixels'")
    path = Path(path)
    _require_file(path)
    key = _cache_key(path, checksum)
    raw = path.read_bytes()  # one read serves both the hash and the decoder
    if expected_sha256 is not None and checksum == "file":
        if key not in _VERIFIED:
            _VERIFIED[key] = hashlib.sha256(raw).hexdigest()
        _check_sha256(path, "SHA-256 of the file", expected_sha256, _VERIFIED[key], fix_hint)
    try:
        with Image.open(io.BytesIO(raw)) as img:
            img.load()
            if img.mode not in ("RGB", "L"):
                img = img.convert("RGB")
            pixels = np.array(img, dtype=np.uint8)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise integrity_error(path, f"cannot decode image ({type(e).__name__}: {e})", fix_hint) from e
    if expected_sha256 is not None and checksum == "pixels":
        if key not in _VERIFIED:
            _VERIFIED[key] = pixels_sha256(pixels)
        _check_sha256(path, "SHA-256 of the decoded pixels", expected_sha256, _VERIFIED[key], fix_hint)
    return pixels


def _natural_key(stem: str) -> list:
    # "t2" before "t10", as the T91 names are numbered without zero padding.
    return [int(tok) if tok.isdigit() else tok for tok in re.split(r"(\d+)", stem)]


def read_image_folder(folder: str | os.PathLike, expected_sha256: Mapping[str, str] | None = None, *,
                      suffix: str = ".png", checksum: str = "file",
                      fix_hint: str = DEFAULT_FIX) -> dict[str, np.ndarray]:
    """Read images from ``folder`` into ``{stem: uint8 array (H, W, 3) or (H, W)}``.

    With ``expected_sha256`` (stem -> SHA-256 of the file, or of the pixels with ``checksum="pixels"``), reads
    exactly ``folder/<stem><suffix>`` for each stem, in the mapping's order, and checks each file; other files in the
    folder are ignored. Without it, reads every ``*<suffix>`` file, unchecked, in natural order (t2 before t10).
    """
    folder = Path(folder)
    if expected_sha256 is None:
        if not folder.is_dir():
            raise DatasetNotFoundError(f"Image folder not found: {folder}")
        stems = sorted((p.stem for p in folder.glob(f"*{suffix}")), key=_natural_key)
        return {stem: read_image(folder / f"{stem}{suffix}", fix_hint=fix_hint) for stem in stems}
    paths = {stem: folder / f"{stem}{suffix}" for stem in expected_sha256}
    missing = [str(path) for path in paths.values() if not path.is_file()]
    if missing:
        raise DatasetNotFoundError(f"{len(missing)} image(s) not found: " + ", ".join(missing))
    return {stem: read_image(paths[stem], digest, checksum=checksum, fix_hint=fix_hint)
            for stem, digest in expected_sha256.items()}


def verify_file(spec: FileSpec, path: str | os.PathLike, *, fix_hint: str = DEFAULT_FIX) -> None:
    """Check one registered file against its :class:`FileSpec`; return None if it is good, raise otherwise."""
    path = Path(path)
    _require_file(path)
    if spec.checksum == "arrays":
        arrays = read_npz(path, spec.arrays, fix_hint=fix_hint)
        check_class_counts(path, arrays, spec.class_counts, fix_hint)
    elif spec.checksum == "pixels":
        read_image(path, spec.sha256, checksum="pixels", fix_hint=fix_hint)
    else:
        what = "SHA-256 of the decompressed content" if spec.checksum == "gunzip" else "SHA-256 of the file"
        _check_sha256(path, what, spec.sha256, file_sha256(path, spec.checksum, fix_hint), fix_hint)


def check_class_counts(path: Path, arrays: Mapping[str, np.ndarray], counts: tuple[int, ...], fix_hint: str) -> None:
    """Labels ``arrays["y"]`` must be 0 .. len(counts)-1 with exactly ``counts[k]`` examples of label k."""
    if not counts:
        return
    y = arrays["y"]
    in_range = y.min(initial=0) >= 0 and y.max(initial=0) < len(counts)
    if not in_range or tuple(np.bincount(y, minlength=len(counts))) != counts:
        raise integrity_error(path, f"labels are not {len(counts)} classes of {counts[0]} examples each", fix_hint)
