"""Download MNIST and Fashion-MNIST from their public mirrors, with the standard library only.

Each file is written atomically: fetched into a hidden temp file next to its destination, checked (SHA-256 of
the decompressed content), then moved into place with ``os.replace``. On any failure the temp file is deleted,
so the data root never holds a partial or unverified file under a real name.

CIFAR-10 and the SR sets have no download: their public releases are in other formats (python pickles, zips, BMPs),
and minilib reads prepared copies (see ``shared/data/README.md``).
"""

from __future__ import annotations

import os
import secrets
import shutil
import urllib.request
from contextlib import suppress
from pathlib import Path
from typing import BinaryIO, Callable

from .readers import DEFAULT_FIX, file_sha256, verify_file
from .registry import (
    DatasetIntegrityError,
    DownloadError,
    DownloadUnavailableError,
    FileSpec,
    get_spec,
    resolve_root,
)

TIMEOUT_S = 60

Fetch = Callable[[str], BinaryIO]  # url -> readable binary stream usable in a `with` block


def urlopen_fetch(url: str) -> BinaryIO:
    """Open ``url`` with ``urllib.request.urlopen`` (timeout 60 s). The default ``fetch`` of :func:`download`."""
    request = urllib.request.Request(url, headers={"User-Agent": "minilib-data"})
    return urllib.request.urlopen(request, timeout=TIMEOUT_S)


def _temp_path(dest: Path) -> Path:
    # Same directory as dest, so os.replace is a rename on one filesystem (atomic); the random part keeps two
    # concurrent downloads from sharing a temp file. Leading dot: a glob for *.gz does not see it.
    return dest.with_name(f".{dest.name}.{secrets.token_hex(4)}.part")


def fetch_verified(url: str, dest: Path, spec: FileSpec, fetch: Fetch) -> None:
    """Fetch ``url`` into ``dest`` only if its content matches ``spec``; otherwise leave nothing behind and raise."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_path(dest)
    try:
        # open(..., "xb") rather than mkstemp: the file gets normal umask permissions, not 0600.
        with open(tmp, "xb") as out, fetch(url) as response:
            shutil.copyfileobj(response, out, 1 << 20)
        actual = file_sha256(tmp, spec.checksum, fix_hint=f"Downloaded from {url}.")
        if actual != spec.sha256:
            raise DatasetIntegrityError(
                f"Downloaded file from {url} for {dest} failed verification:\n"
                f"  expected SHA-256 {spec.sha256}\n  actual   SHA-256 {actual}\n"
                "Nothing was written. The mirror may serve a different or damaged file; try again later.",
                path=dest, expected=spec.sha256, actual=actual)
        os.replace(tmp, dest)
    except BaseException:  # also on KeyboardInterrupt: never leave a partial file
        with suppress(FileNotFoundError):
            tmp.unlink()
        raise


def _fetch_from_mirrors(dest: Path, spec: FileSpec, mirrors: tuple[str, ...], fetch: Fetch,
                        log: Callable[[str], None]) -> None:
    """Try each mirror in turn; raise with every mirror's error if none delivers a good file."""
    errors: list[tuple[str, Exception]] = []
    for mirror in mirrors:
        url = mirror + spec.filename
        log(f"downloading {url} -> {dest}")
        try:
            fetch_verified(url, dest, spec, fetch)
            return
        except (OSError, DatasetIntegrityError) as e:  # URLError, HTTPError and timeouts are OSErrors
            errors.append((url, e))
            log(f"  failed: {type(e).__name__}: {e}")
    summary = "\n".join(f"  {url}: {type(e).__name__}: {e}" for url, e in errors)
    cls = DatasetIntegrityError if any(isinstance(e, DatasetIntegrityError) for _, e in errors) else DownloadError
    raise cls(f"Could not download {dest.name} from any mirror; nothing was written:\n{summary}")


def download(name: str, root: str | os.PathLike | None = None, *, fetch: Fetch | None = None,
             log: Callable[[str], None] | None = None) -> dict[Path, str]:
    """Download dataset ``name`` ("mnist" or "fashion-mnist") into ``<root>/<name>/``; root defaults to ``data_root()``.

    Files already present and valid are skipped; a present but invalid file is replaced (atomically).
    ``fetch(url)`` returns a readable binary stream (default :func:`urlopen_fetch`); tests inject a fake to stay
    offline. ``log`` receives one line per step (the CLI passes ``print``).

    Returns ``{path: "already valid" | "downloaded"}``. Raises :class:`DownloadUnavailableError` for datasets
    without a public source, :class:`DownloadError` if every mirror fails, :class:`DatasetIntegrityError` if
    a mirror serves bytes with the wrong checksum.
    """
    spec = get_spec(name)
    root_path = resolve_root(root)
    if not spec.downloadable:
        raise DownloadUnavailableError(f"{spec.title} cannot be downloaded by minilib. {spec.how_to_get_at(root_path)}")
    fetch = urlopen_fetch if fetch is None else fetch
    log = (lambda msg: None) if log is None else log
    results: dict[Path, str] = {}
    for fs in spec.files.values():
        dest = root_path / fs.relpath
        if _is_valid(fs, dest):
            results[dest] = "already valid"
            continue
        _fetch_from_mirrors(dest, fs, spec.mirrors, fetch, log)
        results[dest] = "downloaded"
    return results


def _is_valid(spec: FileSpec, path: Path) -> bool:
    if not path.is_file():
        return False
    try:
        verify_file(spec, path, fix_hint=DEFAULT_FIX)
        return True
    except DatasetIntegrityError:
        return False  # replaced below by a verified download
