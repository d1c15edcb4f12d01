"""Smoke test of the filter-basis-vs-dense convolution benchmark command.

Runs ``benchmarks/basis_benchmark.py --quick`` in a subprocess and checks the JSON it writes:
every key is there, every number is positive and finite, and the multiplication ratios are
Eq. 11's, m/n + m/(p*k^2). It deliberately does NOT compare timings with the targets: on a
shared 2-core machine speed is not a test outcome.
"""
from __future__ import annotations

import pytest

from bench_smoke_helpers import COMMON_TOP_KEYS, check_layer_record, check_targets, run_quick_benchmark

pytest.importorskip("torch", reason="the benchmark compares against PyTorch CPU")
pytest.importorskip("threadpoolctl", reason="the benchmark reads BLAS threads with threadpoolctl")

TOP_KEYS = COMMON_TOP_KEYS | {"implementations"}
SIDES = ("numpy_dense", "numpy_basis", "numpy_basis_reshaped", "torch_dense", "torch_basis_reshape", "torch_basis_loop")
SIDE_KEYS = {"forward_s", "forward_s_median", "forward_backward_s", "forward_backward_s_median",
             "forward_gflops", "forward_backward_gflops"}
LAYER_NUMBERS = {"mults_dense_per_sample", "mults_basis_per_sample", "mult_ratio",
                 "flops_forward_dense", "flops_forward_basis", "weights_dense", "weights_basis",
                 "numpy_ratio_forward", "numpy_ratio_forward_backward",
                 "numpy_reshaped_ratio_forward", "numpy_reshaped_ratio_forward_backward",
                 "torch_ratio_forward", "torch_ratio_forward_backward",
                 "torch_loop_over_reshape_forward", "torch_loop_over_reshape_forward_backward",
                 "numpy_basis_forward_pct_of_sgemm", "numpy_dense_forward_pct_of_sgemm"}
NAMES = ["srresnet_basis_64_14", "edsr8_basis_128_27", "conv3x3_64_s4", "conv3x3_64_s8", "conv1x1_128_s2"]


def test_quick_basis_benchmark_writes_complete_json(tmp_path):
    result = run_quick_benchmark("basis_benchmark.py", tmp_path, TOP_KEYS)
    assert set(SIDES) == result["implementations"].keys()

    assert [layer["name"] for layer in result["layers"]] == NAMES
    for layer in result["layers"]:
        check_layer_record(layer, SIDES, SIDE_KEYS, LAYER_NUMBERS)
        c, n, k, m, s = (layer[key] for key in ("in_channels", "out_channels", "kernel_size", "n_basis", "splits"))
        p = c // s
        assert layer["basis_channels"] == p and p * s == c
        # Eq. 11 as two convolutions: m*c*k^2 + n*s*m multiplications per pixel, instead of n*c*k^2
        assert layer["mult_ratio"] == pytest.approx(m / n + m / (p * k * k), rel=1e-12)
        assert layer["flops_forward_basis"] == pytest.approx(layer["mult_ratio"] * layer["flops_forward_dense"])
        # Eq. 6: the stored weights
        assert layer["weights_basis"] == m * p * k * k + n * s * m and layer["weights_dense"] == n * c * k * k
        # The benchmark checked the NumPy results against torch (both split modes) before timing them.
        assert set(layer["max_rel_error_vs_torch"]) == {"basis_reshape", "basis_loop", "dense"}
        for error in layer["max_rel_error_vs_torch"].values():
            assert 0 <= error < 1e-3
        # all benchmark layers have stride 1 and 'same' padding: the fast path, never the reshaped fallback
        assert layer["numpy_route"] == ("taps" if m < p or k == 1 else "columns")

    # NumPy: forward and forward+backward of every layer, 0.4 and 0.5 where the multiplications are at most a
    # quarter, else max(1, multiplication ratio); torch: loop / reshape >= 1 where s > 1
    mult_ratios = {layer["name"]: layer["mult_ratio"] for layer in result["layers"]}
    expected = []
    for name in NAMES:
        quarter = mult_ratios[name] <= 0.25
        expected += [(name, "numpy_ratio_forward", 0.4 if quarter else max(1.0, mult_ratios[name])),
                     (name, "numpy_ratio_forward_backward", 0.5 if quarter else max(1.0, mult_ratios[name]))]
        if name not in ("srresnet_basis_64_14", "edsr8_basis_128_27"):
            expected.append((name, "torch_loop_over_reshape_forward_backward", 1.0))
    assert [(t["layer"], t["metric"], t["threshold"]) for t in result["targets"]] == expected
    check_targets(result)
    for target in result["targets"]:
        assert target["passed"] == (target["value"] <= target["threshold"] if target["comparison"] == "<="
                                    else target["value"] >= target["threshold"])
