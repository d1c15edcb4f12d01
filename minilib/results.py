"""Write and read result files: JSON with the command, seed, date and git revision
that produced the numbers, so every number in the book can be traced and re-made.

A result counts as done only if its file parses, has the experiment's schema, is not a ``--quick`` smoke test
(unless the request is one) and holds the values of the run as planned (:func:`check_result`); a file that fails
is set aside as ``<file>.rejected-<why>`` (:func:`set_aside`) and its run is made again. Readers name a bad file
(:class:`ResultFileError`) and never take a smoke test for a real run (:class:`QuickResultWarning`)."""
from __future__ import annotations

import datetime as _dt
import itertools
import json
import os
import pathlib
import re
import subprocess
import sys
import typing
import warnings

from .tempfiles import atomic_write, remove_stale

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
    """Write ``payload`` plus :func:`provenance` as pretty JSON, atomically: a temporary file of this process alone
    (:func:`minilib.tempfiles.temp_path`, so two processes writing one result never share it), flushed, fsync'ed,
    then renamed over ``path``."""
    text = json.dumps({**provenance(seed), **payload}, indent=2, default=float) + "\n"
    return atomic_write(path, lambda f: f.write(text.encode("utf-8")))


# ----------------------------------------------------------------------------- what counts as a result
# A result file counts as done only if it parses, has the schema below, is not a --quick smoke test (unless the
# request is one) and holds the values the request expects (:func:`check_result`). A file that fails is set aside
# under a name saying why (:func:`set_aside`), never deleted.
NUMBER = (int, float)
OPTIONAL_NUMBER = (int, float, type(None))
PROVENANCE_SCHEMA = {"command": str, "seed": (int, type(None)), "date": str, "git_revision": str}
# the keys every training run's file has, with the keys the readers (minilib.reports) rely on; types as JSON loads
# them (a tuple: any of these; a float field may hold an int). threads: None where NumPy's BLAS cannot tell.
_RUN_SCHEMA = {"experiment": str, "run": str, "quick": bool, "lam": OPTIONAL_NUMBER, "recipe": dict,
               "history": dict, "cost": dict, "wall_seconds": NUMBER, "threads": (int, type(None)), "versions": dict}
_CLASSIFIER_SCHEMA = {**_RUN_SCHEMA, "epochs": int, "data": dict, "initial": dict, "test_loss": OPTIONAL_NUMBER,
                      "test_accuracy": OPTIONAL_NUMBER, "best_val_accuracy": OPTIONAL_NUMBER,
                      "best_epoch": (int, type(None)), "last_val_accuracy": OPTIONAL_NUMBER,
                      "epoch_seconds": OPTIONAL_NUMBER}
SCHEMAS = {
    "mnist": {**_CLASSIFIER_SCHEMA, "model": str, "backend": str, "paper_strings": dict},
    "cifar10": {**_CLASSIFIER_SCHEMA, "model": str, "method": str, "architecture": dict, "compression": dict,
                "latency": dict, "train_seconds": NUMBER},
    "compare": {**_CLASSIFIER_SCHEMA, "method": str, "budget": OPTIONAL_NUMBER, "backend": str,
                "hyperparameters": dict, "architecture": list, "converted_layers": list, "init": str,
                "from_conv": (dict, type(None)), "paper_strings": dict, "compression": dict,
                "latency": (dict, type(None)), "train_seconds": NUMBER},
    "sr": {**_RUN_SCHEMA, "model": str, "method": str, "n_basis": (int, type(None)), "splits": (int, type(None)),
           "share_basis": bool, "s": (int, type(None)), "iterations": int, "architecture": dict, "protocol": dict,
           "data": dict, "psnr": dict, "psnr_per_image": dict, "bicubic_psnr": dict, "compression": dict,
           "train_seconds": NUMBER, "test_seconds": NUMBER, "iteration_seconds": NUMBER},
    "compare-timing": {"experiment": str, "quick": bool, "rounds": int, "batches": list, "numpy_batch": dict,
                       "threads": dict, "versions": dict, "networks": dict, "cifar10_networks": dict,
                       "wall_seconds": NUMBER},
}
REJECTIONS = {            # kind -> what a file of that kind is; a set-aside file is named <file>.rejected-<kind>
    "missing": "missing",
    "damaged": "damaged (not a readable JSON object)",
    "schema": "not of the result schema",
    "quick": "a --quick smoke test, not a real run",
    "recipe": "made by another recipe than the one requested",
    "misnamed": "named for another run",
}


class Rejection(typing.NamedTuple):
    """Why a result file does not count as done: ``kind`` (a key of :data:`REJECTIONS`) and the details."""
    kind: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.detail}"


class ResultFileError(ValueError):
    """A result file that cannot be used; the message names the file and what is wrong. ``path``, ``rejection``."""

    def __init__(self, path, rejection: Rejection, hint: str = ""):
        self.path, self.rejection = pathlib.Path(path), rejection
        super().__init__(f"result file {self.path} is {REJECTIONS[rejection.kind]}: {rejection.detail}"
                         + (f". {hint}" if hint else ""))


def _type_names(types) -> str:
    types = types if isinstance(types, tuple) else (types,)
    return " or ".join("null" if t is type(None) else t.__name__ for t in types)


def _has_type(value, types) -> bool:
    types = types if isinstance(types, tuple) else (types,)
    # JSON's true/false load as bool, which Python counts as an int: a seed of true is no seed
    return isinstance(value, types) and not (isinstance(value, bool) and bool not in types)


def parse_result(path) -> dict | Rejection:
    """The JSON object in ``path``, or the :class:`Rejection` saying why there is none (missing, damaged)."""
    path = pathlib.Path(path)
    if not path.exists() and not path.is_symlink():
        return Rejection("missing", f"{path} does not exist")
    if not path.is_file():
        return Rejection("damaged", f"{path} is not a regular file")
    try:
        raw = path.read_bytes()
    except OSError as error:
        return Rejection("damaged", f"cannot be read ({type(error).__name__}: {error})")
    if not raw.strip():
        return Rejection("damaged", f"the file is empty ({len(raw)} bytes)")
    try:
        result = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        return Rejection("damaged", f"not valid JSON ({type(error).__name__}: {error})")
    if not isinstance(result, dict):
        return Rejection("damaged", f"the JSON is a {type(result).__name__}, not an object")
    return result


def schema_problem(result: dict, schema: dict) -> Rejection | None:
    """The first key of ``schema`` (key -> type or tuple of types) that ``result`` lacks or holds with another type."""
    for key, types in schema.items():
        if key not in result:
            return Rejection("schema", f"the key {key!r} is missing")
        if not _has_type(result[key], types):
            return Rejection("schema", f"{key}={result[key]!r:.60} is {type(result[key]).__name__}, "
                                       f"must be {_type_names(types)}")
    return None


def _differences(result: dict, expected: dict, prefix: str = "") -> list:
    """``[(dotted key, value in the file, expected value)]`` where ``result`` differs from ``expected``; nested
    dicts are compared key by key (keys the file has beyond the expected ones are free)."""
    found = []
    for key, want in expected.items():
        have = result.get(key, "<absent>") if isinstance(result, dict) else "<absent>"
        if isinstance(want, dict) and isinstance(have, dict):
            found += _differences(have, want, f"{prefix}{key}.")
        elif have != want or (isinstance(have, bool) != isinstance(want, bool)):
            found.append((prefix + key, have, want))
    return found


def result_schema(experiment) -> dict:
    """:data:`PROVENANCE_SCHEMA` plus the experiment's :data:`SCHEMAS` entry (nothing more for an unknown one)."""
    return {**PROVENANCE_SCHEMA, **SCHEMAS.get(experiment, {})}


def check_result(path, expected: dict | None = None, schema: dict | None = None) -> Rejection | None:
    """None when ``path`` holds a result that counts as done for a request expecting ``expected``; else why not.

    In order: the file exists (``missing``); it is a JSON object (``damaged``); it has every key of ``schema``
    with its type (``schema``; default: :func:`result_schema` of ``expected["experiment"]``); it is not a
    ``--quick`` smoke test unless ``expected["quick"]`` is true (``quick``); and every value of ``expected``
    (nested dicts key by key, e.g. the recipe's learning rate) equals the file's (``recipe``). ``expected`` is
    what the run as planned writes: experiment, run, seed, epochs or iterations, λ, quick, recipe numbers.
    """
    result = parse_result(path)
    if isinstance(result, Rejection):
        return result
    return result_problem(result, expected, schema)


def result_problem(result: dict, expected: dict | None = None, schema: dict | None = None,
                   quick_ok: bool | None = None) -> Rejection | None:
    """The checks of :func:`check_result` on a parsed ``result``; ``quick_ok`` (default: ``expected["quick"]``)
    lets a smoke test through the quick check."""
    expected = json.loads(json.dumps(expected or {}))        # tuples as lists, as the file has them
    problem = schema_problem(result, result_schema(expected.get("experiment", result.get("experiment")))
                             if schema is None else schema)
    if problem:
        return problem
    if quick_ok is None:
        quick_ok = expected.get("quick", False)
    if result.get("quick") is True and not quick_ok:
        return Rejection("quick", "the file is a --quick smoke test; the request is a real run")
    differences = [difference for difference in _differences(result, expected)
                   if not (quick_ok and difference[0] == "quick")]
    if differences:
        return Rejection("recipe", "; ".join(f"{key}={have!r} in the file, expected {want!r}"
                                             for key, have, want in differences[:3]))
    return None


def set_aside(path, rejection: Rejection) -> pathlib.Path | None:
    """Move the rejected result ``path`` to ``<path>.rejected-<kind>`` (``-2``, ``-3``, ... when taken) and return
    the new name; None when there is nothing to move (missing, or moved meanwhile by another process). Never
    deletes: the file stays for inspection."""
    path = pathlib.Path(path)
    if rejection.kind == "missing":
        return None
    for number in itertools.count(1):
        target = path.with_name(f"{path.name}.rejected-{rejection.kind}" + (f"-{number}" if number > 1 else ""))
        if target.exists() or target.is_symlink():
            continue
        try:
            # a rename, never a delete: at worst, a file another process has just written is set aside with it.
            # (rename would replace an existing target: the check above keeps earlier set-aside files.)
            os.rename(path, target)
        except FileNotFoundError:       # another process of the sweep set it aside first
            return None
        return target


# the temporary files of write_result: its own names, and "<name>.json.tmp" of the code before it (no pid)
RESULT_TEMP_NAME = re.compile(r"^(?:\.(?P<target>.+)\.(?P<pid>\d+)\.[0-9a-f]{16}|(?P<legacy>.+\.json))\.tmp$")


def remove_stale_temp_files(folder) -> list:
    """Remove the temporary files that killed writers of results left in ``folder``
    (:func:`minilib.tempfiles.remove_stale`: owner gone, or untouched for an hour); returns the removed paths."""
    return remove_stale(folder, RESULT_TEMP_NAME)


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


def load_result_file(path, expected: dict | None = None, schema: dict | None = None, hint: str = "") -> dict:
    """The result in ``path`` after the checks of :func:`check_result` but the quick one (the caller decides what
    to do with a smoke test). A missing file raises ``FileNotFoundError``; any other problem
    :class:`ResultFileError` naming the file, what is wrong and ``hint``."""
    result = parse_result(path)
    if isinstance(result, Rejection) and result.kind == "missing":
        raise FileNotFoundError(f"result file {path} not found" + (f"; {hint}" if hint else ""))
    problem = result if isinstance(result, Rejection) else result_problem(result, expected, schema, quick_ok=True)
    if problem is not None:
        raise ResultFileError(path, problem, hint)
    return result


def read_result(path) -> dict:
    """Load a result file; a bare relative name such as ``"bench_conv.json"`` is looked up in :data:`RESULTS_DIR`.

    A file that is not a JSON object, or (for a file of a ``python -m minilib.reproduce`` command) lacks a key of
    its :data:`SCHEMAS`, raises :class:`ResultFileError` naming it; a ``--quick`` smoke-test file is returned with a
    :class:`QuickResultWarning` naming it (its numbers are not the real run's)."""
    path = pathlib.Path(path)
    if not path.is_absolute() and not path.exists():
        path = RESULTS_DIR / path
    if not path.is_file():
        raise FileNotFoundError(f"result file {path} not found; the command that writes it is named in the book chapter")
    result = parse_result(path)
    if not isinstance(result, Rejection) and result.get("experiment") in SCHEMAS:    # a command's file
        result = result_problem(result, quick_ok=True) or result
    if isinstance(result, Rejection):
        raise ResultFileError(path, result, "The command that writes it is named in the book chapter")
    if result.get("quick") is True:
        warn_quick([path])
    return result


class QuickResultWarning(UserWarning):
    """A ``--quick`` smoke-test result was met where real results are read."""


def warn_quick(names, what: str = "read") -> None:
    """Warn that the smoke-test results ``names`` (files, or runs and seeds) were ``what`` (e.g. "left out")."""
    names = [str(name) for name in names]
    if names:
        warnings.warn(f"{len(names)} --quick smoke-test result(s) {what}: {', '.join(names)}; their numbers are "
                      f"not real runs' (remove the files, or make the runs without --quick)",
                      QuickResultWarning, stacklevel=3)
