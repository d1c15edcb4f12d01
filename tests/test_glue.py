"""minilib.reports.glue hands myst-nb plain floats and Markdown, and refuses what it cannot paste, naming the value."""
import re

import numpy as np
import pytest

from minilib.reports import glue as G


@pytest.fixture
def glued(monkeypatch):
    seen = {}
    monkeypatch.setattr("myst_nb.glue", lambda name, value, display=True: seen.update({name: (value, display)}))
    return seen


def test_paste_glues_a_python_float_without_displaying_it(glued):
    assert G.paste("acc", np.float32(99.25)) == pytest.approx(99.25)
    value, display = glued["acc"]
    assert type(value) is float and display is False
    assert G.paste("pct", "28.8") == 28.8                # a table cell's text


@pytest.mark.parametrize("value", [True, None, "n/a", [1.0]])
def test_paste_refuses_what_is_not_a_number(glued, value):
    with pytest.raises(TypeError, match=re.escape(f"value={value!r} for 'x' must be a real number")):
        G.paste("x", value)
    assert glued == {}


def test_paste_text_glues_markdown_and_names_need_text(glued):
    from IPython.display import Markdown
    G.paste_text("verdict", "**confirmed**")
    assert isinstance(glued["verdict"][0], Markdown) and glued["verdict"][0].data == "**confirmed**"
    with pytest.raises(ValueError, match="name=''"):
        G.paste("", 1.0)
    with pytest.raises(TypeError, match="text=3"):
        G.paste_text("t", 3)
