"""Headless Chromium driven through its DevTools pipe: the browser that the screenshots and the page-fit check of
the built book use. Everything is read from ``file://``; nothing goes to the network.

Chromium is the one given, else ``$CHROMIUM``, else the first of chromium, chromium-browser and google-chrome on
``PATH``, else ``/usr/bin/chromium``; :func:`chromium_missing` is the one line to print when there is none.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pathlib
import select
import shutil
import subprocess
import time

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")    # Debian, Ubuntu, Google's package
CHROMIUM_FALLBACK = "/usr/bin/chromium"
# Flags that keep a headless Chromium off the network: without them it tries Google's hosts at every start.
QUIET_FLAGS = ("--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
               "--disable-quic")
# Resolves once MathJax has typeset the page and the web fonts are in; then the layout is final.
SETTLED_HEIGHT = """(async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) { await MathJax.startup.promise; }
  await document.fonts.ready;
  return Math.ceil(document.documentElement.scrollHeight);
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
             *QUIET_FLAGS, "--window-size=1280,900", "about:blank"],
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




@contextlib.contextmanager
def open_page(browser: DevToolsPipe, html_path, width: int, height: int = 900):
    """Load ``html_path`` in a fresh tab ``width`` CSS pixels wide (a phone below 600) and wait until MathJax has
    typeset it and the fonts are in; yields ``(session, page_height)``. The tab is closed on exit."""
    target = browser.call("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = browser.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    try:
        browser.call("Page.enable", session=session)
        metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600}
        browser.call("Emulation.setDeviceMetricsOverride", metrics, session=session)
        browser.call("Page.navigate", {"url": pathlib.Path(html_path).resolve().as_uri()}, session=session)
        browser.wait_for("Page.loadEventFired", session=session)
        yield session, evaluate(browser, session, SETTLED_HEIGHT)
    finally:
        browser.call("Target.closeTarget", {"targetId": target})


def evaluate(browser: DevToolsPipe, session, expression: str):
    """The value of a JavaScript expression in the page (promises awaited)."""
    result = browser.call("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                               "returnByValue": True}, session=session)
    if "exceptionDetails" in result:
        raise RuntimeError(f"JavaScript error: {result['exceptionDetails'].get('text')}")
    return result["result"]["value"]
