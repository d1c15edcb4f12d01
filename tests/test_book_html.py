"""The built book (``_build/html``, made by ``make book``), page by page as ``_toc.yml`` lists them: every page
exists, notebooks that draw show their figures, no output holds an error, display math is rendered, and nothing is
loaded from the network. A chapter added to ``_toc.yml`` is checked without editing this file.

The first tests run the same checks on a small hand-made tree, so that they are known to catch a traceback and a
missing figure; they need no build.
"""
import json
import pathlib

import pytest

from book_html_helpers import page_problems, unpublished_links
from tools.book_pages import ROOT, book_pages, toc_docnames

HTML_DIR = ROOT / "_build" / "html"
PAGES = book_pages()


# ----------------------------------------------------------------------------- the checks on a hand-made tree

def notebook_json(*cells):
    return json.dumps({"cells": [{"cell_type": kind, "metadata": {}, "source": source,
                                  **({"outputs": [], "execution_count": None} if kind == "code" else {})}
                                 for kind, source in cells], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


def page_html(body, depth=1):
    up = "../" * depth
    return (f'<html><head><script src="{up}_static/mathjax/tex-chtml.js"></script></head>'
            f'<body><nav>theme</nav><article class="bd-article">{body}</article></body></html>')


GOOD_CHAPTER = page_html(
    '<div class="math notranslate nohighlight">\\[y = W x\\]</div>'
    '<div class="cell_output docutils container"><img alt="" src="../_images/figure.png" /></div>')


def fake_book(root, chapter_html=GOOD_CHAPTER):
    """A two-page book: a markdown intro and a notebook chapter with display math that draws one figure."""
    (root / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nparts:\n  - caption: Part\n    chapters:\n"
                                   "      - file: notebooks/01_chapter\n")
    (root / "book").mkdir()
    (root / "book" / "intro.md").write_text("# Intro\n\nNo maths here.\n")
    (root / "notebooks").mkdir()
    (root / "notebooks" / "01_chapter.ipynb").write_text(notebook_json(
        ("markdown", "# Chapter\n\n$$\ny = W x\n$$"), ("code", "viz.show_grid(np.eye(3));")))
    html = root / "_build" / "html"
    for folder in ("book", "notebooks", "_images", "_static/mathjax"):
        (html / folder).mkdir(parents=True)
    (html / "index.html").write_text('<meta http-equiv="Refresh" content="0; url=book/intro.html" />')
    (html / "_static" / "mathjax" / "tex-chtml.js").write_text("/* MathJax */")
    (html / "_images" / "figure.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    (html / "book" / "intro.html").write_text(page_html("<h1>Intro</h1><p>No maths here.</p>"))
    (html / "notebooks" / "01_chapter.html").write_text(chapter_html)
    return book_pages(root), html


def problems_of(root, chapter_html=GOOD_CHAPTER):
    pages, html = fake_book(root, chapter_html)
    return [problem for page in pages for problem in page_problems(page, html)]


def test_toc_lists_the_root_then_every_chapter(tmp_path):
    fake_book(tmp_path)
    assert toc_docnames(tmp_path / "_toc.yml") == ["book/intro", "notebooks/01_chapter"]


def test_a_good_fake_book_has_no_problems(tmp_path):
    assert problems_of(tmp_path) == []


def test_a_traceback_in_an_output_is_found(tmp_path):
    chapter = GOOD_CHAPTER.replace(
        "</article>", '<div class="cell_output docutils container"><div class="output traceback highlight-ipythontb">'
                      "<pre>Traceback (most recent call last):\nValueError: boom</pre></div></div></article>")
    problems = problems_of(tmp_path, chapter)
    assert any("error output" in problem and "ValueError" in problem for problem in problems), problems


def test_an_error_on_stderr_is_found(tmp_path):
    chapter = GOOD_CHAPTER.replace(
        "</article>", '<div class="cell_output docutils container"><div class="output stderr">'
                      "<pre>RuntimeWarning: overflow encountered</pre></div></div></article>")
    assert any("stderr" in problem for problem in problems_of(tmp_path, chapter))


def test_a_missing_figure_file_is_found(tmp_path):
    chapter = GOOD_CHAPTER.replace("figure.png", "lost.png")
    assert any("image file missing" in problem and "lost.png" in problem for problem in problems_of(tmp_path, chapter))


def test_a_notebook_without_its_figures_is_found(tmp_path):
    chapter = GOOD_CHAPTER.replace('<img alt="" src="../_images/figure.png" />', "<pre>no picture</pre>")
    assert any("draws figures but the page shows none" in problem for problem in problems_of(tmp_path, chapter))


def test_an_empty_inline_image_is_found(tmp_path):
    chapter = GOOD_CHAPTER.replace("../_images/figure.png", "data:image/png;base64,")
    assert any("inline image without data" in problem for problem in problems_of(tmp_path, chapter))


def test_unrendered_math_and_control_characters_are_found(tmp_path):
    chapter = page_html('<p>$$y = W x$$ with $s \x07pprox 3$</p>'
                        '<div class="cell_output docutils container"><img alt="" src="../_images/figure.png" /></div>')
    problems = problems_of(tmp_path, chapter)
    assert any("no math element" in problem for problem in problems)
    assert any("unrendered $$" in problem for problem in problems)
    assert any("control character" in problem for problem in problems)


def test_a_script_from_the_network_is_found(tmp_path):
    chapter = GOOD_CHAPTER.replace("<head>", '<head><script src="https://cdn.example.org/mathjax.js"></script>')
    assert any("from the network" in problem for problem in problems_of(tmp_path, chapter))


def test_a_link_to_the_unpublished_repository_or_a_launch_service_is_found(tmp_path):
    forbidden = unpublished_links()
    assert "mybinder.org" in forbidden and "colab.research.google.com" in forbidden   # the buttons are off
    chapter = GOOD_CHAPTER.replace("</body>", f'<a href="https://{forbidden[-1]}/launch">launch</a></body>')
    assert any("does not publish yet" in problem for problem in problems_of(tmp_path, chapter))


def test_a_chapter_in_the_toc_without_a_source_is_an_error(tmp_path):
    fake_book(tmp_path)
    (tmp_path / "notebooks" / "01_chapter.ipynb").unlink()
    with pytest.raises(FileNotFoundError, match="01_chapter"):
        book_pages(tmp_path)


# ----------------------------------------------------------------------------- the real build

@pytest.fixture(scope="module")
def html_dir():
    if not (HTML_DIR / "index.html").is_file():
        pytest.skip(f"no built book at {HTML_DIR} (run `make book` first)")
    return HTML_DIR


def test_the_toc_has_the_book_pages():
    docnames = [page.docname for page in PAGES]
    assert docnames[0] == "book/intro" and len(docnames) == len(set(docnames))
    assert any(page.is_notebook for page in PAGES)


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.docname)
def test_built_page(page, html_dir):
    problems = page_problems(page, html_dir)
    assert not problems, "\n".join(problems)


def test_chapter_figures_are_in_the_book(html_dir):
    images = [path for path in (html_dir / "_images").iterdir() if path.is_file()]
    assert images and all(path.stat().st_size > 0 for path in images)
    assert pathlib.Path(html_dir / "_images" / "three_ideas.svg").is_file(), "the landing figure was not copied"
