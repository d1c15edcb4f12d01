"""Tests for minilib.data: the data root, readers, loaders, integrity errors and messages, on tiny files in tmp_path.

Fetching and the command line: test_data_fetch.py; the embedded sample and choose_data: test_data_sample.py; the
real data: test_data_full.py.
"""

from __future__ import annotations

import dataclasses
import gzip
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from data_helpers import (
    IDX_NAMES,
    array_spec,
    flip_byte,
    fresh_verification_cache,  # noqa: F401  (autouse fixture)
    idx_bytes,
    install_tiny_idx,
    sha,
    tiny_cifar,
    tiny_mnist,
    write_gz,
    write_lzma_npz,
)

from minilib import data
from minilib.data import registry
from minilib.data.readers import pixels_sha256
from minilib.data.registry import FileSpec

# --------------------------------------------------------------------------------------------------
# Data root and registry
# --------------------------------------------------------------------------------------------------


def test_data_root_is_env_else_the_per_user_cache_never_the_current_directory(monkeypatch, tmp_path):
    monkeypatch.setenv("MINILIB_DATA", str(tmp_path / "somewhere"))
    assert data.data_root() == (tmp_path / "somewhere").resolve()
    monkeypatch.delenv("MINILIB_DATA")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    roots = set()
    for cwd in (tmp_path, tmp_path / "home", Path(__file__).parent):
        cwd.mkdir(exist_ok=True)
        monkeypatch.chdir(cwd)
        roots.add(data.data_root())
    if sys.platform.startswith("linux"):
        assert roots == {tmp_path / "home" / ".cache" / "minilib"}
    assert len(roots) == 1 and data.data_root().is_absolute()
    monkeypatch.setenv("MINILIB_DATA", "  ")  # blank counts as unset
    assert data.data_root() == data.default_root()


def test_offline_switch(monkeypatch):
    for value, expected in (("1", True), ("yes", True), ("0", False), ("", False)):
        monkeypatch.setenv("MINILIB_OFFLINE", value)
        assert data.offline() is expected


def test_get_spec_aliases_and_unknown_name():
    assert data.get_spec("Fashion_MNIST").name == "fashion-mnist"
    assert data.get_spec("CIFAR-10").name == "cifar10"
    assert data.get_spec("Set5").name == "set5"
    with pytest.raises(ValueError, match="unknown dataset name='imagenet'"):
        data.get_spec("imagenet")


def test_registry_is_complete():
    assert {n: len(s.files) for n, s in data.DATASETS.items()} == {
        "mnist": 4, "fashion-mnist": 4, "cifar10": 2, "cifar10-jpeg": 2, "set5": 5, "set14": 14, "t91": 91}
    for spec in data.DATASETS.values():
        for fs in spec.files.values():
            digests = [fs.sha256] if fs.sha256 else [a.sha256 for a in fs.arrays.values() if a.sha256]
            assert all(len(d) == 64 and int(d, 16) >= 0 for d in digests), fs.relpath
            # arrays without an independent hash are checked by CRC and class counts instead
            assert digests or fs.class_counts, fs.relpath
    # every dataset has a public source but the JPEG-decoded copy, which exists only in the shared data folder
    assert [s.name for s in data.DATASETS.values() if not s.downloadable] == ["cifar10-jpeg"]
    for spec in data.DATASETS.values():
        fetched = {role for source in spec.sources for role in source.roles}
        assert fetched == (set(spec.files) if spec.sources else set())
        assert all(d.url.startswith(("https://", "http://")) for source in spec.sources for d in source.downloads)


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
    assert "Fetching is off (MINILIB_OFFLINE is set)" in msg          # the tests run offline (conftest.py)
    assert "python -m minilib.data download mnist" in msg
    assert not empty.exists()                                          # nothing created while failing


def test_missing_with_root_argument_spells_out_root(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        data.load_fashion_mnist("train", root=tmp_path, download=False)
    assert "Fetching is off (download=False)" in str(err.value)
    assert f"python -m minilib.data download fashion-mnist --root {tmp_path}" in str(err.value)


@pytest.mark.parametrize("load, folder", [(lambda r: data.load_cifar10("test", root=r), "cifar10-official"),
                                          (lambda r: data.load_sr_images("Set14", root=r), "sr/Set14")])
def test_missing_dataset_names_folder_and_command(tmp_path, load, folder):
    with pytest.raises(data.DatasetNotFoundError) as err:
        load(tmp_path)
    msg = str(err.value)
    assert str(tmp_path / folder) in msg and "MINILIB_DATA" in msg and "python -m minilib.data download" in msg


def test_missing_jpeg_copy_says_it_has_no_public_source(tmp_path):
    with pytest.raises(data.DatasetNotFoundError) as err:
        data.load_cifar10("test", root=tmp_path, variant="jpeg")
    msg = str(err.value)
    assert str(tmp_path / "cifar10") in msg and "No public source publishes this copy" in msg
    assert "download cifar10 --root" not in msg and "download cifar10`" in msg


@pytest.mark.parametrize("call, message", [
    (lambda: data.load_cifar10("test", variant="lossless"), "variant='lossless' must be one of"),
    (lambda: data.load_mnist("test", sample=1), "sample=1 must be True or False"),
    (lambda: data.load_mnist("test", download="no"), "download='no' must be True or False or None"),
    (lambda: data.load_sr_images("Set5", sample="yes"), "sample='yes' must be True or False"),
])
def test_loader_arguments_are_checked(call, message):
    with pytest.raises((TypeError, ValueError), match=message):
        call()


def test_cifar10_variant_prefers_official_then_jpeg(tmp_path):
    assert data.cifar10_variant(tmp_path) == "official"            # nothing there: the one that can be fetched
    for name in ("cifar10_train.npz", "cifar10_test.npz"):
        (tmp_path / "cifar10").mkdir(exist_ok=True)
        (tmp_path / "cifar10" / name).write_bytes(b"")
    assert data.cifar10_variant(tmp_path) == "jpeg"
    for name in ("cifar10_train.npz", "cifar10_test.npz"):
        (tmp_path / "cifar10-official").mkdir(exist_ok=True)
        (tmp_path / "cifar10-official" / name).write_bytes(b"")
    assert data.cifar10_variant(tmp_path) == "official"
    assert data.cifar10_variant(tmp_path, "jpeg") == "jpeg"
    assert "JPEG" in data.cifar10_description("jpeg") and "JPEG" not in data.cifar10_description("official")


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
    files = {s: FileSpec(f"sr/Set5/{s}.png", "pixels", pixels_sha256(arr)) for s, arr in images.items()}
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




def test_a_relative_minilib_data_is_named_in_the_message(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MINILIB_DATA", "../elsewhere")
    with pytest.raises(data.DatasetNotFoundError, match="a relative path read from the current directory"):
        data.load_mnist("test")
