"""Run one exercise's checks with pytest and turn the outcome into a short verdict for the reader."""
from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass, field

from .registry import ROOT, lookup

# The project's addopts run the notebooks under nbval; exercise checks are plain tests, so they drop those
# options and the nbval and hypothesis plugins (which they do not use and which take seconds to import),
# and leave no cache behind.
PYTEST_QUIET = ["-o", "addopts=", "-p", "no:nbval", "-p", "no:hypothesispytest", "-p", "no:cacheprovider"]


@dataclass
class Outcome:
    """What happened to each check (pytest test) of one run: nodeid -> "passed" / "failed" / "skipped"."""

    results: dict = field(default_factory=dict)
    failures: dict = field(default_factory=dict)     # nodeid -> the failure text pytest printed
    collection_errors: list = field(default_factory=list)


class _Recorder:
    """A pytest plugin that records every check's outcome instead of printing a report."""

    def __init__(self):
        self.outcome = Outcome()

    def pytest_collectreport(self, report):
        if report.failed:
            self.outcome.collection_errors.append(str(report.longrepr))

    def pytest_runtest_logreport(self, report):
        # A test counts once: a failure in setup or teardown is its outcome, otherwise the call's.
        if report.when == "call" or report.outcome != "passed":
            previous = self.outcome.results.get(report.nodeid)
            if previous in (None, "passed"):
                self.outcome.results[report.nodeid] = report.outcome
            if report.failed and report.nodeid not in self.outcome.failures:
                self.outcome.failures[report.nodeid] = report.longreprtext


def run(name: str, target: str = "stub") -> Outcome:
    """Run the checks of exercise ``name`` against the reader's stub or the library's reference, quietly."""
    import pytest     # only the checker needs pytest, not the library

    exercise = lookup(name)
    recorder = _Recorder()
    args = [str(exercise.test_file), "--exercise", name, "--exercise-target", target, "--rootdir", str(ROOT),
            "-q", *PYTEST_QUIET]
    # pytest's own report is replaced by the verdict; `rerun` in the verdict shows how to see it.
    with contextlib.redirect_stdout(io.StringIO()):
        pytest.main(args, plugins=[recorder])
    return recorder.outcome


def _short(text: str, limit: int = 15) -> str:
    """The end of a failure report: the failing line (pytest marks it with ">"), its "E" lines and where it was."""
    lines = [line for line in text.rstrip().splitlines() if line.strip()]
    marked = [i for i, line in enumerate(lines) if line.startswith(">")]
    kept = lines[marked[-1]:] if marked else lines
    return "\n".join("    " + line for line in kept[-limit:])


def verdict(name: str, outcome: Outcome, target: str = "stub") -> tuple[str, bool]:
    """A few lines for the reader and whether every check passed."""
    exercise = lookup(name)
    where = exercise.stub_file if target == "stub" else exercise.reference.replace(":", ".")
    if outcome.collection_errors:
        return (f"{name}: the checks could not be collected\n{_short(outcome.collection_errors[0])}", False)
    ran = {nodeid: result for nodeid, result in outcome.results.items() if result != "skipped"}
    if not ran:
        return f"{name}: no checks ran (were they all skipped?)", False
    passed = sum(result == "passed" for result in ran.values())
    score = f"{name}: {passed}/{len(ran)} checks pass"
    if passed == len(ran):
        return (f"{score} — well done" if target == "stub" else f"{score} with the library's {where}"), True
    failures = outcome.failures
    if failures and all("NotImplementedError" in text for text in failures.values()) and passed == 0:
        return f"{score} — NotImplementedError: the stub is not filled in yet; open {where}", False
    first = next(nodeid for nodeid, result in ran.items() if result != "passed")
    check = first.split("::", 1)[-1]
    rerun = f"python -m pytest {exercise.test_file.relative_to(ROOT)} --exercise {name}"
    if target != "stub":
        rerun += f" --exercise-target {target}"
    return (f"{score} — first failing check: {check}\n{_short(failures.get(first, ''))}\n"
            f"The whole report: {rerun}", False)


def check(name: str, target: str = "stub") -> bool:
    """Run the checks, print the verdict, return whether they all passed."""
    lookup(name)                       # a bad name fails before pytest starts
    message, ok = verdict(name, run(name, target), target)
    print(message)
    return ok
