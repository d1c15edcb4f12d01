"""The ``full_data`` marker for tests that read the real data under ``$MINILIB_DATA`` (CI: ../shared/data).

They are skipped where the files are absent; `make test-full-data` runs only them.
"""

from __future__ import annotations

import pytest

from minilib.data import data_root

ROOT = data_root()


def needs_data(relpath: str, what: str):
    """Mark a test ``full_data`` and skip it unless ``<data root>/<relpath>`` exists."""
    skip = pytest.mark.skipif(not (ROOT / relpath).is_file(), reason=f"no {what} under {ROOT}")

    def mark(test):
        return pytest.mark.full_data(skip(test))

    return mark
