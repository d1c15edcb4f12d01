"""The accuracy claims of MVNet's MNIST experiments (Han et al. 2019, Table 1 and Fig. 2), each tested on our runs,
and the tables and points of chapter 9 that show them over seeds.

Every claim is a set of comparisons of two runs, a - b in percentage points of test accuracy, with a 95 % Welch t
interval over seeds (:func:`minilib.stats.welch_difference`) and a verdict:

1. MVNet with s = 10 matches the baseline (A and B): *equivalence* within :data:`MATCH_MARGIN` points;
2. learned masks beat fixed random ones at s = 20 (A and B): *direction*;
3. separate masks (B) beat shared ones (A) at s = 10 and s = 20: *direction*;
4. accuracy peaks near λ = 0.1 (Fig. 2(b), s = 5, 10, 20): λ = 0.1 beats λ = 0.001 and λ = 10, *direction*.

Claims 1-3 are tested under both penalty scales (Eq. 7 as printed, and the released code's: run names with
``-released``); the baseline and the random-mask runs have no penalty and serve both. Claim 4 is the λ sweep of
Eq. 7. A run whose every seed diverged has lost: a comparison with it is decided by the divergence; the seeds that
diverged in a partly diverged run are left out and counted in the row's note.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from .. import stats
from ..reproduce import mnist
from .papers import MVNET_TABLE1
from .runs import paper_percent
from .tables import Table

MATCH_MARGIN = 0.1          # points: "matches" = within a tenth of a point, the paper's s = 10 rows are 0.03 apart
PENALTY_SUFFIX = {"eq7": "", "released": "-released"}


@dataclasses.dataclass(frozen=True)
class Comparison:
    """``a - b`` for one claim: ``kind`` "equivalence" (within ``margin``) or "direction" (a beats b)."""
    claim: int
    a: str
    b: str
    kind: str
    penalty: str = "eq7"
    margin: float = MATCH_MARGIN


def comparisons() -> list:
    """Every comparison of the four claims (see the module's list), under both penalty scales for claims 1-3."""
    found = []
    for penalty, suffix in PENALTY_SUFFIX.items():
        found += [Comparison(1, f"mvnet-{kind}-10{suffix}", "baseline", "equivalence", penalty) for kind in "ab"]
        found += [Comparison(2, f"mvnet-{kind}-20{suffix}", f"mvnet-{kind}-rand-20", "direction", penalty)
                  for kind in "ab"]
        found += [Comparison(3, f"mvnet-b-{s}{suffix}", f"mvnet-a-{s}{suffix}", "direction", penalty) for s in (10, 20)]
    sweep = lambda s, lam: f"mvnet-a-{s}-lam{lam:g}-e{mnist.FIG2B_EPOCHS}"      # noqa: E731
    found += [Comparison(4, sweep(s, 0.1), sweep(s, other), "direction") for s in mnist.FIG2B_S for other in (0.001, 10)]
    return found


def paper_difference(comparison: Comparison):
    """The paper's a - b in points where both are rows of its Table 1 (claims 1-3), else None."""
    a, b = (name.removesuffix("-released") for name in (comparison.a, comparison.b))
    if a in MVNET_TABLE1 and b in MVNET_TABLE1:
        return paper_percent(MVNET_TABLE1[a]["accuracy"]) - paper_percent(MVNET_TABLE1[b]["accuracy"])
    return None


def evaluate(comparison: Comparison, groups: dict) -> dict:
    """One row: the comparison, our difference with its interval, the paper's, the verdict and a note.

    ``groups``: :func:`minilib.reports.runs.group_results` of the MNIST results. Missing runs, or fewer than two
    finite seeds on a side, give the verdict "not run yet" / "too few seeds"."""
    row = {"claim": comparison.claim, "a": comparison.a, "b": comparison.b, "penalty": comparison.penalty,
           "kind": comparison.kind, "paper": paper_difference(comparison), "difference": None, "verdict": None,
           "note": ""}
    missing = [name for name in (comparison.a, comparison.b) if name not in groups]
    if missing:
        return {**row, "verdict": "not run yet", "note": "missing: " + ", ".join(missing)}
    sides = {name: groups[name].accuracies for name in (comparison.a, comparison.b)}
    finite = {name: values[np.isfinite(values)] for name, values in sides.items()}
    lost = {name: len(values) - len(finite[name]) for name, values in sides.items()}
    row["note"] = "; ".join(f"{name}: {k} of {len(sides[name])} seeds diverged" for name, k in lost.items() if k)
    a, b = finite[comparison.a], finite[comparison.b]
    if len(b) == 0 and len(a) > 0:                # b diverged on every seed: a beats it
        return {**row, "verdict": stats.CONFIRMED if comparison.kind == "direction" else stats.CONTRADICTED}
    if len(a) == 0 and len(b) > 0:
        return {**row, "verdict": stats.CONTRADICTED}
    if len(a) < 2 or len(b) < 2:
        return {**row, "verdict": "too few seeds"}
    difference = stats.welch_difference(a, b)
    verdict = (stats.equivalence_verdict(difference, comparison.margin) if comparison.kind == "equivalence"
               else stats.direction_verdict(difference))
    return {**row, "difference": difference, "verdict": verdict}


def claim_rows(groups: dict) -> list:
    """:func:`evaluate` of every comparison of :func:`comparisons`."""
    return [evaluate(comparison, groups) for comparison in comparisons()]


CLAIMS = {1: f"MVNet with s = 10 matches the baseline (within {MATCH_MARGIN} points)",
          2: "learned masks beat fixed random ones at s = 20",
          3: "separate masks (B) beat shared ones (A) at equal s",
          4: "accuracy peaks near λ = 0.1 (λ = 0.1 beats 0.001 and 10)"}
PENALTY_NAMES = {"eq7": "paper's Eq. 7", "released": "released code's scale"}


def claims_table(rows: list) -> Table:
    """The rows of :func:`claim_rows` as a table: claim, comparison, penalty scale, our difference with its 95 %
    interval, the paper's difference, the verdict and what diverged."""
    cells = [{"claim": str(row["claim"]), "comparison": f"{row['a']} − {row['b']}",
              "penalty": PENALTY_NAMES[row["penalty"]] if row["claim"] < 4 else "paper's Eq. 7, λ sweep",
              "ours": "" if row["difference"] is None else row["difference"].text(),
              "paper": "" if row["paper"] is None else f"{row['paper']:+.2f}",
              "verdict": row["verdict"], "note": row["note"]} for row in rows]
    columns = [("claim", "claim"), ("a − b", "comparison"), ("penalty", "penalty"),
               ("ours, 95 % interval (points)", "ours"), ("paper", "paper"), ("verdict", "verdict"), ("", "note")]
    return Table(cells, columns, "MVNet's MNIST claims, tested over seeds", wrap=True)


def claim_verdicts(rows: list) -> dict:
    """``{(claim, penalty): verdict}``: a claim holds under a penalty scale when every one of its comparisons is
    confirmed, fails when one is contradicted and none confirmed, is "mixed" when some are confirmed and some
    contradicted, and is otherwise not resolvable (or not yet run)."""
    grouped = {}
    for row in rows:
        grouped.setdefault((row["claim"], row["penalty"]), []).append(row["verdict"])
    verdicts = {}
    for key, found in grouped.items():
        if all(v == stats.CONFIRMED for v in found):
            verdicts[key] = stats.CONFIRMED
        elif stats.CONTRADICTED in found:
            verdicts[key] = "mixed" if stats.CONFIRMED in found else stats.CONTRADICTED
        elif any(v in ("not run yet", "too few seeds") for v in found):
            verdicts[key] = "not run yet"
        else:
            verdicts[key] = stats.UNRESOLVED
    return verdicts


# ----------------------------------------------------------------------------- the two ablations the chapter adds
def compared(groups: dict, a: str, b: str) -> dict:
    """``a - b`` as a table row: ``{"comparison", "ours" (interval text, "" if not resolvable), "verdict"}``."""
    row = evaluate(Comparison(0, a, b, "direction"), groups)
    return {"comparison": f"{a} − {b}", "ours": row["difference"].text() if row["difference"] else "",
            "verdict": row["verdict"]}


def phrase(row: dict) -> str:
    """A :func:`compared` row for the prose: ``"+0.57 [+0.41, +0.74] points (*confirmed*)"`` or its verdict."""
    return f"{row['ours']} points (*{row['verdict']}*)" if row["ours"] else row["verdict"]


COMPARED_COLUMNS = [("a − b", "comparison"), ("95 % interval (points)", "ours"), ("a better?", "verdict")]


def scale_rows(groups: dict) -> list:
    """Released scale minus the paper's Eq. 7 for every learned-mask row of Table 1."""
    return [compared(groups, f"{name}{PENALTY_SUFFIX['released']}", name) for name in mnist.MVNET_TABLE]


def decay_rows(groups: dict) -> list:
    """No weight decay on the mask latents minus decay, at s = 20 under the recommended scale (A, B)."""
    suffix = PENALTY_SUFFIX[mnist.RECOMMENDED_PENALTY]
    return [compared(groups, f"mvnet-{kind}-20{suffix}-nomaskwd", f"mvnet-{kind}-20{suffix}") for kind in "ab"]


# ----------------------------------------------------------------------------- Fig. 2(a) and 2(b) over seeds
def seed_summary(group) -> dict:
    """``{"mean", "std", "finite", "diverged", "seeds"}`` of a run's test accuracies (percent) over the seeds that did
    not diverge; mean and std NaN where none (std also for one)."""
    finite = group.accuracies[np.isfinite(group.accuracies)]
    return {"mean": float(finite.mean()) if len(finite) else math.nan,
            "std": float(finite.std(ddof=1)) if len(finite) > 1 else math.nan,
            "finite": len(finite), "diverged": len(group.diverged), "seeds": len(group.seeds)}


def seed_text(summary: dict) -> str:
    """``"99.02 ± 0.03"``, ``"98.10 (1 of 3 diverged)"``, ``"diverged (3 of 3)"``."""
    if not summary["finite"]:
        return f"diverged ({summary['diverged']} of {summary['seeds']})"
    text = f"{summary['mean']:.2f}" + ("" if math.isnan(summary["std"]) else f" ± {summary['std']:.2f}")
    return text + (f" ({summary['diverged']} of {summary['seeds']} diverged)" if summary["diverged"] else "")


def fig2a_points(groups: dict, penalty: str) -> dict:
    """``{"s=<s>": (params_32bit, mean, std)}`` of MVNet-A under ``penalty`` for every s with a finite seed."""
    points = {}
    for s in mnist.FIG2A_S:
        group = groups.get(f"mvnet-a-{s}{PENALTY_SUFFIX[penalty]}")
        if group is not None and seed_summary(group)["finite"]:
            summary = seed_summary(group)
            points[f"s={s}"] = (group.first["cost"]["params_32bit"], summary["mean"], summary["std"])
    return points


def fig2a_table(groups: dict, paper: dict) -> Table:
    """Fig. 2(a) runs under both scales: accuracy over seeds, seeds diverged, the paper's value where it has one
    (``paper`` = {s: (params, accuracy %)})."""
    rows = []
    for penalty, suffix in PENALTY_SUFFIX.items():
        for s in mnist.FIG2A_S:
            group = groups.get(f"mvnet-a-{s}{suffix}")
            rows.append({"run": f"mvnet-a-{s}{suffix}",
                         "accuracy": "not run yet" if group is None else seed_text(seed_summary(group)),
                         "paper": f"{paper[s][1]:.2f}" if s in paper else ""})
    columns = [("run", "run"), ("test accuracy %, mean ± std", "accuracy"), ("paper %", "paper")]
    return Table(rows, columns, "Fig. 2(a): MVNet-A with s masks")


def sweep_points(groups: dict) -> dict:
    """Fig. 2(b): ``{s: [(λ, seed_summary), ...]}`` of the trained λ-sweep runs (Eq. 7, 5 epochs)."""
    points = {}
    for s in mnist.FIG2B_S:
        for lam in mnist.FIG2B_LAMBDAS:
            group = groups.get(f"mvnet-a-{s}-lam{lam:g}-e{mnist.FIG2B_EPOCHS}")
            if group is not None:
                points.setdefault(s, []).append((lam, seed_summary(group)))
    return points


def sweep_table(groups: dict) -> Table:
    """Fig. 2(b) as s × λ: accuracy over seeds, divergences counted, "not run" where no file exists."""
    found = sweep_points(groups)
    rows = []
    for s in mnist.FIG2B_S:
        cells = {f"{lam:g}": seed_text(summary) for lam, summary in found.get(s, [])}
        rows.append({"s": str(s), **{f"{lam:g}": cells.get(f"{lam:g}", "not run") for lam in mnist.FIG2B_LAMBDAS}})
    columns = [("s", "s")] + [(f"λ = {lam:g}", f"{lam:g}") for lam in mnist.FIG2B_LAMBDAS]
    return Table(rows, columns, f"Test accuracy (%) after {mnist.FIG2B_EPOCHS} epochs, mean ± std over seeds")
