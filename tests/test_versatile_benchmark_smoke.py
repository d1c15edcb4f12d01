"""Smoke test of the versatile-vs-standard convolution benchmark command.

Runs ``benchmarks/versatile_benchmark.py --quick`` in a subprocess and checks the JSON it
writes: every key is there, every number is positive and finite, and the Proposition-1
multiplication ratios are the paper's. It deliberately does NOT compare timings with the
targets: on a shared 2-core machine speed is not a test outcome.
"""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="the benchmark compares against PyTorch CPU")
pytest.importorskip("threadpoolctl", reason="the benchmark reads BLAS threads with threadpoolctl")

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "versatile_benchmark.py"

TOP_KEYS = {"command", "date_utc", "git", "versions", "blas", "torch_threads", "cpu_model", "dtype",
            "load_average_start", "load_average_end", "pause_s", "implementations",
            "batch", "repeats", "quick", "timing", "sgemm", "layers", "targets", "all_targets_passed"}
SIDES = ("numpy_standard", "numpy_versatile", "torch_standard", "torch_versatile")
SIDE_KEYS = {"forward_s", "forward_s_median", "forward_backward_s", "forward_backward_s_median",
             "forward_gflops", "forward_backward_gflops"}
LAYER_NUMBERS = {"mults_standard_per_sample", "mults_versatile_per_sample", "mult_ratio",
                 "flops_forward_standard", "flops_forward_versatile", "weights_standard", "weights_versatile",
                 "numpy_ratio_forward", "numpy_ratio_forward_backward",
                 "torch_ratio_forward", "torch_ratio_forward_backward",
                 "numpy_versatile_forward_pct_of_sgemm", "numpy_standard_forward_pct_of_sgemm"}
TARGET_KEYS = {"name", "layer", "metric", "comparison", "threshold", "value", "passed"}
# Proposition 1: sum_i (d - 2i)^2 / (s * d^2).
MULT_RATIO = {5: (25 + 9 + 1) / (3 * 25), 3: (9 + 1) / (2 * 9)}


def _positive_finite(value, where):
    assert isinstance(value, (int, float)) and not isinstance(value, bool), f"{where} = {value!r} is not a number"
    assert math.isfinite(value) and value > 0, f"{where} = {value!r} must be positive and finite"


def test_quick_versatile_benchmark_writes_complete_json(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--sgemm-size", "256", "--out", str(out)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "sgemm" in proc.stdout and "targets:" in proc.stdout
    result = json.loads(out.read_text())

    assert TOP_KEYS <= result.keys(), TOP_KEYS - result.keys()
    assert "versatile_benchmark.py" in result["command"] and "--quick" in result["command"]
    assert result["quick"] is True and result["batch"] == 8 and result["repeats"] == 1
    assert result["dtype"] == "float32"
    assert result["date_utc"].endswith("+00:00")
    assert isinstance(result["git"]["revision"], str) and result["git"]["revision"]
    assert result["git"]["dirty"] in (True, False, None)
    assert {"numpy", "torch", "python"} <= result["versions"].keys()
    assert {"internal_api", "architecture", "threads"} <= result["blas"].keys()
    assert result["torch_threads"] == result["blas"]["threads"] >= 1
    assert isinstance(result["cpu_model"], str) and result["cpu_model"]
    assert set(SIDES) == result["implementations"].keys()

    for key in ("seconds", "seconds_median", "gflops"):
        _positive_finite(result["sgemm"][key], f"sgemm.{key}")

    names = [layer["name"] for layer in result["layers"]]
    assert names == ["lenet_v3_conv2", "conv5x5_48", "conv3x3_64"]
    for layer in result["layers"]:
        for side in SIDES:
            assert SIDE_KEYS <= layer[side].keys(), (layer["name"], side)
            for key in SIDE_KEYS:
                _positive_finite(layer[side][key], f"{layer['name']}.{side}.{key}")
        for key in LAYER_NUMBERS:
            _positive_finite(layer[key], f"{layer['name']}.{key}")
        d = layer["kernel_size"]
        assert layer["mult_ratio"] == pytest.approx(MULT_RATIO[d], rel=1e-12)
        assert layer["flops_forward_versatile"] == pytest.approx(layer["mult_ratio"] * layer["flops_forward_standard"])
        # Same output channels: the versatile layer stores out_channels / s primaries, i.e. 1/s of the weights.
        assert layer["primaries"] * layer["secondaries"] == layer["out_channels"]
        assert layer["weights_versatile"] * layer["secondaries"] == layer["weights_standard"]
        # The benchmark checked both NumPy results against torch before timing them.
        for kind in ("versatile", "standard"):
            assert 0 <= layer["max_rel_error_vs_torch"][kind] < 1e-3

    assert [t["layer"] for t in result["targets"]] == ["lenet_v3_conv2", "conv5x5_48"]
    for target in result["targets"]:
        assert TARGET_KEYS <= target.keys()
        _positive_finite(target["value"], target["name"])
        assert isinstance(target["passed"], bool)
        assert target["passed"] == (target["value"] <= target["threshold"])
    assert result["all_targets_passed"] == all(t["passed"] for t in result["targets"])
