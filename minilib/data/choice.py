"""Which data a chapter runs on: the full dataset when it is here or can be fetched, else the embedded sample.

A chapter calls :func:`choose_data` once, shows its :attr:`DataChoice.note` at the top (nothing when the full data
is used) and passes :attr:`DataChoice.sample` to the loaders, so the book builds anywhere and says so where it ran
at the sample's size. Quick mode (``MINILIB_QUICK=1``, the tests) always takes the sample.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from ..settings import quick_mode
from .location import OFFLINE_VAR, offline, resolve_root
from .registry import (
    DatasetIntegrityError,
    DownloadError,
    DownloadUnavailableError,
    get_spec,
)
from .samples import sample_spec

NOTE_TITLE = "This chapter ran on the embedded sample, not the full data"


@dataclass(frozen=True)
class SampleNote:
    """The note a chapter shows when it runs on the sample: a warning box in the book, plain text in a terminal."""

    text: str
    how_to_fix: str

    def _repr_html_(self) -> str:
        return (f'<div class="admonition warning"><p class="admonition-title">{NOTE_TITLE}</p>'
                f'<p>{html.escape(self.text)}</p><p>{html.escape(self.how_to_fix)}</p></div>')

    def __repr__(self) -> str:
        return f"NOTE: this chapter ran on the embedded sample. {self.text} {self.how_to_fix}"


@dataclass(frozen=True)
class DataChoice:
    """``sample``: whether the chapter reads the embedded sample; ``reason``: why (empty for the full data)."""

    names: tuple[str, ...]
    sample: bool
    reason: str = ""

    @property
    def note(self) -> SampleNote | None:
        """None with the full data; else what the reader sees at the top of the chapter."""
        if not self.sample:
            return None
        parts = "; ".join(f"{sample_spec(name).title}: {sample_spec(name).note}" for name in self.names)
        commands = " and ".join(f"`{get_spec(name).fix_command()}`" for name in self.names)
        return SampleNote(f"Its numbers come from a small sample shipped with minilib ({parts}), because "
                          f"{self.reason}. They show that the code runs, not the chapter's results.",
                          f"To run it on the full data, fetch it with {commands} (or set MINILIB_DATA to a folder "
                          "that has it) and build the book again.")


def chosen_datasets(source: str) -> set[str]:
    """The dataset names a notebook's code passes to ``choose_data``."""
    calls = re.findall(r"choose_data\(([^)]*)\)", source)
    return {name for call in calls for name in re.findall(r"[\"']([\w-]+)[\"']", call)}


def ran_on_sample_now_present(source: str, outputs: str, root=None) -> bool:
    """True for an execution (its code ``source``, its ``outputs`` as text) that showed the sample note although
    every dataset it chooses is now under the data root: its cached pages must be made again."""
    names = chosen_datasets(source)
    return NOTE_TITLE in outputs and bool(names) and not any(_missing(name, root) for name in names)


def _missing(name: str, root) -> bool:
    return bool(get_spec(name).missing_files(resolve_root(root)))


def choose_data(*names: str, root=None, quick: bool | None = None) -> DataChoice:
    """The data for a chapter that reads datasets ``names`` (each must have an embedded sample).

    The sample in quick mode; else the full data when every file is under the data root or can be fetched now
    (fetching prints a few lines); else the sample, with the reason. A file that is present but corrupt is not a
    reason to fall back: the loader reports it.
    """
    if not names:
        raise ValueError("names must name at least one dataset, e.g. choose_data('mnist')")
    for name in names:
        sample_spec(name)  # ValueError for a dataset without a sample
    quick = quick_mode() if quick is None else quick
    if quick:
        return DataChoice(names, True, "quick mode (MINILIB_QUICK=1) runs every chapter on the sample")
    from .fetch import download

    for name in names:
        if not _missing(name, root):
            continue
        title = get_spec(name).title
        if offline():
            return DataChoice(names, True, f"{title} is not under {resolve_root(root)} and fetching is off "
                                           f"({OFFLINE_VAR} is set)")
        try:
            download(name, root, log=print)
        except (DownloadError, DownloadUnavailableError, DatasetIntegrityError, OSError) as e:
            first_line = str(e).splitlines()[0] if str(e) else type(e).__name__
            return DataChoice(names, True, f"{title} is not under {resolve_root(root)} and fetching it failed "
                                           f"({first_line})")
    return DataChoice(names, False)
