"""tools.execute_book: notebooks executed ahead of the build land in the cache where myst-nb looks them up."""
import pathlib

import nbformat
import pytest

from tools import execute_book as E

TOC = "format: jb-book\nroot: intro\nchapters:\n  - file: good\n  - file: bad\n"


def tiny_book(root: pathlib.Path) -> pathlib.Path:
    root.mkdir(exist_ok=True)
    (root / "_toc.yml").write_text(TOC)
    (root / "_config.yml").write_text("execute:\n  execute_notebooks: cache\n  timeout: 45\n")
    (root / "intro.md").write_text("# Intro\n")
    for name, code in (("good", "import os\nprint(os.environ['OMP_NUM_THREADS'])"), ("bad", "1 / 0")):
        notebook = nbformat.v4.new_notebook()
        notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        notebook.cells = [nbformat.v4.new_markdown_cell(f"# {name}"), nbformat.v4.new_code_cell(code)]
        nbformat.write(notebook, root / f"{name}.ipynb")
    return root


def test_the_timeout_is_read_from_the_config(tmp_path):
    assert E.execution_timeout(tiny_book(tmp_path)) == 45
    assert E.execution_timeout() == 600          # the project's own _config.yml


def test_every_notebook_is_uncached_in_an_empty_cache(tmp_path):
    root = tiny_book(tmp_path / "book")
    assert [path.name for path in E.uncached_notebooks(tmp_path / "cache", root)] == ["good.ipynb", "bad.ipynb"]


def test_an_executed_notebook_is_found_in_the_cache_and_a_failing_one_is_not(tmp_path, monkeypatch):
    root = tiny_book(tmp_path / "book")
    cache = tmp_path / "cache"
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    path, seconds, error = E._execute((root / "good.ipynb", cache, 45))
    assert error is None and seconds > 0
    path, seconds, error = E._execute((root / "bad.ipynb", cache, 45))
    assert error.startswith("CellExecutionError")
    assert [path.name for path in E.uncached_notebooks(cache, root)] == ["bad.ipynb"]

    from jupyter_cache import get_cache        # the lookup and merge myst-nb makes when the book is built
    _, merged = get_cache(cache).merge_match_into_notebook(nbformat.read(root / "good.ipynb", as_version=4))
    assert merged.cells[1].outputs[0]["text"].strip() == "1"    # the kernel inherits the thread limit


def test_jobs_must_be_positive(capsys):
    with pytest.raises(SystemExit):
        E.main(["--jobs", "0"])
    assert "--jobs must be at least 1, got 0" in capsys.readouterr().err
