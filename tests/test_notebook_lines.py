"""Every line of notebook code fits the book's code column (tools/notebook_lines.CODE_COLUMN characters; the
browser check of the built book, tools/page_fit.py, measures what the column really holds)."""
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


def printed_sources(notebook) -> list:
    """``(name, function)`` of every ``print(inspect.getsource(X))`` in the notebook's code (a whole function
    printed as it is), X resolved through the notebook's own ``import a.b as c`` / ``from a import b as c``."""
    import ast
    import importlib

    aliases, printed = {}, []
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        tree = ast.parse("\n".join(line for line in cell.source.splitlines() if not line.startswith(("%", "!"))))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                aliases.update({a.asname or a.name: (a.name, None) for a in node.names})
            elif isinstance(node, ast.ImportFrom) and node.module:
                aliases.update({a.asname or a.name: (node.module, a.name) for a in node.names})
            elif (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print" and node.args
                  and isinstance(node.args[0], ast.Call) and getattr(node.args[0].func, "attr", None) == "getsource"):
                printed.append(ast.unparse(node.args[0].args[0]))
    found = []
    for name in printed:
        head, *rest = name.split(".")
        module, attribute = aliases.get(head, (head, None))
        target = importlib.import_module(module)
        if attribute is not None:       # ``from a import b``: a's attribute b, else the submodule a.b
            target = getattr(target, attribute, None) or importlib.import_module(f"{module}.{attribute}")
        for part in rest:
            target = getattr(target, part)
        found.append((name, target))
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_printed_library_sources_fit_the_column(path):
    """A chapter that prints a library function (``inspect.getsource``) shows its lines as they are: they must
    fit the column too."""
    import inspect

    long = [f"{name}: {line.rstrip()} ({len(line.rstrip())} chars)"
            for name, function in printed_sources(nbformat.read(path, as_version=4))
            for line in inspect.getsource(function).splitlines() if len(line.rstrip()) > CODE_COLUMN]
    assert not long, "\n".join(long)


def test_printed_sources_are_found_through_the_notebooks_imports():
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import inspect\nimport minilib as ml\nfrom minilib import fullstack as FS\n"
        "print(inspect.getsource(ml.conv2d_forward))\nprint(inspect.getsource(FS.ste_gradient))\n"
        "part = inspect.getsource(FS.binarize)[:10]")])
    import minilib
    from minilib import fullstack

    assert printed_sources(notebook) == [("ml.conv2d_forward", minilib.conv2d_forward),
                                         ("FS.ste_gradient", fullstack.ste_gradient)]
