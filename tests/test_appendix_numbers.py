"""The appendix "Paper versus released code" quotes numbers from the committed runs; each must equal the run's."""
import functools
import pathlib

import pytest

from minilib.reproduce import report as R
from minilib.results import read_result

APPENDIX = pathlib.Path(__file__).resolve().parents[1] / "book" / "paper_vs_code.md"


@functools.cache
def _groups(experiment: str) -> dict:
    return R.group_results(R.load_results(experiment))       # read once, however many quotes use it


def _mean(experiment: str, run: str, value) -> float:
    groups = _groups(experiment)
    assert run in groups, f"{experiment} run {run} is quoted by the appendix but has no result file"
    return float(groups[run].values(value).mean())


def _accuracy(run: str) -> float:
    return _mean("mnist", run, lambda result: 100 * result["test_accuracy"])


QUOTES = [   # (what the appendix says, with {} for the number, the number from the results, its format)
    ("it trains to {} %, against the paper's 98.90 %", lambda: _accuracy("mvnet-a-50-lam8e-05"), "{:.2f}"),
    ("at $s = 20$: {} % against", lambda: _accuracy("mvnet-a-20"), "{:.2f}"),
    ("98.46 % against {} % (MVNet-A)", lambda: _accuracy("mvnet-a-rand-20"), "{:.2f}"),
    ("(MVNet-A) and {} % against", lambda: _accuracy("mvnet-b-20"), "{:.2f}"),
    ("98.19 % against {} % (MVNet-B)", lambda: _accuracy("mvnet-b-rand-20"), "{:.2f}"),
    ("it takes {} times as long as the standard convolution",
     lambda: read_result("compare_timing.json")["cifar10_networks"]["mvnet-b-4"]["numpy_ratio"], "{:.2f}"),
]


@pytest.mark.parametrize("sentence, value, fmt", QUOTES, ids=[quote[0][:40] for quote in QUOTES])
def test_a_quoted_number_equals_the_committed_run(sentence, value, fmt):
    text = " ".join(APPENDIX.read_text().split())
    assert sentence.format(fmt.format(value())) in text
