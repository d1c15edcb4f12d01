"""Where each dataset can be fetched from: public URLs, the hash published with each, and how to unpack it.

A :class:`Source` produces some files of a dataset (its roles in the registry) and lists :class:`Download`
alternatives, tried in order: mirrors of the same bytes, or other public copies in another format. Whatever a
download delivers, the files it unpacks to are checked against the registry's content hashes before they are
used, so a mirror that serves something else is rejected, never trusted.

The SR images come from the public repositories and commits that ``shared/data/README.md`` (section 4) names;
a commit-pinned ``raw.githubusercontent.com`` URL always serves the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import checksums


@dataclass(frozen=True)
class Download:
    """One public copy: ``url``; ``known_hash`` in pooch's syntax (``"md5:…"``, ``"sha256:…"``) when the
    publisher gives one, else None; ``unpack`` names how the download becomes the registered files
    (a key of :data:`minilib.data.unpack.UNPACKERS`); ``member`` is the path inside an archive."""

    url: str
    known_hash: str | None = None
    unpack: str = "as_is"
    member: str = ""


@dataclass(frozen=True)
class Source:
    """The files ``roles`` of a dataset, and the :class:`Download` alternatives that deliver them, in order."""

    roles: tuple[str, ...]
    downloads: tuple[Download, ...]


def github_raw(repo: str, commit: str, path: str) -> str:
    """The URL of one file of a public GitHub repository at a fixed commit."""
    return f"https://raw.githubusercontent.com/{repo}/{commit}/{path}"


IDX_FILENAMES = {
    "train-images": "train-images-idx3-ubyte.gz",
    "train-labels": "train-labels-idx1-ubyte.gz",
    "test-images": "t10k-images-idx3-ubyte.gz",
    "test-labels": "t10k-labels-idx1-ubyte.gz",
}

# ossci-datasets is torchvision's MNIST mirror, cvdf-datasets TensorFlow's; both serve the standard .gz files.
MNIST_MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/",
                 "https://storage.googleapis.com/cvdf-datasets/mnist/")
# Zalando's own bucket, then the files in its GitHub repository.
FASHION_MNIST_MIRRORS = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
                         "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/")

CIFAR10_TARBALL_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"

DENOISING_DATASETS = ("majedelhelou/denoising_datasets", "58234876fef6f1b56306705c78dfd40cdb837b86")
DCSCN = ("jiny2001/dcscn-super-resolution", "d382bc30d41c94ac72f8cb148d61cc4864b3b380")
SRCNN_COPIES = ("wensongzhang/Project", "62c9087301fdcacaaea9cb1968322fa241374d45")
# GitHub's zip of the whole dcscn repository at that commit: one large download holding every T91 BMP, used
# only when the single files cannot be had.
DCSCN_ZIP = f"https://github.com/{DCSCN[0]}/archive/{DCSCN[1]}.zip"
DCSCN_ZIP_PREFIX = f"dcscn-super-resolution-{DCSCN[1]}/"


def idx_sources(mirrors: tuple[str, ...]) -> tuple[Source, ...]:
    """One source per IDX file, each tried at every mirror (the .gz bytes may differ; the content may not)."""
    return tuple(Source((role,), tuple(Download(mirror + filename) for mirror in mirrors))
                 for role, filename in IDX_FILENAMES.items())


def cifar10_official_sources() -> tuple[Source, ...]:
    """The official python tarball, checked by its published MD5, unpacked to both splits at once."""
    return (Source(("train", "test"), (Download(CIFAR10_TARBALL_URL, f"md5:{checksums.CIFAR10_TARBALL_MD5}",
                                                "cifar10_python"),)),)


def set5_sources() -> tuple[Source, ...]:
    # dcscn numbers the same five images img_001 ... img_005 in alphabetical order (pixel-identical copies).
    return tuple(Source((stem,), (Download(github_raw(*DENOISING_DATASETS, f"CSet5/{stem}.png"), unpack="image"),
                                  Download(github_raw(*DCSCN, f"data/set5/img_{i:03d}.png"), unpack="image")))
                 for i, stem in enumerate(checksums.SET5_PIXELS_SHA256, start=1))


def set14_sources() -> tuple[Source, ...]:
    return tuple(Source((stem,), (Download(github_raw(*DENOISING_DATASETS, f"CSet14/{stem}.png"), unpack="image"),
                                  Download(github_raw(*SRCNN_COPIES, f"Test/Set14/{stem}.bmp"), unpack="image")))
                 for stem in checksums.SET14_PIXELS_SHA256)


def t91_sources() -> tuple[Source, ...]:
    return tuple(Source((stem,), (Download(github_raw(*DCSCN, f"data/yang91/{stem}.bmp"), unpack="image"),
                                  Download(DCSCN_ZIP, unpack="zip_image",
                                           member=f"{DCSCN_ZIP_PREFIX}data/yang91/{stem}.bmp")))
                 for stem in checksums.T91_PIXELS_SHA256)
