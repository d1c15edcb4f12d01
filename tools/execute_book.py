"""Execute the book's notebooks in parallel into Jupyter Book's execution cache, before ``jupyter-book build``.

Jupyter Book executes the notebooks one after another. The chapters that train NumPy networks are made of many small
matrix products, which two BLAS threads speed up little, so two notebooks with one thread each use two cores better
than one notebook with two. This runs every ``_toc.yml`` notebook that has no cached execution in ``--jobs``
worker processes, each kernel limited to one BLAS/torch thread, the way myst-nb itself does
(:func:`jupyter_cache.executors.utils.single_nb_execution` in the notebook's folder, ``_config.yml``'s timeout, no
errors allowed), and stores the result in the same cache (``_build/.jupyter_cache``), where the build then finds it
by the notebook's code.

A notebook that fails is not cached: the build executes it again and reports the error there, with the usual
traceback. ``make book`` calls this first; on a cached rebuild it finds nothing to do.

    python -m tools.execute_book [--jobs 2] [--cache _build/.jupyter_cache]
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import pathlib
import sys
import time

import nbformat
import yaml

from .book_pages import ROOT, book_pages

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


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


def _execute(job) -> tuple:
    """Worker: execute one notebook and cache it; ``(path, seconds, error text or None)``."""
    path, cache_dir, timeout = job
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn
    from jupyter_cache.executors.utils import single_nb_execution

    notebook = nbformat.read(path, as_version=4)
    result = single_nb_execution(notebook, cwd=str(pathlib.Path(path).parent), timeout=timeout, allow_errors=False,
                                 meta_override=True)
    if result.err is not None:
        return str(path), result.time, f"{type(result.err).__name__}: {result.err}"
    get_cache(cache_dir).cache_notebook_bundle(
        CacheBundleIn(notebook, str(path), data={"execution_seconds": result.time}), check_validity=False,
        overwrite=True)
    return str(path), result.time, None


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
    failed = []
    with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
        # chunksize 1: a worker takes the next notebook when it is free, so long chapters do not queue
        for path, seconds, error in pool.imap_unordered(_execute, [(p, args.cache, timeout) for p in notebooks],
                                                        chunksize=1):
            name = pathlib.Path(path).relative_to(ROOT)
            print(f"  {name}: {'failed, ' + error if error else 'executed'} in {seconds:.0f} s", flush=True)
            if error:
                failed.append(name)
    print(f"execute_book: {time.perf_counter() - start:.0f} s"
          + (f"; {len(failed)} failed and will be executed again by the build" if failed else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
