"""Full-page PNG screenshots of every page of the built book, for looking at the rendering, not at the source.

    python -m tools.screenshots                       # _build/html -> _build/screenshots/<docname>.png
    python -m tools.screenshots --pages notebooks/03_spatial_versatile_filters

Pages are taken in ``_toc.yml`` order. Headless Chromium (``--headless --no-sandbox --disable-gpu
--hide-scrollbars``) is driven through its DevTools pipe rather than with ``--screenshot``: a page's height is
only known after MathJax has typeset it, and the theme stretches short pages to the window, so the window is set
to the measured height before the picture is taken. Everything is read from ``file://``; nothing goes to the
network.

Chromium is ``--chromium`` if given, else ``$CHROMIUM``, else the first of chromium, chromium-browser and
google-chrome on ``PATH``, else ``/usr/bin/chromium``; without one the command says so in one line and exits 1.
"""
from __future__ import annotations

import argparse
import base64
import fcntl
import json
import os
import pathlib
import select
import shutil
import subprocess
import sys
import time

from .book_pages import ROOT, book_pages

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")    # Debian, Ubuntu, Google's package
CHROMIUM_FALLBACK = "/usr/bin/chromium"
WIDTH = 1280
MAX_HEIGHT = 60000          # a page taller than this is cut (and reported): Chromium's bitmaps have limits too
# Resolves once MathJax has typeset the page and the web fonts are in; then the layout is final.
SETTLED_HEIGHT = """(async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) { await MathJax.startup.promise; }
  await document.fonts.ready;
  return Math.ceil(document.documentElement.scrollHeight);
})()"""


# Display equations and tables wider than the text column: the browser cuts them or hides them behind a scrollbar.
TOO_WIDE = """(() => {
  const found = [];
  for (const box of document.querySelectorAll("article div.math")) {
    const math = box.querySelector("mjx-container") || box;
    if (box.scrollWidth > box.clientWidth + 2 || math.scrollWidth > math.clientWidth + 2) {
      found.push("equation " + (box.id || box.textContent.trim().slice(0, 50)));
    }
  }
  for (const table of document.querySelectorAll("article table")) {
    if (table.scrollWidth > table.parentElement.clientWidth + 2) {
      found.push("table " + table.textContent.trim().replace(/\\s+/g, " ").slice(0, 50));
    }
  }
  return found;
})()"""


def find_chromium(choice=None) -> str | None:
    """The Chromium executable to drive: ``choice`` (a path or a name on PATH) if given, else ``$CHROMIUM``, else
    the first of :data:`CHROMIUM_NAMES` on PATH, else :data:`CHROMIUM_FALLBACK`; None if that one is not there."""
    choice = choice or os.environ.get("CHROMIUM")
    if choice:
        return shutil.which(choice)       # an explicit choice is not second-guessed by the search below
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return CHROMIUM_FALLBACK if os.access(CHROMIUM_FALLBACK, os.X_OK) else None


def chromium_missing(choice=None) -> str:
    """The one line printed when :func:`find_chromium` finds nothing."""
    choice = choice or os.environ.get("CHROMIUM")
    what = f"Chromium not found at {choice!r}" if choice else "Chromium not found"
    return (f"screenshots: {what}; install it (Debian/Ubuntu: `sudo apt install chromium`) "
            "or set CHROMIUM=/path/to/chrome")


class DevToolsPipe:
    """A minimal Chrome DevTools Protocol client over ``--remote-debugging-pipe`` (fd 3 in, fd 4 out)."""

    def __init__(self, chromium=None, timeout=60.0):
        if chromium is None:
            chromium = find_chromium()
            if chromium is None:
                raise FileNotFoundError(chromium_missing())
        self.timeout, self._next_id, self._buffer, self._events = timeout, 0, b"", []
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()

        def child_fds():                  # move the pipe ends to fds 3 and 4 without clobbering each other
            read_end = fcntl.fcntl(to_child_r, fcntl.F_DUPFD, 5)
            write_end = fcntl.fcntl(from_child_w, fcntl.F_DUPFD, 5)
            os.dup2(read_end, 3)
            os.dup2(write_end, 4)

        self.process = subprocess.Popen(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--remote-debugging-pipe",
             f"--window-size={WIDTH},900", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, close_fds=False,
            preexec_fn=child_fds)
        os.close(to_child_r)
        os.close(from_child_w)

    def _read_message(self, deadline):
        while b"\0" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self._from_child], [], [], remaining)[0]:
                raise TimeoutError(f"Chromium did not answer within {self.timeout:.0f} s")
            chunk = os.read(self._from_child, 1 << 20)
            if not chunk:
                raise RuntimeError(f"Chromium closed the DevTools pipe (exit code {self.process.poll()})")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method, params=None, session=None):
        """Send one command and return its result; events that arrive meanwhile are kept for :meth:`wait_for`."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_child, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error'].get('message', reply['error'])}")
                return reply.get("result", {})
            self._events.append(reply)

    def wait_for(self, event, session=None):
        deadline = time.monotonic() + self.timeout
        while True:
            for k, message in enumerate(self._events):
                if message.get("method") == event and message.get("sessionId") == session:
                    return self._events.pop(k)
            self._events.append(self._read_message(deadline))

    def close(self):
        try:
            self.call("Browser.close")
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._to_child)
        os.close(self._from_child)


def screenshot(browser, html_path, png_path):
    """Load ``html_path`` in a fresh tab, size the window to the typeset page and write a PNG.

    Returns the page height and the equations and tables that are wider than the text column.
    """
    target = browser.call("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = browser.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    try:
        browser.call("Page.enable", session=session)
        metrics = {"width": WIDTH, "height": 900, "deviceScaleFactor": 1, "mobile": False}
        browser.call("Emulation.setDeviceMetricsOverride", metrics, session=session)
        browser.call("Page.navigate", {"url": pathlib.Path(html_path).resolve().as_uri()}, session=session)
        browser.wait_for("Page.loadEventFired", session=session)

        def height():
            result = browser.call("Runtime.evaluate", {"expression": SETTLED_HEIGHT, "awaitPromise": True,
                                                       "returnByValue": True}, session=session)
            return int(result["result"]["value"])

        full = height()
        metrics["height"] = min(full, MAX_HEIGHT)
        browser.call("Emulation.setDeviceMetricsOverride", metrics, session=session)
        metrics["height"] = min(max(full, height()), MAX_HEIGHT)   # the layout may change at the new size
        browser.call("Emulation.setDeviceMetricsOverride", metrics, session=session)
        png = browser.call("Page.captureScreenshot", {"format": "png"}, session=session)["data"]
        too_wide = browser.call("Runtime.evaluate", {"expression": TOO_WIDE, "returnByValue": True},
                                session=session)["result"]["value"]
    finally:
        browser.call("Target.closeTarget", {"targetId": target})
    png_path = pathlib.Path(png_path)
    png_path.parent.mkdir(parents=True, exist_ok=True)
    png_path.write_bytes(base64.b64decode(png))
    return full, too_wide


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--html", type=pathlib.Path, default=ROOT / "_build" / "html", help="built book (%(default)s)")
    parser.add_argument("--out", type=pathlib.Path, default=ROOT / "_build" / "screenshots",
                        help="folder for the PNGs (%(default)s)")
    parser.add_argument("--pages", nargs="*", help="docnames to take (default: every page of _toc.yml)")
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
    browser = DevToolsPipe(chromium)
    missing = []
    try:
        for page in pages:
            html = page.html(args.html)
            if not html.exists():
                missing.append(page.docname)
                print(f"{page.docname}: no {html} (not built yet?)")
                continue
            png = args.out / f"{page.docname}.png"
            height, too_wide = screenshot(browser, html, png)
            cut = f", cut at {MAX_HEIGHT} px" if height > MAX_HEIGHT else ""
            print(f"{page.docname}: {WIDTH} x {height} px{cut} -> {png}")
            for item in too_wide:
                print(f"    wider than the text column: {item}")
    finally:
        browser.close()
    if missing:
        sys.exit(f"{len(missing)} page(s) of _toc.yml have no built HTML: {', '.join(missing)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
