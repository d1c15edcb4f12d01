"""Every coding exercise of the book: its name, chapter, the reader's stub and the library's solution.

An exercise NAME has a stub ``minilib/exercises/NAME.py`` (the function to fill in, raising
``NotImplementedError`` until then), a reference implementation somewhere in ``minilib`` with the same
signature, and checks in ``tests/exercises/test_exercise_NAME.py``. Functions are looked up by dotted
path only when asked for, so a half-written stub with a syntax error breaks its own exercise only.
"""
from __future__ import annotations

import importlib
import pathlib
from dataclasses import dataclass

ROOT = pathlib.Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Exercise:
    """One exercise: ``stub`` and ``reference`` are ``"module:function"`` paths with the same signature."""

    name: str
    chapter: str        # notebook number, e.g. "03"
    label: str          # the sphinx-exercise label in that notebook
    stub: str
    reference: str

    @property
    def stub_file(self) -> str:
        """Where the reader writes the solution, relative to the repository root."""
        return f"minilib/exercises/{self.name}.py"

    @property
    def test_file(self) -> pathlib.Path:
        return ROOT / "tests" / "exercises" / f"test_exercise_{self.name}.py"

    def function(self, target: str):
        """The function under test: the reader's stub (``"stub"``) or the library's solution (``"reference"``)."""
        path = {"stub": self.stub, "reference": self.reference}[_target(target)]
        module, name = path.split(":")
        return getattr(importlib.import_module(module), name)


def _exercise(name, chapter, label, function, reference):
    return Exercise(name, chapter, label, f"minilib.exercises.{name}:{function}", reference)


EXERCISES = {e.name: e for e in [
    _exercise("im2col", "01", "ex01-im2col", "im2col", "minilib.im2col:im2col"),
    _exercise("conv_backward", "02", "ex02-conv-backward", "conv2d_backward", "minilib.conv:conv2d_backward"),
    _exercise("secondary_masks", "03", "ex03-even-masks", "secondary_masks", "minilib.versatile:secondary_masks"),
    _exercise("channel_windows", "04", "ex04-windows", "channel_windows", "minilib.versatile:channel_windows"),
    _exercise("compression_rate", "06", "ex06-rate", "compression_rate", "minilib.basis:compression_rate"),
    _exercise("optimal_splits", "06", "ex06-rate", "optimal_splits", "minilib.basis:optimal_splits"),
    _exercise("ste_backward", "08", "ex08-ste", "ste_gradient", "minilib.fullstack:ste_gradient"),
]}

TARGETS = ("reference", "stub")


def _target(target: str) -> str:
    if target not in TARGETS:
        raise ValueError(f"target={target!r} must be one of {', '.join(TARGETS)}")
    return target


def names() -> list[str]:
    return list(EXERCISES)


def lookup(name: str, argument: str = "NAME") -> Exercise:
    """The exercise called ``name``; a missing or unknown name raises ``ValueError`` listing the valid ones."""
    if name in EXERCISES:
        return EXERCISES[name]
    valid = ", ".join(EXERCISES)
    if not name:
        raise ValueError(f"{argument} is missing: name the exercise to check, one of: {valid}")
    raise ValueError(f"{argument}={name!r} is not an exercise; the exercises are: {valid}")
