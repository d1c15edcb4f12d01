"""Numbers and text a chapter computes, pasted into its prose with myst-nb's ``{glue:text}`` / ``{glue:md}`` roles,
so that no number in the text is typed by hand.

    from minilib.reports.glue import paste, paste_text
    paste("acc_baseline", 99.24)          # in the prose: {glue:text}`acc_baseline:.2f`
    paste_text("verdict", "**confirmed**")   # in the prose: {glue:md}`verdict`
"""
from __future__ import annotations


def paste(name: str, value) -> float:
    """Glue ``float(value)`` under ``name`` (a NumPy scalar would be shown with its type name) and return it; not
    displayed where the cell runs."""
    from myst_nb import glue

    if not isinstance(name, str) or not name:
        raise ValueError(f"name={name!r} must be a non-empty string")
    try:
        if isinstance(value, bool):
            raise TypeError
        value = float(value)        # a number, a NumPy scalar, or a table cell's text such as "28.8"
    except (TypeError, ValueError):
        raise TypeError(f"value={value!r} for {name!r} must be a real number") from None
    glue(name, value, display=False)
    return value


def paste_text(name: str, text: str) -> str:
    """Glue ``text`` as Markdown under ``name``, for ``{glue:md}`` (``{glue:text}`` would show it with its quotes)."""
    from IPython.display import Markdown
    from myst_nb import glue

    if not isinstance(name, str) or not name:
        raise ValueError(f"name={name!r} must be a non-empty string")
    if not isinstance(text, str):
        raise TypeError(f"text={text!r} for {name!r} must be a string")
    glue(name, Markdown(text), display=False)
    return text
