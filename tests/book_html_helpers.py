"""Checks of one built page of the book. Each returns a list of problems (empty when the page is fine), so a test
can show every problem of a page at once, and the checks can be tried on a small hand-made HTML tree."""
from __future__ import annotations

import json
import pathlib
import re
import urllib.parse

import yaml
from bs4 import BeautifulSoup

from tools.book_pages import ROOT

# A code cell that draws: the book's plotting module, pyplot, or an Axes method called on a figure's axes.
FIGURE_CALL = re.compile(r"\bviz\.(show|plot)_\w+\(|\bplt\.\w+\(|\.(hist|imshow|plot|bar|scatter)\(")
DISPLAY_MATH = re.compile(r"\$\$|```\{math\}|\\begin\{(equation|align)")
ERROR_WORDS = re.compile(r"Error|Exception|Traceback|Warning")
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
MIN_DATA_URI = 100          # characters of base64 below which an inline image cannot hold a real picture


def parse(html_path):
    return BeautifulSoup(pathlib.Path(html_path).read_text(encoding="utf-8"), "html.parser")


def article(soup):
    """The page's own content, without the theme's navigation."""
    return soup.find("article") or soup.body or soup


def _source_cells(source, cell_type):
    if source.suffix != ".ipynb":
        return [source.read_text(encoding="utf-8")] if cell_type == "markdown" else []
    cells = json.loads(source.read_text(encoding="utf-8"))["cells"]
    return ["".join(cell["source"]) for cell in cells if cell["cell_type"] == cell_type]


def makes_figures(source) -> bool:
    """Whether a source file has a code cell that draws a figure."""
    return any(FIGURE_CALL.search(code) for code in _source_cells(pathlib.Path(source), "code"))


def has_display_math(source) -> bool:
    return any(DISPLAY_MATH.search(text) for text in _source_cells(pathlib.Path(source), "markdown"))


def error_outputs(soup):
    """Tracebacks and error or warning text in cell outputs (myst-nb's ``output traceback`` and ``output stderr``)."""
    problems = []
    for node in article(soup).select(".cell_output .traceback, .cell_output .error"):
        problems.append(f"error output: {node.get_text()[:200]!r}")
    for node in article(soup).select(".cell_output .stderr"):
        if ERROR_WORDS.search(node.get_text()):
            problems.append(f"stderr output with an error or warning: {node.get_text()[:200]!r}")
    for node in article(soup).select(".cell_output"):
        if "Traceback (most recent call last)" in node.get_text():
            problems.append(f"traceback in an output: {node.get_text()[:200]!r}")
    return problems


def image_problems(soup, html_path):
    """Every <img> of the page must carry a picture: a data URI with a payload, or a non-empty local file."""
    problems = []
    for img in article(soup).find_all("img"):
        src = img.get("src", "")
        if src.startswith("data:image"):
            if len(src.partition(",")[2]) < MIN_DATA_URI:
                problems.append(f"inline image without data: {src[:60]!r}")
        elif not src or urllib.parse.urlparse(src).scheme:
            problems.append(f"image not stored with the book: {src!r}")
        else:
            path = pathlib.Path(html_path).parent / urllib.parse.unquote(src.split("#")[0].split("?")[0])
            if not path.is_file() or path.stat().st_size == 0:
                problems.append(f"image file missing or empty: {src}")
    return problems


def output_images(soup):
    """The <img> tags in cell outputs, i.e. the figures a notebook drew."""
    return article(soup).select(".cell_output img")


def math_problems(soup):
    """Display math must have become MathJax elements, and no ``$$`` may be left in the prose."""
    body = article(soup)
    problems = []
    if not body.select(".math"):
        problems.append("the source has display math but the page has no math element")
    for text in body.find_all(string=re.compile(r"\$\$")):
        if not text.find_parent(["pre", "code", "script", "style"]):
            problems.append(f"unrendered $$ in the text: {text.strip()[:80]!r}")
    return problems


def control_character_problems(soup):
    """A stray control character usually is a lost backslash: "\\approx" written as a BEL and "pprox"."""
    return [f"control character {match.group()!r} in {text.strip()[:80]!r}"
            for text in article(soup).find_all(string=True) for match in CONTROL_CHARACTERS.finditer(text)]


def offline_problems(soup, html_path):
    """Scripts and stylesheets must come from the built book itself, so that it reads without a network."""
    problems = []
    for node, attribute in [(n, "src") for n in soup.find_all("script", src=True)] + \
                           [(n, "href") for n in soup.find_all("link", rel="stylesheet")]:
        url = node[attribute]
        if urllib.parse.urlparse(url).scheme or url.startswith("//"):
            problems.append(f"<{node.name}> loads {url} from the network")
            continue
        path = pathlib.Path(html_path).parent / urllib.parse.unquote(url.split("?")[0].split("#")[0])
        if not path.is_file():
            problems.append(f"<{node.name}> refers to {url}, which the build does not contain")
    return problems


def unpublished_links(root=ROOT) -> tuple[str, ...]:
    """Addresses no page may link to while ``_config.yml`` keeps their buttons off: the repository (not published
    yet), Binder and Colab."""
    config = yaml.safe_load((pathlib.Path(root) / "_config.yml").read_text())
    html, launch = config.get("html") or {}, config.get("launch_buttons") or {}
    forbidden = []
    if not (html.get("use_repository_button") or html.get("use_issues_button")):
        forbidden.append(config["repository"]["url"])
    forbidden += [host for key, host in (("binderhub_url", "mybinder.org"), ("colab_url", "colab.research.google.com"))
                  if not launch.get(key)]
    return tuple(forbidden)


def link_problems(soup, forbidden):
    """Links to addresses that are not known to exist (:func:`unpublished_links`)."""
    return [f"links to {node['href']}, which the book does not publish yet" for node in soup.find_all(href=True)
            if any(address in node["href"] for address in forbidden)]


def page_problems(page, html_dir):
    """Everything wrong with one :class:`tools.book_pages.Page` of a built book, as readable lines."""
    html_path = page.html(html_dir)
    if not html_path.is_file():
        return [f"{page.docname}: no built page at {html_path}"]
    soup = parse(html_path)
    problems = error_outputs(soup) + image_problems(soup, html_path) + control_character_problems(soup)
    problems += offline_problems(soup, html_path) + link_problems(soup, unpublished_links())
    if page.is_notebook and makes_figures(page.source) and not output_images(soup):
        problems.append("the notebook draws figures but the page shows none")
    if has_display_math(page.source):
        problems += math_problems(soup)
    return [f"{page.docname}: {problem}" for problem in problems]
