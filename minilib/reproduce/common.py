"""What every ``python -m minilib.reproduce <experiment>`` command shares: the options that make a sweep
incremental (``--force``, ``--list``, ``--quick``, ``--out-dir``, ``--threads``), the loop that trains the
runs whose result file is missing and writes each one as soon as it is done, and the software versions
recorded with a result.
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
from ..results import RESULTS_DIR, write_result


@dataclasses.dataclass(frozen=True)
class Job:
    """One run and seed: ``label`` names it in messages, ``path`` is its result file."""
    label: str
    seed: int
    path: pathlib.Path
    run: object = None          # the experiment's own description of the run, passed back to its trainer


def plan_runs(runs, seeds, default_seeds) -> list:
    """``[(run, seeds), ...]`` for runs with a ``name``: each run once (the first time it is named), with ``seeds``
    or, without them, ``default_seeds(run)``."""
    planned, seen = [], set()
    for run in runs:
        if run.name not in seen:
            seen.add(run.name)
            planned.append((run, tuple(seeds) if seeds else tuple(default_seeds(run))))
    return planned


def make_jobs(planned: list, out_dir) -> list:
    """One :class:`Job` per run and seed of ``planned``; its result file is ``<out_dir>/<run name>_seed<seed>.json``."""
    return [Job(f"{run.name} seed {seed}", seed, pathlib.Path(out_dir) / f"{run.name}_seed{seed}.json", run)
            for run, seeds in planned for seed in seeds]


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
    parser.add_argument("--force", action="store_true", help="retrain runs whose result file exists")
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
    """Train every job whose file is missing (all with ``--force``), writing each result as it finishes;
    ``--list`` only prints the plan. ``train(job)`` returns the payload, ``describe(payload)`` a short summary."""
    todo = [job for job in jobs if args.force or not job.path.exists()]
    if args.list:
        for job in jobs:
            print(f"{'done' if job.path.exists() else 'todo'}  {job.label:<40} {job.path}")
        print(f"{len(jobs) - len(todo)} of {len(jobs)} done")
        return 0
    for job in jobs:
        if job not in todo:
            print(f"skip {job.label}: {job.path} exists (--force retrains)")
    if todo and getattr(args, "backend", "torch") == "torch":
        from ..training import set_threads

        set_threads(args.threads)
    for job in todo:
        if not args.force and job.path.exists():        # written meanwhile by another process of the same sweep
            print(f"skip {job.label}: {job.path} was written meanwhile")
            continue
        payload = train(job)
        write_result(job.path, payload, seed=job.seed)
        print(f"{job.label}: {describe(payload)} -> {job.path}")
    return 0


def run_experiment(args: argparse.Namespace, experiment: str, make_plan: Callable[[], list],
                   load_data: Callable[[], object], train_run: Callable[..., dict],
                   describe: Callable[[dict], str]) -> int:
    """The body of every command's ``main``: plan the runs (a ValueError, e.g. a bad run name, exits 2 with its
    message), then :func:`execute` them, loading the data once and only if a run is trained.
    ``train_run(run, seed, data, quick=...)`` returns a run's payload."""
    out_dir = output_dir(args, experiment)
    results.pin_revision()
    try:
        planned = make_plan()
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    data = functools.cache(load_data)
    return execute(make_jobs(planned, out_dir), args,
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
