"""What every ``python -m minilib.reproduce <experiment>`` command shares: the options that make a sweep
incremental (``--force``, ``--list``, ``--quick``, ``--out-dir``, ``--threads``), the loop that trains the
runs that are not done and writes each one as soon as it is done, and the software versions recorded with a result.

A run is done when its file counts as done for the request (:func:`minilib.results.check_result`: it parses, has
the experiment's schema, is no ``--quick`` smoke test unless the request is one, and holds the values of the run as
planned, which each experiment's ``expected_result(run, seed, quick)`` gives). A real result also stands in for a
``--quick`` request. Any other file is listed as todo with the reason, set aside as ``<file>.rejected-<why>`` (never
deleted) and made again. Temporary files of writers that were killed are removed when a sweep starts.
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import pathlib
import platform
import sys
import tempfile
from collections.abc import Callable

import numpy as np

from .. import results
from ..data.batches import minibatches
from ..results import RESULTS_DIR, Rejection, check_result, remove_stale_temp_files, set_aside, write_result


@dataclasses.dataclass(frozen=True)
class Job:
    """One run and seed: ``label`` names it in messages, ``path`` is its result file; ``expected`` holds the values
    its file must have to count as done (:func:`minilib.results.check_result`), ``stand_in`` those of a real run that
    also counts (for a ``--quick`` request; None otherwise)."""
    label: str
    seed: int
    path: pathlib.Path
    run: object = None          # the experiment's own description of the run, passed back to its trainer
    expected: dict | None = dataclasses.field(default=None, compare=False)
    stand_in: dict | None = dataclasses.field(default=None, compare=False)


def plan_runs(runs, seeds, default_seeds) -> list:
    """``[(run, seeds), ...]`` for runs with a ``name``: each run once (the first time it is named), with ``seeds``
    or, without them, ``default_seeds(run)``."""
    planned, seen = [], set()
    for run in runs:
        if run.name not in seen:
            seen.add(run.name)
            planned.append((run, tuple(seeds) if seeds else tuple(default_seeds(run))))
    return planned


def make_jobs(planned: list, out_dir, expect: Callable[..., dict] | None = None, quick: bool = False) -> list:
    """One :class:`Job` per run and seed of ``planned``; its result file is ``<out_dir>/<run name>_seed<seed>.json``.

    ``expect(run, seed, quick)``: the values a result of the run must hold (the experiment's ``expected_result``);
    without it, only the seed (and the schema its experiment key names) is checked."""
    def expected(run, seed, quick):
        return expect(run, seed, quick) if expect is not None else {"seed": seed, **({"quick": True} if quick else {})}

    return [Job(f"{run.name} seed {seed}", seed, pathlib.Path(out_dir) / f"{run.name}_seed{seed}.json", run,
                expected(run, seed, quick), expected(run, seed, False) if quick else None)
            for run, seeds in planned for seed in seeds]


def result_status(path, expected: dict | None, stand_in: dict | None = None) -> Rejection | None:
    """None when ``path`` counts as done for a request expecting ``expected`` (or, where given, ``stand_in``: a
    real run stands in for a smoke test); else the :class:`~minilib.results.Rejection` against ``expected``."""
    problem = check_result(path, expected)
    if problem is not None and problem.kind == "recipe" and stand_in is not None \
            and check_result(path, stand_in) is None:
        return None
    return problem


def job_status(job: Job) -> Rejection | None:
    """:func:`result_status` of the job's file."""
    return result_status(job.path, job.expected, job.stand_in)


def set_aside_rejected(path, problem: Rejection | None, label: str) -> None:
    """Move a rejected result out of the way (``<file>.rejected-<kind>``), saying so on stderr."""
    if problem is None:
        return
    moved = set_aside(path, problem)
    if moved is not None:
        log(f"{label}: {path} does not count ({problem}); kept as {moved.name}")


def epoch_line(label: str, entry: dict, epochs: int) -> str:
    """The line a classification run prints after each epoch (beside its progress bar); ``entry`` is one epoch of
    :func:`minilib.training.fit`'s history."""
    penalty = entry["penalty"]
    return (f"{label} epoch {entry['epoch']}/{epochs}: lr {entry['lr']:.4g}  "
            f"train loss {entry['train_loss']:.4f}" + ("" if penalty is None else f"  penalty {penalty:.4f}")
            + f"  val acc {entry['val_accuracy']:.4f}  {entry['seconds']:.1f} s")


def history_lists(entries: list, keys: tuple, renamed: dict | None = None) -> dict:
    """The training loop's per-epoch ``entries`` as a result's history: ``{key: [one value per epoch]}`` for
    ``keys``, each read from the entry's ``renamed.get(key, key)``."""
    renamed = renamed or {}
    return {key: [entry[renamed.get(key, key)] for entry in entries] for key in keys}


def shuffled_batches(x: np.ndarray, y: np.ndarray, batch_size: int, rng: np.random.Generator):
    """One epoch of ``(x, y)`` in mini-batches shuffled by ``rng`` (:func:`minilib.data.batches.minibatches`)."""
    for idx in minibatches(len(x), batch_size, rng):
        yield x[idx], y[idx]


def add_common_arguments(parser: argparse.ArgumentParser, experiment: str, quick_help: str) -> None:
    parser.add_argument("--force", action="store_true", help="retrain runs whose result file counts as done")
    parser.add_argument("--quick", action="store_true", help=quick_help + ", written to --out-dir or a new "
                        "temporary folder")
    parser.add_argument("--out-dir", type=pathlib.Path,
                        help=f"where the JSON files go (default: {RESULTS_DIR / experiment})")
    parser.add_argument("--threads", type=int, default=2,
                        help="torch.set_num_threads for the torch backend (default 2)")
    parser.add_argument("--list", action="store_true", help="print the planned runs and which are done, then exit")


def output_dir(args: argparse.Namespace, experiment: str) -> pathlib.Path:
    """``--out-dir``; else a new temporary folder for ``--quick`` (smoke runs never land in results/);
    else ``results/<experiment>``."""
    if args.out_dir is not None:
        return args.out_dir
    if args.quick:
        return pathlib.Path(tempfile.mkdtemp(prefix=f"minilib-reproduce-{experiment}-"))
    return RESULTS_DIR / experiment


def execute(jobs: list, args: argparse.Namespace, train: Callable[[Job], dict],
            describe: Callable[[dict], str]) -> int:
    """Train every job that is not done (all with ``--force``), writing each result as it finishes; ``--list`` only
    prints the plan, and why each todo file does not count. A rejected file is set aside before its run is made
    again (:func:`set_aside_rejected`). ``train(job)`` returns the payload, ``describe(payload)`` a short summary."""
    status = [job_status(job) for job in jobs]
    todo = [job for job, problem in zip(jobs, status) if args.force or problem is not None]
    if args.list:
        for job, problem in zip(jobs, status):
            why = "" if problem is None or problem.kind == "missing" else f"  ({problem})"
            print(f"{'done' if problem is None else 'todo'}  {job.label:<40} {job.path}{why}")
        print(f"{len(jobs) - len(todo)} of {len(jobs)} done")
        return 0
    for folder in dict.fromkeys(job.path.parent for job in jobs):
        for stale in remove_stale_temp_files(folder):
            log(f"removed {stale}: the temporary file of a writer that is gone")
    for job in jobs:
        if job not in todo:
            print(f"skip {job.label}: {job.path} exists (--force retrains)")
    if todo and getattr(args, "backend", "torch") == "torch":
        from ..training import set_threads

        set_threads(args.threads)
    for job in todo:
        problem = job_status(job)
        if not args.force and problem is None:      # written meanwhile by another process of the same sweep
            print(f"skip {job.label}: {job.path} was written meanwhile")
            continue
        set_aside_rejected(job.path, problem, job.label)
        payload = train(job)
        write_result(job.path, payload, seed=job.seed)
        print(f"{job.label}: {describe(payload)} -> {job.path}")
    return 0


def run_experiment(args: argparse.Namespace, experiment: str, make_plan: Callable[[], list],
                   load_data: Callable[[], object], train_run: Callable[..., dict],
                   describe: Callable[[dict], str], expect: Callable[..., dict] | None = None) -> int:
    """The body of every command's ``main``: plan the runs (a ValueError, e.g. a bad run name, exits 2 with its
    message), then :func:`execute` them, loading the data once and only if a run is trained.
    ``train_run(run, seed, data, quick=...)`` returns a run's payload; ``expect(run, seed, quick)`` the values its
    file must hold to count as done (:func:`make_jobs`)."""
    out_dir = output_dir(args, experiment)
    results.pin_revision()
    try:
        planned = make_plan()
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    data = functools.cache(load_data)
    return execute(make_jobs(planned, out_dir, expect, args.quick), args,
                   lambda job: train_run(job.run, job.seed, data(), quick=args.quick), describe)


def versions() -> dict:
    """Python, NumPy and (if installed) torch versions, recorded with every result."""
    found = {"python": platform.python_version(), "numpy": np.__version__, "torch": None}
    try:
        from ..training import torch_version
    except ImportError:                 # no torch installed
        return found
    return {**found, "torch": torch_version()}


def log(message: str) -> None:
    """Progress lines go to stderr, beside the tqdm bars; stdout keeps one line per finished run."""
    print(message, file=sys.stderr)
