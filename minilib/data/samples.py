"""The embedded sample: a few MB of verified data shipped inside the package, so quick mode and the tests need
neither prepared data nor a network, and the book builds (at the sample's size) where the full data cannot be had.

* MNIST: the first 2,048 training and the first 1,000 test images of the official files, with their labels, in the
  standard IDX ``.gz`` format (quick mode trains on the first 1,024 and validates on the last 512 of the 2,048).
* Set5 butterfly and Set14 barbara and comic: the whole HR images that chapter 7's close-ups are cut from.

Sources, licences and attribution are in ``sample/README.md`` beside the files. The sample is checked like the
full data: the MNIST files by the SHA-256 of their decompressed content (computed from the verified full files when
the sample was cut from them), the images by the same pixel hashes as the full sets.
"""

from __future__ import annotations

from pathlib import Path

from . import checksums
from .registry import DatasetSpec, FileSpec, idx_sizes
from .sources import IDX_FILENAMES

SAMPLE_ROOT = Path(__file__).resolve().parent / "sample"
MNIST_SAMPLE_SIZES = {"train": 2048, "test": 1000}

_MNIST_SAMPLE_GUNZIP_SHA256 = {
    "train-images": "a66944ab7c77489e7a3a6cc1fe66bc3084e11a11141237ed7537a3f1b2072f98",
    "train-labels": "fdb8efb936f647a73024ce5e7c29b44e2048ff885293a84dfba7d09393708037",
    "test-images": "de7c252b04f05e1f8309634180ccdf286dc6dbac8c579b74e76e02ae0331ca52",
    "test-labels": "832c0d20f0dc42e575488c75a83a970787d4c8d4d05831b2ef03701b4a478a90",
}
_SR_SAMPLE = {"set5": ("Set5", ("butterfly",), checksums.SET5_PIXELS_SHA256),
              "set14": ("Set14", ("barbara", "comic"), checksums.SET14_PIXELS_SHA256)}


def _sr_sample(title: str, stems: tuple[str, ...], sha256: dict) -> DatasetSpec:
    folder = f"sr/{title}"
    return DatasetSpec(title.lower(), f"{title} sample", folder,
                       {stem: FileSpec(f"{folder}/{stem}.png", "pixels", sha256[stem]) for stem in stems},
                       note=f"{len(stems)} of the full set's images")


SAMPLES: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec("mnist", "MNIST sample", "mnist",
                         {role: FileSpec(f"mnist/{fname}", "gunzip", _MNIST_SAMPLE_GUNZIP_SHA256[role],
                                         size=idx_sizes(MNIST_SAMPLE_SIZES["train"], MNIST_SAMPLE_SIZES["test"])[role])
                          for role, fname in IDX_FILENAMES.items()},
                         note="the first {train:,} training and {test:,} test images".format(**MNIST_SAMPLE_SIZES)),
    **{name: _sr_sample(*args) for name, args in _SR_SAMPLE.items()},
}


def sample_spec(name: str) -> DatasetSpec:
    """The embedded sample of dataset ``name``; ``ValueError`` naming the datasets that have one."""
    key = str(name).strip().lower()
    if key not in SAMPLES:
        raise ValueError(f"dataset {name!r} has no embedded sample; these do: {', '.join(SAMPLES)}")
    return SAMPLES[key]
