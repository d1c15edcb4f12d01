"""The exercise stubs as committed (``git show HEAD:minilib/exercises/NAME.py``), not as the reader has filled them in.

The tests that say "every stub raises NotImplementedError" are about the stubs the book ships. A reader who solves an
exercise edits the working-tree file and is told to run ``make test``, which must stay green for them; so those
tests load the committed text into a module of its own. A checkout without git history (an archive, no git) has
nothing to compare with: :func:`committed_source` then raises :class:`NoHistory` and the tests skip with its reason.
A stub that is not committed yet is read from the working tree: it is being written, not solved.

This file is also a pytest plugin (``-p committed_stubs`` with ``tests/`` on ``PYTHONPATH``): before the checks are
collected it puts the committed stubs in ``sys.modules`` in place of ``minilib.exercises.NAME``, so the checks of
``--exercise-target stub`` call them; ``make check-exercise`` and ``--exercise NAME`` are left untouched.
"""
from __future__ import annotations

import functools
import importlib.util
import os
import pathlib
import subprocess
import sys
import tempfile

import pytest

from minilib.exercises import EXERCISES
from minilib.exercises.registry import ROOT

TESTS = pathlib.Path(__file__).resolve().parent
_folder = None              # the temporary directory the committed stubs are written to, one per process


class NoHistory(Exception):
    """The checkout has no commit to read the stubs from; the message says why (a skip reason)."""


def _git(*args) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        raise NoHistory("git is not installed, so the committed exercise stubs cannot be read") from None


@functools.cache
def _check_history() -> None:
    done = _git("rev-parse", "--verify", "--quiet", "HEAD^{commit}")
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or ["no commit at HEAD"])[0]
        raise NoHistory(f"{ROOT} has no git history to read the committed exercise stubs from ({why})")


def committed_source(name: str) -> str:
    """The text of ``minilib/exercises/NAME.py`` at HEAD (the working tree's if the file is not committed yet)."""
    _check_history()
    path = EXERCISES[name].stub_file
    # "./" makes the path relative to ROOT, which need not be the top of the work tree
    done = _git("show", f"HEAD:./{path}")
    if done.returncode != 0:
        return (ROOT / path).read_text()
    return done.stdout


@functools.cache
def committed_module(name: str):
    """The committed stub of exercise ``name`` as a module named like the real one, outside ``sys.modules``."""
    global _folder
    source = committed_source(name)
    if _folder is None:
        # a file rather than exec'd text: tracebacks and pytest's reports read the stub's lines from it;
        # it lives as long as the process
        _folder = tempfile.TemporaryDirectory(prefix="committed-stubs-")
    file = pathlib.Path(_folder.name) / f"{name}.py"
    file.write_text(source)
    spec = importlib.util.spec_from_file_location(f"minilib.exercises.{name}", file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def committed_function(name: str):
    """The function the reader fills in, as committed."""
    return getattr(committed_module(name), EXERCISES[name].stub.split(":")[1])


def skip_without_history() -> None:
    """Skip the calling test, with the reason, where the checkout has no git history."""
    try:
        _check_history()
    except NoHistory as error:
        pytest.skip(str(error))


def install() -> None:
    """Make ``import minilib.exercises.NAME`` give the committed stub, for every exercise, in this process."""
    for name, exercise in EXERCISES.items():
        sys.modules[exercise.stub.split(":")[0]] = committed_module(name)


def subprocess_env() -> dict:
    """The environment for a child process that loads this module (``-p committed_stubs`` or an import)."""
    path = [str(TESTS), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, path))}


def pytest_configure(config):
    try:
        install()
    except NoHistory as error:
        raise pytest.UsageError(str(error)) from None
