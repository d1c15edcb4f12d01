"""Tests for minilib.data: readers, integrity errors, messages, downloader, CLI, and (if present) the real data.

Everything except the last section builds tiny files in tmp_path. No test touches the network: the downloader gets a
fake ``fetch`` (or a monkeypatched ``urllib.request.urlopen``) that serves local bytes.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import os
import subprocess
import sys
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pytest

from minilib import data
from minilib.data import registry
from minilib.data.__main__ import main as cli_main
from minilib.data.registry import ArraySpec, FileSpec

IDX_NAMES = {
    "train-images": "train-images-idx3-ubyte.gz",
    "train-labels": "train-labels-idx1-ubyte.gz",
    "test-images": "t10k-images-idx3-ubyte.gz",
    "test-labels": "t10k-labels-idx1-ubyte.gz",
}


@pytest.fixture(autouse=True)
def _fresh_cache():
    # Each test hashes its own files; a cached digest from an earlier test must not hide a corruption.
    data.clear_verification_cache()
    yield
    data.clear_verification_cache()


# --------------------------------------------------------------------------------------------------
# Helpers that build small, valid files
# --------------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------------
# Data root and registry
# --------------------------------------------------------------------------------------------------


def test_data_root_uses_env_else_dot_data(monkeypatch, tmp_path):
    monkeypatch.setenv("MINILIB_DATA", str(tmp_path / "somewhere"))
    assert data.data_root() == (tmp_path / "somewhere").resolve()
    monkeypatch.delenv("MINILIB_DATA")
    monkeypatch.chdir(tmp_path)
    assert data.data_root() == (tmp_path / "data").resolve()
    monkeypatch.setenv("MINILIB_DATA", "")  # empty counts as unset
    assert data.data_root() == (tmp_path / "data").resolve()


def test_get_spec_aliases_and_unknown_name():
    assert data.get_spec("Fashion_MNIST").name == "fashion-mnist"
    assert data.get_spec("CIFAR-10").name == "cifar10"
    assert data.get_spec("Set5").name == "set5"
    with pytest.raises(ValueError, match="unknown dataset name='imagenet'"):
        data.get_spec("imagenet")


def test_registry_is_complete():
    assert {n: len(s.files) for n, s in data.DATASETS.items()} == {
        "mnist": 4, "fashion-mnist": 4, "cifar10": 2, "set5": 5, "set14": 14, "t91": 91}
    for spec in data.DATASETS.values():
        for fs in spec.files.values():
            digests = [fs.sha256] if fs.sha256 else [a.sha256 for a in fs.arrays.values()]
            assert all(len(d) == 64 and int(d, 16) >= 0 for d in digests), fs.relpath
    assert [s.name for s in data.DATASETS.values() if s.downloadable] == ["mnist", "fashion-mnist"]


# --------------------------------------------------------------------------------------------------
# IDX reader
# --------------------------------------------------------------------------------------------------


def test_read_idx_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 5, dtype=np.uint8)
    p_img = write_gz(tmp_path / "img.gz", idx_bytes(images))
    p_lab = write_gz(tmp_path / "lab.gz", idx_bytes(labels))
    x = data.read_idx(p_img, sha(idx_bytes(images)), expected_magic=2051)
    y = data.read_idx(p_lab, sha(idx_bytes(labels)), expected_magic=2049)
    np.testing.assert_array_equal(x, images)
    np.testing.assert_array_equal(y, labels)
    assert x.dtype == np.uint8 and x.shape == (5, 28, 28) and y.shape == (5,)
    assert x.flags.writeable  # an ordinary array, not a read-only view of the decompressed bytes


def test_read_idx_any_faithful_gzip_passes(tmp_path):
    # The checksum covers the decompressed content, so recompressing (other level, other header mtime) is fine.
    raw = idx_bytes(np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28) % 7)
    a = write_gz(tmp_path / "a.gz", raw, level=1, mtime=0)
    b = write_gz(tmp_path / "b.gz", raw, level=9, mtime=1234567)
    assert a.read_bytes() != b.read_bytes()
    np.testing.assert_array_equal(data.read_idx(a, sha(raw)), data.read_idx(b, sha(raw)))


def test_read_idx_flipped_content_byte_is_checksum_mismatch(tmp_path):
    raw = idx_bytes(np.zeros((3, 28, 28), np.uint8))
    path = write_gz(tmp_path / "flipped.gz", flip_byte(raw, 100))  # a valid gzip of the wrong content
    with pytest.raises(data.DatasetIntegrityError) as err:
        data.read_idx(path, sha(raw))
    msg = str(err.value)
    assert str(path) in msg and sha(raw) in msg and sha(flip_byte(raw, 100)) in msg
    assert "Delete" in msg
    assert err.value.expected == sha(raw) and err.value.actual == sha(flip_byte(raw, 100))
    assert isinstance(err.value, ValueError)


@pytest.mark.parametrize("damage", ["truncated", "flipped-gz-byte", "not-gzip", "empty"])
def test_read_idx_damaged_gzip_is_integrity_error(tmp_path, damage):
    raw = idx_bytes(np.random.default_rng(1).integers(0, 256, size=(20, 28, 28), dtype=np.uint8))
    blob = gzip.compress(raw)
    bad = {"truncated": blob[: len(blob) // 2], "flipped-gz-byte": flip_byte(blob, len(blob) // 2),
           "not-gzip": raw, "empty": b""}[damage]
    path = tmp_path / f"{damage}.gz"
    path.write_bytes(bad)
    with pytest.raises(data.DatasetIntegrityError, match=str(path)):
        data.read_idx(path, sha(raw))


@pytest.mark.parametrize("raw, expected_magic, problem", [
    (idx_bytes(np.zeros(4, np.uint8)), 2051, "magic number is 2049"),           # labels where images are expected
    (b"\x00\x00\x0d\x03" + idx_bytes(np.zeros((1, 2, 2), np.uint8))[4:], None, "bad IDX magic"),  # float IDX
    (b"\x12\x34\x08\x01" + (4).to_bytes(4, "big") + bytes(4), None, "bad IDX magic"),
    (idx_bytes(np.zeros((2, 28, 28), np.uint8))[:-1], 2051, "data bytes follow"),  # header says one more byte
    (idx_bytes(np.zeros((2, 28, 28), np.uint8)) + b"\x00", 2051, "data bytes follow"),
    (b"\x00\x00\x08\x03" + (2).to_bytes(4, "big"), 2051, "does not fit"),
    (b"\x00\x00", None, "too short"),
])
def test_read_idx_bad_header_is_integrity_error(tmp_path, raw, expected_magic, problem):
    path = write_gz(tmp_path / "bad-header.gz", raw)
    with pytest.raises(data.DatasetIntegrityError, match=problem) as err:
        data.read_idx(path, sha(raw), expected_magic=expected_magic)  # checksum fits: the header check must fire
    assert str(path) in str(err.value)


# --------------------------------------------------------------------------------------------------
# MNIST-style loaders, not-found messages, cache
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, loader", [("mnist", data.load_mnist), ("fashion-mnist", data.load_fashion_mnist)])
def test_idx_loaders_round_trip(monkeypatch, tmp_path, name, loader):
    arrays = tiny_mnist(np.random.default_rng(2))
    install_tiny_idx(monkeypatch, name, tmp_path, arrays)
    for split in ("train", "test"):
        x, y = loader(split, root=tmp_path)
        np.testing.assert_array_equal(x, arrays[f"{split}-images"])
        np.testing.assert_array_equal(y, arrays[f"{split}-labels"])
        assert x.dtype == np.uint8 and y.dtype == np.int64 and x.shape[1:] == (28, 28)


def test_loader_uses_minilib_data_env(monkeypatch, tmp_path):
    arrays = tiny_mnist(np.random.default_rng(3))
    install_tiny_idx(monkeypatch, "mnist", tmp_path, arrays)
    monkeypatch.setenv("MINILIB_DATA", str(tmp_path))
    x, _ = data.load_mnist("test")
    np.testing.assert_array_equal(x, arrays["test-images"])


def test_loader_rejects_bad_split():
    with pytest.raises(ValueError, match="split='val' must be 'train' or 'test'"):
        data.load_mnist("val")


def test_missing_mnist_message_says_file_root_env_and_command(monkeypatch, tmp_path):
    empty = tmp_path / "empty"
    monkeypatch.setenv("MINILIB_DATA", str(empty))
    with pytest.raises(data.DatasetNotFoundError) as err:
        data.load_mnist("test")
    msg = str(err.value)
    assert isinstance(err.value, FileNotFoundError)
    assert str(empty / "mnist" / "t10k-images-idx3-ubyte.gz") in msg
    assert str(empty / "mnist" / "t10k-labels-idx1-ubyte.gz") in msg
    assert f"Data root in use: {empty}" in msg and "MINILIB_DATA" in msg
    assert "python -m minilib.data download mnist" in msg


def test_missing_with_root_argument_spells_out_root(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        data.load_fashion_mnist("train", root=tmp_path)
    assert f"python -m minilib.data download fashion-mnist --root {tmp_path}" in str(err.value)


@pytest.mark.parametrize("load, folder", [(lambda r: data.load_cifar10("test", root=r), "cifar10"),
                                          (lambda r: data.load_sr_images("Set14", root=r), "sr/Set14")])
def test_missing_undownloadable_dataset_says_where_to_place(tmp_path, load, folder):
    with pytest.raises(data.DatasetNotFoundError) as err:
        load(tmp_path)
    msg = str(err.value)
    assert str(tmp_path / folder) in msg and "MINILIB_DATA" in msg and "no download command" in msg
    assert "python -m minilib.data download" not in msg


def test_corrupt_mnist_message_names_file_and_fix(monkeypatch, tmp_path):
    arrays = tiny_mnist(np.random.default_rng(4))
    install_tiny_idx(monkeypatch, "mnist", tmp_path, arrays)
    path = tmp_path / "mnist" / IDX_NAMES["test-labels"]
    write_gz(path, flip_byte(idx_bytes(arrays["test-labels"]), 9))
    with pytest.raises(data.DatasetIntegrityError) as err:
        data.load_mnist("test", root=tmp_path)
    msg = str(err.value)
    assert str(path) in msg and "expected SHA-256" in msg and "actual" in msg
    assert f"python -m minilib.data download mnist --root {tmp_path}" in msg


def test_verification_cache_is_keyed_by_mtime_and_size(monkeypatch, tmp_path):
    arrays = tiny_mnist(np.random.default_rng(5))
    install_tiny_idx(monkeypatch, "mnist", tmp_path, arrays)
    data.load_mnist("test", root=tmp_path)
    from minilib.data import readers
    assert len(readers._VERIFIED) == 2
    # Same size, new content, new mtime: the cached digest no longer applies.
    path = tmp_path / "mnist" / IDX_NAMES["test-images"]
    write_gz(path, flip_byte(idx_bytes(arrays["test-images"]), 500))
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    with pytest.raises(data.DatasetIntegrityError):
        data.load_mnist("test", root=tmp_path)


# --------------------------------------------------------------------------------------------------
# npz reader (CIFAR-10)
# --------------------------------------------------------------------------------------------------


def test_read_npz_lzma_and_deflate_give_same_array_checksums(tmp_path):
    x, y = tiny_cifar(np.random.default_rng(6))
    specs = {"x": array_spec(x), "y": array_spec(y)}
    lz = write_lzma_npz(tmp_path / "lzma.npz", x=x, y=y)
    np.savez_compressed(tmp_path / "deflate.npz", x=x, y=y)
    for path in (lz, tmp_path / "deflate.npz"):  # different file bytes, same arrays: both pass
        out = data.read_npz(path, specs)
        np.testing.assert_array_equal(out["x"], x)
        np.testing.assert_array_equal(out["y"], y)


def test_load_cifar10_round_trip(monkeypatch, tmp_path):
    rng = np.random.default_rng(7)
    files = {}
    for split in ("train", "test"):
        x, y = tiny_cifar(rng)
        rel = f"cifar10/cifar10_{split}.npz"
        write_lzma_npz(tmp_path / rel, x=x, y=y)
        files[split] = (FileSpec(rel, "arrays", arrays={"x": array_spec(x), "y": array_spec(y)}), x, y)
    real = registry.get_spec("cifar10")
    monkeypatch.setitem(registry.DATASETS, "cifar10",
                        dataclasses.replace(real, files={s: f[0] for s, f in files.items()}))
    for split, (_, x, y) in files.items():
        xs, ys = data.load_cifar10(split, root=tmp_path)
        np.testing.assert_array_equal(xs, x)
        np.testing.assert_array_equal(ys, y)
        assert xs.dtype == np.uint8 and xs.shape[1:] == (32, 32, 3) and ys.dtype == np.int64


def _bad_npz(kind: str, path: Path, x: np.ndarray, y: np.ndarray) -> None:
    if kind == "pixel":
        x2 = x.copy()
        x2[0, 0, 0, 0] ^= 1
        write_lzma_npz(path, x=x2, y=y)
    elif kind == "shape":
        write_lzma_npz(path, x=x.reshape(len(x), 3, 32, 32), y=y)  # same bytes, wrong layout
    elif kind == "dtype":
        write_lzma_npz(path, x=x, y=y.astype(np.int32))
    elif kind == "member":
        write_lzma_npz(path, x=x)
    elif kind == "truncated":
        write_lzma_npz(path, x=x, y=y)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif kind == "garbage":
        path.write_bytes(b"not a zip file at all")


@pytest.mark.parametrize("kind, problem", [("pixel", "Checksum mismatch"), ("shape", "expected shape"),
                                           ("dtype", "expected shape"), ("member", "member 'y' is missing"),
                                           ("truncated", "cannot read npz"), ("garbage", "cannot read npz")])
def test_read_npz_damage_is_integrity_error(tmp_path, kind, problem):
    x, y = tiny_cifar(np.random.default_rng(8))
    path = tmp_path / f"{kind}.npz"
    _bad_npz(kind, path, x, y)
    with pytest.raises(data.DatasetIntegrityError, match=problem) as err:
        data.read_npz(path, {"x": array_spec(x), "y": array_spec(y)})
    assert str(path) in str(err.value)


# --------------------------------------------------------------------------------------------------
# Image folders (SR)
# --------------------------------------------------------------------------------------------------


def _write_pngs(folder: Path, rng) -> dict[str, np.ndarray]:
    from PIL import Image
    folder.mkdir(parents=True, exist_ok=True)
    images = {"rgb": rng.integers(0, 256, (7, 5, 3), dtype=np.uint8),
              "gray": rng.integers(0, 256, (4, 6), dtype=np.uint8)}
    for stem, arr in images.items():
        Image.fromarray(arr).save(folder / f"{stem}.png")
    return images


def test_load_sr_images_round_trip(monkeypatch, tmp_path):
    images = _write_pngs(tmp_path / "sr" / "Set5", np.random.default_rng(9))
    (tmp_path / "sr" / "Set5" / "notes.txt").write_text("ignored")
    real = registry.get_spec("set5")
    files = {s: FileSpec(f"sr/Set5/{s}.png", "file", sha((tmp_path / f"sr/Set5/{s}.png").read_bytes()))
             for s in images}
    monkeypatch.setitem(registry.DATASETS, "set5", dataclasses.replace(real, files=files))
    out = data.load_sr_images("Set5", root=tmp_path)
    assert list(out) == list(images)
    for stem, arr in images.items():
        np.testing.assert_array_equal(out[stem], arr)
        assert out[stem].dtype == np.uint8
    assert out["rgb"].shape == (7, 5, 3) and out["gray"].shape == (4, 6)


def test_read_image_folder_without_checksums_sorts_naturally(tmp_path):
    from PIL import Image
    for stem in ("t10", "t2", "t1"):
        Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(tmp_path / f"{stem}.png")
    assert list(data.read_image_folder(tmp_path)) == ["t1", "t2", "t10"]


@pytest.mark.parametrize("damage", ["flipped", "truncated"])
def test_corrupt_png_is_integrity_error(tmp_path, damage):
    images = _write_pngs(tmp_path, np.random.default_rng(10))
    good = {s: sha((tmp_path / f"{s}.png").read_bytes()) for s in images}
    path = tmp_path / "rgb.png"
    raw = path.read_bytes()
    path.write_bytes(flip_byte(raw, len(raw) // 2) if damage == "flipped" else raw[: len(raw) // 2])
    with pytest.raises(data.DatasetIntegrityError, match="Checksum mismatch") as err:
        data.read_image_folder(tmp_path, good)
    assert str(path) in str(err.value)
    # Without a checksum the decoder is the last line of defence, and it must not pass silently either.
    if damage == "truncated":
        with pytest.raises(data.DatasetIntegrityError, match="cannot decode"):
            data.read_image(path)


def test_load_sr_images_rejects_non_sr_name():
    with pytest.raises(ValueError, match="name='mnist' must be one of"):
        data.load_sr_images("mnist")


# --------------------------------------------------------------------------------------------------
# Downloader (offline: fetch is faked)
# --------------------------------------------------------------------------------------------------


class FakeMirror:
    """A ``fetch`` that serves ``files[url]`` from memory, counts calls, and fails for unknown URLs like a 404."""

    def __init__(self, files: dict[str, bytes]):
        self.files = files
        self.calls: list[str] = []

    def __call__(self, url: str):
        self.calls.append(url)
        if url not in self.files:
            raise urllib.error.HTTPError(url, 404, "Not Found", None, None)
        return io.BytesIO(self.files[url])


def _served(name: str, gz: dict[str, bytes], mirror_index: int = 0) -> dict[str, bytes]:
    spec = registry.get_spec(name)
    return {spec.mirrors[mirror_index] + IDX_NAMES[role]: blob for role, blob in gz.items()}


def test_download_writes_verified_files_then_skips_them(monkeypatch, tmp_path):
    arrays = tiny_mnist(np.random.default_rng(11))
    gz = install_tiny_idx(monkeypatch, "mnist", None, arrays)
    fetch = FakeMirror(_served("mnist", gz))
    result = data.download("mnist", root=tmp_path, fetch=fetch)
    assert set(result.values()) == {"downloaded"} and len(fetch.calls) == 4
    assert no_leftovers(tmp_path) == sorted(f"mnist/{n}" for n in IDX_NAMES.values())
    x, y = data.load_mnist("train", root=tmp_path)
    np.testing.assert_array_equal(x, arrays["train-images"])
    # Second run: everything present and valid, nothing fetched.
    result = data.download("mnist", root=tmp_path, fetch=fetch)
    assert set(result.values()) == {"already valid"} and len(fetch.calls) == 4


@pytest.mark.parametrize("damage", ["flipped-content", "truncated-gzip"])
def test_download_of_corrupt_bytes_leaves_nothing(monkeypatch, tmp_path, damage):
    arrays = tiny_mnist(np.random.default_rng(12))
    gz = install_tiny_idx(monkeypatch, "mnist", None, arrays)
    role = "train-images"
    if damage == "flipped-content":
        gz[role] = gzip.compress(flip_byte(idx_bytes(arrays[role]), 200))
    else:
        gz[role] = gz[role][:-30]
    served = {**_served("mnist", gz, 0), **_served("mnist", gz, 1)}  # every mirror serves the bad file
    with pytest.raises(data.DatasetIntegrityError) as err:
        data.download("mnist", root=tmp_path, fetch=FakeMirror(served))
    assert IDX_NAMES[role] in str(err.value)
    assert IDX_NAMES[role] not in " ".join(no_leftovers(tmp_path))  # neither the file nor a .part temp file
    assert not any(p.endswith(".part") for p in no_leftovers(tmp_path))


def test_download_falls_back_to_next_mirror(monkeypatch, tmp_path):
    arrays = tiny_mnist(np.random.default_rng(13))
    gz = install_tiny_idx(monkeypatch, "mnist", None, arrays)
    fetch = FakeMirror(_served("mnist", gz, mirror_index=1))  # the first mirror 404s
    assert set(data.download("mnist", root=tmp_path, fetch=fetch).values()) == {"downloaded"}
    assert len(fetch.calls) == 8


def test_download_network_failure_raises_download_error_and_leaves_nothing(monkeypatch, tmp_path):
    install_tiny_idx(monkeypatch, "fashion-mnist", None, tiny_mnist(np.random.default_rng(14)))
    with pytest.raises(data.DownloadError, match="Could not download train-images-idx3-ubyte.gz"):
        data.download("fashion-mnist", root=tmp_path, fetch=FakeMirror({}))
    assert no_leftovers(tmp_path) == []


def test_download_interrupted_stream_leaves_nothing(monkeypatch, tmp_path):
    gz = install_tiny_idx(monkeypatch, "fashion-mnist", None, tiny_mnist(np.random.default_rng(15)))

    class Broken(io.BytesIO):
        def read(self, *args):
            if self.tell() > 0:
                raise ConnectionResetError("connection reset mid-download")
            return super().read(10)

    def fetch(url):
        return Broken(gz["train-images"])

    with pytest.raises(data.DownloadError, match="connection reset"):
        data.download("fashion-mnist", root=tmp_path, fetch=fetch)
    assert no_leftovers(tmp_path) == []


def test_download_replaces_corrupt_existing_file(monkeypatch, tmp_path):
    arrays = tiny_mnist(np.random.default_rng(16))
    gz = install_tiny_idx(monkeypatch, "mnist", tmp_path, arrays)
    bad = tmp_path / "mnist" / IDX_NAMES["test-labels"]
    bad.write_bytes(b"garbage")
    result = data.download("mnist", root=tmp_path, fetch=FakeMirror(_served("mnist", gz)))
    assert result[bad] == "downloaded" and list(result.values()).count("already valid") == 3
    assert bad.read_bytes() == gz["test-labels"]


def test_default_fetch_goes_through_urlopen(monkeypatch, tmp_path):
    gz = install_tiny_idx(monkeypatch, "fashion-mnist", None, tiny_mnist(np.random.default_rng(17)))
    served = _served("fashion-mnist", gz)
    seen = []

    def fake_urlopen(request, timeout=None):
        seen.append((request.full_url, timeout))
        return io.BytesIO(served[request.full_url])

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    data.download("fashion-mnist", root=tmp_path)
    assert sorted(u for u, _ in seen) == sorted(served) and all(t for _, t in seen)


@pytest.mark.parametrize("name", ["cifar10", "set5", "Set14", "T91"])
def test_download_unavailable_for_prepared_datasets(tmp_path, name):
    with pytest.raises(data.DownloadUnavailableError, match="cannot be downloaded") as err:
        data.download(name, root=tmp_path, fetch=FakeMirror({}))
    assert "MINILIB_DATA" in str(err.value) and str(tmp_path) in str(err.value)


# --------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------


def test_cli_list_verify_download(monkeypatch, tmp_path, capsys):
    gz = install_tiny_idx(monkeypatch, "mnist", None, tiny_mnist(np.random.default_rng(18)))
    assert cli_main(["verify", "mnist", "--root", str(tmp_path)]) == 1
    assert f"python -m minilib.data download mnist --root {tmp_path}" in capsys.readouterr().err

    served = _served("mnist", gz)
    monkeypatch.setattr(urllib.request, "urlopen", lambda req, timeout=None: io.BytesIO(served[req.full_url]))
    assert cli_main(["download", "mnist", "--root", str(tmp_path)]) == 0
    assert "all 4 files present and verified" in capsys.readouterr().out

    assert cli_main(["verify", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "mnist: 4/4 files OK" in out and "cifar10: not present" in out

    assert cli_main(["list", "--root", str(tmp_path)]) == 0
    assert "mnist" in capsys.readouterr().out

    (tmp_path / "mnist" / IDX_NAMES["train-labels"]).write_bytes(gzip.compress(b"\x00\x00\x08\x01"))
    assert cli_main(["verify", "--root", str(tmp_path)]) == 1
    assert "CORRUPT" in capsys.readouterr().err


def test_cli_errors_exit_nonzero(capsys):
    assert cli_main(["download", "cifar10"]) == 1
    assert "cannot be downloaded" in capsys.readouterr().err
    assert cli_main(["verify", "imagenet"]) == 1
    assert "unknown dataset" in capsys.readouterr().err
    with pytest.raises(SystemExit) as err:
        cli_main([])
    assert err.value.code == 2


def test_cli_runs_as_module(tmp_path):
    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(repo), "MINILIB_DATA": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "minilib.data", "list"], capture_output=True, text=True,
                          env=env, cwd=repo, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert f"data root: {tmp_path}" in proc.stdout


# --------------------------------------------------------------------------------------------------
# Real data (CI: MINILIB_DATA=../shared/data). Skipped where the files are absent.
# --------------------------------------------------------------------------------------------------

ROOT = registry.data_root()


def has(relpath: str) -> bool:
    return (ROOT / relpath).is_file()


needs_mnist = pytest.mark.skipif(not has("mnist/t10k-images-idx3-ubyte.gz"), reason=f"no MNIST under {ROOT}")


@needs_mnist
def test_real_mnist_test_split():
    x, y = data.load_mnist("test")
    assert x.shape == (10000, 28, 28) and x.dtype == np.uint8 and y.shape == (10000,)
    assert np.bincount(y, minlength=10).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.mark.skipif(not has("fashion-mnist/t10k-images-idx3-ubyte.gz"), reason=f"no Fashion-MNIST under {ROOT}")
def test_real_fashion_mnist_test_split():
    x, y = data.load_fashion_mnist("test")
    assert x.shape == (10000, 28, 28)
    assert np.bincount(y, minlength=10).tolist() == [1000] * 10


@pytest.mark.skipif(not has("cifar10/cifar10_test.npz"), reason=f"no CIFAR-10 under {ROOT}")
def test_real_cifar10_test_split():
    x, y = data.load_cifar10("test")  # the train split takes ~10 s to decompress: not here
    assert x.shape == (10000, 32, 32, 3) and x.dtype == np.uint8 and y.dtype == np.int64
    assert np.bincount(y, minlength=10).tolist() == [1000] * 10


@pytest.mark.skipif(not has("sr/Set5/baby.png"), reason=f"no Set5 under {ROOT}")
def test_real_set5():
    images = data.load_sr_images("Set5")
    assert len(images) == 5
    assert images["baby"].shape == (512, 512, 3) and images["woman"].shape == (344, 228, 3)  # README gives W x H


@pytest.mark.skipif(not has("sr/Set14/bridge.png"), reason=f"no Set14 under {ROOT}")
def test_real_set14_bridge_is_grayscale():
    images = data.load_sr_images("Set14")
    assert len(images) == 14 and images["bridge"].shape == (512, 512) and images["man"].ndim == 3


@pytest.mark.skipif(not (ROOT / "SHA256SUMS").is_file(), reason=f"no SHA256SUMS under {ROOT}")
def test_registry_png_checksums_match_sha256sums():
    sums = dict(reversed(line.split()) for line in (ROOT / "SHA256SUMS").read_text().splitlines() if line.strip())
    pngs = [fs for s in data.DATASETS.values() for fs in s.files.values() if fs.checksum == "file"]
    assert len(pngs) == 110
    assert all(sums[fs.relpath] == fs.sha256 for fs in pngs)


@needs_mnist
def test_real_mnist_download_through_fake_mirror(tmp_path):
    # End to end with the real registry: a "mirror" serving the shared .gz files must pass verification.
    spec = registry.get_spec("mnist")
    served = {spec.mirrors[0] + fs.filename: (ROOT / fs.relpath).read_bytes() for fs in spec.files.values()}
    result = data.download("mnist", root=tmp_path, fetch=FakeMirror(served))
    assert set(result.values()) == {"downloaded"}
    assert all(c.status == "ok" for c in data.verify_dataset("mnist", root=tmp_path))
