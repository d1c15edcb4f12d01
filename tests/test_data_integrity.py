"""Data verification that cannot be fooled, decompression that cannot be bombed, and things in the way of a fetch.

Tiny generated files only, no network: a same-size rewrite whose mtime is restored is still detected (the readers
hash what they return every time; :func:`minilib.data.readers.verify_file`'s cache is keyed by inode and ctime too);
a gzip bomb under a data set's name stops at the registry's size, fast and with little memory; a directory where a
file goes is reported at once; a killed fetch's staging folder is removed by the next fetch.
"""
from __future__ import annotations

import dataclasses
import gzip
import io
import os
import subprocess
import sys
import time
import tracemalloc

import numpy as np
import pytest
from data_helpers import (
    IDX_NAMES,
    array_spec,
    fresh_verification_cache,  # noqa: F401  (autouse)
    idx_bytes,
    install_tiny_idx,
    sha,
    tiny_cifar,
    tiny_mnist,
    write_gz,
)

from minilib import data
from minilib.data import readers, registry
from minilib.data.fetch import STAGING_NAME
from minilib.data.registry import FileSpec

MIB = 1 << 20


@pytest.fixture(autouse=True)
def _online(monkeypatch):
    # conftest.py turns fetching off for the whole suite; the fetch tests here use fake downloaders only
    monkeypatch.delenv("MINILIB_OFFLINE", raising=False)


def rewrite_keeping_size_and_mtime(path, content: bytes) -> None:
    """Overwrite ``path`` in place (same inode) with ``content`` of the same size, then put its mtime back."""
    before = path.stat()
    assert len(content) == before.st_size
    time.sleep(0.02)                # past the clock tick of the file's last change (ctime is kept at tick resolution)
    with open(path, "r+b") as f:
        f.write(content)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (before.st_size, before.st_mtime_ns, before.st_ino)


def install_stored_mnist(monkeypatch, root, rng):
    """Tiny MNIST under ``root`` as stored (level-0) gzip, so that other labels of the same count give a file of
    the same size; returns the arrays."""
    arrays = tiny_mnist(rng)
    install_tiny_idx(monkeypatch, "mnist", None, arrays)
    for role, arr in arrays.items():
        write_gz(root / "mnist" / IDX_NAMES[role], idx_bytes(arr), level=0)
    return arrays


# --------------------------------------------------------------------------------------------------
# Same-size rewrites
# --------------------------------------------------------------------------------------------------


def test_same_size_rewrite_with_mtime_restored_is_detected_by_the_loader(monkeypatch, tmp_path):
    arrays = install_stored_mnist(monkeypatch, tmp_path, np.random.default_rng(21))
    _, y = data.load_mnist("test", root=tmp_path)
    np.testing.assert_array_equal(y, arrays["test-labels"])
    path = tmp_path / "mnist" / IDX_NAMES["test-labels"]
    sevens = np.full_like(arrays["test-labels"], 7)
    rewrite_keeping_size_and_mtime(path, gzip.compress(idx_bytes(sevens), compresslevel=0, mtime=0))
    with pytest.raises(data.DatasetIntegrityError, match=str(path)):
        data.load_mnist("test", root=tmp_path)          # the case: it used to return the 7s


def test_same_size_rewrite_with_mtime_restored_is_detected_by_verify_file(monkeypatch, tmp_path):
    install_stored_mnist(monkeypatch, tmp_path, np.random.default_rng(22))
    spec = registry.get_spec("mnist").files["train-labels"]
    path = tmp_path / spec.relpath
    readers.verify_file(spec, path)                     # hashed and cached
    assert readers.verify_file(spec, path) is None      # the cached digest serves an unchanged file
    raw = bytearray(gzip.decompress(path.read_bytes()))
    raw[8:] = bytes([7]) * (len(raw) - 8)
    rewrite_keeping_size_and_mtime(path, gzip.compress(bytes(raw), compresslevel=0, mtime=0))
    with pytest.raises(data.DatasetIntegrityError, match="Checksum mismatch"):
        readers.verify_file(spec, path)                 # same path, size, mtime and inode: the ctime moved


def test_same_size_rewrite_of_an_npz_is_detected(tmp_path):
    x, y = tiny_cifar(np.random.default_rng(23))
    path = tmp_path / "cifar10_test.npz"
    np.savez(path, x=x, y=y)                            # stored members: other labels, same size
    specs = {"x": array_spec(x), "y": array_spec(y)}
    data.read_npz(path, specs)
    buffer = io.BytesIO()
    np.savez(buffer, x=x, y=np.full_like(y, 7))
    rewrite_keeping_size_and_mtime(path, buffer.getvalue())
    with pytest.raises(data.DatasetIntegrityError, match="member 'y'"):
        data.read_npz(path, specs)


# --------------------------------------------------------------------------------------------------
# Gzip bombs
# --------------------------------------------------------------------------------------------------


def write_bomb(path, head: bytes, gib: int = 4) -> None:
    """A gzip file that decompresses to ``head`` followed by zeros, ``gib`` GiB in all (a few MB on disk): one
    member of 16 MiB repeated, which gzip readers decompress one after the other."""
    block = 16 * MIB
    member = gzip.compress(bytes(block), compresslevel=9, mtime=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(gzip.compress(head + bytes(block - len(head)), compresslevel=9, mtime=0))
        for _ in range(gib * 1024 // 16 - 1):
            f.write(member)


def measured(call):
    """``(exception raised by call(), seconds, peak MiB allocated by Python meanwhile)``."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        call()
    except Exception as error:          # noqa: BLE001  (the caller checks the type)
        raised = error
    else:
        raised = None
    seconds = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return raised, seconds, peak / MIB


def mnist_test_header(n: int = 10_000) -> bytes:
    return idx_bytes(np.zeros((0, 28, 28), np.uint8))[:4] + b"".join(k.to_bytes(4, "big") for k in (n, 28, 28))


def test_gzip_bomb_under_mnists_name_stops_at_the_registrys_size(tmp_path):
    """The real registry: MNIST's test images are 7,840,016 bytes; a 4 GiB bomb with their header stops there."""
    images = tmp_path / "mnist" / IDX_NAMES["test-images"]
    write_bomb(images, mnist_test_header())
    write_gz(tmp_path / "mnist" / IDX_NAMES["test-labels"], idx_bytes(np.zeros(10_000, np.uint8)))
    assert registry.get_spec("mnist").files["test-images"].size == 7_840_016
    error, seconds, peak_mib = measured(lambda: data.load_mnist("test", root=tmp_path))
    assert isinstance(error, data.DatasetIntegrityError), error
    assert str(images) in str(error) and "stopped decompressing after 7,840,016 bytes" in str(error)
    assert seconds < 10 and peak_mib < 64, (seconds, peak_mib)     # was: MemoryError after 8 s


def test_gzip_bomb_declaring_a_larger_shape_fails_at_its_header(tmp_path):
    images = tmp_path / "mnist" / IDX_NAMES["test-images"]
    write_bomb(images, mnist_test_header(n=5_000_000), gib=1)          # 3.9 GB declared
    write_gz(tmp_path / "mnist" / IDX_NAMES["test-labels"], idx_bytes(np.zeros(10_000, np.uint8)))
    error, seconds, peak_mib = measured(lambda: data.load_mnist("test", root=tmp_path))
    assert isinstance(error, data.DatasetIntegrityError) and "more than the 7,840,016 bytes" in str(error)
    assert seconds < 2 and peak_mib < 8, (seconds, peak_mib)


@pytest.mark.parametrize("head", [b"", b"\x00\x00\x08\x01" + (4).to_bytes(4, "big")],
                         ids=["zeros", "header-of-4-labels"])
def test_gzip_bomb_without_a_registry_size_stops_at_its_header(tmp_path, head):
    """read_idx with no expected size: all zeros is no IDX header (fails on the first block); a header declaring
    4 labels stops after its 12 bytes."""
    path = tmp_path / "bomb.gz"
    write_bomb(path, head, gib=1)
    error, seconds, peak_mib = measured(lambda: data.read_idx(path))
    assert isinstance(error, data.DatasetIntegrityError), error
    assert ("bad IDX magic" if not head else "more data bytes follow") in str(error)
    assert seconds < 2 and peak_mib < 8, (seconds, peak_mib)


def test_verify_file_stops_a_bomb_at_the_registrys_size(monkeypatch, tmp_path):
    arrays = tiny_mnist(np.random.default_rng(24))
    install_tiny_idx(monkeypatch, "mnist", None, arrays)
    spec = dataclasses.replace(registry.get_spec("mnist").files["test-labels"], size=8 + len(arrays["test-labels"]))
    path = tmp_path / spec.relpath
    write_bomb(path, idx_bytes(arrays["test-labels"]), gib=1)
    error, seconds, _ = measured(lambda: readers.verify_file(spec, path))
    assert isinstance(error, data.DatasetIntegrityError) and "the registry expects" in str(error)
    assert seconds < 2


def test_read_idx_within_the_size_reads_as_before(tmp_path):
    arr = np.random.default_rng(25).integers(0, 256, size=(3, 28, 28), dtype=np.uint8)
    raw = idx_bytes(arr)
    path = write_gz(tmp_path / "ok.gz", raw)
    np.testing.assert_array_equal(data.read_idx(path, sha(raw), expected_size=len(raw)), arr)
    with pytest.raises(data.DatasetIntegrityError, match="more than the 2,000 bytes the registry expects"):
        data.read_idx(path, sha(raw), expected_size=2000)


# --------------------------------------------------------------------------------------------------
# A directory where a file goes; what a killed fetch leaves
# --------------------------------------------------------------------------------------------------


class CountingDownloader:
    """Pooch's downloader protocol, serving ``files[url]`` and counting the calls."""

    def __init__(self, files):
        self.files, self.calls = files, []

    def __call__(self, url, output_file, pooch, check_only=False):
        self.calls.append(url)
        if url not in self.files:
            raise OSError(f"404 Client Error: Not Found for url: {url}")
        with open(output_file, "wb") as f:
            f.write(self.files[url])


def served(name, gz):
    """Both mirrors of every source of ``name`` serving ``gz[role]``."""
    return {download.url: gz[source.roles[0]] for source in registry.get_spec(name).sources
            for download in source.downloads}


def test_directory_at_a_download_target_is_reported_at_once(monkeypatch, tmp_path):
    gz = install_tiny_idx(monkeypatch, "mnist", None, tiny_mnist(np.random.default_rng(26)))
    target = tmp_path / "mnist" / IDX_NAMES["train-images"]
    target.mkdir(parents=True)
    downloader = CountingDownloader(served("mnist", gz))
    monkeypatch.setattr("minilib.data.fetch.default_downloader", lambda progressbar: downloader)
    with pytest.raises(data.DatasetNotFoundError) as err:
        data.load_mnist("train", root=tmp_path)
    message = str(err.value)
    assert f"{target} is a directory, where the file {target.name} goes" in message
    assert "not found" not in message and "mirror" not in message and "Could not fetch" not in message
    assert downloader.calls == []                       # nothing downloaded, from no mirror
    with pytest.raises(data.DownloadError, match="is a directory"):
        data.download("mnist", root=tmp_path, downloader=downloader, retries=0)
    assert downloader.calls == []
    with pytest.raises(data.DatasetNotFoundError, match="is a directory"):
        data.read_idx(target)


def dead_pid() -> int:
    """The pid of a process that has exited."""
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    return int(proc.stdout)


def test_a_killed_fetchs_staging_folder_is_removed_by_the_next_fetch(monkeypatch, tmp_path):
    gz = install_tiny_idx(monkeypatch, "mnist", None, tiny_mnist(np.random.default_rng(27)))
    hour = 3600
    staged = {"killed": tmp_path / f".fetch-{dead_pid()}-abcd_123",        # its process is gone
              "old": tmp_path / ".fetch-k2j4h5g6",                         # no pid (older code), untouched 2 h
              "running": tmp_path / f".fetch-{os.getppid()}-zzzzzzzz",     # a live process's, fresh
              "recent": tmp_path / ".fetch-q9w8e7r6"}                      # no pid, fresh
    for folder in staged.values():
        (folder / "downloads").mkdir(parents=True)
        (folder / "downloads" / "tmpab12cd").write_bytes(b"half a download")
        assert STAGING_NAME.match(folder.name)
    for path in (staged["old"], staged["old"] / "downloads", staged["old"] / "downloads" / "tmpab12cd"):
        os.utime(path, (time.time() - 2 * hour, time.time() - 2 * hour))
    lines = []
    result = data.download("mnist", root=tmp_path, downloader=CountingDownloader(served("mnist", gz)), retries=0,
                           log=lines.append)
    assert set(result.values()) == {"downloaded"}
    assert not staged["killed"].exists() and not staged["old"].exists()
    assert staged["running"].exists() and staged["recent"].exists()
    assert sum("staging folder of a fetch that was killed" in line for line in lines) == 2
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".fetch-")) == sorted(
        [staged["running"].name, staged["recent"].name])       # the new fetch's own staging folder is gone too
