"""Generated bad calls to the whole public API are refused with a clear error; empty batches work as in torch.

The cases come from ``tools/bad_inputs.py`` (shared with ``python -m tools.fuzz_api``, which counts the outcomes
of the same calls, each in a forked child): for every public entry point (NumPy layers, functionals and reference
versions, losses, optimisers and schedules, the torch twins, ``convert``, ``Recipe`` and the evaluations,
``read_idx`` on tiny bad files) and every argument tried, hypothesis draws contexts (batch size, height, width,
seed) and each context tries every bad value of the argument:

* a bad value must raise ``ValueError`` or ``TypeError`` from minilib's own code, and the message must name the
  argument (``lr=inf must be a finite number >= 0``), not an error from NumPy, torch or Python internals, not a
  ``MemoryError`` (a call that would need terabytes is refused up front), and never silence;
* an empty batch (N = 0) must give what torch gives: an empty output of the right shape, an empty input
  gradient and zero parameter gradients;
* a valid value the rules allow (``rng=42``, an int seed) must work.

The calls run in this process under a memory cap (RLIMIT_AS, lifted after each call) and a time limit; hypothesis
runs derandomized, without an example database, so every run makes the same calls.
"""
import pytest
from hypothesis import HealthCheck, Phase, given, note, settings, strategies as st

from tools import bad_inputs as bi

EXAMPLES = 2            # contexts per (API, argument); each context tries every bad value of the argument
FAMILIES = bi.families()
ERROR_GROUPS = [(f, a) for f in FAMILIES for a in f.arguments() if any(b.expect != "empty" for b in f.pools[a])]
EMPTY_GROUPS = [(f, a) for f in FAMILIES for a in f.arguments() if any(b.expect == "empty" for b in f.pools[a])]
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                    phases=(Phase.explicit, Phase.generate), suppress_health_check=list(HealthCheck))


def _id(group):
    family, argument = group
    return f"{family.area}:{family.api}:{argument}".replace(" ", "_")


@pytest.fixture(scope="module", autouse=True)
def _scratch_files():
    """The bad IDX files live in one temporary folder, removed after the module."""
    yield
    bi.remove_scratch()


def _said(record):
    if record["status"] == "returned":
        return record.get("problem") or ("returned NaN/inf" if record.get("non_finite") else "returned normally")
    return f"{record.get('type', record['status'])}: {record.get('message', '')}"[:300]


def _expected(case):
    if case.expect == "empty":
        return "an empty output and zero gradients, as torch gives"
    if case.expect == "accept":
        return "no error (a valid value)"
    return f"a ValueError or TypeError from minilib naming {' or '.join(map(repr, case.names))}"


def _check_every_value(family, argument):
    """Hypothesis draws the contexts; in each, every bad value of ``argument`` must get its expected answer."""
    @SETTINGS
    @given(data=st.data())
    def check(data):
        context = bi.draw_context(bi.HypothesisDraw(data))
        note(f"context {context}")
        failures = []
        for bad in family.pools[argument]:
            case = bi.Case(family, argument, bad, context)
            record = bi.run_in_process(case)
            outcome = bi.classify(case, record)
            if outcome not in bi.PASSING:
                failures.append(f"{outcome}: {case.id}: expected {_expected(case)}; got {_said(record)}")
        assert not failures, f"{len(failures)} of {len(family.pools[argument])} values failed:\n" + "\n".join(failures)

    check()


@pytest.mark.parametrize("group", ERROR_GROUPS, ids=_id)
def test_bad_values_are_refused_clearly(group):
    _check_every_value(*group)


@pytest.mark.parametrize("group", EMPTY_GROUPS, ids=_id)
def test_an_empty_batch_works_as_in_torch(group):
    _check_every_value(*group)


@pytest.mark.parametrize("family", [f for f in FAMILIES if f.valid_works], ids=lambda f: f"{f.area}:{f.api}")
def test_the_valid_call_of_every_family_works(family):
    """The generators start from a valid call; if it failed, every bad value would 'fail' for the wrong reason."""
    for context in (bi.Context(), bi.Context(n=1, h=5, w=7, seed=3), bi.Context(n=3, h=7, w=5, seed=5)):
        assert bi.valid_call_problem(family, context) is None


def test_the_suite_makes_enough_calls_across_the_api():
    calls = EXAMPLES * len(bi.space(FAMILIES))
    assert calls >= 500
    assert {family.area for family in FAMILIES} == set(bi.AREAS)


def test_the_classifier():
    """What counts as clear: a ValueError/TypeError raised in minilib whose message names the argument as a word."""
    family = bi.Family("optim", "SGD", lambda ctx: {}, lambda kw: None, {"lr": (bi.const("inf", float("inf")),)})
    case = bi.Case(family, "lr", family.pools["lr"][0])
    raised = {"status": "raised", "value_or_type_error": True, "memory_error": False, "type": "ValueError"}
    assert bi.classify(case, {**raised, "message": "lr=inf must be a finite number >= 0",
                              "where": "minilib/optim.py"}) == "clear"
    assert bi.classify(case, {**raised, "message": "lrate=inf is bad", "where": "minilib/optim.py"}) == "unnamed"
    assert bi.classify(case, {**raised, "message": "lr is bad", "where": "numpy"}) == "unnamed"
    assert bi.classify(case, {**raised, "type": "ZeroDivisionError", "value_or_type_error": False,
                              "message": "division by zero", "where": "minilib/optim.py"}) == "internal"
    assert bi.classify(case, {**raised, "type": "MemoryError", "value_or_type_error": False, "memory_error": True,
                              "message": "", "where": "numpy"}) == "memory"
    assert bi.classify(case, {"status": "returned", "non_finite": True}) == "silent"
    assert bi.classify(case, {"status": "killed", "message": "SIGKILL"}) == "memory"


def _synthetic(name, call):
    family = bi.Family("layers", name, lambda ctx: {"x": None}, lambda kw: call(), {"x": (bi.const("v", None),)})
    return bi.Case(family, "x", family.pools["x"][0])


def test_the_counter_runs_each_call_in_a_capped_forked_child():
    """tools/fuzz_api: a huge allocation meets the memory cap, a hang the time limit, a crash is counted, and
    nothing of it reaches this process."""
    import os
    import signal
    import time

    import numpy as np

    from minilib import checks
    from tools import fuzz_api

    cases = [_synthetic("clear", lambda: checks.positive_int("3", "x")), _synthetic("huge", lambda: np.ones(2 ** 36)),
             _synthetic("hang", lambda: time.sleep(30)),
             _synthetic("crash", lambda: os.kill(os.getpid(), signal.SIGKILL))]
    records = fuzz_api.run_forked(cases, jobs=2, seconds=1, headroom_mb=256)
    outcomes = [bi.classify(case, record) for case, record in zip(cases, records)]
    assert outcomes == ["clear", "memory", "timeout", "memory"]
    rows = fuzz_api.tally(cases, records)
    assert "total" in fuzz_api.table(rows) and rows[1]["type"] == "MemoryError"
