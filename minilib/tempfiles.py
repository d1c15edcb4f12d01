"""Temporary files that two writers never share and that do not outlive a killed writer.

Every file the project writes atomically (a result JSON, a checkpoint, the baseline weights of the comparison, a
download's staging folder) is first written under a temporary name beside its target and then renamed over it with
``os.replace``. Two rules keep those names honest:

- **Unique:** :func:`temp_path` names the file ``.<target name>.<pid>.<16 hex digits>.tmp``, so two processes (or two
  threads of one) writing the same target never write into one temporary file; the last rename wins whole.
- **Removed when stale:** a process killed between writing and renaming (SIGKILL, power cut) leaves its temporary
  file behind. :func:`remove_stale` is called when the command that owns such files starts again, and removes the
  ones that no writer can still be using: those whose **owning pid is gone**, and those **older than**
  :data:`STALE_AFTER_S` (one hour) whatever their name says. The age rule covers names without a pid (written by
  older code) and pids that the system has since given to another process. One hour is safe because a writer
  touches its file as long as it writes: a result is written in milliseconds, a checkpoint in seconds, and a
  download's staging folder gets a new block every few milliseconds while data arrives (and the download gives up
  after 60 s without data). The age of a folder is that of the newest file inside it. The pid rule assumes the
  writer runs on this machine, as the project's commands do: results/, a run's folder and the data root are local.
"""
from __future__ import annotations

import os
import re
import secrets
import shutil
import time
from pathlib import Path

STALE_AFTER_S = 3600.0
# ".<target name>.<pid>.<hex>.tmp": the name temp_path gives
TEMP_NAME = re.compile(r"^\.(?P<target>.+)\.(?P<pid>\d+)\.[0-9a-f]{16}\.tmp$")


def temp_path(path) -> Path:
    """A temporary name beside ``path`` that no other writer uses: ``.<name>.<pid>.<16 hex digits>.tmp``."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(8)}.tmp")


def fsync_folder(folder) -> None:
    """Make a rename inside ``folder`` durable (a power cut after it keeps the new name); a no-op on Windows."""
    if os.name == "nt":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path, write) -> Path:
    """Write ``path`` atomically: ``write(file)`` fills a :func:`temp_path` opened ``"wb"``, which is flushed,
    fsync'ed and renamed over ``path``; on any error (Ctrl-C too) the temporary file is removed and ``path`` is
    untouched. Returns ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_folder(path.parent)
    return path


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this machine (it may belong to another user)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:                 # exists, owned by someone else
        return True
    except OverflowError:                   # not a pid at all
        return False
    return True


def newest_mtime(path: Path) -> float:
    """The mtime of ``path``, or for a folder the newest mtime of the folder and everything inside it."""
    newest = path.lstat().st_mtime
    if path.is_dir() and not path.is_symlink():
        for root, dirs, files in os.walk(path):
            for name in dirs + files:
                try:
                    newest = max(newest, os.lstat(os.path.join(root, name)).st_mtime)
                except FileNotFoundError:   # removed meanwhile
                    pass
    return newest


def is_stale(path, pid: int | None, max_age: float = STALE_AFTER_S, now: float | None = None) -> bool:
    """Whether the temporary file or folder ``path``, written by process ``pid`` (None: unknown), can no longer be
    in use: its pid is gone, or nothing in it changed for ``max_age`` seconds (see the module docstring)."""
    path = Path(path)
    now = time.time() if now is None else now
    if pid is not None and pid != os.getpid() and not pid_alive(pid):
        return True
    try:
        return now - newest_mtime(path) > max_age
    except FileNotFoundError:
        return False


def remove_stale(folder, pattern: re.Pattern = TEMP_NAME, max_age: float = STALE_AFTER_S) -> list:
    """Remove the entries of ``folder`` whose name matches ``pattern`` and that are stale (:func:`is_stale`);
    the pattern's group ``pid``, where it has one and it matched, names the owner. Returns the removed paths.

    Only ``folder`` itself is scanned (not its subfolders); a missing folder has nothing to remove, and an entry
    that cannot be removed (a read-only folder) is left as it is."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for entry in sorted(folder.iterdir()):
        match = pattern.match(entry.name)
        if match is None:
            continue
        pid = match.groupdict().get("pid")
        if not is_stale(entry, None if pid is None else int(pid), max_age):
            continue
        try:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        except OSError:                     # removed first by another starting process, or not ours to remove
            continue
        removed.append(entry)
    return removed
