"""Shared helpers for the benchmark smoke tests: run a benchmark script in --quick mode and
check what every benchmark JSON holds (the run's metadata and the sgemm measurement).

Speed is never a test outcome here: on a shared 2-core machine the timings only have to be
positive and finite.
"""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Top-level keys every benchmark writes; each benchmark adds its own.
COMMON_TOP_KEYS = {"command", "date_utc", "git", "versions", "blas", "torch_threads", "cpu_model", "dtype",
                   "load_average_start", "load_average_end", "pause_s",
                   "batch", "repeats", "quick", "timing", "sgemm", "layers", "targets", "all_targets_passed"}
TARGET_KEYS = {"name", "layer", "metric", "comparison", "threshold", "value", "passed"}


def positive_finite(value, where):
    assert isinstance(value, (int, float)) and not isinstance(value, bool), f"{where} = {value!r} is not a number"
    assert math.isfinite(value) and value > 0, f"{where} = {value!r} must be positive and finite"


def run_quick_benchmark(script_name: str, tmp_path: Path, top_keys=COMMON_TOP_KEYS) -> dict:
    """Run ``benchmarks/<script_name> --quick`` from ``tmp_path``, check the common keys of the JSON
    it writes (all of ``top_keys`` present, metadata and sgemm sane) and return the result dict."""
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script_name), "--quick", "--sgemm-size", "256",
                           "--out", str(out)], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "sgemm" in proc.stdout and "targets:" in proc.stdout
    result = json.loads(out.read_text())

    assert top_keys <= result.keys(), top_keys - result.keys()
    assert script_name in result["command"] and "--quick" in result["command"]
    assert result["quick"] is True and result["batch"] == 8 and result["repeats"] == 1
    assert result["dtype"] == "float32"
    assert result["date_utc"].endswith("+00:00")
    assert isinstance(result["git"]["revision"], str) and result["git"]["revision"]
    assert result["git"]["dirty"] in (True, False, None)
    assert {"numpy", "torch", "python"} <= result["versions"].keys()
    assert {"internal_api", "architecture", "threads"} <= result["blas"].keys()
    assert result["torch_threads"] == result["blas"]["threads"] >= 1
    assert isinstance(result["cpu_model"], str) and result["cpu_model"]

    for key in ("seconds", "seconds_median", "gflops"):
        positive_finite(result["sgemm"][key], f"sgemm.{key}")
    return result


def check_targets(result: dict) -> None:
    """Every target has its keys, a positive finite value and a boolean verdict, and
    ``all_targets_passed`` agrees with them."""
    for target in result["targets"]:
        assert TARGET_KEYS <= target.keys()
        positive_finite(target["value"], target["name"])
        assert isinstance(target["passed"], bool)
    assert result["all_targets_passed"] == all(t["passed"] for t in result["targets"])


def check_layer_record(layer: dict, sides, side_keys, layer_numbers) -> None:
    """Every timed side of one layer record has all ``side_keys``, and they and ``layer_numbers`` are positive."""
    for side in sides:
        assert side_keys <= layer[side].keys(), (layer["name"], side)
        for key in side_keys:
            positive_finite(layer[side][key], f"{layer['name']}.{side}.{key}")
    for key in layer_numbers:
        positive_finite(layer[key], f"{layer['name']}.{key}")

