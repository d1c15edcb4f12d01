"""The appendix "Paper versus released code" quotes numbers from the committed runs; each must equal the run's."""
import pathlib

import pytest

from minilib.results import read_result

APPENDIX = pathlib.Path(__file__).resolve().parents[1] / "book" / "paper_vs_code.md"


# The MVNet accuracies on MNIST change as seeds are added: the appendix points to chapter 9's claim table for them
# instead of quoting them. What it still quotes is checked here.
QUOTES = [   # (what the appendix says, with {} for the number, the number from the results, its format)
    ("it takes {} times as long as the standard convolution",
     lambda: read_result("compare_timing.json")["cifar10_networks"]["mvnet-b-4"]["numpy_ratio"], "{:.2f}"),
]


@pytest.mark.parametrize("sentence, value, fmt", QUOTES, ids=[quote[0][:40] for quote in QUOTES])
def test_a_quoted_number_equals_the_committed_run(sentence, value, fmt):
    text = " ".join(APPENDIX.read_text().split())
    assert sentence.format(fmt.format(value())) in text
