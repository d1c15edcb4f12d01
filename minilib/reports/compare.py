"""Read the side-by-side comparison (``results/compare``, chapter 10): one row per method and budget, Pareto fronts,
and the answers of the "when to use which" table, each computed from the numbers so that the text states only
what they show.

Costs come from the plan (:mod:`minilib.reproduce.budgets`, shown by :func:`plan_table` and
:func:`hyperparameter_table`), so every planned network has a row before it is trained; accuracy (mean ± std over
seeds, in percent) comes from the result files and is None until a run is done, times from
``results/compare_timing.json`` (every network timed in one process) or else from the runs. Two accuracies count
as tied when they differ by at most twice the standard error σ sqrt(1/n1 + 1/n2), σ the seed-to-seed standard
deviation pooled over the runs (:func:`minilib.reports.runs.pooled_seed_std`).
"""
from __future__ import annotations

import math

from ..reproduce import budgets
from .runs import format_rows, network_times
from .tables import Table

# x axes of the Pareto plots: row key -> axis label
COSTS = {"stored_ratio": "stored bits (share of the baseline's)",
         "flops_ratio": "multiplications per image (share of the baseline's)",
         "latency_1": "torch latency, batch 1 (ms per image)",
         "latency_128": "torch latency, batch 128 (ms per image)",
         "numpy_ratio": "NumPy conv2 time / standard conv time"}


# the plan as two tables that fit a book page: what each network costs (numbers), and what it is (prose)
PLAN_COLUMNS = [("run", "run"), ("weights %", "weights"), ("bits %", "bits"), ("mults", "mults"),
                ("mults %", "mults_pct")]


def plan_table(choices=None) -> Table:
    """The reachable choices' costs: % of the baseline's filter weights and stored bits, multiplications per image
    and their % of the baseline's (a :class:`~minilib.reports.tables.Table`: display it)."""
    choices = budgets.budget_table() if choices is None else choices
    rows = [{"run": choice.run, "weights": f"{100 * choice.weight_ratio:.2f}",
             "bits": f"{100 * choice.stored_ratio:.2f}", "mults": f"{choice.cost.flops:,}",
             "mults_pct": f"{100 * choice.flops_ratio:.1f}"} for choice in choices if choice.reachable]
    return Table(rows, PLAN_COLUMNS, "The plan: what each network costs")


def hyperparameter_table(choices=None) -> Table:
    """Every choice's hyperparameters in the papers' symbols, and for a budget out of reach the reason (a
    :class:`~minilib.reports.tables.Table` of prose, wrapped)."""
    choices = budgets.budget_table() if choices is None else choices
    rows = [{"run": choice.run,
             "what": choice.describe() if choice.reachable else f"not reachable: {choice.reason}"}
            for choice in choices]
    return Table(rows, [("run", "run"), ("hyperparameters", "what")], "The plan: hyperparameters", wrap=True)


def compare_rows(groups: dict, choices=None, timing: dict | None = None) -> list:
    """One row per reachable planned network (default: :func:`minilib.reproduce.budgets.budget_table`).

    Keys: run, method, budget (None for the baseline), label (the budget as "50%", or "base"), hyperparameters
    (text), weight_ratio, stored_ratio,
    flops, flops_ratio (from the plan); mean, std (percent; None / NaN until trained), seeds, accuracy (text,
    "not run" until trained), delta (mean minus the baseline's mean), latency_1, latency_128 (torch, ms per
    image) and numpy_ratio (conv2, NumPy method / standard); group (the RunGroup or None).

    The three times come from ``timing``, the file of ``python -m minilib.reproduce compare-timing``
    (:mod:`minilib.reproduce.compare_timing`: every network timed in one process), when given; otherwise they
    are the medians over seeds of what each trained run recorded.
    """
    choices = budgets.budget_table() if choices is None else choices
    base = groups.get("baseline")
    rows = []
    for choice in choices:
        if not choice.reachable:
            continue
        group = groups.get(choice.run)
        label = "base" if choice.budget is None else f"{round(100 * choice.budget)}%"
        row = {"run": choice.run, "method": choice.method, "budget": choice.budget, "label": label,
               "hyperparameters": choice.describe(), "weight_ratio": choice.weight_ratio,
               "stored_ratio": choice.stored_ratio, "flops": choice.cost.flops, "flops_ratio": choice.flops_ratio,
               "mean": None, "std": math.nan, "seeds": 0, "accuracy": "not run", "delta": None,
               **network_times(group, None if timing is None else timing["networks"].get(choice.run)),
               "group": group}
        if group is not None:
            row.update(mean=group.mean, std=group.std, seeds=len(group.seeds), accuracy=group.accuracy_text(),
                       delta=None if base is None else group.mean - base.mean)
        rows.append(row)
    return rows


# columns of the result table, as two narrow tables: what a network costs and scores, and how long it takes
ACCURACY_COLUMNS = [("run", "run"), ("weights %", "weights"), ("bits %", "bits"), ("mults %", "mults"),
                    ("test accuracy %", "accuracy"), ("vs baseline", "delta")]
TIME_COLUMNS = [("run", "run"), ("ms/image, batch 1", "ms_1"), ("batch 128", "ms_128"), ("NumPy conv2 / conv", "numpy")]


def table_cells(rows: list) -> list:
    """The rows of :func:`compare_rows` as text cells for :data:`ACCURACY_COLUMNS` and :data:`TIME_COLUMNS`:
    shares of the baseline in %, accuracy over seeds, its difference to the baseline in points, latencies."""
    def number(value, fmt):
        return "" if value is None else fmt.format(value)

    return [{"run": row["run"], "weights": f"{100 * row['weight_ratio']:.1f}",
             "bits": f"{100 * row['stored_ratio']:.1f}",
             "mults": f"{100 * row['flops_ratio']:.1f}", "accuracy": row["accuracy"], "delta": row["delta"],
             "ms_1": number(row["latency_1"], "{:.3f}"), "ms_128": number(row["latency_128"], "{:.4f}"),
             "numpy": number(row["numpy_ratio"], "{:.2f}")} for row in rows]


def cifar_compare_rows(groups: dict, runs, timing: dict | None = None) -> list:
    """Chapter 7's CIFAR-10 runs (:mod:`minilib.reproduce.cifar10`) as rows with the keys the Pareto helpers read
    (run, method = the run's name, label "", stored_ratio = 32-bit parameters with masks at 1/32, flops_ratio,
    mean, std, latencies). Their sizes were chosen per method, not matched to budgets; runs not trained are left out.
    Times from ``timing`` (``compare-timing``'s file, its "cifar10_networks") when given, else from the runs.
    """
    rows = []
    for run in runs:
        group = groups.get(run)
        if group is None:
            continue
        compression = group.first["compression"]
        rows.append({"run": run, "method": run, "label": "", "budget": None,
                     "stored_ratio": compression["params_32bit"], "flops_ratio": compression["flops"],
                     "mean": group.mean, "std": group.std,
                     **network_times(group, None if timing is None else timing["cifar10_networks"][run])})
    return rows


def format_compare_rows(rows: list) -> str:
    """The rows as one aligned text table (:func:`table_cells`, all columns)."""
    return format_rows(table_cells(rows), ACCURACY_COLUMNS + TIME_COLUMNS[1:])


# ----------------------------------------------------------------------------- Pareto fronts
def pareto_front(costs, accuracies) -> list:
    """Indices of the points that no other point dominates (a cost no higher and an accuracy no lower, one of
    them strictly), sorted by cost; points with a NaN or None coordinate take no part."""
    points = [(i, float(x), float(y)) for i, (x, y) in enumerate(zip(costs, accuracies))
              if x is not None and y is not None and math.isfinite(x) and math.isfinite(y)]
    front = [(i, x, y) for i, x, y in points
             if not any(xj <= x and yj >= y and (xj < x or yj > y) for _, xj, yj in points)]
    return [i for i, _, _ in sorted(front, key=lambda point: (point[1], -point[2]))]


def pareto_series(rows: list, cost: str) -> tuple:
    """``({method: [(cost, mean, std, budget label), ...]}, [(cost, mean), ...] on the front)`` of the trained rows
    for one x axis of :data:`COSTS`."""
    if cost not in COSTS:
        raise ValueError(f"cost={cost!r} must be one of {list(COSTS)}")
    trained = [row for row in rows if row["mean"] is not None and row[cost] is not None
               and math.isfinite(row["mean"])]
    series = {}
    for row in trained:
        series.setdefault(row["method"], []).append((row[cost], row["mean"], row["std"], row["label"]))
    front = pareto_front([row[cost] for row in trained], [row["mean"] for row in trained])
    return series, [(trained[i][cost], trained[i]["mean"]) for i in front]


def front_runs(rows: list, cost: str) -> list:
    """The runs on the Pareto front of accuracy against ``cost``, cheapest first."""
    trained = [row for row in rows if row["mean"] is not None and row[cost] is not None]
    return [trained[i]["run"] for i in pareto_front([row[cost] for row in trained], [row["mean"] for row in trained])]


def fronts_table(rows: list, costs=None, title: str = "Pareto fronts") -> Table:
    """The runs on the Pareto front of each cost, cheapest first, as a table of prose (wrapped, so that a long front
    fits the page); ``costs`` = {row key: label} (default: :data:`COSTS`)."""
    costs = COSTS if costs is None else costs
    fronts = [{"cost": label, "front": " < ".join(front_runs(rows, cost)) or "no run trained yet"}
              for cost, label in costs.items()]
    return Table(fronts, [("cost", "cost"), ("front, cheapest first", "front")], title, wrap=True)


# ----------------------------------------------------------------------------- when to use which
def standard_error(a: dict, b: dict, sigma: float) -> float:
    """σ sqrt(1/n_a + 1/n_b) of the difference of two rows' mean accuracies (NaN when σ is unknown)."""
    return sigma * math.sqrt(1 / a["seeds"] + 1 / b["seeds"])


def _tied(row, best, sigma) -> bool:
    return row is best or best["mean"] - row["mean"] <= 2 * standard_error(row, best, sigma)


def _pct(value) -> str:
    return f"{100 * value:.1f} %"


def _most_accurate(rows, budget, sigma):
    at_budget = [row for row in rows if row["budget"] == budget]
    trained = [row for row in at_budget if row["mean"] is not None and math.isfinite(row["mean"])]
    if not trained:
        return "not run yet", f"{len(at_budget)} networks planned at this budget"
    best = max(trained, key=lambda row: row["mean"])
    tied = [row for row in trained if row is not best and _tied(row, best, sigma)]
    answer = best["method"] + (" (tied: " + ", ".join(row["method"] for row in tied) + ")" if tied else "")
    evidence = "; ".join(f"{row['method']} {row['mean']:.2f}" for row in sorted(trained, key=lambda r: -r["mean"]))
    missing = [row["method"] for row in at_budget if row not in trained]
    if missing:
        evidence += "; not run yet: " + ", ".join(missing)
    if math.isnan(sigma):
        evidence += "; seed noise unknown (no run has two seeds), so no ties are judged"
    return answer, evidence


def _fewest_multiplications(rows, budget):
    at_budget = sorted((row for row in rows if row["budget"] == budget), key=lambda row: row["flops_ratio"])
    least = at_budget[0]["flops_ratio"]
    # counts, not measurements: equal within 1 % means the same network cost (MVNet-A and B share their filters)
    first = [row for row in at_budget if row["flops_ratio"] <= 1.01 * least]
    rest = [row for row in at_budget if row["flops_ratio"] > 1.01 * least]
    answer = ", ".join(row["method"] for row in first) + (" (equal)" if len(first) > 1 else "")
    if rest:
        answer += f" ({rest[0]['flops_ratio'] / least:.2f}x fewer than the next)"
    evidence = "; ".join(f"{row['method']} {_pct(row['flops_ratio'])}" for row in at_budget)
    return answer, evidence + " of the baseline's"


def _fastest(rows, key, unit):
    measured = sorted((row for row in rows if row[key] is not None), key=lambda row: row[key])
    if not measured:
        return "not measured yet", "no run has been trained"
    base = next((row for row in measured if row["method"] == "baseline"), None)
    fastest, slowest = measured[0], measured[-1]
    # one timing per architecture (compare-timing): basis-from-conv shares basis-scratch's time exactly
    names = " = ".join(row["run"] for row in measured if row[key] == fastest[key])
    against = "" if base is None else f" ({fastest[key] / base[key]:.2f}x the baseline's)"
    evidence = (f"fastest {names} {fastest[key]:.4g}{unit}, slowest {slowest['run']} {slowest[key]:.4g}{unit}"
                + ("" if base is None else f", baseline {base[key]:.4g}{unit}"))
    return names + against, evidence


def _numpy_faster(rows, noise):
    measured = [row for row in rows if row["numpy_ratio"] is not None and row["method"] != "baseline"]
    if not measured:
        return "not measured yet", "no run has been trained"
    faster = sorted((row for row in measured if row["numpy_ratio"] < 1 - noise), key=lambda row: row["numpy_ratio"])
    ranked = sorted(measured, key=lambda row: row["numpy_ratio"])
    evidence = "; ".join(f"{row['run']} {row['numpy_ratio']:.2f}" for row in ranked)
    if noise:
        evidence += f" (ratios within {100 * noise:.0f} % of 1 count as equal)"
    if not faster:
        return "none: every method's NumPy conv2 is slower than the standard one", evidence
    return ", ".join(row["run"] for row in faster), evidence


def _from_conv_helps(rows, sigma):
    lines, verdicts = [], []
    by_run = {row["run"]: row for row in rows}
    for budget in budgets.BUDGETS:
        pct = round(100 * budget)
        fitted, scratch = by_run.get(f"basis-from-conv-b{pct}"), by_run.get(f"basis-scratch-b{pct}")
        if fitted is None or scratch is None or fitted["mean"] is None or scratch["mean"] is None:
            continue
        delta, se = fitted["mean"] - scratch["mean"], standard_error(fitted, scratch, sigma)
        verdict = ("better" if delta > 2 * se else "worse" if delta < -2 * se else "tied") if math.isfinite(se) else "?"
        verdicts.append(verdict)
        lines.append(f"{pct} %: {delta:+.2f} points (s.e. {se:.2f}, {verdict})")
    if not verdicts:
        return "not run yet", "needs basis-from-conv and basis-scratch at the same budget"
    if all(v == "better" for v in verdicts):
        answer = "yes, at every budget run"
    elif all(v == "tied" for v in verdicts):
        answer = "no measurable difference"
    else:
        answer = "depends on the budget"
    return answer, "; ".join(lines)


def _smallest_within_noise(rows, sigma):
    base = next((row for row in rows if row["method"] == "baseline" and row["mean"] is not None), None)
    trained = [row for row in rows if row["method"] != "baseline" and row["mean"] is not None
               and math.isfinite(row["mean"])]
    if base is None or not trained:
        return "not run yet", "needs the baseline and at least one compressed network"
    if math.isnan(sigma):
        return "?", "seed noise unknown (no run has two seeds)"
    close = sorted((row for row in trained if _tied(row, base, sigma)), key=lambda row: row["stored_ratio"])
    if not close:
        return "none", f"every trained network is more than 2 s.e. below the baseline's {base['mean']:.2f}"
    best, others = close[0], ", ".join(row["run"] for row in close[1:]) or "none"
    return best["run"], (f"stores {_pct(best['stored_ratio'])}, {best['mean']:.2f} against the baseline's "
                         f"{base['mean']:.2f}; also within noise: {others}")


def when_to_use(rows: list, sigma: float, numpy_noise: float = 0.0) -> list:
    """The "when to use which" table: ``[{"question", "answer", "evidence"}, ...]``, every answer computed from
    ``rows`` (:func:`compare_rows`) and σ, the pooled seed standard deviation; "not run yet" where results are
    missing. A NumPy layer counts as faster than the standard convolution when its time ratio is below
    1 - ``numpy_noise`` (the relative timing noise)."""
    table = []

    def add(question, answer_evidence):
        answer, evidence = answer_evidence
        table.append({"question": question, "answer": answer, "evidence": evidence})

    for budget in budgets.BUDGETS:
        add(f"most accurate at about {round(100 * budget)} % of the stored bits", _most_accurate(rows, budget, sigma))
    for budget in budgets.BUDGETS:
        add(f"fewest multiplications at about {round(100 * budget)} %", _fewest_multiplications(rows, budget))
    add("smallest network within noise of the baseline's accuracy", _smallest_within_noise(rows, sigma))
    add("fastest torch model, batch 1", _fastest(rows, "latency_1", " ms"))
    add("fastest torch model, batch 128", _fastest(rows, "latency_128", " ms"))
    add("NumPy conv2 faster than the standard convolution", _numpy_faster(rows, numpy_noise))
    add("does starting the basis from the trained conv (from_conv) help?", _from_conv_helps(rows, sigma))
    for choice in budgets.budget_table()[1:]:
        if not choice.reachable:
            table.append({"question": f"{choice.method} at {round(100 * choice.budget)} %?", "answer": "not reachable",
                          "evidence": choice.reason})
    return table


def format_when_to_use(table: list, width: int = 110) -> str:
    """The table as text: each question, its answer, and the evidence indented below, wrapped to ``width``."""
    import textwrap

    lines = []
    for entry in table:
        lines.append(f"{entry['question']}: {entry['answer']}")
        lines.extend(textwrap.wrap(entry["evidence"], width, initial_indent="    ", subsequent_indent="    "))
    return "\n".join(lines)


__all__ = ["ACCURACY_COLUMNS", "COSTS", "PLAN_COLUMNS", "TIME_COLUMNS", "cifar_compare_rows", "compare_rows",
           "format_compare_rows", "format_when_to_use", "front_runs", "fronts_table", "hyperparameter_table",
           "pareto_front", "pareto_series", "plan_table", "standard_error", "table_cells", "when_to_use"]
