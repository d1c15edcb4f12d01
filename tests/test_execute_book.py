"""tools.execute_book: notebooks executed ahead of the build land in the cache where myst-nb looks them up."""
import pathlib

import nbformat
import pytest

from tools import execute_book as E

BAD_CELL = "x = 1\ny = x - 1\nz = x / y\nprint(z)"
TOC = "format: jb-book\nroot: intro\nchapters:\n  - file: good\n  - file: bad\n"


def tiny_book(root: pathlib.Path) -> pathlib.Path:
    root.mkdir(exist_ok=True)
    (root / "_toc.yml").write_text(TOC)
    (root / "_config.yml").write_text("execute:\n  execute_notebooks: cache\n  timeout: 45\n")
    (root / "intro.md").write_text("# Intro\n")
    for name, code in (("good", "import os\nprint(os.environ['OMP_NUM_THREADS'])"), ("bad", BAD_CELL)):
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
    assert error is not None
    assert [path.name for path in E.uncached_notebooks(cache, root)] == ["bad.ipynb"]

    from jupyter_cache import get_cache        # the lookup and merge myst-nb makes when the book is built
    _, merged = get_cache(cache).merge_match_into_notebook(nbformat.read(root / "good.ipynb", as_version=4))
    assert merged.cells[1].outputs[0]["text"].strip() == "1"    # the kernel inherits the thread limit


def test_jobs_must_be_positive(capsys):
    with pytest.raises(SystemExit):
        E.main(["--jobs", "0"])
    assert "--jobs must be at least 1, got 0" in capsys.readouterr().err


# ----------------------------------------------------------------------------- the report of a failing notebook
def test_a_failing_notebook_is_reported_by_cell_source_and_error(tmp_path):
    root = tiny_book(tmp_path / "book")
    path, seconds, report = E._execute((root / "bad.ipynb", tmp_path / "cache", 45))
    assert report.splitlines() == [f"{root / 'bad.ipynb'}, cell 1:", "    x = 1", "    y = x - 1", "    ...",
                                   "  ZeroDivisionError: division by zero"]


def test_the_report_drops_colours_and_keeps_the_message_to_one_short_line():
    report = E.format_failure("notebooks/03.ipynb", 7, "\nassert ratio < 1.2, ratio\n",
                              "\x1b[0;31mAssertionError\x1b[0m", "ratio was\n  \x1b[1m1.3\x1b[0m" + " x" * 400)
    lines = report.splitlines()
    assert lines[:2] == ["notebooks/03.ipynb, cell 7:", "    assert ratio < 1.2, ratio"]
    assert lines[2].startswith("  AssertionError: ratio was 1.3 x x") and lines[2].endswith("...")
    assert len(lines) == 3 and len(lines[2]) <= 2 + len("AssertionError: ") + E.MESSAGE_CHARS
    assert "\x1b" not in report


def test_the_report_of_an_unknown_cell_or_an_empty_message():
    assert E.format_failure("a.ipynb", None, "", "DeadKernelError", "") == "a.ipynb, cell unknown:\n  DeadKernelError"


def test_the_failing_cell_is_the_one_with_an_error_else_the_last_one_started():
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_markdown_cell("# t"), nbformat.v4.new_code_cell("a", execution_count=1),
                      nbformat.v4.new_code_cell("b", execution_count=2), nbformat.v4.new_code_cell("c")]
    assert E.failed_cell(notebook) == 2                    # cut off by a timeout: no error output
    notebook.cells[1].outputs = [nbformat.v4.new_output("error", ename="E", evalue="v", traceback=[])]
    assert E.failed_cell(notebook) == 1
    assert E.failed_cell(nbformat.v4.new_notebook()) is None


def test_a_timeout_is_named_by_its_first_line():
    from nbclient.exceptions import CellExecutionError, CellTimeoutError
    assert E.error_name_and_message(CellTimeoutError("A cell timed out after 45 s.\nThe cell:\n1 / 0")) == \
        ("CellTimeoutError", "A cell timed out after 45 s.")
    assert E.error_name_and_message(CellExecutionError("long traceback", "KeyError", "'x'")) == ("KeyError", "'x'")


def test_main_ends_with_the_report_and_exits_1(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(E, "uncached_notebooks", lambda cache: [tmp_path / "good.ipynb", tmp_path / "bad.ipynb"])
    monkeypatch.setattr(E, "_execute", lambda job: (str(job[0]), 1.0, None if job[0].name == "good.ipynb"
                                                    else "bad.ipynb, cell 1:\n    1 / 0\n  ZeroDivisionError: x"))
    monkeypatch.setattr(E.multiprocessing, "get_context", lambda method: _SerialContext())
    for name in E.THREAD_VARIABLES:
        monkeypatch.setenv(name, "1")          # main sets them for the kernels; monkeypatch restores them
    assert E.main(["--jobs", "1", "--cache", str(tmp_path / "cache")]) == 1
    out, err = capsys.readouterr()
    assert "good.ipynb: executed" in out and "bad.ipynb: failed" in out
    assert err.rstrip().splitlines()[-3:] == ["bad.ipynb, cell 1:", "    1 / 0", "  ZeroDivisionError: x"]
    assert "1 notebook(s) failed" in err


class _SerialContext:
    """Stands in for a spawn context: a "pool" that maps in this process, so main's loop is tested quickly."""

    def Pool(self, jobs):                        # noqa: N802 - the name multiprocessing uses
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def imap_unordered(self, function, jobs, chunksize=1):
        return map(function, jobs)


def test_kernels_talk_over_ipc_so_the_build_output_has_no_encryption_warnings(tmp_path, capfd, monkeypatch):
    root = tiny_book(tmp_path / "book")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    _, _, error = E._execute((root / "good.ipynb", tmp_path / "cache", 45))
    assert error is None
    assert "without encryption" not in capfd.readouterr().err      # ipykernel's warning for a TCP kernel
    manager = E.ipc_kernel_manager()()
    assert manager.transport == "ipc" and "kernel-" in manager.ip and not manager.ip.startswith(str(root))
    assert sorted(p.name for p in root.iterdir() if "ipc" in p.name) == []       # no socket files left behind
