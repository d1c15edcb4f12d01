"""Execute the book's notebooks in parallel into Jupyter Book's execution cache, before ``jupyter-book build``.

Jupyter Book executes the notebooks one after another. The chapters that train NumPy networks are made of many small
matrix products, which two BLAS threads speed up little, so two notebooks with one thread each use two cores better
than one notebook with two. This runs every ``_toc.yml`` notebook that has no cached execution in ``--jobs``
worker processes, each kernel limited to one BLAS/torch thread, the way myst-nb itself does
(:func:`jupyter_cache.executors.utils.single_nb_execution` in the notebook's folder, ``_config.yml``'s timeout, no
errors allowed), and stores the result in the same cache (``_build/.jupyter_cache``), where the build then finds it
by the notebook's code.

A notebook that fails is not cached. After every notebook has run, each failure is reported in a few lines (the
notebook, the failing cell's index and first lines, the exception's type and message) and the command exits 1, so
``make book`` stops there instead of letting the build execute the notebook again and end in Sphinx's traceback.
``make book`` calls this first; on a cached rebuild it finds nothing to do.

    python -m tools.execute_book [--jobs 2] [--cache _build/.jupyter_cache]
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import pathlib
import re
import sys
import time

import nbformat
import yaml

from .book_pages import ROOT, book_pages

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")     # IPython colours its ename and traceback
SOURCE_LINES = 2            # lines of the failing cell shown in the report
MESSAGE_CHARS = 300         # the exception's message is cut here: the report is a pointer, not the traceback


def execution_timeout(root=ROOT) -> int:
    """``execute: timeout`` of ``_config.yml``: the seconds a cell may take (Jupyter Book's default 30)."""
    config = yaml.safe_load((pathlib.Path(root) / "_config.yml").read_text())
    return int((config.get("execute") or {}).get("timeout", 30))


def uncached_notebooks(cache_dir, root=ROOT) -> list:
    """The ``_toc.yml`` notebooks whose current code has no execution in the cache at ``cache_dir``."""
    from jupyter_cache import get_cache

    cache = get_cache(cache_dir)
    missing = []
    for page in book_pages(root):
        if page.is_notebook:
            try:
                cache.match_cache_notebook(nbformat.read(page.source, as_version=4))
            except KeyError:
                missing.append(page.source)
    return missing


def failed_cell(notebook) -> int | None:
    """Index in ``notebook.cells`` of the cell that stopped an execution, or None if none can be told.

    A cell that raised holds an ``error`` output; a cell cut off by the timeout or a dying kernel holds none, but it
    is the last one that was given an execution count (the notebooks are stored without outputs, so every count
    comes from this execution).
    """
    started = None
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        if any(output.get("output_type") == "error" for output in cell.get("outputs", [])):
            return index
        if cell.get("execution_count") is not None:
            started = index
    return started


def error_name_and_message(error) -> tuple:
    """``(ename, evalue)`` of a failed execution: the kernel's own for nbclient's ``CellExecutionError``, else the
    exception's type and the first line of its text (a timeout's text goes on to repeat the cell)."""
    if hasattr(error, "ename"):
        return error.ename, error.evalue
    lines = [line for line in str(error).splitlines() if line.strip()]
    return type(error).__name__, lines[0] if lines else ""


def format_failure(path, cell_index, source, ename, evalue) -> str:
    """A few lines for one failed notebook: where, the failing cell's first lines, and ``ename: evalue``.

    ``cell_index`` counts every cell of the notebook from 0, markdown included (None: the cell is unknown).
    Colour codes are dropped and the message is put on one line and shortened, so that the report stays a few
    lines however long the kernel's traceback.
    """
    where = f"cell {cell_index}" if cell_index is not None else "cell unknown"
    lines = [f"{path}, {where}:"]
    code = [line.rstrip() for line in ANSI_ESCAPE.sub("", source or "").strip().splitlines()]
    lines += [f"    {line}" for line in code[:SOURCE_LINES]]
    if len(code) > SOURCE_LINES:
        lines.append("    ...")
    message = " ".join(ANSI_ESCAPE.sub("", str(evalue)).split())
    if len(message) > MESSAGE_CHARS:
        message = message[:MESSAGE_CHARS - 3] + "..."
    name = ANSI_ESCAPE.sub("", str(ename)).strip() or "Error"
    lines.append(f"  {name}: {message}" if message else f"  {name}")
    return "\n".join(lines)


def _shown(path) -> str:
    """The path as the reader types it: relative to the repository when inside it."""
    path = pathlib.Path(path)
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def ipc_kernel_manager():
    """A jupyter_client KernelManager class whose kernels talk over local IPC sockets in Jupyter's runtime folder.

    Over TCP without CurveZMQ keys, ipykernel warns at every start that the channel is unencrypted (ten lines in a
    build of the book); over IPC the channel is a socket file only this user can open, and there is nothing to warn.
    """
    import uuid

    from jupyter_client.manager import KernelManager
    from jupyter_core.paths import jupyter_runtime_dir
    from traitlets import default

    class IPCKernelManager(KernelManager):
        @default("transport")
        def _default_transport(self):
            return "ipc"

        @default("ip")
        def _default_ip(self):
            # the socket files' prefix: in the runtime folder (removed at shutdown), not in the notebook's folder
            folder = pathlib.Path(jupyter_runtime_dir())
            folder.mkdir(parents=True, exist_ok=True)
            return str(folder / f"kernel-{uuid.uuid4().hex[:12]}-ipc")

    return IPCKernelManager


def _execute(job) -> tuple:
    """Worker: execute one notebook and cache it; ``(path, seconds, failure report or None)``."""
    path, cache_dir, timeout = job
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn
    from jupyter_cache.executors.utils import single_nb_execution

    notebook = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    try:
        result = single_nb_execution(notebook, cwd=str(pathlib.Path(path).parent), timeout=timeout,
                                     allow_errors=False, meta_override=True,
                                     kernel_manager_class=ipc_kernel_manager())
        error, seconds = result.err, result.time
    except Exception as raised:       # a kernel that dies or does not start: reported like a failing cell
        error, seconds = raised, time.perf_counter() - start
    if error is not None:
        index = failed_cell(notebook)
        source = notebook.cells[index].source if index is not None else ""
        return str(path), seconds, format_failure(_shown(path), index, source, *error_name_and_message(error))
    get_cache(cache_dir).cache_notebook_bundle(
        CacheBundleIn(notebook, str(path), data={"execution_seconds": seconds}), check_validity=False,
        overwrite=True)
    return str(path), seconds, None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2, help="notebooks executed at once (default 2)")
    parser.add_argument("--cache", default=str(ROOT / "_build" / ".jupyter_cache"),
                        help="Jupyter Book's execution cache (default _build/.jupyter_cache)")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, got {args.jobs}")

    notebooks = uncached_notebooks(args.cache)
    if not notebooks:
        print("execute_book: every notebook has a cached execution")
        return 0
    # one thread per kernel: the kernels inherit this environment, and `jobs` of them share the cores
    os.environ.update({name: "1" for name in THREAD_VARIABLES})
    timeout = execution_timeout()
    print(f"execute_book: {len(notebooks)} notebook(s), {args.jobs} at a time")
    start = time.perf_counter()
    failures = []
    with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
        # chunksize 1: a worker takes the next notebook when it is free, so long chapters do not queue
        for path, seconds, error in pool.imap_unordered(_execute, [(p, args.cache, timeout) for p in notebooks],
                                                        chunksize=1):
            print(f"  {_shown(path)}: {'failed' if error else 'executed'} in {seconds:.0f} s", flush=True)
            if error:
                failures.append(error)
    print(f"execute_book: {time.perf_counter() - start:.0f} s", flush=True)
    if not failures:
        return 0
    # last in the output, so that it is what `make book` ends with
    print(f"\nexecute_book: {len(failures)} notebook(s) failed; the book is not built\n\n" + "\n\n".join(failures),
          file=sys.stderr, flush=True)
    return 1


if __name__ == "__main__":
    sys.exit(main())
