"""Smoke test of the convolution benchmark command.

Runs ``benchmarks/conv_benchmark.py --quick`` in a subprocess and checks the JSON it writes:
every key is there and every number is positive and finite. It deliberately does NOT
compare timings with the targets: on a shared 2-core machine speed is not a test outcome.
"""
from __future__ import annotations

import pytest

from bench_smoke_helpers import check_targets, positive_finite, run_quick_benchmark

pytest.importorskip("torch", reason="the benchmark compares against PyTorch CPU")
pytest.importorskip("threadpoolctl", reason="the benchmark reads BLAS threads with threadpoolctl")

SIDE_KEYS = {"forward_s", "forward_s_median", "forward_backward_s", "forward_backward_s_median",
             "forward_gflops", "forward_backward_gflops"}
LAYER_NUMBERS = {"flops_forward", "flops_forward_backward", "ratio_forward", "ratio_forward_backward",
                 "numpy_forward_pct_of_sgemm", "torch_forward_pct_of_sgemm", "gemm_forward_pct_of_sgemm",
                 "numpy_forward_pct_of_gemm", "numpy_forward_backward_pct_of_gemm", "torch_over_gemm_forward",
                 "torch_over_gemm_forward_backward"}


def test_quick_benchmark_writes_complete_json(tmp_path):
    result = run_quick_benchmark("conv_benchmark.py", tmp_path)

    names = [layer["name"] for layer in result["layers"]]
    assert names == ["lenet_conv1", "lenet_conv2", "conv3x3_64"]
    for layer in result["layers"]:
        for side in ("numpy", "torch", "gemm_same_shape"):
            assert SIDE_KEYS <= layer[side].keys(), (layer["name"], side)
            for key in SIDE_KEYS:
                positive_finite(layer[side][key], f"{layer['name']}.{side}.{key}")
        for key in LAYER_NUMBERS:
            positive_finite(layer[key], f"{layer['name']}.{key}")
        assert layer["flops_forward_backward"] == 3 * layer["flops_forward"]
        # The benchmark checked the NumPy result against torch before timing it.
        assert 0 <= layer["max_rel_error_vs_torch"] < 1e-3

    # forward and forward+backward against torch on LeNet's conv2 and the 3x3 64->64 layer
    assert [(t["layer"], t["metric"]) for t in result["targets"]] == [
        (name, metric) for name in ("lenet_conv2", "conv3x3_64") for metric in ("ratio_forward", "ratio_forward_backward")]
    check_targets(result)
