"""The real data under $MINILIB_DATA (CI: ../shared/data): loaders, the registry's hashes, the sample against the
full files, and fetching through the real registry from a fake mirror that serves the real files."""

from __future__ import annotations

import io

import numpy as np
from data_full import ROOT, needs_data
from data_helpers import fresh_verification_cache  # noqa: F401  (autouse fixture)

from minilib import data
from minilib.data import registry, samples
from minilib.data.readers import pixels_sha256, read_image

needs_mnist = needs_data("mnist/t10k-images-idx3-ubyte.gz", "MNIST")
needs_sr = needs_data("sr/T91/t1.png", "SR images")


@needs_mnist
def test_real_mnist_test_split():
    x, y = data.load_mnist("test", download=False)
    assert x.shape == (10000, 28, 28) and x.dtype == np.uint8 and y.shape == (10000,)
    assert np.bincount(y, minlength=10).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@needs_mnist
def test_mnist_sample_is_the_start_of_the_real_files():
    for split, n in samples.MNIST_SAMPLE_SIZES.items():
        full, sample = data.load_mnist(split, download=False), data.load_mnist(split, sample=True)
        np.testing.assert_array_equal(sample[0], full[0][:n])
        np.testing.assert_array_equal(sample[1], full[1][:n])


@needs_data("fashion-mnist/t10k-images-idx3-ubyte.gz", "Fashion-MNIST")
def test_real_fashion_mnist_test_split():
    x, y = data.load_fashion_mnist("test", download=False)
    assert x.shape == (10000, 28, 28)
    assert np.bincount(y, minlength=10).tolist() == [1000] * 10


@needs_data("cifar10/cifar10_test.npz", "JPEG-decoded CIFAR-10 copy")
def test_real_cifar10_jpeg_test_split_is_the_default_here():
    assert data.cifar10_variant() in ("jpeg", "official")
    x, y = data.load_cifar10("test", variant="jpeg", download=False)  # train takes ~10 s to decompress: not here
    assert x.shape == (10000, 32, 32, 3) and x.dtype == np.uint8 and y.dtype == np.int64
    assert np.bincount(y, minlength=10).tolist() == [1000] * 10


@needs_sr
def test_real_sr_sets():
    set5, set14 = data.load_sr_images("Set5", download=False), data.load_sr_images("Set14", download=False)
    assert len(set5) == 5 and set5["baby"].shape == (512, 512, 3) and set5["woman"].shape == (344, 228, 3)
    assert len(set14) == 14 and set14["bridge"].shape == (512, 512) and set14["man"].ndim == 3
    assert len(data.load_sr_images("T91", download=False)) == 91


@needs_data("SHA256SUMS", "SHA256SUMS")
def test_registry_pixel_hashes_belong_to_the_files_sha256sums_vouches_for():
    import hashlib
    sums = dict(reversed(line.split()) for line in (ROOT / "SHA256SUMS").read_text().splitlines() if line.strip())
    images = [fs for s in data.DATASETS.values() for fs in s.files.values() if fs.checksum == "pixels"]
    assert len(images) == 110
    for fs in images:
        assert hashlib.sha256((ROOT / fs.relpath).read_bytes()).hexdigest() == sums[fs.relpath]
        assert pixels_sha256(read_image(ROOT / fs.relpath)) == fs.sha256


class ServeFiles:
    """A downloader that serves ``files[url]`` (bytes), for the real registry's URLs."""

    def __init__(self, files):
        self.files = files

    def __call__(self, url, output_file, pooch, check_only=False):
        if url not in self.files:
            raise OSError(f"404 for {url}")
        with open(output_file, "wb") as out:
            out.write(self.files[url])


@needs_mnist
def test_fetch_mnist_through_the_real_registry(monkeypatch, tmp_path):
    monkeypatch.delenv("MINILIB_OFFLINE", raising=False)
    spec = registry.get_spec("mnist")
    served = {source.downloads[1].url: (ROOT / spec.files[source.roles[0]].relpath).read_bytes()
              for source in spec.sources}                      # the second mirror: the first one 404s
    result = data.download("mnist", root=tmp_path, downloader=ServeFiles(served), retries=0)
    assert set(result.values()) == {"downloaded"}
    assert all(c.status == "ok" for c in data.verify_dataset("mnist", root=tmp_path))


@needs_sr
def test_fetch_t91_from_bmp_through_the_real_registry(monkeypatch, tmp_path):
    # T91 is published as BMP: the converted PNGs must carry exactly the registered pixels.
    from PIL import Image
    monkeypatch.delenv("MINILIB_OFFLINE", raising=False)
    spec = registry.get_spec("t91")
    served = {}
    for source in spec.sources:
        buffer = io.BytesIO()
        Image.open(ROOT / spec.files[source.roles[0]].relpath).save(buffer, format="BMP")
        served[source.downloads[0].url] = buffer.getvalue()
    data.download("t91", root=tmp_path, downloader=ServeFiles(served), retries=0)
    assert all(c.status == "ok" for c in data.verify_dataset("t91", root=tmp_path))
