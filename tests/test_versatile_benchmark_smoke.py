"""Smoke test of the versatile-vs-standard convolution benchmark command.

Runs ``benchmarks/versatile_benchmark.py --quick`` in a subprocess and checks the JSON it
writes: every key is there, every number is positive and finite, and the Proposition-1
multiplication ratios are the paper's. It deliberately does NOT compare timings with the
targets: on a shared 2-core machine speed is not a test outcome.
"""
from __future__ import annotations

import pytest

from bench_smoke_helpers import COMMON_TOP_KEYS, check_layer_record, check_targets, run_quick_benchmark

pytest.importorskip("torch", reason="the benchmark compares against PyTorch CPU")
pytest.importorskip("threadpoolctl", reason="the benchmark reads BLAS threads with threadpoolctl")

TOP_KEYS = COMMON_TOP_KEYS | {"implementations"}
SIDES = ("numpy_standard", "numpy_versatile", "numpy_versatile_cropped", "torch_standard", "torch_versatile")
SIDE_KEYS = {"forward_s", "forward_s_median", "forward_backward_s", "forward_backward_s_median",
             "forward_gflops", "forward_backward_gflops"}
LAYER_NUMBERS = {"mults_standard_per_sample", "mults_versatile_per_sample", "mult_ratio",
                 "flops_forward_standard", "flops_forward_versatile", "weights_standard", "weights_versatile",
                 "numpy_ratio_forward", "numpy_ratio_forward_backward",
                 "torch_ratio_forward", "torch_ratio_forward_backward",
                 "numpy_cropped_ratio_forward", "numpy_cropped_ratio_forward_backward",
                 "numpy_versatile_forward_pct_of_sgemm", "numpy_standard_forward_pct_of_sgemm"}
# Proposition 1: sum_i (d - 2i)^2 / (s * d^2).
MULT_RATIO = {5: (25 + 9 + 1) / (3 * 25), 3: (9 + 1) / (2 * 9)}


def test_quick_versatile_benchmark_writes_complete_json(tmp_path):
    result = run_quick_benchmark("versatile_benchmark.py", tmp_path, TOP_KEYS)
    assert set(SIDES) == result["implementations"].keys()

    names = [layer["name"] for layer in result["layers"]]
    assert names == ["lenet_v3_conv2", "conv5x5_48", "conv3x3_64"]
    for layer in result["layers"]:
        check_layer_record(layer, SIDES, SIDE_KEYS, LAYER_NUMBERS)
        d = layer["kernel_size"]
        assert layer["mult_ratio"] == pytest.approx(MULT_RATIO[d], rel=1e-12)
        assert layer["flops_forward_versatile"] == pytest.approx(layer["mult_ratio"] * layer["flops_forward_standard"])
        # Same output channels: the versatile layer stores out_channels / s primaries, i.e. 1/s of the weights.
        assert layer["primaries"] * layer["secondaries"] == layer["out_channels"]
        assert layer["weights_versatile"] * layer["secondaries"] == layer["weights_standard"]
        # The benchmark checked both NumPy results against torch before timing them.
        for kind in ("versatile", "versatile_cropped", "standard"):
            assert 0 <= layer["max_rel_error_vs_torch"][kind] < 1e-3

    # two targets per 5x5 layer: the forward ratio, then the forward+backward ratio
    assert [(t["layer"], t["metric"]) for t in result["targets"]] == [
        (name, metric) for name in ("lenet_v3_conv2", "conv5x5_48")
        for metric in ("numpy_ratio_forward", "numpy_ratio_forward_backward")]
    assert [t["threshold"] for t in result["targets"]] == [0.55, 0.6] * 2
    check_targets(result)
    for target in result["targets"]:
        assert target["passed"] == (target["value"] <= target["threshold"])
