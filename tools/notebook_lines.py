"""Lines of a notebook that are too long for the book's code column (88 characters, see _static/minilib.css):
its code, and, with ``--execute``, the text its cells print.

    python -m tools.notebook_lines notebooks/03_spatial_versatile_filters.ipynb            # code only, fast
    python -m tools.notebook_lines --execute notebooks/03_spatial_versatile_filters.ipynb  # and its printed output

Exit status 1 when any line is too long. The browser check of the built book (tools/page_fit.py) is the final word;
this one needs no build and no browser.
"""
from __future__ import annotations

import argparse
import pathlib
import sys

import nbformat

CODE_COLUMN = 88


def long_code_lines(notebook, limit: int = CODE_COLUMN) -> list:
    """``[(cell index, line), ...]`` of code lines longer than ``limit``."""
    return [(k, line) for k, cell in enumerate(notebook.cells) if cell.cell_type == "code"
            for line in cell.source.splitlines() if len(line) > limit]


def long_output_lines(notebook, limit: int = CODE_COLUMN) -> list:
    """``[(cell index, line), ...]`` of printed (stream and text/plain) output lines longer than ``limit``; an output
    that also has an HTML or image form is shown as that in the book and is left out."""
    found = []
    for k, cell in enumerate(notebook.cells):
        for output in cell.get("outputs", []):
            if output.output_type == "stream":
                text = output.text
            elif "text/plain" in output.get("data", {}) and not {"text/html", "image/png"} & output.data.keys():
                text = output.data["text/plain"]
            else:
                continue
            found += [(k, line) for line in text.splitlines() if len(line) > limit]
    return found


def execute(notebook, path: pathlib.Path):
    from nbclient import NotebookClient
    NotebookClient(notebook, timeout=1800, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    return notebook


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=pathlib.Path)
    parser.add_argument("--execute", action="store_true", help="run each notebook and check its printed output too")
    parser.add_argument("--limit", type=int, default=CODE_COLUMN)
    args = parser.parse_args(argv)
    count = 0
    for path in args.notebooks:
        notebook = nbformat.read(path, as_version=4)
        found = [("code", k, line) for k, line in long_code_lines(notebook, args.limit)]
        if args.execute:
            found += [("output", k, line) for k, line in long_output_lines(execute(notebook, path), args.limit)]
        for kind, k, line in found:
            print(f"{path}: cell {k} {kind} ({len(line)} chars): {line[:100]}")
        count += len(found)
    print(f"{count} line(s) longer than {args.limit} characters")
    return 1 if count else 0


if __name__ == "__main__":
    sys.exit(main())
