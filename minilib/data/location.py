"""Where the data lives, and whether minilib may fetch it from the network.

One folder for every process: ``$MINILIB_DATA`` when it is set, else the platform's per-user cache folder
(``~/.cache/minilib`` on Linux, ``~/Library/Caches/minilib`` on macOS, ``%LOCALAPPDATA%\\minilib\\Cache`` on
Windows), as scikit-learn and pooch do. Never the current directory: a notebook's kernel runs in ``notebooks/``,
a command in the repository root, and both must find the same files.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "MINILIB_DATA"
OFFLINE_VAR = "MINILIB_OFFLINE"
_TRUE = {"1", "true", "yes", "on"}


def default_root() -> Path:
    """The per-user cache folder used when ``$MINILIB_DATA`` is not set (read from the platform, via platformdirs)."""
    import platformdirs  # a dependency of pooch; imported here so that reading a path needs nothing else

    return Path(platformdirs.user_cache_dir("minilib", appauthor=False))


def data_root() -> Path:
    """The data root as an absolute path: ``$MINILIB_DATA`` if set and non-empty, else :func:`default_root`.

    A relative ``$MINILIB_DATA`` is read against the current directory of the process that reads it; the Makefile,
    the test configuration and the book build turn it into an absolute path before any notebook kernel starts.
    """
    value = os.environ.get(ENV_VAR, "").strip()
    return Path(value).expanduser().resolve() if value else default_root()


def resolve_root(root: str | os.PathLike | None) -> Path:
    """``root`` as an absolute Path, or :func:`data_root` when ``root`` is None."""
    return data_root() if root is None else Path(root).expanduser().resolve()


def root_origin(root_arg) -> str:
    """Where the data root in use came from, for messages."""
    if root_arg is not None:
        return "from the root argument"
    value = os.environ.get(ENV_VAR, "").strip()
    if value and not Path(value).expanduser().is_absolute():
        return (f"from ${ENV_VAR}={value}, a relative path read from the current directory {Path.cwd()}; "
                "give an absolute path to use the same folder from everywhere")
    if value:
        return f"from ${ENV_VAR}"
    return f"the per-user default, because ${ENV_VAR} is not set"


def offline() -> bool:
    """True when ``$MINILIB_OFFLINE`` is a true value (1, true, yes, on): loaders then never fetch."""
    return os.environ.get(OFFLINE_VAR, "").strip().lower() in _TRUE
