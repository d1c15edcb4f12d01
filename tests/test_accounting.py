"""Accounting: exact totals of every LeNet variant, the paper's printed strings, per-layer rows, both backends."""
import json

import numpy as np
import pytest
import torch

import minilib as ml
from minilib.accounting import (format_flops, format_memory, format_millions, format_weights, memory_kb, paper_number,
                                printed_decimals, summarize)
from minilib.models import VARIANTS, lenet
from minilib.reports.papers import MVNET_TABLE1, VERSATILE_TABLE2, VERSATILE_TABLE3
from minilib.torch.models import lenet as torch_lenet

MNIST = (1, 28, 28)

# (filter weights, memory KB rounded to 0.1, multiplications per image); all but v2-2 and v2-3 follow
# from the paper's architecture (Prop. 1, stored channels c, multiplications on ĉ channels)
TOTALS = {
    "baseline": (430_500, 1681.6, 2_293_000),
    "versatile-1": (430_500, 1681.6, 2_293_000),
    "versatile-2": (218_100, 852.0, 1_200_800),
    "versatile-3": (218_100, 852.0, 1_200_800),
    "versatile-v2-1": (117_900, 460.5, 1_217_520),
    "versatile-v2-2": (117_900, 460.5, 1_172_200),     # our reading: c - ĉ = 2, g = 2 (see minilib.models)
    "versatile-v2-3": (79_093, 309.0, 1_167_960),      # our choice: 6 and 82 primaries (see minilib.models)
}
FOLLOWS_FROM_PAPER = ["baseline", "versatile-1", "versatile-2", "versatile-3", "versatile-v2-1"]

# MVNet Table 1: (filter weights, mask bits, 32-bit params incl. biases, fast-path multiplications). s = 20 uses
# k = ceil(50/20) = 3 filters in layer 2 (the first 50 of 60 sub-filters), which gives the printed #param.
MVNET = {
    "mvnet-a-10": (47_550, 13_250, 48_130, 233_800),
    "mvnet-b-10": (47_550, 425_500, 48_130, 233_800),
    "mvnet-a-20": (26_525, 26_500, 27_105, 135_400),
    "mvnet-b-20": (26_525, 425_500, 27_105, 135_400),
    "mvnet-a-rand-20": (26_525, 26_500, 27_105, 135_400),
    "mvnet-b-rand-20": (26_525, 425_500, 27_105, 135_400),
    "mvnet-a-50": (13_525, 66_250, 14_105, 59_400),     # Fig. 2(a): "0.16×10^5 parameters" for s = 50
}


def _summary(name, backend="numpy"):
    make = {"numpy": lenet, "torch": torch_lenet}[backend]
    return summarize(make(name, rng=np.random.default_rng(0)), MNIST)


@pytest.mark.parametrize("name", list(TOTALS))
def test_totals(name):
    summary = _summary(name)
    weights, kb, flops = TOTALS[name]
    assert summary.conv_weights == weights and summary.flops == flops and summary.mask_bits == 0
    assert round(summary.memory_kb, 1) == kb
    assert summary.memory_kb == weights * 4 / 1024
    assert summary.params == lenet(name, rng=np.random.default_rng(0)).num_parameters()


@pytest.mark.parametrize("name", FOLLOWS_FROM_PAPER)
def test_printed_strings_equal_the_paper(name):
    printed = VERSATILE_TABLE2.get(name) or VERSATILE_TABLE3[name]
    ours = _summary(name).paper_strings(like=printed)
    assert ours == {key: printed[key] for key in ("weights", "memory", "flops")}


def test_v2_models_2_and_3_differ_from_the_printed_rows_where_documented():
    v2_2 = _summary("versatile-v2-2").paper_strings(like=VERSATILE_TABLE3["versatile-v2-2"])
    assert v2_2 == {"weights": "1.18×10^5", "memory": "460.5KB", "flops": "11.72×10^5"}     # printed 11.17
    v2_3 = _summary("versatile-v2-3").paper_strings(like=VERSATILE_TABLE3["versatile-v2-3"])
    assert v2_3 == {"weights": "0.79×10^5", "memory": "309.0KB", "flops": "11.67×10^5"}     # printed 309.1, 12.12


def test_paper_rounds_weights_and_memory_but_truncates_flops():
    """The rule that matches every derivable row; the other rule fails at least one of them."""
    assert format_weights(218_100) == "2.2×10^5"             # truncating would print 2.1
    assert format_weights(117_900, 2) == "1.18×10^5"         # truncating would print 1.17
    assert format_memory(memory_kb(218_100)) == "852.0KB"    # 851.953 truncated would be 851.9
    assert format_flops(1_200_800) == "12.00×10^5"           # rounding would print 12.01
    assert format_flops(1_217_520) == "12.17×10^5"           # rounding would print 12.18
    assert format_flops(2_293_000) == "22.93×10^5" and format_weights(430_500) == "4.3×10^5"
    assert format_weights(79_093, 2) == "0.79×10^5"          # the exponent stays 5 below 10^5
    assert format_weights(125, 1) == "0.0×10^5" and format_weights(15_000, 1) == "0.2×10^5"  # half-up


def test_paper_number_and_decimals_parse_the_printed_entries():
    assert paper_number("4.3×10^5") == 430_000 and paper_number("22.93×10^5") == 2_293_000
    assert paper_number("1681.6KB") == 1681.6 and paper_number("99.20%") == 99.2
    assert printed_decimals("1.18×10^5") == 2 and printed_decimals("852.0KB") == 1
    with pytest.raises(ValueError, match="not a number as the paper prints it"):
        paper_number("1.6MB")


@pytest.mark.parametrize("name", list(VARIANTS))
def test_numpy_and_torch_summaries_are_equal(name):
    assert _summary(name).to_dict() == _summary(name, "torch").to_dict()


def test_baseline_rows():
    rows = _summary("baseline").rows
    assert [(r.name, r.type) for r in rows] == [("0", "Conv2d"), ("1", "MaxPool2d"), ("2", "Conv2d"), ("3", "MaxPool2d"),
                                              ("4", "Conv2d"), ("5", "ReLU"), ("6", "Conv2d"), ("7", "Flatten")]
    assert [r.out_shape for r in rows] == [(20, 24, 24), (20, 12, 12), (50, 8, 8), (50, 4, 4), (500, 1, 1),
                                           (500, 1, 1), (10, 1, 1), (10,)]
    assert rows[0].in_shape == MNIST
    assert [r.conv_weights for r in rows] == [500, 0, 25_000, 0, 400_000, 0, 5_000, 0]
    assert [r.params for r in rows] == [520, 0, 25_050, 0, 400_500, 0, 5_010, 0]
    assert [r.flops for r in rows] == [288_000, 0, 1_600_000, 0, 400_000, 0, 5_000, 0]   # taps x output pixels


def test_versatile_rows_come_from_the_layers_cost_method():
    rows = [r for r in _summary("versatile-v2-1").rows if r.type == "VersatileConv2d"]
    # Prop. 1 on ĉ channels: sum_i (d-2i)^2 * ĉ * n * P * OH*OW
    assert [r.flops for r in rows] == [35 * 1 * 1 * 7 * 576, 35 * 20 * 2 * 9 * 64, 20 * 53 * 2 * 125 * 1]
    assert [r.conv_weights for r in rows] == [25 * 1 * 7, 25 * 21 * 9, 16 * 54 * 125]
    assert [r.params for r in rows] == [175 + 7, 4725 + 9, 108_000 + 125]


def test_table_and_dict_are_plain():
    summary = _summary("versatile-3")
    text = str(summary)
    assert text == summary.table()
    assert "VersatileConv2d" in text and "218,100" in text and "1,200,800" in text and "852.0KB" in text
    data = summary.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["totals"]["conv_weights"] == 218_100 and data["paper_strings"]["flops"] == "12.00×10^5"
    assert data["layers"][0]["in_shape"] == [1, 28, 28] and data["layers"][0]["memory_kb"] == 175 * 4 / 1024


def test_linear_layers_and_mask_bits():
    class Masked(ml.Module):
        """A method layer stand-in: 3 stored weights and 8 mask bits, costed by its own method."""
        def __init__(self):
            super().__init__()
            self._init_params({"weight": np.zeros(3)})

        def forward(self, x):
            return x

        def cost(self, in_shape, out_shape):
            return {"conv_weights": 3, "mask_bits": 8, "params": 3, "flops": 11}

    model = ml.Sequential(ml.Flatten(), ml.Linear(12, 5), ml.ReLU(), Masked())
    summary = summarize(model, (3, 2, 2))
    assert [r.flops for r in summary.rows] == [0, 60, 0, 11]
    assert summary.conv_weights == 63 and summary.params == 68 and summary.mask_bits == 8
    assert summary.memory_kb == (63 * 32 + 8) / 8 / 1024


def test_summarize_leaves_the_model_as_it_was():
    model = ml.Sequential(ml.Conv2d(1, 2, 3, rng=np.random.default_rng(0)), ml.BatchNorm2d(2))
    before = {k: v.copy() for k, v in model.state_dict().items()}
    model.train()
    summary = summarize(model, (1, 6, 6))
    assert model.training and all(m.training for _, m in model.named_modules())
    assert all(np.array_equal(before[k], v) for k, v in model.state_dict().items())   # running stats untouched
    assert "forward" not in model[0].__dict__
    assert summary.rows[1].params == 4 and summary.rows[1].flops == 0

    twin = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2)).train()
    torch_summary = summarize(twin, (1, 6, 6))
    assert twin.training and int(twin[1].num_batches_tracked) == 0 and not twin[0]._forward_hooks
    assert [r.to_dict() for r in torch_summary.rows] == [r.to_dict() for r in summary.rows]


def test_layer_without_cost_information_raises():
    class Scale(ml.Module):
        def __init__(self):
            super().__init__()
            self._init_params({"gain": np.ones(1)})

        def forward(self, x):
            return x * self.params["gain"]

    with pytest.raises(TypeError, match=r"layer '1' \(Scale\) has parameters but no cost information"):
        summarize(ml.Sequential(ml.ReLU(), Scale()), (2,))
    with pytest.raises(TypeError, match=r"layer '0' \(PReLU\) has parameters but no cost information"):
        summarize(torch.nn.Sequential(torch.nn.PReLU()), (3,))


def test_bad_cost_method_and_bad_model_are_reported():
    class Broken(ml.Module):
        def forward(self, x):
            return x

        def cost(self, in_shape, out_shape):
            return {"flops": 1}

    with pytest.raises(ValueError, match=r"Broken.cost\(\) of layer '0' returned \['flops'\]"):
        summarize(ml.Sequential(Broken()), (2,))
    with pytest.raises(TypeError, match="model must be a minilib Module or a torch.nn.Module"):
        summarize(lambda x: x, (2,))


@pytest.mark.parametrize("name", list(MVNET))
def test_mvnet_totals_count_masks_as_bits_and_multiplications_on_the_fast_path(name):
    weights, bits, params, flops = MVNET[name]
    for backend in ("numpy", "torch"):
        summary = _summary(name, backend)
        assert (summary.conv_weights, summary.mask_bits, summary.params, summary.flops) == (weights, bits, params, flops)
        assert summary.params_32bit == params + bits / 32
        assert summary.memory_kb == (32 * weights + bits) / 8 / 1024


def test_mvnet_table1_strings():
    """#param (32-bit) matches every printed row; #MUL matches for s = 10, while for s = 20 the paper prints the
    baseline's 2.29 M / 20 = 0.11 and the fast path of the s = 20 networks makes 0.14 M multiplications."""
    for name, printed in MVNET_TABLE1.items():
        summary = _summary(name)
        assert format_weights(round(summary.params_32bit), 2) == printed["params"], name
        expected_muls = "0.14" if name.endswith("20") else printed["muls"]
        assert format_millions(summary.flops) == expected_muls, name
    assert format_weights(round(_summary("mvnet-a-50").params_32bit), 2) == "0.16×10^5"

