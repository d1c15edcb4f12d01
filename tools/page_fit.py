"""Does every page of the built book fit its column? Checked in headless Chromium at desktop width (1280 px).

    python -m tools.page_fit                       # every page of _toc.yml; exit 1 naming each block that does not fit
    python -m tools.page_fit --pages notebooks/03_spatial_versatile_filters --width 1280

A block that does not fit is one the reader would have to scroll sideways, or would see cut off:
- a code cell, a cell's printed output or a code block of the prose (``pre``) whose lines are longer than the box;
- an HTML output (a table) wider than the cell's output area;
- a display equation wider than the text column, a table of the prose wider than its container;
- a figure drawn so much wider than the column that the browser shrinks its smallest text below
  :data:`MIN_TEXT_PX` (the figure's smallest font, in points at its dpi, is passed in as ``smallest_text_px``).

``make check-book`` runs these checks through ``tests/test_book_fit.py``; ``make screenshots`` prints them too.
"""
from __future__ import annotations

import argparse
import json
import sys

from .book_pages import ROOT, book_pages
from .chromium import DevToolsPipe, chromium_missing, evaluate, find_chromium, open_page

DESKTOP_WIDTH = 1280
PHONE_WIDTH = 390
MIN_TEXT_PX = 9.0        # the smallest text a figure may show at the page's width (CSS pixels)
SLACK_PX = 1             # sub-pixel rounding of scrollWidth

# ``smallest`` is the smallest text of a figure in pixels of the PNG; every image of a cell output is held to it.
FIT_PROBLEMS = """((smallest, minPx, slack) => {
  const found = [];
  const article = document.querySelector("article") || document.body;
  const first = (text) => text.trim().split("\\n")[0].replace(/\\s+/g, " ").slice(0, 70);
  const kind = (el) => el.closest(".cell_input") ? "code cell" : el.closest(".cell_output") ? "output"
                     : "code block";
  for (const pre of article.querySelectorAll("pre")) {
    if (pre.scrollWidth > pre.clientWidth + slack) {
      found.push(kind(pre) + " scrolls by " + (pre.scrollWidth - pre.clientWidth) + " px: " + first(pre.textContent));
    }
  }
  for (const out of article.querySelectorAll(".cell_output .output.text_html")) {
    const area = out.closest(".cell_output");
    const inner = Math.max(...Array.from(out.querySelectorAll("*"), (el) => el.scrollWidth), out.scrollWidth);
    if (inner > area.clientWidth + slack) {
      found.push("HTML output wider than its cell by " + (inner - area.clientWidth) + " px: " + first(out.innerText));
    }
  }
  for (const box of article.querySelectorAll("div.math")) {
    const math = box.querySelector("mjx-container") || box;
    if (box.scrollWidth > box.clientWidth + slack || math.scrollWidth > math.clientWidth + slack) {
      found.push("equation " + (box.id || first(box.textContent)));
    }
  }
  for (const table of article.querySelectorAll("table")) {
    if (!table.closest(".cell_output") && table.scrollWidth > table.parentElement.clientWidth + slack) {
      found.push("table " + first(table.textContent));
    }
  }
  if (smallest > 0) {
    for (const img of article.querySelectorAll(".cell_output img")) {
      if (!img.naturalWidth || !img.clientWidth) continue;
      const px = smallest * img.clientWidth / img.naturalWidth;
      if (px < minPx) {
        found.push("figure " + (img.getAttribute("alt") || img.src.split("/").pop()) + " shown at " +
                   img.clientWidth + " of " + img.naturalWidth + " px: its smallest text is " + px.toFixed(1) + " px");
      }
    }
  }
  return found;
})"""


def fit_problems(browser: DevToolsPipe, html_path, width: int = DESKTOP_WIDTH, smallest_text_px: float = 0.0) -> list:
    """Every block of one built page that does not fit its column at ``width`` CSS pixels (see the module's list);
    ``smallest_text_px``: the smallest text of the book's figures in pixels of their PNGs (0: figures not checked)."""
    with open_page(browser, html_path, width) as (session, _):
        call = f"{FIT_PROBLEMS}({float(smallest_text_px)}, {MIN_TEXT_PX}, {SLACK_PX})"
        return evaluate(browser, session, call)


def figure_text_px() -> float:
    """The smallest text of a figure drawn with :mod:`minilib.viz`'s style, in pixels of the saved PNG."""
    from minilib.viz import smallest_text_px
    return smallest_text_px()


def check_book(html_dir, pages, browser, width: int = DESKTOP_WIDTH) -> dict:
    """``{docname: [problem, ...]}`` for every page in ``pages`` that has any (a page not built is a problem)."""
    smallest = figure_text_px()
    found = {}
    for page in pages:
        html = page.html(html_dir)
        problems = fit_problems(browser, html, width, smallest) if html.exists() else [f"no {html} (not built)"]
        if problems:
            found[page.docname] = problems
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--html", default=ROOT / "_build" / "html", help="built book (%(default)s)")
    parser.add_argument("--pages", nargs="*", help="docnames to check (default: every page of _toc.yml)")
    parser.add_argument("--width", type=int, default=DESKTOP_WIDTH, help="window width in CSS px (%(default)s)")
    parser.add_argument("--json", action="store_true", help="print the problems as JSON")
    args = parser.parse_args(argv)
    chromium = find_chromium()
    if chromium is None:
        print(chromium_missing(), file=sys.stderr)
        return 1
    pages = [page for page in book_pages() if not args.pages or page.docname in args.pages]
    browser = DevToolsPipe(chromium)
    try:
        found = check_book(args.html, pages, browser, args.width)
    finally:
        browser.close()
    if args.json:
        print(json.dumps(found, indent=1))
    else:
        for docname, problems in found.items():
            print(f"{docname}: {len(problems)} block(s) do not fit at {args.width} px")
            for problem in problems:
                print(f"    {problem}")
    print(f"{sum(map(len, found.values()))} block(s) on {len(found)} of {len(pages)} page(s) do not fit")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
