"""The book's equation convention (book/notation.md, "Equation numbers"): "Eq. N" never appears without saying whose
equation it is. A paper's equation names its paper close by ("Han et al.'s Eq. 7", "their Eq. 8", "Eq. 3 of
{cite}`wang2018versatile`"); the book's own equations are cited with {eq}`label` and so never read "Eq. N"."""
import json
import re

import pytest

from tools.book_pages import ROOT

SOURCES = sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted((ROOT / "book").glob("*.md"))
EQUATION = re.compile(r"\bEqs?\. ?\d+")
# whose equation: the authors or "their" shortly before, or "of {cite}`...`" / "of Han et al." right after
OWNER_BEFORE = re.compile(r"(et\s+al\.['’]s|\b[Tt]heir\b|\bpaper['’]s\b|\{cite[pt]?\}`[^`]+`['’]s)")
OWNER_AFTER = re.compile(r"^[^.;:]{0,12}\bof (\{cite[pt]?\}|Wang|Li|Han)")
WINDOW = 60


def cells(path):
    if path.suffix == ".ipynb":
        return ["".join(cell["source"]) for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]]
    return [path.read_text(encoding="utf-8")]


def unowned(text):
    """Every "Eq. N" of ``text`` with no owner within the window around it."""
    return [text[max(0, m.start() - 40):m.end() + 20].replace("\n", " ") for m in EQUATION.finditer(text)
            if not OWNER_BEFORE.search(text[max(0, m.start() - WINDOW):m.start()])
            and not OWNER_AFTER.search(text[m.end():m.end() + 40])]


def test_the_rule_is_checked_as_written():
    assert unowned("the rate of Eq. 6 is") and unowned("Eq. 7 (the penalty)")
    assert not unowned("Li et al.'s Eq. 6 gives") and not unowned("as their Eq. 8 adds")
    assert not unowned("Eq. 3 of {cite}`wang2018versatile`") and not unowned("Eqs. 9-10 of Han et al.")


@pytest.mark.parametrize("path", SOURCES, ids=lambda path: path.name)
def test_every_equation_number_says_whose_it_is(path):
    found = [snippet for text in cells(path) for snippet in unowned(text)]
    assert not found, f"{len(found)} bare equation number(s):\n" + "\n".join(found)
