"""Root pytest configuration: quick mode by default and never the network (``MINILIB_OFFLINE=1``: the tests and the
notebooks in quick mode read the embedded sample; fetching is tested with fake downloaders), a relative
``$MINILIB_DATA`` made absolute (notebook kernels run in ``notebooks/``), `minilib` importable from notebook
kernels even without `pip install -e .` (kernels do not see pytest's paths), the ``full_data`` marker, and the
options that point the exercise checks (tests/exercises) at the reader's stubs instead of the library."""
import os
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent
os.environ.setdefault("MINILIB_QUICK", "1")
os.environ["MINILIB_OFFLINE"] = "1"           # the tests never use the network, whatever the shell says
if os.environ.get("MINILIB_DATA", "").strip():
    os.environ["MINILIB_DATA"] = str(pathlib.Path(os.environ["MINILIB_DATA"]).expanduser().resolve())
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))


def pytest_addoption(parser):
    group = parser.getgroup("exercises", "the book's coding exercises (tests/exercises)")
    group.addoption("--exercise", metavar="NAME", default=None,
                    help="check the reader's stub minilib/exercises/NAME.py; other exercises' checks are skipped")
    group.addoption("--exercise-target", choices=("reference", "stub"), default=None,
                    help="what the exercise checks call: the library's implementation (the default without "
                         "--exercise) or the reader's stubs (the default with --exercise)")


def pytest_configure(config):
    config.addinivalue_line("markers", "full_data: needs the full data under $MINILIB_DATA (skipped without it); "
                                       "`make test-full-data` runs only these")
    name = config.getoption("--exercise")
    if name is not None:
        from minilib.exercises.registry import lookup
        try:
            lookup(name, argument="--exercise")
        except ValueError as error:
            raise pytest.UsageError(str(error)) from None
