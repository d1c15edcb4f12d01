"""Small, valid data files for the minilib.data tests, and registry entries that fit them."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

from minilib import data
from minilib.data import registry
from minilib.data.registry import ArraySpec, FileSpec

IDX_NAMES = {
    "train-images": "train-images-idx3-ubyte.gz",
    "train-labels": "train-labels-idx1-ubyte.gz",
    "test-images": "t10k-images-idx3-ubyte.gz",
    "test-labels": "t10k-labels-idx1-ubyte.gz",
}




def idx_bytes(arr: np.ndarray) -> bytes:
    """IDX encoding of a uint8 array: 0, 0, 0x08, ndim, big-endian uint32 sizes, data."""
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in arr.shape)
    return header + np.ascontiguousarray(arr, dtype=np.uint8).tobytes()


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def write_gz(path: Path, raw: bytes, level: int = 9, mtime: float = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(raw, compresslevel=level, mtime=mtime))
    return path


def flip_byte(raw: bytes, index: int) -> bytes:
    b = bytearray(raw)
    b[index] ^= 0xFF
    return bytes(b)


def tiny_mnist(rng: np.random.Generator, n: int = 6) -> dict[str, np.ndarray]:
    x_train = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    x_test = rng.integers(0, 256, size=(n - 2, 28, 28), dtype=np.uint8)
    return {"train-images": x_train, "train-labels": rng.integers(0, 10, n, dtype=np.uint8),
            "test-images": x_test, "test-labels": rng.integers(0, 10, n - 2, dtype=np.uint8)}


def install_tiny_idx(monkeypatch, name: str, folder: Path | None, arrays: dict[str, np.ndarray]) -> dict[str, bytes]:
    """Swap dataset ``name``'s registry entry for one whose checksums fit ``arrays``; write the .gz files if asked.

    Returns the gz bytes per role (what a mirror would serve).
    """
    real = registry.get_spec(name)
    raws = {role: idx_bytes(arr) for role, arr in arrays.items()}
    files = {role: FileSpec(f"{real.folder}/{IDX_NAMES[role]}", "gunzip", sha(raws[role])) for role in raws}
    monkeypatch.setitem(registry.DATASETS, real.name, dataclasses.replace(real, files=files))
    gz = {role: gzip.compress(raw, mtime=0) for role, raw in raws.items()}
    if folder is not None:
        for role, blob in gz.items():
            path = folder / files[role].relpath
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(blob)
    return gz


def write_lzma_npz(path: Path, **arrays: np.ndarray) -> Path:
    """An npz whose members are LZMA-compressed, like shared/data/cifar10 (np.savez_compressed uses deflate)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_LZMA) as zf:
        for name, arr in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, arr, allow_pickle=False)
            zf.writestr(f"{name}.npy", buf.getvalue())
    return path


def array_spec(arr: np.ndarray) -> ArraySpec:
    return ArraySpec(arr.shape, arr.dtype.str, sha(arr.tobytes()))


def tiny_cifar(rng, n: int = 8):
    x = rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
    y = rng.integers(0, 10, n).astype(np.int64)
    return x, y


def no_leftovers(folder: Path) -> list[str]:
    """Every file under folder (temp files start with a dot, so list hidden ones too)."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


@pytest.fixture(autouse=True)
def fresh_verification_cache():
    """Each test hashes its own files; a cached digest from an earlier test must not hide a corruption.
    Autouse in every module that imports it."""
    data.clear_verification_cache()
    yield
    data.clear_verification_cache()
