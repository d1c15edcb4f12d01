"""The pages of the book in the order ``_toc.yml`` lists them, with their source files and built HTML pages.

Both the HTML test (``tests/test_book_html.py``) and the screenshots (``tools/screenshots.py``) read the table of
contents through this module, so a chapter added to ``_toc.yml`` is checked and photographed without further edits.
"""
from __future__ import annotations

import dataclasses
import pathlib

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
SOURCE_SUFFIXES = (".md", ".ipynb")


@dataclasses.dataclass(frozen=True)
class Page:
    """One page of the book: ``docname`` as in ``_toc.yml`` (no suffix) and its source file."""

    docname: str
    source: pathlib.Path

    @property
    def is_notebook(self) -> bool:
        return self.source.suffix == ".ipynb"

    def html(self, html_dir) -> pathlib.Path:
        """Where Sphinx writes this page: ``<html_dir>/<docname>.html``."""
        return pathlib.Path(html_dir) / f"{self.docname}.html"


def _files(entries):
    """Every ``file`` of a list of toc entries, depth first, through nested ``sections``."""
    for entry in entries or []:
        if "file" in entry:
            yield entry["file"]
        yield from _files(entry.get("sections"))
        yield from _files(entry.get("chapters"))


def toc_docnames(toc_path) -> list:
    """Docnames of ``_toc.yml`` in reading order: the root, then every chapter of every part."""
    toc = yaml.safe_load(pathlib.Path(toc_path).read_text())
    files = [toc["root"], *_files(toc.get("chapters")), *_files(toc.get("parts"))]
    return [str(pathlib.PurePosixPath(f).with_suffix("")) if pathlib.PurePosixPath(f).suffix in SOURCE_SUFFIXES
            else f for f in files]


def book_pages(root=ROOT) -> list:
    """The :class:`Page` of every docname in ``<root>/_toc.yml``; a docname without a source file is an error."""
    root = pathlib.Path(root)
    pages = []
    for docname in toc_docnames(root / "_toc.yml"):
        sources = [root / f"{docname}{suffix}" for suffix in SOURCE_SUFFIXES if (root / f"{docname}{suffix}").exists()]
        if not sources:
            raise FileNotFoundError(f"_toc.yml lists {docname!r}, but neither {docname}.md nor {docname}.ipynb exists")
        pages.append(Page(docname, sources[0]))
    return pages
