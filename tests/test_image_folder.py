"""minilib.data.image_folder: the class-per-folder loader and the crops that size its images.

Every folder is built in tmp_path from a few small PNG, JPEG and .npy files, so the tests know exactly which
file holds which pixels. The last test trains one epoch on such a folder through the command line.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from minilib.data.image_folder import (
    ImageFolder,
    random_resized_crop,
    read_any_image,
    resize,
    resize_center_crop,
    to_channels,
)
from minilib.data.registry import DatasetIntegrityError, DatasetNotFoundError


def image(seed: int, shape=(6, 5, 3)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


def make_folder(root, layout: dict) -> dict:
    """``layout``: class -> {file name: array}; PNG/JPEG through Pillow, .npy with np.save. Returns the arrays."""
    for cls, files in layout.items():
        (root / cls).mkdir(parents=True, exist_ok=True)
        for name, arr in files.items():
            path = root / cls / name
            if name.lower().endswith(".npy"):
                np.save(path, arr)
            else:
                Image.fromarray(arr).save(path, format="JPEG" if ".jp" in name.lower() else "PNG")
    return layout


def test_classes_sorted_examples_ordered_and_decoded_exactly(tmp_path):
    layout = make_folder(tmp_path, {
        "zebra": {"b.png": image(0), "a.npy": image(1)},
        "ant": {"x.PNG": image(2), "c.npy": image(3)},
        "mole": {"only.npy": image(4)},
    })
    (tmp_path / "ant" / "notes.txt").write_text("not an image")   # ignored: not an image suffix
    (tmp_path / ".hidden").mkdir()                                   # ignored: hidden
    folder = ImageFolder(tmp_path)

    assert folder.classes == ["ant", "mole", "zebra"]
    assert [(p.parent.name, p.name, label) for p, label in folder.samples] == [
        ("ant", "c.npy", 0), ("ant", "x.PNG", 0), ("mole", "only.npy", 1), ("zebra", "a.npy", 2), ("zebra", "b.png", 2)]
    assert folder.labels.tolist() == [0, 0, 1, 2, 2]
    for i, (path, label) in enumerate(folder.samples):
        arr, got_label = folder.read(i)
        assert got_label == label
        np.testing.assert_array_equal(arr, layout[path.parent.name][path.name])  # PNG and .npy are lossless
    assert ImageFolder(tmp_path).samples == folder.samples  # same order on every build


def test_jpeg_grey_and_channel_conversion(tmp_path):
    grey = image(5, (7, 4))
    colour = np.full((4, 4, 3), (200, 100, 50), dtype=np.uint8)
    make_folder(tmp_path, {"a": {"g.npy": grey, "c.JPEG": colour}})
    rgb = ImageFolder(tmp_path)
    by_name = {p.name: rgb.read(i)[0] for i, (p, _) in enumerate(rgb.samples)}
    np.testing.assert_array_equal(by_name["g.npy"], np.repeat(grey[:, :, None], 3, axis=2))
    assert by_name["c.JPEG"].shape == (4, 4, 3)
    assert np.abs(by_name["c.JPEG"].astype(int) - colour).max() <= 8  # JPEG is lossy; a flat colour survives
    luma = to_channels(colour, 1)
    assert luma.shape == (4, 4, 1) and luma[0, 0, 0] == round(0.299 * 200 + 0.587 * 100 + 0.114 * 50)


def test_missing_root_and_no_classes_raise_not_found(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="not found"):
        ImageFolder(tmp_path / "nowhere")
    (tmp_path / "loose.png").write_bytes(b"")
    with pytest.raises(DatasetNotFoundError, match="no class sub-folders"):
        ImageFolder(tmp_path)


def test_empty_class_folder_is_named(tmp_path):
    make_folder(tmp_path, {"good": {"a.npy": image(0)}})
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no images here")
    with pytest.raises(DatasetNotFoundError, match=r"empty has no images"):
        ImageFolder(tmp_path)


@pytest.mark.parametrize("name, payload, rule", [
    ("broken.png", b"\x89PNG\r\n\x1a\n not really", "cannot decode"),
    ("broken.npy", b"garbage", "Cannot read image"),
])
def test_unreadable_file_is_named(tmp_path, name, payload, rule):
    make_folder(tmp_path, {"a": {"ok.npy": image(0)}})
    (tmp_path / "a" / name).write_bytes(payload)
    folder = ImageFolder(tmp_path)  # building does not decode
    bad = next(i for i, (p, _) in enumerate(folder.samples) if p.name == name)
    with pytest.raises(DatasetIntegrityError, match=rule) as info:
        folder.read(bad)
    assert info.value.path.name == name and name in str(info.value)


def test_npy_must_hold_uint8_images(tmp_path):
    np.save(tmp_path / "f.npy", np.zeros((4, 4), dtype=np.float32))
    with pytest.raises(DatasetIntegrityError, match="uint8"):
        read_any_image(tmp_path / "f.npy")


def test_validation_folder_must_have_the_training_classes(tmp_path):
    make_folder(tmp_path / "val", {"a": {"x.npy": image(0)}, "c": {"y.npy": image(1)}})
    with pytest.raises(ValueError, match=r"missing \['b'\], extra \['c'\]"):
        ImageFolder(tmp_path / "val", classes=["a", "b"])


def test_resize_and_crops_give_the_requested_size():
    img = image(0, (30, 50, 3))
    assert resize(img, 30, 50) is img
    assert resize(img, 12, 7).shape == (12, 7, 3)
    flat = np.full((9, 13, 3), 77, dtype=np.uint8)
    assert (resize(flat, 4, 6) == 77).all()  # bilinear weights sum to one
    assert resize_center_crop(img, 16).shape == (16, 16, 3)
    crops = [random_resized_crop(img, 16, np.random.default_rng(s)) for s in (1, 1, 2)]
    assert all(c.shape == (16, 16, 3) for c in crops)
    np.testing.assert_array_equal(crops[0], crops[1])  # a function of the generator only
    assert not np.array_equal(crops[0], crops[2])
    tall = image(1, (200, 10, 3))  # no crop with ratio in [3/4, 4/3] fits 10 draws: the centred fallback
    assert random_resized_crop(tall, 8, np.random.default_rng(0)).shape == (8, 8, 3)


def test_train_one_epoch_on_a_folder_from_the_command_line(tmp_path):
    torch = pytest.importorskip("torch")
    from minilib.training import distributed
    from minilib.training.__main__ import main

    threads, rng = torch.get_num_threads(), distributed.capture_rng_state()  # restored below: the run sets both

    classes = {"cat": 0, "dog": 1, "emu": 2}
    for split, count in (("train", 4), ("val", 2)):
        make_folder(tmp_path / "data" / split, {
            cls: {f"{i}.{'png' if i % 2 else 'npy'}": image(10 * k + i + 100 * (split == "val"), (10 + i, 12, 3))
                  for i in range(count)} for cls, k in classes.items()})
    out = tmp_path / "run"
    try:
        code = main(["--model", "tiny-cnn", "--data", str(tmp_path / "data"), "--image-size", "8", "--epochs", "1",
                     "--batch-size", "4", "--threads", "1", "--out", str(out), "--no-progress"])
    finally:
        torch.set_num_threads(threads)
        distributed.restore_rng_state(rng)
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["finished"] and metrics["steps_per_epoch"] == 3  # 12 images, batch 4
    assert "3 classes" in metrics["data"] and "6 validation images" in metrics["data"]
    record = metrics["epochs"][0]
    assert 0 <= record["test_accuracy"] <= 1 and np.isfinite(record["test_loss"])
