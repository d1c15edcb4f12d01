"""Write and read result files: JSON with the command, seed, date and git revision
that produced the numbers, so every number in the book can be traced and re-made."""
from __future__ import annotations

import datetime as _dt
import json
import os
import pathlib
import re
import subprocess
import sys

# results/ beside the package: where the project's commands write and the notebooks read.
RESULTS_DIR = pathlib.Path(__file__).resolve().parents[1] / "results"


def git_revision(cwd=None) -> str:
    """``git rev-parse HEAD`` plus ``-dirty`` when the work tree has changes; "unknown" outside git.

    ``cwd`` defaults to the project folder (beside the package), not the process's working directory,
    so a command started elsewhere still records the revision of the code that ran."""
    cwd = RESULTS_DIR.parent if cwd is None else cwd
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return rev + ("-dirty" if dirty else "")


# The revision a long command started from (see pin_revision); None: ask git at write time.
_PINNED_REVISION = None


def pin_revision() -> str:
    """Record the revision now and report it in every later :func:`provenance` of this process.

    A sweep runs for hours from the code it imported at start; a commit made meanwhile (say, of its first
    results) must not be credited with the runs that follow."""
    global _PINNED_REVISION
    _PINNED_REVISION = git_revision()
    return _PINNED_REVISION


def provenance(seed=None) -> dict:
    """Who made a result: command line, seed, UTC date, git revision."""
    return {
        # orig_argv keeps "-m package.module", which sys.argv replaces by a file path.
        "command": " ".join(["python", *sys.orig_argv[1:]]),
        "seed": seed,
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "git_revision": _PINNED_REVISION or git_revision(),
    }


def write_result(path, payload: dict, seed=None) -> pathlib.Path:
    """Write ``payload`` plus :func:`provenance` as pretty JSON, atomically (temp file + rename)."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps({**provenance(seed), **payload}, indent=2, default=float) + "\n")
    os.replace(tmp, path)
    return path


# How a chapter reads result files: load_results("<experiment>") reads results/<experiment>/*.json, and a quoted
# "<name>.json" is a file of results/ (read_result("bench_conv.json"), RESULTS_DIR / "bench_basis.json").
_LOADS = re.compile(r"load_results\(\s*[\"']([\w-]+)[\"']")
_FILES = re.compile(r"[\"']([\w./-]+\.json)[\"']")


def result_files_read(source: str, results_dir=RESULTS_DIR) -> list:
    """The result files that notebook code ``source`` reads (see the patterns above)."""
    results = pathlib.Path(results_dir)
    files = [path for experiment in _LOADS.findall(source) for path in sorted((results / experiment).glob("*.json"))]
    return files + [results / name for name in _FILES.findall(source) if (results / name).is_file()]


def forget_stale_executions(cache_dir, results_dir=RESULTS_DIR) -> list:
    """Drop Jupyter Book's cached execution of every notebook that reads a result file newer than the execution,
    or that ran on the embedded sample while the full data is now under the data root.

    The execution cache is keyed on a notebook's code, not on the files it reads: without this, ``make book``
    after a new run would keep showing the old tables, and after a download the sample's numbers. The dropped notebooks that lie below the current folder are
    touched too, since Sphinx re-reads (and so re-executes) only the pages whose files changed. Returns the URIs of
    the executions dropped.
    """
    cache_dir = pathlib.Path(cache_dir)
    if not cache_dir.is_dir():
        return []
    from jupyter_cache import get_cache

    from .data.choice import ran_on_sample_now_present

    cache = get_cache(cache_dir)
    dropped = []
    for record in cache.list_cache_records():
        created = record.created.replace(tzinfo=_dt.UTC).timestamp()     # jupyter-cache stores naive UTC
        cells = cache.get_cache_bundle(record.pk).nb.cells
        source = "\n".join(cell.source for cell in cells)
        outputs = json.dumps([cell.get("outputs", []) for cell in cells])
        if (any(path.stat().st_mtime > created for path in result_files_read(source, results_dir))
                or ran_on_sample_now_present(source, outputs)):
            cache.remove_cache(record.pk)
            dropped.append(record.uri)
            notebook = pathlib.Path(record.uri)
            if notebook.is_file() and notebook.resolve().is_relative_to(pathlib.Path.cwd().resolve()):
                notebook.touch()
    return dropped


def read_result(path) -> dict:
    """Load a result file; a bare relative name such as ``"bench_conv.json"`` is looked up in :data:`RESULTS_DIR`."""
    path = pathlib.Path(path)
    if not path.is_absolute() and not path.exists():
        path = RESULTS_DIR / path
    if not path.is_file():
        raise FileNotFoundError(f"result file {path} not found; the command that writes it is named in the book chapter")
    return json.loads(path.read_text())
