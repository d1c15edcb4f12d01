"""Fetch a dataset from its public sources with pooch, check it, and move it into the data root atomically.

For every :class:`~minilib.data.sources.Source` whose files are missing or corrupt, the :class:`Download`
alternatives are tried in order. Pooch downloads each into a hidden staging folder inside the data root (checking
the publisher's hash where one exists, retrying a failed connection), an unpacker turns it into the registered files
in the same folder, each file is checked against the registry's content hash, and only then is it moved to its real
name with ``os.replace`` (a rename on one filesystem, so atomic). The staging folder is removed whatever happens,
also on Ctrl-C, so the data root never holds a partial or unchecked file under a real name, nor a folder that a
failed fetch created; a fetch killed outright leaves its staging folder, which the next fetch removes
(:data:`STAGING_NAME`).

Tests pass ``downloader=`` (pooch's downloader protocol: ``downloader(url, output_file, pooch)``) to serve bytes
without a network.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

from ..tempfiles import remove_stale
from .location import OFFLINE_VAR, offline, resolve_root
from .readers import DEFAULT_FIX, verify_file
from .registry import (
    DatasetIntegrityError,
    DatasetSpec,
    DownloadError,
    DownloadUnavailableError,
    FileSpec,
    get_spec,
)
from .sources import Download, Source
from .unpack import UNPACKERS

TIMEOUT_S = 60
# the staging folder of one fetch: ".fetch-<pid>-<8 random characters>" (".fetch-<8 characters>" before the pid was
# in the name). A fetch killed outright (SIGKILL, power cut) cannot remove its own; the next fetch into that data
# root removes it once its process is gone or nothing in it changed for an hour (minilib.tempfiles.remove_stale).
STAGING_NAME = re.compile(r"^\.fetch-(?:(?P<pid>\d+)-)?[a-z0-9_]{8}$")
RETRIES = 2          # pooch tries a failed download this many more times (waiting 1 s, 2 s) before the next mirror
Log = Callable[[str], None]


def _quiet(message: str) -> None:
    pass


def default_downloader(progressbar: bool):
    """Pooch's HTTP downloader: a tqdm progress bar on a terminal, a 60 s timeout, a User-Agent of ours."""
    import pooch

    return pooch.HTTPDownloader(progressbar=progressbar, timeout=TIMEOUT_S, headers={"User-Agent": "minilib-data"})


@contextmanager
def _pooch_logs_quiet():
    # pooch logs every step at INFO on stderr; our own lines say the same in the book's words
    import pooch

    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def _pooch_fetch(download: Download, folder: Path, downloader, retries: int) -> Path:
    """Download ``download.url`` into ``folder`` (once per fetch: a second source naming the same URL reuses it)."""
    import pooch

    # The URL's hash in the name keeps two URLs with one basename apart.
    fname = f"{hashlib.sha256(download.url.encode()).hexdigest()[:12]}-{download.url.rsplit('/', 1)[-1]}"
    cache = pooch.create(path=folder, base_url="", registry={fname: download.known_hash},
                         urls={fname: download.url}, retry_if_failed=retries)
    with _pooch_logs_quiet():
        return Path(cache.fetch(fname, downloader=downloader))


def _is_valid(spec: FileSpec, path: Path) -> bool:
    if not path.is_file():
        return False
    try:
        verify_file(spec, path, fix_hint=DEFAULT_FIX)
        return True
    except DatasetIntegrityError:
        return False  # replaced by a checked download


def _check_nothing_in_the_way(targets: dict[str, Path], root: Path) -> None:
    """A directory where a file goes, or a file where a folder goes, stops the fetch before anything is downloaded."""
    for path in targets.values():
        if path.is_dir():
            raise DownloadError(f"{path} is a directory, where the file {path.name} goes; move it away and retry")
        for parent in path.parents:
            if parent == root.parent:
                break
            if parent.exists() and not parent.is_dir():
                raise DownloadError(f"{parent} is a file, where a folder goes; move it away and retry")


def _unpack_and_check(spec: DatasetSpec, source: Source, download: Download, archive: Path,
                      staging: Path) -> dict[str, Path]:
    """Unpack ``archive`` into ``staging`` and check every produced file; ``{role: staged path}``."""
    staged = {role: staging / f"{role}.{spec.files[role].filename}" for role in source.roles}
    UNPACKERS[download.unpack](archive, download.member, staged)
    for role, path in staged.items():
        verify_file(spec.files[role], path, fix_hint=f"The copy from {download.url} is not the expected content.")
    return staged


def _fetch_source(spec: DatasetSpec, source: Source, staging: Path, downloader, retries: int,
                  log: Log) -> dict[str, Path]:
    """Try each download of ``source`` in turn; the staged, checked files of the first that works."""
    errors = []
    for download in source.downloads:
        log(f"  {', '.join(source.roles)} <- {download.url}")
        try:
            archive = _pooch_fetch(download, staging / "downloads", downloader, retries)
            return _unpack_and_check(spec, source, download, archive, staging)
        except (OSError, ValueError) as e:  # network and HTTP errors are OSErrors; pooch's hash mismatch a ValueError
            errors.append((download.url, e))
            log(f"    failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
    summary = "\n".join(f"  {url}: {type(e).__name__}: {e}" for url, e in errors)
    cls = DatasetIntegrityError if any(isinstance(e, DatasetIntegrityError) for _, e in errors) else DownloadError
    raise cls(f"Could not fetch {spec.title} {', '.join(source.roles)} from any source; nothing was written:\n"
              f"{summary}")


def _remove_empty_folders(path: Path, stop: Path) -> None:
    """Remove ``path`` and its parents up to (not including) ``stop`` while they are empty."""
    for folder in (path, *path.parents):
        if folder == stop or not folder.is_dir() or any(folder.iterdir()):
            return
        folder.rmdir()


def download(name: str, root: str | os.PathLike | None = None, *, downloader=None, log: Log | None = None,
             progressbar: bool | None = None, retries: int = RETRIES) -> dict[Path, str]:
    """Fetch dataset ``name`` into the data root (``root``, else :func:`minilib.data.data_root`).

    Files already present and valid are kept; missing or corrupt ones are fetched (see the module docstring).
    ``downloader`` replaces pooch's HTTP downloader (tests); ``log`` receives one line per step (the CLI and the
    notebooks pass ``print``); ``progressbar`` (default: when stderr is a terminal) shows pooch's tqdm bar.

    Returns ``{path: "already valid" | "downloaded"}``. Raises :class:`DownloadUnavailableError` when the dataset has
    no public source or ``$MINILIB_OFFLINE`` is set, :class:`DownloadError` when every source fails or something is
    in the way, :class:`DatasetIntegrityError` when a source serves the wrong content.
    """
    spec = get_spec(name)
    root_path = resolve_root(root)
    if not spec.downloadable:
        raise DownloadUnavailableError(f"{spec.title} cannot be downloaded by minilib. {spec.how_to_get_at(root_path)}")
    if offline():
        raise DownloadUnavailableError(f"{OFFLINE_VAR}=1 is set, so minilib does not fetch {spec.title}; "
                                       f"unset it to download")
    log = _quiet if log is None else log
    if progressbar is None:
        progressbar = sys.stderr.isatty()
    downloader = default_downloader(progressbar) if downloader is None else downloader
    targets = {role: root_path / fs.relpath for role, fs in spec.files.items()}
    _check_nothing_in_the_way(targets, root_path)
    for stale in remove_stale(root_path, STAGING_NAME):
        log(f"removed {stale}: the staging folder of a fetch that was killed")
    results = {targets[role]: "already valid" for role, fs in spec.files.items() if _is_valid(fs, targets[role])}
    todo = [source for source in spec.sources if any(targets[role] not in results for role in source.roles)]
    if not todo:
        return results
    existed = root_path.exists()
    root_path.mkdir(parents=True, exist_ok=True)
    # same filesystem: os.replace is a rename; the pid in the name tells a later fetch whether its owner is gone
    staging = Path(tempfile.mkdtemp(prefix=f".fetch-{os.getpid()}-", dir=root_path))
    log(f"fetching {spec.title} into {root_path / spec.folder}")
    try:
        for source in todo:
            for role, staged in _fetch_source(spec, source, staging, downloader, retries, log).items():
                targets[role].parent.mkdir(parents=True, exist_ok=True)
                os.replace(staged, targets[role])
                results[targets[role]] = "downloaded"
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if not existed:
            _remove_empty_folders(root_path, root_path.parent)
    return results
