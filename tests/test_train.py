"""The training loop, models, transforms and result files: shapes, determinism, provenance."""
import json
import pathlib

import numpy as np
import pytest

import minilib as ml
from minilib.data.transforms import images_to_nchw, standardize
from minilib.models import lenet
from minilib.results import read_result, write_result
from minilib.data.batches import minibatches
from minilib.train import evaluate, fit


def _blobs(rng, n=200):
    """Two Gaussian blobs in 4-D: a linearly separable toy task."""
    y = rng.integers(0, 2, size=n)
    x = rng.standard_normal((n, 4)) + 3.0 * y[:, None]
    return x, y


def _train(seed):
    rng = np.random.default_rng(seed)
    x, y = _blobs(rng)
    model = ml.Sequential(ml.Linear(4, 8, rng=rng), ml.ReLU(), ml.Linear(8, 2, rng=rng))
    history = fit(model, ml.softmax_cross_entropy, ml.SGD(model, lr=0.1, momentum=0.9), x, y,
                  epochs=3, batch_size=32, rng=rng, x_val=x, y_val=y, progress="epoch", log=None)
    return model, history


def test_fit_learns_and_records_one_entry_per_epoch():
    _, history = _train(0)
    assert history["epoch"] == [1, 2, 3]
    assert all(len(history[k]) == 3 for k in ("loss", "accuracy", "val_loss", "val_accuracy", "seconds"))
    assert history["loss"][-1] < history["loss"][0]
    assert history["val_accuracy"][-1] > 0.95


def test_fit_is_repeatable_with_the_same_seed():
    (_, first), (_, second) = _train(1), _train(1)
    assert first["loss"] == second["loss"]


def test_fit_prints_one_line_per_epoch(capsys):
    rng = np.random.default_rng(0)
    x, y = _blobs(rng, 40)
    model = ml.Sequential(ml.Linear(4, 2, rng=rng))
    fit(model, ml.softmax_cross_entropy, ml.SGD(model, lr=0.1), x, y, epochs=2, batch_size=16, rng=rng, progress="epoch")
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("epoch 1") and "accuracy" in lines[0]


def test_fit_regression_has_no_accuracy():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 3))
    model = ml.Sequential(ml.Linear(3, 1, rng=rng))
    history = fit(model, ml.mse, ml.SGD(model, lr=0.05), x, x[:, :1] * 2, epochs=2, batch_size=8, rng=rng, log=None,
                  progress="epoch")
    assert history["accuracy"] == [None, None]


def test_fit_rejects_mismatched_data_and_bad_progress():
    model = ml.Sequential(ml.Linear(2, 2))
    opt = ml.SGD(model, lr=0.1)
    with pytest.raises(ValueError, match="x has 3 samples but y has 2"):
        fit(model, ml.mse, opt, np.zeros((3, 2)), np.zeros((2, 2)), epochs=1, batch_size=2, rng=None)
    with pytest.raises(ValueError, match="progress="):
        fit(model, ml.mse, opt, np.zeros((2, 2)), np.zeros((2, 2)), epochs=1, batch_size=2, rng=None, progress="x")


def test_evaluate_restores_training_mode():
    model, _ = _train(2)
    model.train()
    evaluate(model, ml.softmax_cross_entropy, np.zeros((5, 4)), np.zeros(5, dtype=int))
    assert model.training


def test_minibatches_cover_every_index_once():
    batches = list(minibatches(10, 3, np.random.default_rng(0)))
    assert [len(b) for b in batches] == [3, 3, 3, 1]
    assert sorted(np.concatenate(batches)) == list(range(10))


def test_lenet_shapes_and_parameter_count():
    model = lenet(rng=np.random.default_rng(0))
    out = model.forward(np.zeros((2, 1, 28, 28)))
    assert out.shape == (2, 10)
    # MatConvNet LeNet: 520 + 25,050 + 400,500 + 5,010 parameters.
    assert model.num_parameters() == 431_080


def test_astype_converts_params_grads_and_buffers():
    model = ml.Sequential(ml.Conv2d(1, 2, 3), ml.BatchNorm2d(2)).astype(np.float32)
    assert all(v.dtype == np.float32 for v in model.state_dict().values())
    assert model.forward(np.zeros((2, 1, 5, 5), np.float32)).dtype == np.float32


def test_images_to_nchw_scales_and_transposes():
    grey = np.full((2, 3, 4), 255, np.uint8)
    colour = np.zeros((2, 3, 4, 3), np.uint8)
    assert images_to_nchw(grey).shape == (2, 1, 3, 4) and images_to_nchw(grey).max() == 1.0
    assert images_to_nchw(colour).shape == (2, 3, 3, 4)
    with pytest.raises(TypeError, match="uint8"):
        images_to_nchw(grey.astype(float))


def test_standardize_reuses_training_statistics():
    x = np.random.default_rng(0).standard_normal((8, 3, 2, 2)) * 5 + 2
    z, mean, std = standardize(x)
    np.testing.assert_allclose(z.mean(axis=(0, 2, 3)), 0, atol=1e-12)
    z2, _, _ = standardize(x, mean, std)
    np.testing.assert_array_equal(z, z2)


def test_result_files_carry_provenance(tmp_path):
    path = write_result(tmp_path / "r.json", {"accuracy": 0.5}, seed=3)
    data = read_result(path)
    assert data["accuracy"] == 0.5 and data["seed"] == 3
    assert {"command", "date", "git_revision"} <= set(data)
    assert json.loads(path.read_text()) == data
    with pytest.raises(FileNotFoundError, match="not found"):
        read_result(tmp_path / "missing.json")


def test_git_revision_is_the_projects_wherever_the_command_starts(tmp_path, monkeypatch):
    from minilib.results import RESULTS_DIR, git_revision
    here = git_revision(RESULTS_DIR.parent)
    monkeypatch.chdir(tmp_path)                 # not a git work tree
    assert git_revision() == here
    assert git_revision(tmp_path) == "unknown"


def test_stale_executions_of_result_reading_chapters_are_forgotten(tmp_path, monkeypatch):
    import os
    import time

    import nbformat
    from jupyter_cache import get_cache

    from minilib.results import forget_stale_executions

    cache = get_cache(tmp_path / "cache")
    for name, source in (("reader", 'groups = R.load_results("mnist")'), ("other", "x = 1")):
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source, execution_count=1)])
        nbformat.write(nb, tmp_path / f"{name}.ipynb")
        cache.cache_notebook_file(tmp_path / f"{name}.ipynb", check_validity=False)
    results = tmp_path / "results"
    (results / "mnist").mkdir(parents=True)
    (results / "mnist" / "a.json").write_text("{}")
    old = time.time() - 3600                                     # a result older than both executions
    os.utime(results / "mnist" / "a.json", (old, old))
    assert forget_stale_executions(tmp_path / "cache", results) == []
    (results / "mnist" / "b.json").write_text("{}")              # a new result, made after the executions
    future = time.time() + 60
    os.utime(results / "mnist" / "b.json", (future, future))
    monkeypatch.chdir(tmp_path)
    before = (tmp_path / "reader.ipynb").stat().st_mtime
    os.utime(tmp_path / "reader.ipynb", (before - 100, before - 100))
    dropped = forget_stale_executions(tmp_path / "cache", results)
    assert [pathlib.Path(uri).name for uri in dropped] == ["reader.ipynb"]
    assert (tmp_path / "reader.ipynb").stat().st_mtime > before - 50        # touched: Sphinx will re-read it
    assert [pathlib.Path(r.uri).name for r in get_cache(tmp_path / "cache").list_cache_records()] == ["other.ipynb"]
    assert forget_stale_executions(tmp_path / "missing", results) == []


def test_result_files_read_finds_experiments_and_named_files(tmp_path):
    from minilib.results import result_files_read

    (tmp_path / "sr").mkdir()
    for path in (tmp_path / "sr" / "b_seed0.json", tmp_path / "sr" / "a_seed0.json", tmp_path / "bench_conv.json"):
        path.write_text("{}")
    source = 'g = R.load_results("sr")\nbench = read_result("bench_conv.json")\nother = read_result("gone.json")'
    assert [p.relative_to(tmp_path).as_posix() for p in result_files_read(source, tmp_path)] == [
        "sr/a_seed0.json", "sr/b_seed0.json", "bench_conv.json"]
    assert result_files_read("x = 1", tmp_path) == []


def test_fit_records_several_points_per_epoch():
    rng = np.random.default_rng(4)
    x, y = _blobs(rng, 100)
    model = ml.Sequential(ml.Linear(4, 2, rng=rng))
    history = fit(model, ml.softmax_cross_entropy, ml.SGD(model, lr=0.1), x, y, epochs=2, batch_size=10, rng=rng,
                  x_val=x, y_val=y, evals_per_epoch=4, log=None, progress="epoch")
    assert history["epoch"] == [0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0]
    assert len(history["val_accuracy"]) == 8 and all(0 <= a <= 1 for a in history["accuracy"])


def test_a_pinned_revision_outlives_later_commits(monkeypatch):
    from minilib import results
    monkeypatch.setattr(results, "_PINNED_REVISION", None)
    monkeypatch.setattr(results, "git_revision", lambda cwd=None: "aaaa")
    assert results.pin_revision() == "aaaa"
    monkeypatch.setattr(results, "git_revision", lambda cwd=None: "bbbb")
    assert results.provenance()["git_revision"] == "aaaa"
    monkeypatch.setattr(results, "_PINNED_REVISION", None)
    assert results.provenance()["git_revision"] == "bbbb"
