"""Exercises a reader can check: one stub per coding exercise of the book.

Each chapter's coding exercise names a file here, e.g. ``minilib/exercises/im2col.py``: a function with the
real signature and a docstring (shapes, the paper's symbols, hints) that raises ``NotImplementedError``.
Fill it in, then

    make check-exercise NAME=im2col            # or: python -m minilib.exercises check im2col

runs the exercise's checks (``tests/exercises/``) against your function and prints a verdict. The same
checks run against the library's own implementation in ``make test``. ``python -m minilib.exercises list``
shows every exercise. The stubs are imported only when checked, so nothing here is part of the library's API.
"""
from .registry import EXERCISES, TARGETS, Exercise, lookup, names

__all__ = ["EXERCISES", "TARGETS", "Exercise", "lookup", "names"]
