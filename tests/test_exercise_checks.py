"""The exercise checks can fail: untouched stubs and plausible wrong solutions fail them, the library passes.

* tests/exercises runs in a subprocess twice, against every stub (``--exercise-target stub``) and against
  the library (the default); each exercise's every check must fail on NotImplementedError in the first run
  and pass in the second;
* a few wrong solutions (the bugs a reader is likely to write) each fail at least one check of their exercise;
* ``python -m minilib.exercises check`` prints the verdicts the README promises and rejects bad names.

"The stubs" are the committed ones (tests/committed_stubs.py): a reader who has filled one in still sees these
tests pass. Without git history the tests of the stubs skip.
"""
import importlib.util
import inspect
import math
import subprocess
import sys
import xml.etree.ElementTree as ElementTree

import numpy as np
import pytest

import committed_stubs
from minilib.exercises import EXERCISES
from minilib.exercises.check import PYTEST_QUIET, Outcome, verdict
from minilib.exercises.registry import ROOT


def run_checks(tmp_path_factory, *options, env=None) -> dict:
    """{exercise: {check: outcome}} from one pytest run over tests/exercises; outcome is "passed" or the text
    of the failure, error or skip."""
    report = tmp_path_factory.mktemp("junit") / "report.xml"
    command = [sys.executable, "-m", "pytest", "tests/exercises", "-q", *PYTEST_QUIET, f"--junitxml={report}",
               *options]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert report.exists(), f"pytest wrote no report:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    outcomes = {}
    for case in ElementTree.parse(report).getroot().iter("testcase"):
        exercise = case.get("classname").rsplit(".", 1)[-1].removeprefix("test_exercise_")
        problems = [f"{child.tag}: {child.get('message', '')} {child.text or ''}" for child in case
                    if child.tag in ("failure", "error", "skipped")]
        outcomes.setdefault(exercise, {})[case.get("name")] = problems[0] if problems else "passed"
    return outcomes


@pytest.fixture(scope="module")
def stub_outcomes(tmp_path_factory):
    committed_stubs.skip_without_history()
    return run_checks(tmp_path_factory, "--exercise-target", "stub", "-p", "committed_stubs",
                      env=committed_stubs.subprocess_env())


@pytest.fixture(scope="module")
def reference_outcomes(tmp_path_factory):
    return run_checks(tmp_path_factory)


def test_every_check_fails_on_the_untouched_stubs(stub_outcomes, reference_outcomes):
    assert set(stub_outcomes) == set(EXERCISES)
    for name, checks in stub_outcomes.items():
        assert len(checks) >= 5, f"{name} has only {len(checks)} checks"
        assert set(checks) == set(reference_outcomes[name]), f"{name}: the two runs collected different checks"
        for check, outcome in checks.items():
            assert outcome.startswith("failure") and "NotImplementedError" in outcome, \
                f"{name}::{check} did not fail on the stub's NotImplementedError: {outcome[:300]}"


def test_every_check_passes_with_the_library(reference_outcomes):
    assert set(reference_outcomes) == set(EXERCISES)
    for name, checks in reference_outcomes.items():
        failing = {check: outcome[:300] for check, outcome in checks.items() if outcome != "passed"}
        assert not failing, f"{name}: the library fails its own exercise checks: {failing}"


# ----------------------------------------------------------------------------- wrong solutions
def _im2col_rows_ijc(x, kernel_size, stride=1, padding=0, dilation=1):
    """Rows in (i, j, c) order instead of (c, i, j)."""
    from minilib import im2col
    cols = im2col(x, kernel_size, stride, padding, dilation)
    kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    return cols.reshape(x.shape[1], kh, kw, -1).transpose(1, 2, 0, 3).reshape(cols.shape)


def _conv_backward_mean_over_batch(dout, cache):
    """dw and db averaged over the batch instead of summed."""
    from minilib import conv2d_backward
    dx, dw, db = conv2d_backward(dout, cache)
    n = dout.shape[0]
    return dx, dw / n, None if db is None else db / n


def _secondary_masks_floor(kernel_size):
    """s = floor(d/2) instead of ceil(d/2): odd kernels lose their 1x1 secondary."""
    from minilib.versatile import secondary_masks
    d = kernel_size if isinstance(kernel_size, int) else kernel_size[0]
    return secondary_masks(kernel_size)[:d // 2]


def _channel_windows_ignoring_mode(in_channels, delta=0, g=1, channel_mode="paper"):
    """Every mode treated as the paper's."""
    from minilib.versatile import channel_windows
    return channel_windows(in_channels, delta, g, "paper")


def _compression_rate_released(c, n, k, m, s):
    """Counting m*n coefficients instead of m*n*s (what the released configurations store)."""
    taps = k * k if isinstance(k, int) else k[0] * k[1]
    return (m * (c // s) * taps + m * n) / (n * c * taps)


def _optimal_splits_rounded(c, n, k):
    """s* rounded, without quantising p to a divisor of c."""
    return max(1, round(math.sqrt(c * k * k / n)))


def _ste_strict(dmasks, latent):
    """|latent| < 1: the boundary blocks the gradient."""
    return dmasks * (np.abs(latent) < 1)


WRONG_SOLUTIONS = {
    "im2col": _im2col_rows_ijc,
    "conv_backward": _conv_backward_mean_over_batch,
    "secondary_masks": _secondary_masks_floor,
    "channel_windows": _channel_windows_ignoring_mode,
    "compression_rate": _compression_rate_released,
    "optimal_splits": _optimal_splits_rounded,
    "ste_backward": _ste_strict,
}


def load_checks(name):
    spec = importlib.util.spec_from_file_location(f"exercise_checks_{name}", EXERCISES[name].test_file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return [f for n, f in vars(module).items() if n.startswith("test_") and inspect.isfunction(f)
            and list(inspect.signature(f).parameters) == ["implementation"]]


def test_every_exercise_has_a_wrong_solution():
    assert set(WRONG_SOLUTIONS) == set(EXERCISES)


@pytest.mark.parametrize("name", list(WRONG_SOLUTIONS))
def test_a_wrong_solution_fails_a_check(name):
    checks = load_checks(name)
    caught = []
    for check in checks:
        try:
            check(WRONG_SOLUTIONS[name])
        except (Exception, pytest.fail.Exception) as error:     # a failed pytest.raises is not an Exception
            caught.append(f"{check.__name__}: {type(error).__name__}")
    assert caught, f"no check of {name} catches: {WRONG_SOLUTIONS[name].__doc__}"


# ----------------------------------------------------------------------------- the command
def run_command(*args, committed=False):
    """``python -m minilib.exercises ARGS``; with ``committed``, on the committed stubs instead of the reader's."""
    if not committed:
        return subprocess.run([sys.executable, "-m", "minilib.exercises", *args], cwd=ROOT, capture_output=True,
                              text=True, timeout=120)
    code = ("import sys, committed_stubs; committed_stubs.install(); "
            "from minilib.exercises.__main__ import main; sys.exit(main(sys.argv[1:]))")
    return subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env=committed_stubs.subprocess_env())


def test_check_of_an_untouched_stub_says_so():
    committed_stubs.skip_without_history()
    done = run_command("check", "secondary_masks", committed=True)
    assert done.returncode == 1, done.stderr
    assert "secondary_masks: 0/" in done.stdout
    assert "NotImplementedError" in done.stdout and "minilib/exercises/secondary_masks.py" in done.stdout


def test_check_of_the_reference_passes():
    done = run_command("check", "ste_backward", "--target", "reference")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ste_backward: 5/5 checks pass" in done.stdout


@pytest.mark.parametrize("args, words", [(["check", "no_such_exercise"], "NAME='no_such_exercise'"),
                                         (["check"], "NAME is missing"), (["check", ""], "NAME is missing")])
def test_a_bad_or_missing_name_lists_the_exercises(args, words):
    done = run_command(*args)
    assert done.returncode == 2
    assert words in done.stderr
    assert all(name in done.stderr for name in EXERCISES), done.stderr


def test_verdict_names_the_first_failing_check():
    outcome = Outcome(results={"t.py::test_a": "passed", "t.py::test_b": "failed", "t.py::test_c": "failed"},
                      failures={"t.py::test_b": "x\n>   assert 1 == 2\nE   assert 1 == 2", "t.py::test_c": "E  no"})
    message, ok = verdict("im2col", outcome)
    assert not ok
    assert message.startswith("im2col: 1/3 checks pass — first failing check: test_b")
    assert "E   assert 1 == 2" in message and "x\n" not in message


def test_verdict_ignores_skipped_checks():
    outcome = Outcome(results={"t.py::test_a": "passed", "t.py::test_b": "skipped"})
    assert verdict("im2col", outcome) == ("im2col: 1/1 checks pass — well done", True)
