"""The embedded sample (minilib.data.samples) and choose_data: what quick mode, the tests and an offline book read."""

from __future__ import annotations

import numpy as np
import pytest
from data_helpers import fresh_verification_cache  # noqa: F401  (autouse fixture)

from minilib import data
from minilib.data import choice, samples
from minilib.data.readers import pixels_sha256


def test_the_sample_verifies_and_is_small():
    total = sum(p.stat().st_size for p in samples.SAMPLE_ROOT.rglob("*") if p.is_file())
    assert total < 3 * 2**20                                    # "a few MB" at most
    assert (samples.SAMPLE_ROOT / "README.md").read_text().count("licence") >= 2
    for name, spec in samples.SAMPLES.items():
        for fs in spec.files.values():
            data.readers.verify_file(fs, samples.SAMPLE_ROOT / fs.relpath)


def test_mnist_sample_has_the_documented_sizes_and_every_class():
    for split, n in samples.MNIST_SAMPLE_SIZES.items():
        x, y = data.load_mnist(split, sample=True)
        assert x.shape == (n, 28, 28) and x.dtype == np.uint8 and y.dtype == np.int64
        assert np.bincount(y, minlength=10).min() > 50


def test_sr_sample_holds_the_chapter_7_close_ups():
    from minilib.reproduce import sr
    for key in sr.VISUAL_CROPS:
        test_set, stem = key.split("/")
        image = data.load_sr_images(test_set, sample=True)[stem]
        assert pixels_sha256(image) == data.get_spec(test_set).files[stem].sha256   # the full set's own image
    with pytest.raises(ValueError, match="'t91' has no embedded sample"):
        data.load_sr_images("T91", sample=True)


def test_choose_data_takes_the_sample_in_quick_mode(tmp_path):
    chosen = data.choose_data("mnist", root=tmp_path, quick=True)
    assert chosen.sample and "quick mode" in chosen.reason
    assert "MNIST sample" in repr(chosen.note) and "download mnist" in chosen.note.how_to_fix


def test_choose_data_offline_without_data_takes_the_sample_and_says_why(monkeypatch, tmp_path):
    monkeypatch.setenv("MINILIB_OFFLINE", "1")
    chosen = data.choose_data("set5", "set14", root=tmp_path, quick=False)
    assert chosen.sample and "not under" in chosen.reason and "MINILIB_OFFLINE" in chosen.reason
    html = chosen.note._repr_html_()
    assert 'class="admonition warning"' in html and "python -m minilib.data download set5" in html
    assert "Set14 sample: 2 of the full set&#x27;s images" in html


def test_choose_data_with_the_full_data_shows_no_note(monkeypatch, tmp_path):
    spec = data.get_spec("mnist")
    for fs in spec.files.values():
        (tmp_path / fs.relpath).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / fs.relpath).write_bytes(b"present; the loader checks the content")
    chosen = data.choose_data("mnist", root=tmp_path, quick=False)
    assert not chosen.sample and chosen.note is None


def test_choose_data_falls_back_when_fetching_fails(monkeypatch, tmp_path):
    monkeypatch.delenv("MINILIB_OFFLINE", raising=False)

    def failing(name, root, log):
        raise data.DownloadError("Could not fetch MNIST train-images from any source")

    monkeypatch.setattr("minilib.data.fetch.download", failing)
    chosen = data.choose_data("mnist", root=tmp_path, quick=False)
    assert chosen.sample and "fetching it failed (Could not fetch MNIST" in chosen.reason


@pytest.mark.parametrize("names, message", [((), "must name at least one dataset"),
                                            (("cifar10",), "'cifar10' has no embedded sample")])
def test_choose_data_bad_names(names, message):
    with pytest.raises(ValueError, match=message):
        choice.choose_data(*names, quick=True)


def test_cached_chapter_that_ran_on_the_sample_is_run_again_once_the_data_is_here(tmp_path, monkeypatch):
    import nbformat
    from jupyter_cache import get_cache

    from minilib.results import forget_stale_executions

    cache = get_cache(tmp_path / "cache")
    note = nbformat.v4.new_output("execute_result", {"text/html": choice.NOTE_TITLE, "text/plain": "NOTE"},
                                  execution_count=1)
    for name, outputs in (("on_sample", [note]), ("on_full_data", [])):
        cell = nbformat.v4.new_code_cell(f'DATA = choose_data("mnist")  # {name}', execution_count=1,
                                         outputs=outputs)
        nbformat.write(nbformat.v4.new_notebook(cells=[cell]), tmp_path / f"{name}.ipynb")
        cache.cache_notebook_file(tmp_path / f"{name}.ipynb", check_validity=False)
    monkeypatch.setenv("MINILIB_DATA", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    assert forget_stale_executions(tmp_path / "cache", tmp_path / "results") == []     # still no data: keep it
    for fs in data.get_spec("mnist").files.values():
        (tmp_path / "data" / fs.relpath).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "data" / fs.relpath).write_bytes(b"here now")
    dropped = forget_stale_executions(tmp_path / "cache", tmp_path / "results")
    assert [uri.rsplit("/", 1)[-1] for uri in dropped] == ["on_sample.ipynb"]
