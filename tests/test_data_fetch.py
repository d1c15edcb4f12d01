"""Fetching (minilib.data.fetch) and the command line, without a network: a fake downloader in pooch's protocol
serves every archive format the sources use (IDX .gz as is, PNG and BMP images, a zip of BMPs, the CIFAR-10 python
tarball), whole, corrupt, truncated or cut off mid-stream. Nothing partial may ever be left under a real name.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import os
import pickle
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from data_helpers import (
    IDX_NAMES,
    flip_byte,
    fresh_verification_cache,  # noqa: F401  (autouse fixture)
    idx_bytes,
    install_tiny_idx,
    no_leftovers,
    tiny_mnist,
)

from minilib import data
from minilib.data import fetch, registry, unpack
from minilib.data.__main__ import main as cli_main
from minilib.data.readers import pixels_sha256
from minilib.data.registry import ArraySpec, FileSpec
from minilib.data.sources import Download, Source


@pytest.fixture(autouse=True)
def _online(monkeypatch):
    # conftest.py turns fetching off for the whole suite; these tests fetch, from fake downloaders only
    monkeypatch.delenv("MINILIB_OFFLINE", raising=False)


class FakeDownloader:
    """Pooch's downloader protocol: ``downloader(url, output_file, pooch)`` writes ``files[url]`` to ``output_file``.

    An unknown URL fails like a 404 (an OSError, as requests' errors are); a value that is an exception is raised
    after half the bytes were written (a connection cut mid-download).
    """

    def __init__(self, files: dict[str, bytes | tuple[bytes, BaseException]]):
        self.files = files
        self.calls: list[str] = []

    def __call__(self, url, output_file, pooch, check_only=False):
        self.calls.append(url)
        if url not in self.files:
            raise OSError(f"404 Client Error: Not Found for url: {url}")
        served = self.files[url]
        if isinstance(served, tuple):
            blob, error = served
            Path(output_file).write_bytes(blob[: len(blob) // 2])
            raise error
        Path(output_file).write_bytes(served)


def fetch_(name, root, files, **kw):
    return data.download(name, root=root, downloader=FakeDownloader(files) if isinstance(files, dict) else files,
                         retries=0, **kw)


def served_idx(name: str, gz: dict[str, bytes], mirror: int = 0) -> dict[str, bytes]:
    spec = registry.get_spec(name)
    return {source.downloads[mirror].url: gz[source.roles[0]] for source in spec.sources}


# --------------------------------------------------------------------------------------------------
# IDX .gz files, one per source, several mirrors
# --------------------------------------------------------------------------------------------------


def test_fetch_writes_checked_files_then_skips_them(monkeypatch, tmp_path):
    arrays = tiny_mnist(np.random.default_rng(11))
    gz = install_tiny_idx(monkeypatch, "mnist", None, arrays)
    downloader = FakeDownloader(served_idx("mnist", gz))
    result = fetch_("mnist", tmp_path, downloader)
    assert set(result.values()) == {"downloaded"} and len(downloader.calls) == 4
    assert no_leftovers(tmp_path) == sorted(f"mnist/{n}" for n in IDX_NAMES.values())   # no staging folder left
    x, _ = data.load_mnist("train", root=tmp_path)
    np.testing.assert_array_equal(x, arrays["train-images"])
    result = fetch_("mnist", tmp_path, downloader)        # everything present and valid: nothing fetched
    assert set(result.values()) == {"already valid"} and len(downloader.calls) == 4


@pytest.mark.parametrize("damage", ["flipped-content", "truncated-gzip"])
def test_corrupt_download_on_every_mirror_leaves_nothing(monkeypatch, tmp_path, damage):
    arrays = tiny_mnist(np.random.default_rng(12))
    gz = install_tiny_idx(monkeypatch, "mnist", None, arrays)
    role = "train-images"
    gz[role] = (gzip.compress(flip_byte(idx_bytes(arrays[role]), 200)) if damage == "flipped-content"
                else gz[role][:-30])
    served = {**served_idx("mnist", gz, 0), **served_idx("mnist", gz, 1)}
    with pytest.raises(data.DatasetIntegrityError) as err:
        fetch_("mnist", tmp_path / "root", served)
    assert "train-images" in str(err.value) and "nothing was written" in str(err.value)
    assert not (tmp_path / "root").exists()              # the root it created is gone again, staging and all


def test_fetch_falls_back_to_the_next_mirror(monkeypatch, tmp_path):
    gz = install_tiny_idx(monkeypatch, "mnist", None, tiny_mnist(np.random.default_rng(13)))
    downloader = FakeDownloader(served_idx("mnist", gz, mirror=1))   # the first mirror 404s
    assert set(fetch_("mnist", tmp_path, downloader).values()) == {"downloaded"}
    assert len(downloader.calls) == 8


def test_network_failure_is_a_download_error_and_leaves_no_folder(monkeypatch, tmp_path):
    install_tiny_idx(monkeypatch, "fashion-mnist", None, tiny_mnist(np.random.default_rng(14)))
    with pytest.raises(data.DownloadError, match="Could not fetch Fashion-MNIST train-images"):
        fetch_("fashion-mnist", tmp_path / "data", {})
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("error", [ConnectionResetError("connection reset mid-download"), KeyboardInterrupt()])
def test_download_cut_off_midway_leaves_nothing(monkeypatch, tmp_path, error):
    gz = install_tiny_idx(monkeypatch, "fashion-mnist", None, tiny_mnist(np.random.default_rng(15)))
    served = {url: (blob, error) for url, blob in served_idx("fashion-mnist", gz).items()}
    (tmp_path / "kept.txt").write_text("the root existed before")
    with pytest.raises((data.DownloadError, KeyboardInterrupt)):
        fetch_("fashion-mnist", tmp_path, served)
    assert no_leftovers(tmp_path) == ["kept.txt"]


def test_fetch_replaces_a_corrupt_file_and_keeps_the_good_ones(monkeypatch, tmp_path):
    gz = install_tiny_idx(monkeypatch, "mnist", tmp_path, tiny_mnist(np.random.default_rng(16)))
    bad = tmp_path / "mnist" / IDX_NAMES["test-labels"]
    bad.write_bytes(b"garbage")
    result = fetch_("mnist", tmp_path, served_idx("mnist", gz))
    assert result[bad] == "downloaded" and list(result.values()).count("already valid") == 3
    assert bad.read_bytes() == gz["test-labels"]


def test_directory_in_the_way_stops_before_downloading(monkeypatch, tmp_path):
    gz = install_tiny_idx(monkeypatch, "mnist", None, tiny_mnist(np.random.default_rng(17)))
    (tmp_path / "mnist" / IDX_NAMES["train-images"]).mkdir(parents=True)
    downloader = FakeDownloader(served_idx("mnist", gz))
    with pytest.raises(data.DownloadError, match="is a directory, where the file train-images-idx3-ubyte.gz goes"):
        fetch_("mnist", tmp_path, downloader)
    assert downloader.calls == []
    (tmp_path / "sr").write_text("a file where the sr/ folder goes")
    with pytest.raises(data.DownloadError, match="is a file, where a folder goes"):
        fetch_("set5", tmp_path, {})


def test_offline_refuses_to_fetch(monkeypatch, tmp_path):
    monkeypatch.setenv("MINILIB_OFFLINE", "1")
    with pytest.raises(data.DownloadUnavailableError, match="MINILIB_OFFLINE=1 is set"):
        fetch_("mnist", tmp_path / "root", {})
    with pytest.raises(data.DatasetNotFoundError, match="Fetching is off"):
        data.load_mnist("test", root=tmp_path / "root")
    assert not (tmp_path / "root").exists()


def test_default_downloader_is_pooch_http_with_a_timeout(monkeypatch, tmp_path):
    import pooch
    downloader = fetch.default_downloader(progressbar=False)
    assert isinstance(downloader, pooch.HTTPDownloader) and downloader.kwargs["timeout"] == fetch.TIMEOUT_S
    gz = install_tiny_idx(monkeypatch, "mnist", None, tiny_mnist(np.random.default_rng(18)))
    fake = FakeDownloader(served_idx("mnist", gz))
    monkeypatch.setattr(fetch, "default_downloader", lambda progressbar: fake)
    data.download("mnist", root=tmp_path, retries=0)
    assert len(fake.calls) == 4


def test_loader_fetches_on_first_use(monkeypatch, tmp_path, capsys):
    arrays = tiny_mnist(np.random.default_rng(19))
    gz = install_tiny_idx(monkeypatch, "mnist", None, arrays)
    monkeypatch.setattr(fetch, "default_downloader", lambda progressbar: FakeDownloader(served_idx("mnist", gz)))
    monkeypatch.setattr(fetch, "RETRIES", 0)
    x, y = data.load_mnist("test", root=tmp_path)
    np.testing.assert_array_equal(x, arrays["test-images"])
    assert "fetching MNIST" in capsys.readouterr().out          # a few plain lines, no progress bar off a terminal
    with pytest.raises(data.DatasetNotFoundError, match="Fetching failed"):
        monkeypatch.setattr(fetch, "default_downloader", lambda progressbar: FakeDownloader({}))
        data.load_fashion_mnist("test", root=tmp_path)


# --------------------------------------------------------------------------------------------------
# Images: PNG as is, BMP converted, members of a zip archive
# --------------------------------------------------------------------------------------------------


def encode(arr: np.ndarray, fmt: str) -> bytes:
    from PIL import Image
    buffer = io.BytesIO()
    Image.fromarray(arr).save(buffer, format=fmt)
    return buffer.getvalue()


def install_tiny_images(monkeypatch, name: str, images: dict[str, np.ndarray], downloads) -> None:
    """Registry entry ``name`` holding ``images`` (checked by pixels), fetched from ``downloads(stem)``."""
    real = registry.get_spec(name)
    files = {s: FileSpec(f"{real.folder}/{s}.png", "pixels", pixels_sha256(a)) for s, a in images.items()}
    found = tuple(Source((stem,), downloads(stem)) for stem in images)
    monkeypatch.setitem(registry.DATASETS, real.name, dataclasses.replace(real, files=files, sources=found))


def tiny_images(rng) -> dict[str, np.ndarray]:
    return {"rgb": rng.integers(0, 256, (9, 7, 3), dtype=np.uint8), "gray": rng.integers(0, 256, (5, 6), np.uint8)}


def test_png_and_bmp_sources_give_the_same_pixels(monkeypatch, tmp_path):
    images = tiny_images(np.random.default_rng(20))
    install_tiny_images(monkeypatch, "set14", images, lambda s: (Download(f"https://a/{s}.png", unpack="image"),
                                                                  Download(f"https://b/{s}.bmp", unpack="image")))
    bmp_only = {f"https://b/{s}.bmp": encode(a, "BMP") for s, a in images.items()}
    fetch_("set14", tmp_path / "one", bmp_only)
    png_only = {f"https://a/{s}.png": encode(a, "PNG") for s, a in images.items()}
    fetch_("set14", tmp_path / "two", png_only)
    for root in ("one", "two"):
        out = data.load_sr_images("Set14", root=tmp_path / root, download=False)
        assert all(np.array_equal(out[s], a) for s, a in images.items())
    assert no_leftovers(tmp_path / "one") == ["sr/Set14/gray.png", "sr/Set14/rgb.png"]


def test_a_mirror_serving_other_pixels_is_rejected(monkeypatch, tmp_path):
    images = tiny_images(np.random.default_rng(21))
    install_tiny_images(monkeypatch, "set5", images, lambda s: (Download(f"https://a/{s}.png", unpack="image"),))
    served = {f"https://a/{s}.png": encode(255 - a, "PNG") for s, a in images.items()}
    with pytest.raises(data.DatasetIntegrityError, match="SHA-256 of the decoded pixels"):
        fetch_("set5", tmp_path, served)
    assert no_leftovers(tmp_path) == []


def zip_of(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for member, blob in members.items():
            archive.writestr(member, blob)
    return buffer.getvalue()


def test_zip_archive_fallback_is_downloaded_once_for_every_image(monkeypatch, tmp_path):
    images = tiny_images(np.random.default_rng(22))
    install_tiny_images(monkeypatch, "t91", images, lambda s: (
        Download(f"https://raw/{s}.bmp", unpack="image"),
        Download("https://archive/repo.zip", unpack="zip_image", member=f"repo/data/{s}.bmp")))
    downloader = FakeDownloader({"https://archive/repo.zip": zip_of(
        {f"repo/data/{s}.bmp": encode(a, "BMP") for s, a in images.items()})})
    fetch_("t91", tmp_path, downloader)
    assert downloader.calls.count("https://archive/repo.zip") == 1      # the single files 404, the zip serves all
    out = data.load_sr_images("T91", root=tmp_path, download=False)
    assert all(np.array_equal(out[s], a) for s, a in images.items())


@pytest.mark.parametrize("damage", ["truncated", "member-missing"])
def test_damaged_zip_leaves_nothing(monkeypatch, tmp_path, damage):
    images = tiny_images(np.random.default_rng(23))
    install_tiny_images(monkeypatch, "t91", images, lambda s: (
        Download("https://archive/repo.zip", unpack="zip_image", member=f"repo/{s}.bmp"),))
    members = {f"repo/{s}.bmp": encode(a, "BMP") for s, a in images.items()}
    if damage == "member-missing":
        members.pop("repo/gray.bmp")
    blob = zip_of(members)
    with pytest.raises(data.DatasetIntegrityError, match="cannot read 'repo/"):
        fetch_("t91", tmp_path, {"https://archive/repo.zip": blob[: len(blob) // 2] if damage == "truncated" else blob})
    assert [p for p in no_leftovers(tmp_path) if not p.startswith("sr/T91/rgb")] == []


# --------------------------------------------------------------------------------------------------
# CIFAR-10: the official python tarball, converted to the loader's npz files
# --------------------------------------------------------------------------------------------------


def cifar_tarball(rng, n_per_batch: int = 4) -> tuple[bytes, dict[str, str], dict[str, np.ndarray]]:
    """A tarball laid out like cifar-10-python.tar.gz: tiny pickled batches; their MD5s; the arrays they hold."""
    buffer, md5s, arrays = io.BytesIO(), {}, {}
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name in unpack.CIFAR10_SPLITS["train"] + unpack.CIFAR10_SPLITS["test"]:
            x = rng.integers(0, 256, (n_per_batch, 3 * 32 * 32), dtype=np.uint8)
            labels = [int(v) for v in rng.integers(0, 10, n_per_batch)]
            blob = pickle.dumps({b"data": x, b"labels": labels, b"batch_label": name.encode()})
            md5s[name], arrays[name] = hashlib.md5(blob).hexdigest(), (x, labels)
            info = tarfile.TarInfo(f"{unpack.CIFAR10_FOLDER}/{name}")
            info.size = len(blob)
            archive.addfile(info, io.BytesIO(blob))
    return buffer.getvalue(), md5s, arrays


def install_tiny_cifar(monkeypatch, tarball: bytes, md5s: dict[str, str], n_per_batch: int = 4) -> str:
    url = "https://example.org/cifar-10-python.tar.gz"
    monkeypatch.setattr(unpack, "CIFAR10_BATCH_MD5", md5s)
    real = registry.get_spec("cifar10")
    sizes = {"train": 5 * n_per_batch, "test": n_per_batch}
    files = {split: FileSpec(f"{real.folder}/cifar10_{split}.npz", "arrays", arrays={
        "x": ArraySpec((n, 32, 32, 3), "uint8", None), "y": ArraySpec((n,), "<i8", None)})
        for split, n in sizes.items()}
    found = (Source(("train", "test"), (Download(url, f"md5:{hashlib.md5(tarball).hexdigest()}", "cifar10_python"),)),)
    monkeypatch.setitem(registry.DATASETS, "cifar10", dataclasses.replace(real, files=files, sources=found))
    return url


def test_cifar10_tarball_is_converted_to_npz_in_the_official_order(monkeypatch, tmp_path):
    tarball, md5s, batches = cifar_tarball(np.random.default_rng(24))
    url = install_tiny_cifar(monkeypatch, tarball, md5s)
    fetch_("cifar10", tmp_path, {url: tarball})
    assert no_leftovers(tmp_path) == ["cifar10-official/cifar10_test.npz", "cifar10-official/cifar10_train.npz"]
    x, y = data.load_cifar10("train", root=tmp_path, variant="official", download=False)
    first_x, first_labels = batches["data_batch_1"]
    assert x.shape == (20, 32, 32, 3) and y.dtype == np.int64 and y[:4].tolist() == first_labels
    # the pickled rows are R plane, G plane, B plane (1024 each); NHWC puts the three values of a pixel together
    np.testing.assert_array_equal(x[0, 0, 0], first_x[0, [0, 1024, 2048]])
    np.testing.assert_array_equal(x[0, 1, 2], first_x[0, [34, 1024 + 34, 2048 + 34]])
    x_test, _ = data.load_cifar10("test", root=tmp_path, variant="official", download=False)
    np.testing.assert_array_equal(x_test.transpose(0, 3, 1, 2).reshape(4, -1), batches["test_batch"][0])


def test_cifar10_tarball_with_the_wrong_md5_is_refused(monkeypatch, tmp_path):
    tarball, md5s, _ = cifar_tarball(np.random.default_rng(25))
    url = install_tiny_cifar(monkeypatch, tarball, md5s)
    with pytest.raises(data.DownloadError, match="MD5 hash of downloaded file"):
        fetch_("cifar10", tmp_path, {url: flip_byte(tarball, 100)})
    assert no_leftovers(tmp_path) == []


@pytest.mark.parametrize("damage", ["truncated", "batch-md5"])
def test_damaged_cifar10_tarball_leaves_nothing(monkeypatch, tmp_path, damage):
    tarball, md5s, _ = cifar_tarball(np.random.default_rng(26))
    if damage == "batch-md5":
        md5s = {**md5s, "data_batch_3": "0" * 32}        # a batch that is not the published one is never unpickled
    else:
        tarball = tarball[: len(tarball) // 2]
    url = install_tiny_cifar(monkeypatch, tarball, md5s)
    with pytest.raises(data.DatasetIntegrityError, match="data_batch_3 has MD5|cannot read the CIFAR-10 tarball"):
        fetch_("cifar10", tmp_path, {url: tarball})
    assert no_leftovers(tmp_path) == []


def test_converted_cifar10_is_checked_by_crc_and_class_counts(monkeypatch, tmp_path):
    tarball, md5s, _ = cifar_tarball(np.random.default_rng(27))
    install_tiny_cifar(monkeypatch, tarball, md5s)
    fetch_("cifar10", tmp_path, {registry.get_spec("cifar10").sources[0].downloads[0].url: tarball})
    path = tmp_path / "cifar10-official" / "cifar10_train.npz"
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 3] ^= 0xFF                        # inside the compressed x member
    path.write_bytes(bytes(raw))
    with pytest.raises(data.DatasetIntegrityError):
        data.load_cifar10("train", root=tmp_path, variant="official", download=False)


# --------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------


def test_cli_where_status_download_verify(monkeypatch, tmp_path, capsys):
    gz = install_tiny_idx(monkeypatch, "mnist", None, tiny_mnist(np.random.default_rng(28)))
    monkeypatch.setenv("MINILIB_DATA", str(tmp_path))
    assert cli_main(["where"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path)
    assert cli_main(["verify", "mnist"]) == 1
    assert "python -m minilib.data download mnist" in capsys.readouterr().err
    assert cli_main(["status"]) == 0
    assert "mnist          missing" in capsys.readouterr().out

    monkeypatch.setattr(fetch, "default_downloader", lambda progressbar: FakeDownloader(served_idx("mnist", gz)))
    monkeypatch.setattr(fetch, "RETRIES", 0)
    assert cli_main(["download", "mnist"]) == 0
    assert "all 4 files present and verified" in capsys.readouterr().out
    assert cli_main(["verify"]) == 0
    out = capsys.readouterr().out
    assert "mnist: 4/4 files OK" in out and "cifar10: not present" in out

    (tmp_path / "mnist" / IDX_NAMES["train-labels"]).write_bytes(gzip.compress(b"\x00\x00\x08\x01"))
    assert cli_main(["status", "mnist"]) == 0
    assert "corrupt (1 of 4 files)" in capsys.readouterr().out
    assert cli_main(["verify"]) == 1
    assert "CORRUPT" in capsys.readouterr().err


@pytest.mark.parametrize("argv, env, expected", [
    (["download", "mnist"], {"MINILIB_OFFLINE": "1"}, "MINILIB_OFFLINE=1 is set, so minilib does not fetch MNIST"),
    (["download", "imagenet"], {}, "unknown dataset name='imagenet'"),
    (["download", "cifar10-jpeg"], {}, "cannot be downloaded by minilib"),
    (["verify", "imagenet"], {}, "unknown dataset"),
])
def test_cli_bad_input_is_one_line_and_exit_1(monkeypatch, tmp_path, capsys, argv, env, expected):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    root = tmp_path / "root"
    assert cli_main([*argv, "--root", str(root)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and expected in err
    assert not root.exists()


def test_cli_directory_in_the_way_is_one_line(tmp_path, capsys):
    (tmp_path / "mnist" / IDX_NAMES["test-labels"]).mkdir(parents=True)
    assert cli_main(["download", "mnist", "--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is a directory" in err


def test_cli_usage_error_exits_2():
    with pytest.raises(SystemExit) as err:
        cli_main([])
    assert err.value.code == 2


def test_cli_runs_as_module_from_any_directory(tmp_path):
    repo = Path(__file__).resolve().parents[1]
    env = {k: v for k, v in os.environ.items() if k != "MINILIB_DATA"}
    env.update(PYTHONPATH=str(repo), HOME=str(tmp_path / "home"))
    env.pop("XDG_CACHE_HOME", None)
    outputs = {subprocess.run([sys.executable, "-m", "minilib.data", "where"], capture_output=True, text=True,
                              env=env, cwd=cwd, timeout=60, check=True).stdout for cwd in (repo, repo / "notebooks")}
    assert len(outputs) == 1                                    # the same folder from the root and from notebooks/
    if sys.platform.startswith("linux"):
        assert outputs == {f"{tmp_path / 'home' / '.cache' / 'minilib'}\n"}
