"""Read the reproduction results and set them beside the papers' printed numbers (:mod:`minilib.reports.papers`).

The chapters that show the MNIST reproduction call only these functions: they read
``results/<experiment>/*.json`` (written by ``python -m minilib.reproduce <experiment>``), group the
files of one run over its seeds, and build the side-by-side rows. Costs (weights, memory, FLOPs,
32-bit parameters, multiplications) always come from :func:`minilib.accounting.summarize` of the
model the row names, so a row exists even before its run has been trained; its accuracy is then
``None`` and prints as "not run".
"""
from __future__ import annotations

import dataclasses
import math
import pathlib

import numpy as np

from ..accounting import format_millions, format_weights, summarize
from ..models import lenet
from ..results import RESULTS_DIR, SCHEMAS, Rejection, ResultFileError, load_result_file, warn_quick
from .papers import MVNET_TABLE1, VERSATILE_TABLE2, VERSATILE_TABLE3
from .tables import Table, format_rows  # noqa: F401  (the chapters call them as runs.Table, runs.format_rows)


def load_results(experiment: str = "mnist", directory=None, missing_ok: bool = False,
                 include_quick: bool = False) -> list:
    """Every result file of ``experiment`` (``results/<experiment>/*.json``, or ``directory``), sorted by name.

    A missing folder raises ``FileNotFoundError`` naming the command that makes it, or with ``missing_ok``
    gives ``[]`` (a chapter whose runs are not done yet still shows its plan). A file that is damaged (empty, not
    JSON), lacks a key of the experiment's schema (:data:`minilib.results.SCHEMAS`), or whose name is not
    ``<run>_seed<seed>.json`` of what it holds raises :class:`minilib.results.ResultFileError` naming the file and
    what is wrong. ``--quick`` smoke-test files are left out with a :class:`minilib.results.QuickResultWarning`
    naming them (``include_quick`` keeps them): a report never mixes them with real runs, and never silently."""
    directory = pathlib.Path(directory) if directory is not None else RESULTS_DIR / experiment
    if not directory.is_dir():
        if missing_ok:
            return []
        raise FileNotFoundError(f"no results folder {directory}: run `python -m minilib.reproduce {experiment}` "
                                f"to make the result files")
    expected = {"experiment": experiment} if experiment in SCHEMAS else {}
    hint = (f"`python -m minilib.reproduce {experiment}` sets such a file aside (as <file>.rejected-<why>) and "
            f"makes its run again; `--list` shows which")
    loaded, quick = [], []
    for path in sorted(directory.glob("*.json")):
        result = load_result_file(path, expected, hint=hint)
        named = f"{result.get('run')}_seed{result['seed']}.json"
        if path.name != named:
            raise ResultFileError(path, Rejection("misnamed", f"it holds run {result.get('run')!r} seed "
                                                            f"{result['seed']}, whose file is {named}"), hint)
        if result.get("quick") is True and not include_quick:
            quick.append(path)
            continue
        loaded.append(result)
    warn_quick(quick, "left out")
    return loaded


@dataclasses.dataclass(frozen=True)
class RunGroup:
    """All seeds of one run (same name, so the same model, λ, epochs and backend)."""
    results: tuple

    def __post_init__(self):
        names = {result["run"] for result in self.results}
        if len(names) != 1:
            raise ValueError(f"a RunGroup holds the seeds of one run, got runs {sorted(names)}")
        seeds = [result["seed"] for result in self.results]
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"run {names.pop()!r} has seed(s) twice: {seeds}")

    @property
    def first(self) -> dict:
        return self.results[0]

    @property
    def run(self) -> str:
        return self.first["run"]

    @property
    def seeds(self) -> list:
        return [result["seed"] for result in self.results]

    def values(self, value) -> np.ndarray:
        """``value(result)`` for every seed, e.g. ``group.values(lambda r: r["psnr"]["Set5"])``."""
        return np.array([value(result) for result in self.results], dtype=float)

    @property
    def accuracies(self) -> np.ndarray:
        """Test accuracy of every seed, in percent; NaN for a seed whose training diverged."""
        return self.values(lambda result: math.nan if result["test_accuracy"] is None
                           else 100.0 * result["test_accuracy"])

    @property
    def diverged(self) -> list:
        """``{"epoch", "batch", ...}`` of every seed whose loss stopped being finite (files written before runs
        could diverge have no such key: they did not)."""
        return [result["diverged"] for result in self.results if result.get("diverged")]

    @property
    def mean(self) -> float:
        return float(self.accuracies.mean())

    @property
    def std(self) -> float:
        """Sample standard deviation over seeds (ddof=1); NaN for a single seed."""
        return float(self.accuracies.std(ddof=1)) if len(self.results) > 1 else math.nan

    @property
    def epoch_seconds(self) -> float:
        return float(np.mean([result["epoch_seconds"] for result in self.results]))

    def history(self, key: str) -> np.ndarray:
        """``history[key]`` per epoch, one row per seed: shape (seeds, epochs)."""
        return np.array([result["history"][key] for result in self.results], dtype=float)

    def accuracy_text(self) -> str:
        """``"99.24 ± 0.03 (3 seeds)"`` or ``"99.08 (1 seed)"``, in percent; ``"diverged (epoch 2)"``."""
        if self.diverged:
            return "diverged (epoch " + ", ".join(str(where["epoch"]) for where in self.diverged) + ")"
        return spread_text(self.accuracies)


def spread_text(values) -> str:
    """Mean ± sample standard deviation over seeds, ``"99.24 ± 0.03 (3 seeds)"``, or ``"99.08 (1 seed)"``."""
    values = np.asarray(values, dtype=float)
    if len(values) == 1:
        return f"{values[0]:.2f} (1 seed)"
    return f"{values.mean():.2f} ± {values.std(ddof=1):.2f} ({len(values)} seeds)"


def group_results(results) -> dict:
    """``{run name: RunGroup}``, seeds sorted; quick smoke-test results are left out, with a
    :class:`minilib.results.QuickResultWarning` naming them."""
    by_run, quick = {}, []
    for result in results:
        if result.get("quick", False):
            quick.append(f"{result['run']} seed {result.get('seed')}")
        else:
            by_run.setdefault(result["run"], []).append(result)
    warn_quick(quick, "left out of the groups")
    return {run: RunGroup(tuple(sorted(group, key=lambda r: r["seed"]))) for run, group in sorted(by_run.items())}


def describe_runs(groups: dict, names, experiment: str = "mnist") -> Table:
    """What was run, one row per run: seeds, minutes per run (threads), git revisions and date; a run that
    has no result file yet says so, and the title gives the command that makes it. A
    :class:`~minilib.reports.tables.Table`: display it."""
    rows, missing = [], []
    for name in names:
        group = groups.get(name)
        if group is None:
            missing.append(name)
            rows.append({"run": name, "seeds": "not run yet", "minutes": "", "git": "", "date": ""})
            continue
        revisions = sorted({result["git_revision"][:8] for result in group.results})
        threads = "/".join(str(t) for t in sorted({result["threads"] for result in group.results}, key=str))
        minutes = np.mean(group.values(lambda result: result["wall_seconds"])) / 60
        rows.append({"run": name, "seeds": ", ".join(map(str, group.seeds)), "minutes": f"{minutes:.1f} ({threads})",
                     # several revisions: the first, and how many more (every file records its own)
                     "git": revisions[0] + (f" +{len(revisions) - 1}" if len(revisions) > 1 else ""),
                     "date": group.first["date"][:10]})
    title = "What was run"
    if missing:
        title += (f"; {len(missing)} run(s) not yet: python -m minilib.reproduce {experiment} --runs NAME"
                  + (" (--backend numpy for a -numpy run, without the suffix)" if any(n.endswith("-numpy")
                                                                                   for n in missing) else ""))
    # the backend is in the name (-numpy); threads go beside the minutes they explain
    return Table(rows, [("run", "run"), ("seeds", "seeds"), ("min/run (threads)", "minutes"), ("git", "git"),
                        ("date", "date")], title)


def paper_percent(text: str) -> float:
    """``"99.20%"`` -> 99.2."""
    return float(text.rstrip("%"))


def _ours(groups: dict, run: str):
    group = groups.get(run)
    return (None, "not run") if group is None else (group, group.accuracy_text())


def _gap(group, paper_accuracy: str):
    return None if group is None else group.mean - paper_percent(paper_accuracy)


def versatile_rows(groups: dict) -> list:
    """Versatile Tables 2 and 3: the paper's printed row and ours, per model (the baseline once)."""
    rows = []
    for model, paper in {**VERSATILE_TABLE2, **VERSATILE_TABLE3}.items():
        strings = summarize(lenet(model), (1, 28, 28)).paper_strings(like=paper)
        group, accuracy = _ours(groups, model)
        rows.append({"model": model, "table": 2 if model in VERSATILE_TABLE2 else 3,
                     "paper_weights": paper["weights"], "weights": strings["weights"],
                     "paper_memory": paper["memory"], "memory": strings["memory"],
                     "paper_flops": paper["flops"], "flops": strings["flops"],
                     "paper_accuracy": paper["accuracy"], "accuracy": accuracy,
                     "gap": _gap(group, paper["accuracy"]), "group": group})
    return rows


def mvnet_rows(groups: dict) -> list:
    """MVNet Table 1: #param (32-bit), #MUL (M) and accuracy, printed and ours, per model."""
    rows = []
    for model, paper in MVNET_TABLE1.items():
        summary = summarize(lenet(model), (1, 28, 28))
        group, accuracy = _ours(groups, model)
        rows.append({"model": model, "paper_params": paper["params"],
                     "params": format_weights(round(summary.params_32bit), 2),
                     "paper_muls": paper["muls"], "muls": format_millions(summary.flops),
                     "paper_accuracy": paper["accuracy"], "accuracy": accuracy,
                     "gap": _gap(group, paper["accuracy"]), "group": group})
    return rows


# the columns of :func:`cifar_rows` as two tables narrow enough for the page: size and accuracy, and CPU time
CIFAR_ACCURACY_COLUMNS = [("run", "run"), ("params", "params"), ("% params", "params_pct"), ("% mults", "mults_pct"),
                          ("test accuracy %", "accuracy"), ("vs baseline", "delta")]
CIFAR_TIME_COLUMNS = [("run", "run"), ("ms/image, batch 1", "latency_1"), ("ms/image, batch 128", "latency_128"),
                      ("NumPy layer / conv", "numpy_ratio")]


# the times of one network: torch ms per image at batch 1 and 128, NumPy method / standard convolution; read from
# its entry in the file of `python -m minilib.reproduce compare-timing` (TIMED), or from a run's own "latency"
# block, measured after it trained (RECORDED)
TIMED = {"latency_1": lambda entry: entry["torch_per_image_ms"]["batch_1"],
         "latency_128": lambda entry: entry["torch_per_image_ms"]["batch_128"],
         "numpy_ratio": lambda entry: entry["numpy_ratio"]}
RECORDED = {"latency_1": lambda result: result["latency"]["torch"]["batch_1"]["per_image_ms"],
            "latency_128": lambda result: result["latency"]["torch"]["batch_128"]["per_image_ms"],
            "numpy_ratio": lambda result: result["latency"]["numpy_layer"]["ratio"]}


def network_times(group, timed: dict | None = None) -> dict:
    """``{"latency_1", "latency_128", "numpy_ratio"}`` of one network: from ``timed``, its entry in the
    ``compare-timing`` file, when given; else the medians over the runs of ``group`` that recorded a latency
    (None when none did, or ``group`` is None)."""
    if timed is not None:
        return {key: float(value(timed)) for key, value in TIMED.items()}
    measured = [] if group is None else [result for result in group.results if result.get("latency")]
    return {key: float(np.median([value(result) for result in measured])) if measured else None
            for key, value in RECORDED.items()}


def cifar_rows(groups: dict, runs, timing: dict | None = None) -> list:
    """One row per CIFAR-10 run: parameters and multiplications (share of the baseline's), test accuracy over
    seeds and its difference to the baseline's mean, latency of the torch model (ms per image at batch 1 and
    128) and the NumPy layer's time ratio to the standard convolution. The times come from ``timing`` (the file of
    ``python -m minilib.reproduce compare-timing``, every network timed in one process) when given, else they are
    the medians over seeds of what each run recorded."""
    base = groups.get("baseline")
    rows = []
    for run in runs:
        group = groups.get(run)
        if group is None:
            rows.append({"run": run, "method": "", "params": "", "params_pct": "", "mults_pct": "",
                         "accuracy": "not run", "delta": None, "latency_1": "", "latency_128": "",
                         "numpy_ratio": "", "group": None})
            continue
        first = group.first

        times = network_times(group, None if timing is None else timing["cifar10_networks"][run])
        rows.append({
            "run": run, "method": first["method"], "params": f"{first['cost']['params']:,}",
            "params_pct": f"{100 * first['compression']['params_32bit']:.1f}",
            "mults_pct": f"{100 * first['compression']['flops']:.1f}",
            "accuracy": group.accuracy_text(), "delta": None if base is None else group.mean - base.mean,
            **{key: f"{value:.2f}" for key, value in times.items()}, "group": group})
    return rows


def sr_rows(groups: dict, runs, sets=("Set5", "Set14")) -> list:
    """One row per super-resolution run: m, s, sharing, parameters of one residual block (32-bit, masks as 1/32)
    and the block's and whole network's share of the baseline's (%), PSNR-Y per test set over seeds and its
    difference to the baseline's mean (dB)."""
    base = groups.get("baseline")
    rows = []
    for run in runs:
        group = groups.get(run)
        row = {"run": run, "group": group}
        if group is None:
            rows.append({**row, "m": "", "s": "", "shared": "", "block_params": "", "block_pct": "", "total_pct": "",
                         **{name: "not run" for name in sets}, **{f"delta_{name}": None for name in sets}})
            continue
        first = group.first
        row.update({"m": first["n_basis"] or "", "s": first["splits"] or first["s"] or "",
                    "shared": "yes" if first["share_basis"] else "",
                    "block_params": f"{first['cost']['block']['params_32bit']:,.0f}",
                    "block_pct": f"{100 * first['compression']['block']:.1f}",
                    "total_pct": f"{100 * first['compression']['total']:.1f}"})
        for name in sets:
            psnr = group.values(lambda result, name=name: result["psnr"][name])
            row[name] = spread_text(psnr)
            row[f"delta_{name}"] = None if base is None else psnr.mean() - base.values(
                lambda result, name=name: result["psnr"][name]).mean()
        rows.append(row)
    return rows


def cost_points(groups: dict, runs) -> list:
    """``[(run, params_32bit, flops, conv_weights, mean accuracy, std), ...]`` for the trained ``runs``."""
    points = []
    for run in runs:
        if run in groups:
            group = groups[run]
            cost = group.first["cost"]
            points.append((run, cost["params_32bit"], cost["flops"], cost["conv_weights"], group.mean, group.std))
    return points


def fig2a_points(groups: dict, s_values) -> dict:
    """Fig. 2(a): ``{s: (params_32bit, mean test accuracy)}`` of MVNet-A for the trained ``s_values``."""
    return {s: (groups[f"mvnet-a-{s}"].first["cost"]["params_32bit"], groups[f"mvnet-a-{s}"].mean)
            for s in s_values if f"mvnet-a-{s}" in groups}


def fig2b_curves(groups: dict, s_values, lambdas, epochs: int) -> dict:
    """Fig. 2(b): ``{s: [test accuracy for each λ, NaN where not run]}`` of the ``-lam<λ>-e<epochs>`` runs."""
    def accuracy(s, lam):
        group = groups.get(f"mvnet-a-{s}-lam{lam:g}-e{epochs}")
        return math.nan if group is None else group.mean

    return {s: [accuracy(s, lam) for lam in lambdas] for s in s_values}


def pooled_seed_std(groups: dict) -> float:
    """Seed-to-seed standard deviation pooled over every run with several finished seeds (percentage points):
    sqrt(sum (n_i - 1) s_i^2 / sum (n_i - 1)), n_i counting the seeds that did not diverge (a diverged seed has no
    accuracy); NaN when no run has two."""
    finished = [group.accuracies[np.isfinite(group.accuracies)] for group in groups.values()]
    seeded = [accuracies for accuracies in finished if len(accuracies) > 1]
    dof = sum(len(accuracies) - 1 for accuracies in seeded)
    return math.sqrt(sum((len(a) - 1) * a.std(ddof=1) ** 2 for a in seeded) / dof) if dof else math.nan


def difference(groups: dict, a: str, b: str, *, sigma: float) -> tuple:
    """``(mean(a) - mean(b), σ sqrt(1/n_a + 1/n_b))``: the difference of two runs' mean test accuracies in points and
    its standard error, with σ the pooled seed standard deviation (:func:`pooled_seed_std`)."""
    ga, gb = groups[a], groups[b]
    return ga.mean - gb.mean, sigma * math.sqrt(1 / len(ga.seeds) + 1 / len(gb.seeds))


def gap_verdicts(rows: list, sigma: float) -> str:
    """Each trained row's gap to the paper in units of the training noise sigma*sqrt(1 + 1/n) of a mean over n
    seeds against one printed run; within noise when at most 2 of them."""
    lines = []
    for row in rows:
        if row["gap"] is not None:
            scale = sigma * math.sqrt(1 + 1 / len(row["group"].seeds))
            verdict = "within training noise" if abs(row["gap"]) <= 2 * scale else "larger than training noise"
            lines.append(f"{row['model']:<16} gap {row['gap']:+.2f} = {row['gap'] / scale:+.1f} x {scale:.3f}  "
                         f"{verdict}")
    return "\n".join(lines)


def binomial_std(accuracy_percent: float, n_test: int) -> float:
    """Standard deviation in percentage points of an accuracy measured on ``n_test`` independent images."""
    p = accuracy_percent / 100
    return 100 * math.sqrt(p * (1 - p) / n_test)


__all__ = ["CIFAR_ACCURACY_COLUMNS", "CIFAR_TIME_COLUMNS", "RunGroup", "Table", "binomial_std", "cifar_rows",
           "cost_points", "describe_runs", "fig2a_points", "fig2b_curves", "format_rows", "gap_verdicts",
           "group_results", "load_results", "mvnet_rows", "paper_percent", "pooled_seed_std", "spread_text", "sr_rows",
           "versatile_rows"]
