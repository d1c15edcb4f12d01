"""Low-level readers: IDX ``.gz`` (MNIST, Fashion-MNIST), CIFAR-10 ``.npz``, images; each takes a path and the
expected checksum (:func:`read_idx`, :func:`read_npz`, :func:`read_image`, :func:`read_image_folder`,
:func:`verify_file`).
The loaders that look files up in the registry are in :mod:`minilib.data.loaders`.

Nothing is returned before its checksum has matched, computed from the very bytes returned: a missing file (or a
directory where the file goes) raises :class:`DatasetNotFoundError` (a ``FileNotFoundError``), a wrong one
:class:`DatasetIntegrityError` (a ``ValueError``). A gzip stream is decompressed block by block and stopped at the
registry's size, so a gzip bomb under a data set's name fails at once with little memory.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import lzma
import math
import os
import re
import zipfile
import zlib
from pathlib import Path
from typing import Mapping

import numpy as np

from .. import checks
from .registry import ArraySpec, DatasetIntegrityError, DatasetNotFoundError, FileSpec

IDX_IMAGES_MAGIC = 2051  # 0x00000803: unsigned byte, 3 dimensions (N, rows, cols)
IDX_LABELS_MAGIC = 2049  # 0x00000801: unsigned byte, 1 dimension (N,)
_IDX_UBYTE = 0x08  # the only IDX element type MNIST-style files use

_CHUNK = 1 << 20
_GZIP_ERRORS = (gzip.BadGzipFile, EOFError, zlib.error)  # bad header/CRC/length, truncated stream, bad deflate data
_NPZ_ERRORS = (zipfile.BadZipFile, EOFError, ValueError, lzma.LZMAError, zlib.error, OSError)
DEFAULT_FIX = "Delete the file and get a fresh copy."

# --------------------------------------------------------------------------------------------------
# Checksums: every reader hashes what it returns; verify_file may reuse a digest of an unchanged file
# --------------------------------------------------------------------------------------------------

# (absolute path, device, inode, size, mtime_ns, ctime_ns, what was hashed) -> actual SHA-256: the digests that
# verify_file (a check that returns no data) may reuse. The readers that return data (read_idx, read_npz, read_image)
# always hash the very bytes they return, so no cache or race can hand out bytes that were not checked.
#
# Why, and why verify_file keeps a cache: measured on the 2-core build machine under load (load average 4-6),
# SHA-256 costs 0.08 s for MNIST's 47 MB of training images, whose load takes 0.25-0.5 s (0.32 s of it gunzip), and
# 0.2 s for CIFAR-10's 150 MB of training arrays, whose load takes 15 s (LZMA). A repeated load_mnist("train") took
# 0.25 s (best of 5; median 0.26 s) with the old per-process cache and 0.25 s (median 0.31 s) hashing every time;
# load_cifar10("test") 1.9 s and 2.2 s; the peak memory of load_mnist("train") stayed at 90 MiB. So the readers hash
# every time. verify_file, though, would decompress a whole file only to hash it again; its cache key has the ctime
# and the inode besides size and mtime: a same-size rewrite whose mtime is put back (os.utime) still moves the
# ctime, which no user call can set back, and a file replaced by another one has another inode. (The ctime ticks
# with the kernel's clock, every few milliseconds: a rewrite within the same tick as the file's previous change
# would not be seen by verify_file, but is by every reader.)
_VERIFIED: dict[tuple, str] = {}


def clear_verification_cache() -> None:
    """Forget every cached checksum, so the next check hashes its files again."""
    _VERIFIED.clear()


def _stat_key(path: Path) -> tuple:
    st = path.stat()
    return (str(path.resolve()), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _remember(path: Path, what: str, before: tuple, digest: str) -> None:
    """Cache ``digest`` of ``path`` when the file did not change while it was read (its stat key is ``before``)."""
    try:
        if _stat_key(path) == before:
            _VERIFIED[(*before, what)] = digest
    except OSError:
        pass


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


# --------------------------------------------------------------------------------------------------
# Arguments: a wrong one is the caller's mistake (TypeError/ValueError naming it), not a damaged file
# --------------------------------------------------------------------------------------------------
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def path_argument(path, name: str = "path") -> Path:
    """A file path: a ``str`` or ``os.PathLike`` (``Path``), as a :class:`~pathlib.Path`."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} must be a str or os.PathLike (a pathlib.Path), got {checks.describe(path)}")
    return Path(path)


def sha256_argument(value, name: str = "expected_sha256") -> str | None:
    """None (no check) or a SHA-256 as ``hashlib``'s ``hexdigest()`` writes it: 64 lowercase hex digits. Anything
    else could never match, and would blame the file for the caller's typo."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a SHA-256 hex string (64 lowercase hex digits) or None, "
                        f"got {checks.describe(value)}")
    if not _SHA256_HEX.fullmatch(value):
        raise ValueError(f"{name}={value!r} must be a SHA-256 hex string: 64 lowercase hex digits")
    return value


def _require_file(path: Path) -> None:
    if path.is_dir():
        raise DatasetNotFoundError(f"{path} is a directory, where the dataset file {path.name} goes; move it away")
    if not path.is_file():
        raise DatasetNotFoundError(f"Dataset file not found: {path}")


def _gunzip_stream(path: Path, fix_hint: str, max_bytes: int | None = None, *, keep: bool = True,
                   idx_header: bool = False):
    """``(content, sha256)`` of the gzip file ``path``, decompressed block by block; ``content`` is None unless
    ``keep``. Stops with :class:`DatasetIntegrityError` as soon as the content passes ``max_bytes`` (the registry's
    size), and with ``idx_header`` as soon as it passes the size its IDX header declares (or at once when that
    size is larger than ``max_bytes``, or there is no valid header): memory and time stay bounded by the expected
    size, whatever the stream holds. A truncated or damaged stream is an integrity error."""
    digest, blocks, total = hashlib.sha256(), [], 0
    limit = max_bytes
    why = f"its gzip stream decompresses to more than the {max_bytes or 0:,} bytes the registry expects"
    try:
        with gzip.open(path, "rb") as f:
            while True:
                block = f.read(_CHUNK)
                if not block:
                    break
                if idx_header and total == 0:
                    declared = _idx_declared(block)
                    if declared is None:                # not an IDX header: say so now, not after the whole stream
                        parse_idx(block, path=path, fix_hint=fix_hint)
                    if max_bytes is None or declared[1] <= max_bytes:
                        shape, limit = declared
                        why = (f"IDX header says shape {shape} = {math.prod(shape):,} bytes, but more data bytes "
                               f"follow the header")
                    else:                               # no need to decompress any further
                        raise integrity_error(path, f"its IDX header declares {declared[1]:,} bytes (shape "
                                                    f"{declared[0]}), more than the {max_bytes:,} bytes the registry "
                                                    f"expects", fix_hint)
                total += len(block)
                if limit is not None and total > limit:
                    raise integrity_error(path, f"{why}; stopped decompressing after {limit:,} bytes (a gzip bomb, "
                                                f"or another file under this name)", fix_hint)
                digest.update(block)
                if keep:
                    blocks.append(block)
    except _GZIP_ERRORS as e:
        raise integrity_error(path, f"cannot decompress gzip stream ({type(e).__name__}: {e})", fix_hint) from e
    return (b"".join(blocks) if keep else None), digest.hexdigest()


def _idx_declared(head: bytes) -> tuple[tuple[int, ...], int] | None:
    """``(shape, header + data bytes)`` that an IDX header at the start of ``head`` declares; None when ``head``
    does not start with a whole unsigned-byte IDX header (:func:`parse_idx` then says what is wrong)."""
    if len(head) < 4 or head[:3] != bytes([0, 0, _IDX_UBYTE]) or head[3] == 0 or len(head) < 4 + 4 * head[3]:
        return None
    ndim = head[3]
    shape = tuple(int.from_bytes(head[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    return shape, 4 + 4 * ndim + math.prod(shape)


def file_sha256(path: str | os.PathLike, checksum: str = "file", fix_hint: str = DEFAULT_FIX,
                max_bytes: int | None = None) -> str:
    """SHA-256 of a file's bytes (``checksum="file"``) or of its decompressed gzip payload (``"gunzip"``).

    Streams in 1 MiB blocks, so memory stays flat for any file size; a gzip payload larger than ``max_bytes``
    (the registry's size) stops at that size with :class:`DatasetIntegrityError`. Digests are cached per process,
    keyed by the file's path, inode, size, mtime and ctime (see :func:`clear_verification_cache`).
    """
    path = path_argument(path)
    if checksum not in ("file", "gunzip"):
        raise ValueError(f"checksum={checksum!r} must be 'file' or 'gunzip' (npz arrays are hashed by read_npz)")
    before = _stat_key(path)
    cached = _VERIFIED.get((*before, checksum))
    if cached is not None:
        return cached
    if checksum == "gunzip":
        _, digest = _gunzip_stream(path, fix_hint, max_bytes, keep=False)
    else:
        with open(path, "rb") as f:
            digest = _sha256_stream(f)
    _remember(path, checksum, before, digest)
    return digest


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
             expected_size: int | None = None, fix_hint: str = DEFAULT_FIX) -> np.ndarray:
    """Read a gzip-compressed IDX file into a uint8 array, e.g. (N, 28, 28) images or (N,) labels.

    Checks, in order: the file exists (:class:`DatasetNotFoundError`); the gzip stream, decompressed block by block,
    stays within ``expected_size`` bytes (the registry's size; without one, the size the IDX header declares), is
    complete and its CRC matches; the SHA-256 of the **decompressed** bytes equals ``expected_sha256`` (skipped if
    None), hashed every time from the bytes returned; then :func:`parse_idx`'s header checks. Any failure but the
    first raises :class:`DatasetIntegrityError` naming the file and ending with ``fix_hint``. A gzip bomb under a
    data set's name therefore stops after ``expected_size`` bytes, with a small memory footprint.
    """
    path = path_argument(path)
    expected_sha256 = sha256_argument(expected_sha256)
    if expected_magic is not None:      # an IDX magic number is 0x0000TTDD: two zero bytes, type, dimensions
        expected_magic = checks.integer(expected_magic, "expected_magic", 0)
        if expected_magic > 0xFFFF:
            raise ValueError(f"expected_magic={expected_magic} must be an IDX magic number 0x0000TTDD, at most "
                             f"{0xFFFF} (e.g. {IDX_LABELS_MAGIC} for labels, {IDX_IMAGES_MAGIC} for images)")
    expected_size = checks.integer(expected_size, "expected_size", 0, allow_none=True)
    _require_file(path)
    before = _stat_key(path)
    raw, digest = _gunzip_stream(path, fix_hint, expected_size, idx_header=True)
    if expected_sha256 is not None:
        _check_sha256(path, "SHA-256 of the decompressed content", expected_sha256, digest, fix_hint)
    _remember(path, "gunzip", before, digest)
    return parse_idx(raw, expected_magic=expected_magic, path=path, fix_hint=fix_hint)


# --------------------------------------------------------------------------------------------------
# npz (CIFAR-10)
# --------------------------------------------------------------------------------------------------


def _check_array(path: Path, name: str, arr: np.ndarray, spec: ArraySpec, fix_hint: str) -> None:
    """Shape and dtype first (a hash of bytes cannot see a reshape), then SHA-256 of the raw bytes."""
    if arr.shape != tuple(spec.shape) or arr.dtype != np.dtype(spec.dtype):
        raise integrity_error(path, f"member {name!r} has shape {arr.shape} dtype {arr.dtype.str}, "
                                     f"expected shape {tuple(spec.shape)} dtype {np.dtype(spec.dtype).str}", fix_hint)
    if spec.sha256 is None:
        return  # no independent value: read_npz has checked the archive's CRCs instead
    # hashed every time: these are the bytes the caller gets (0.2 s of CIFAR-10's 15 s load; see _VERIFIED)
    _check_sha256(path, f"SHA-256 of member {name!r} array bytes", spec.sha256, _sha256_array(arr), fix_hint)


def read_npz(path: str | os.PathLike, arrays: Mapping[str, ArraySpec] | None = None, *,
             fix_hint: str = DEFAULT_FIX) -> dict[str, np.ndarray]:
    """Read the members of an ``.npz`` file (any zip compression ``np.load`` handles, including LZMA).

    With ``arrays`` (member name -> :class:`ArraySpec`), reads exactly those members and checks each one's shape,
    dtype and SHA-256 of ``arr.tobytes()`` (where an ArraySpec has no hash, the zip CRC of every member instead);
    without it, reads every member unchecked. Pickled objects are refused.
    A missing file raises :class:`DatasetNotFoundError`; an unreadable archive, a missing member or a mismatch
    raises :class:`DatasetIntegrityError`.
    """
    path = path_argument(path)
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
                out[name] = npz[name]
                if arrays is not None:
                    _check_array(path, name, out[name], arrays[name], fix_hint)
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
    path, expected_sha256 = path_argument(path), sha256_argument(expected_sha256)
    _require_file(path)
    raw = path.read_bytes()  # one read serves both the hash and the decoder, hashed every time (see _VERIFIED)
    if expected_sha256 is not None and checksum == "file":
        _check_sha256(path, "SHA-256 of the file", expected_sha256, hashlib.sha256(raw).hexdigest(), fix_hint)
    try:
        with Image.open(io.BytesIO(raw)) as img:
            img.load()
            if img.mode not in ("RGB", "L"):
                img = img.convert("RGB")
            pixels = np.array(img, dtype=np.uint8)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise integrity_error(path, f"cannot decode image ({type(e).__name__}: {e})", fix_hint) from e
    if expected_sha256 is not None and checksum == "pixels":
        _check_sha256(path, "SHA-256 of the decoded pixels", expected_sha256, pixels_sha256(pixels), fix_hint)
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
    path = path_argument(path)
    _require_file(path)
    if spec.checksum == "arrays":
        arrays = read_npz(path, spec.arrays, fix_hint=fix_hint)
        check_class_counts(path, arrays, spec.class_counts, fix_hint)
    elif spec.checksum == "pixels":
        read_image(path, spec.sha256, checksum="pixels", fix_hint=fix_hint)
    else:
        what = "SHA-256 of the decompressed content" if spec.checksum == "gunzip" else "SHA-256 of the file"
        _check_sha256(path, what, spec.sha256, file_sha256(path, spec.checksum, fix_hint, spec.size), fix_hint)


def check_class_counts(path: Path, arrays: Mapping[str, np.ndarray], counts: tuple[int, ...], fix_hint: str) -> None:
    """Labels ``arrays["y"]`` must be 0 .. len(counts)-1 with exactly ``counts[k]`` examples of label k."""
    if not counts:
        return
    y = arrays["y"]
    in_range = y.min(initial=0) >= 0 and y.max(initial=0) < len(counts)
    if not in_range or tuple(np.bincount(y, minlength=len(counts))) != counts:
        raise integrity_error(path, f"labels are not {len(counts)} classes of {counts[0]} examples each", fix_hint)
