"""Every line of notebook code fits the book's code column (tools/notebook_lines.CODE_COLUMN characters; the
browser check of the built book, tools/page_fit.py, measures what the column really holds)."""
import pathlib

import nbformat
import pytest

from tools.book_pages import ROOT
from tools.notebook_lines import CODE_COLUMN, long_code_lines, long_output_lines

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_code_lines_fit_the_column(path):
    found = long_code_lines(nbformat.read(path, as_version=4))
    assert not found, "\n".join(f"cell {k} ({len(line)} chars): {line}" for k, line in found)


def test_the_checks_find_long_lines():
    long = "x = " + "1 + " * 30 + "1"
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("short = 1\n" + long),
        nbformat.v4.new_code_cell("print(1)", outputs=[
            nbformat.v4.new_output("stream", name="stdout", text="ok\n" + "y" * (CODE_COLUMN + 1)),
            nbformat.v4.new_output("execute_result", data={"text/plain": "z" * 200, "text/html": "<b>z</b>"})])])
    assert long_code_lines(notebook) == [(0, long)]
    assert long_output_lines(notebook) == [(1, "y" * (CODE_COLUMN + 1))]     # the HTML table is shown instead
