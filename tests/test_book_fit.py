"""Every page of the built book fits its column at desktop width (1280 px), in headless Chromium
(:mod:`tools.page_fit`): no code, output, equation or table the reader has to scroll sideways, and no figure shrunk
until its text is unreadable.

The first tests run the check on hand-made pages, so it is known to catch each kind of misfit. Without Chromium
these tests are skipped, unless ``REQUIRE_CHROMIUM=1`` (``make check-book`` and CI set it), which makes a missing
browser a failure.
"""
import os
import pathlib

import pytest

from tools.book_pages import ROOT, book_pages
from tools.chromium import DevToolsPipe, chromium_missing, find_chromium
from tools.page_fit import DESKTOP_WIDTH, MIN_TEXT_PX, fit_problems

HTML_DIR = ROOT / "_build" / "html"
PAGES = book_pages()
FONT_PX = 12.5                  # the smallest text of a figure in its PNG: 9 pt at 100 dpi


@pytest.fixture(scope="module")
def browser():
    chromium = find_chromium()
    if chromium is None:
        if os.environ.get("REQUIRE_CHROMIUM") == "1":
            pytest.fail(chromium_missing())
        pytest.skip(chromium_missing())
    pipe = DevToolsPipe(chromium)
    yield pipe
    pipe.close()


def themed_page(tmp_path: pathlib.Path, body: str) -> pathlib.Path:
    """A page laid out like the book's: an article as wide as the book's code column, monospace code at 13 px."""
    page = tmp_path / "page.html"
    page.write_text(
        "<html><head><style>body{margin:0} article{width:736px} pre{font:13px monospace;padding:16px;"
        "overflow:auto;margin:0}</style></head><body><article>" + body + "</article></body></html>")
    return page


def png(tmp_path: pathlib.Path, width: int) -> str:
    """A blank PNG ``width`` px wide, to stand for a figure."""
    from PIL import Image
    path = tmp_path / f"figure{width}.png"
    Image.new("RGB", (width, 50), "white").save(path)
    return path.name


def cell(kind: str, text: str) -> str:
    return f'<div class="{kind}"><pre>{text}</pre></div>'


def test_short_lines_fit(browser, tmp_path):
    page = themed_page(tmp_path, cell("cell_input", "x = 1\n" + "y" * 80) + cell("cell_output", "ok"))
    assert fit_problems(browser, page, DESKTOP_WIDTH, FONT_PX) == []


def test_a_long_code_line_is_named_with_its_first_line(browser, tmp_path):
    page = themed_page(tmp_path, cell("cell_input", "first = 1\n" + "z" * 120))
    problems = fit_problems(browser, page, DESKTOP_WIDTH, FONT_PX)
    assert len(problems) == 1 and problems[0].startswith("code cell scrolls by") and problems[0].endswith("first = 1")


def test_a_wide_output_and_a_wide_html_table_are_found(browser, tmp_path):
    table = "<table><tr>" + "<td style='white-space:nowrap'>a very wide cell</td>" * 20 + "</tr></table>"
    page = themed_page(tmp_path, cell("cell_output", "w" * 150)
                       + f'<div class="cell_output"><div class="output text_html">{table}</div></div>')
    problems = fit_problems(browser, page, DESKTOP_WIDTH, FONT_PX)
    assert any(p.startswith("output scrolls by") for p in problems)
    assert any(p.startswith("HTML output wider than its cell") for p in problems)


def test_a_figure_shrunk_below_readable_text_is_found(browser, tmp_path):
    narrow, wide = png(tmp_path, 700), png(tmp_path, 1400)         # shown at 700 and 736 px
    page = themed_page(tmp_path, f'<div class="cell_output"><img alt="ok" src="{narrow}" style="max-width:100%">'
                                 f'<img alt="too wide" src="{wide}" style="max-width:100%"></div>')
    problems = fit_problems(browser, page, DESKTOP_WIDTH, FONT_PX)
    assert len(problems) == 1 and problems[0].startswith("figure too wide shown at 736 of 1400 px")
    assert fit_problems(browser, page, DESKTOP_WIDTH, 0.0) == []               # 0: figures not checked
    assert FONT_PX * 736 / 1400 < MIN_TEXT_PX <= FONT_PX


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.docname)
def test_built_page_fits_at_desktop_width(page, browser):
    if not (HTML_DIR / "index.html").is_file():
        pytest.skip(f"no built book at {HTML_DIR} (run `make book` first)")
    from minilib.viz import smallest_text_px
    assert smallest_text_px() == FONT_PX
    problems = fit_problems(browser, page.html(HTML_DIR), DESKTOP_WIDTH, smallest_text_px())
    assert not problems, f"{page.docname} at {DESKTOP_WIDTH} px:\n" + "\n".join(problems)
