"""Full-page PNG screenshots of every page of the built book, for looking at the rendering, not at the source.

    python -m tools.screenshots                       # _build/html -> _build/screenshots/<width>/<docname>.png
    python -m tools.screenshots --pages notebooks/03_spatial_versatile_filters --widths 390

Pages are taken in ``_toc.yml`` order at desktop width (1280 px) and at a phone's (390 px), in headless Chromium
(:mod:`tools.chromium`). A page's height is only known after MathJax has typeset it, and the theme stretches short
pages to the window, so the window is set to the measured height before the picture is taken. At desktop width every
block that does not fit its column (:mod:`tools.page_fit`) is listed under the page; on a phone, code is expected to
scroll sideways, so only the pictures are taken.
"""
from __future__ import annotations

import argparse
import base64
import pathlib
import sys

from .book_pages import ROOT, book_pages
from .chromium import DevToolsPipe, chromium_missing, evaluate, find_chromium, open_page, SETTLED_HEIGHT
from .page_fit import DESKTOP_WIDTH, FIT_PROBLEMS, MIN_TEXT_PX, PHONE_WIDTH, SLACK_PX, figure_text_px

MAX_HEIGHT = 60000          # a page taller than this is cut (and reported): Chromium's bitmaps have limits too


def screenshot(browser, html_path, png_path, width=DESKTOP_WIDTH, smallest_text_px=0.0):
    """Load ``html_path`` ``width`` px wide, size the window to the typeset page and write a PNG.

    Returns the page height and, at desktop width, the blocks that do not fit (:data:`tools.page_fit.FIT_PROBLEMS`).
    """
    with open_page(browser, html_path, width) as (session, full):
        metrics = {"width": width, "height": min(full, MAX_HEIGHT), "deviceScaleFactor": 1, "mobile": width < 600}
        browser.call("Emulation.setDeviceMetricsOverride", metrics, session=session)
        metrics["height"] = min(max(full, evaluate(browser, session, SETTLED_HEIGHT)), MAX_HEIGHT)   # may reflow
        browser.call("Emulation.setDeviceMetricsOverride", metrics, session=session)
        png = browser.call("Page.captureScreenshot", {"format": "png"}, session=session)["data"]
        misfits = (evaluate(browser, session, f"{FIT_PROBLEMS}({smallest_text_px}, {MIN_TEXT_PX}, {SLACK_PX})")
                   if width >= DESKTOP_WIDTH else [])
    png_path = pathlib.Path(png_path)
    png_path.parent.mkdir(parents=True, exist_ok=True)
    png_path.write_bytes(base64.b64decode(png))
    return full, misfits


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--html", type=pathlib.Path, default=ROOT / "_build" / "html", help="built book (%(default)s)")
    parser.add_argument("--out", type=pathlib.Path, default=ROOT / "_build" / "screenshots",
                        help="folder for the PNGs (%(default)s)")
    parser.add_argument("--pages", nargs="*", help="docnames to take (default: every page of _toc.yml)")
    parser.add_argument("--widths", nargs="+", type=int, default=[DESKTOP_WIDTH, PHONE_WIDTH],
                        help="window widths in CSS px (default: %(default)s)")
    parser.add_argument("--chromium", default=None,
                        help="the Chromium executable (default: $CHROMIUM, else chromium on PATH)")
    args = parser.parse_args(argv)
    chromium = find_chromium(args.chromium)
    if chromium is None:
        print(chromium_missing(args.chromium), file=sys.stderr)
        return 1
    if not (args.html / "index.html").exists():
        sys.exit(f"{args.html / 'index.html'} not found: build the book first (make book)")
    pages = [page for page in book_pages() if not args.pages or page.docname in args.pages]
    smallest = figure_text_px()
    browser = DevToolsPipe(chromium)
    missing, misfit_count = [], 0
    try:
        for page in pages:
            html = page.html(args.html)
            if not html.exists():
                missing.append(page.docname)
                print(f"{page.docname}: no {html} (not built yet?)")
                continue
            for width in args.widths:
                png = args.out / str(width) / f"{page.docname}.png"
                height, misfits = screenshot(browser, html, png, width, smallest)
                cut = f", cut at {MAX_HEIGHT} px" if height > MAX_HEIGHT else ""
                print(f"{page.docname}: {width} x {height} px{cut} -> {png}")
                for item in misfits:
                    print(f"    does not fit: {item}")
                misfit_count += len(misfits)
    finally:
        browser.close()
    if missing:
        sys.exit(f"{len(missing)} page(s) of _toc.yml have no built HTML: {', '.join(missing)}")
    if misfit_count:
        print(f"{misfit_count} block(s) do not fit their column at {DESKTOP_WIDTH} px (make check-book fails on them)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
