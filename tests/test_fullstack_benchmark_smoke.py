"""Smoke test of the full-stack-vs-standard convolution benchmark command.

Runs ``benchmarks/fullstack_benchmark.py --quick`` in a subprocess and checks the JSON it
writes: every key is there, every number is positive and finite, the multiplication counts
are Eq. 11 and Eq. 13's (k*c*d^2 vs n*c*d^2 per position, a ratio of s, Eq. 14), and there are
no wall-time targets. Speed is not a test outcome on a shared 2-core machine.
"""
from __future__ import annotations

import pytest

from bench_smoke_helpers import COMMON_TOP_KEYS, check_layer_record, check_targets, run_quick_benchmark

pytest.importorskip("torch", reason="the benchmark compares against PyTorch CPU")
pytest.importorskip("threadpoolctl", reason="the benchmark reads BLAS threads with threadpoolctl")

TOP_KEYS = COMMON_TOP_KEYS | {"implementations", "targets_note"}
SIDES = ("numpy_fast", "numpy_dense", "numpy_conv", "torch_fullstack", "torch_conv")
SIDE_KEYS = {"forward_s", "forward_s_median", "forward_backward_s", "forward_backward_s_median"}
LAYER_NUMBERS = {"weights_conv", "weights_fullstack", "mask_bits", "mults_fast_per_sample", "mults_dense_per_sample",
                 "mults_conv_per_sample", "mult_reduction", "machine_mults_fast_per_sample",
                 "numpy_fast_over_dense_forward", "numpy_fast_over_dense_forward_backward",
                 "numpy_fast_over_conv_forward", "numpy_fast_over_conv_forward_backward",
                 "numpy_dense_over_conv_forward", "numpy_dense_over_conv_forward_backward",
                 "torch_fullstack_over_conv_forward", "torch_fullstack_over_conv_forward_backward"}
NAMES = ["lenet_conv2_s10_shared", "lenet_conv2_s10_separate", "conv3x3_64_s4_shared", "conv3x3_64_s4_separate",
         "conv3x3_64_s8_shared", "conv3x3_64_s8_separate"]


def test_quick_fullstack_benchmark_writes_complete_json(tmp_path):
    result = run_quick_benchmark("fullstack_benchmark.py", tmp_path, TOP_KEYS)
    assert set(SIDES) == result["implementations"].keys()

    assert [layer["name"] for layer in result["layers"]] == NAMES
    for layer in result["layers"]:
        check_layer_record(layer, SIDES, SIDE_KEYS, LAYER_NUMBERS)
        c, n, d, s, k = (layer[key] for key in ("in_channels", "out_channels", "kernel_size", "s", "n_filters"))
        positions = layer["output_hw"] ** 2
        assert k * s == n and layer["masks"] in ("shared", "separate")
        # Eq. 13: k*c*d^2 multiplications per position; Eq. 11: n*c*d^2, for the dense path and Conv2d alike
        assert layer["mults_fast_per_sample"] == k * c * d * d * positions
        assert layer["mults_dense_per_sample"] == layer["mults_conv_per_sample"] == n * c * d * d * positions
        assert layer["mult_reduction"] == pytest.approx(s, rel=1e-12)                     # Eq. 14
        assert layer["machine_mults_fast_per_sample"] == (k + k * s) * c * d * d * positions
        # storage: k full-stack filters; one bit per mask entry, s masks shared or one per output
        assert layer["weights_fullstack"] == k * c * d * d and layer["weights_conv"] == n * c * d * d
        assert layer["mask_bits"] == (s if layer["masks"] == "shared" else n) * c * d * d
        # the benchmark checked both NumPy full-stack paths and the convolution against torch before timing
        assert set(layer["max_rel_error_vs_torch"]) == {"fast", "dense", "conv"}
        for error in layer["max_rel_error_vs_torch"].values():
            assert 0 <= error < 1e-3
        # one filter's mask product of Eq. 13, timed with ±1 masks, a float matrix, additions only, unpacked bits
        arithmetic = layer["mask_arithmetic"]
        assert (arithmetic["positions"], arithmetic["taps"], arithmetic["masks"]) == (
            result["batch"] * positions, c * d * d, s)
        for key in ("pm1_s", "float_s", "add_only_s", "unpack_s", "pm1_over_float", "add_only_over_pm1",
                    "unpack_over_pm1"):
            assert arithmetic[key] > 0 and arithmetic[key] < float("inf"), key
        # float32 ±1 masks: 4 bytes per entry; packed: one bit per entry, rounded up to whole bytes per mask column
        assert arithmetic["mask_bytes_float32"] == 4 * c * d * d * s
        assert arithmetic["mask_bytes_packed"] == -(-c * d * d // 8) * s

    assert result["targets"] == [] and result["all_targets_passed"] is True
    assert "Sec. 2.4" in result["targets_note"]
    check_targets(result)
