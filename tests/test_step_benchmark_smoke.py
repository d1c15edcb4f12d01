"""Smoke test of the training-step benchmark command.

Runs ``benchmarks/step_benchmark.py --quick`` in a subprocess and checks the JSON it writes: every key is there,
every time is positive and finite, the multiplication ratios are the chapter's (:mod:`minilib.reproduce.cifar10`),
every block convolution of every method has its recorded choice, and the targets are the methods that need fewer
multiplications than the baseline. It deliberately does NOT compare timings with the targets: on a shared 2-core
machine speed is not a test outcome.
"""
from __future__ import annotations

import pytest

from bench_smoke_helpers import COMMON_TOP_KEYS, check_targets, positive_finite, run_quick_benchmark

pytest.importorskip("torch", reason="the benchmark times PyTorch training steps")
pytest.importorskip("threadpoolctl", reason="the benchmark reads BLAS threads with threadpoolctl")

TOP_KEYS = COMMON_TOP_KEYS | {"networks", "recipe", "chooser_repeats"}
NETWORKS = ["baseline", "basis-shared", "basis-split", "mvnet-b-4", "versatile"]
TIMES = ("step_default_s", "step_default_s_median", "step_chosen_s", "step_chosen_s_median",
         "default_over_baseline", "chosen_over_baseline", "chosen_over_default", "mult_ratio",
         "converted_mult_ratio", "mults_per_image", "converted_mults_per_image")
FORMULATIONS = {"BasisConv2d": {"reshape", "loop", "grouped", "dense"}, "VersatileConv2d": {"cropped", "dense"},
                "FullStackConv2d": {"dense"}}
BLOCK_CONVS = 18            # ResNet-20: 3 stages x 3 blocks x 2 convolutions


def test_quick_step_benchmark_writes_complete_json(tmp_path):
    result = run_quick_benchmark("step_benchmark.py", tmp_path, TOP_KEYS)
    assert result["chooser_repeats"] == 1
    networks = {net["name"]: net for net in result["networks"]}
    assert list(networks) == NETWORKS
    for net in result["networks"]:
        for key in TIMES:
            positive_finite(net[key], f"{net['name']}.{key}")
        assert 0 <= net["max_rel_error_chosen_vs_default"] < 1e-4
    base = networks["baseline"]
    assert base["mult_ratio"] == base["chosen_over_baseline"] == base["default_over_baseline"] == 1.0
    assert base["formulations"] == {} and base["chooser_s"] == 0
    # the chapter's counts (minilib.reproduce.cifar10's docstring): 156 %, 71 %, 26 %, 56 % of the multiplications
    assert networks["basis-shared"]["mult_ratio"] > 1
    for name, ratio in (("basis-split", 0.71), ("mvnet-b-4", 0.26), ("versatile", 0.56)):
        assert networks[name]["mult_ratio"] == pytest.approx(ratio, abs=0.005)

    for name in NETWORKS[1:]:
        layers = [entry for entry in result["layers"] if entry["network"] == name]
        assert len(layers) == len(networks[name]["formulations"]) == BLOCK_CONVS
        for entry in layers:
            allowed = FORMULATIONS[entry["kind"]]
            assert set(entry["times_s"]) == allowed and entry["choice"] in allowed
            assert networks[name]["formulations"][entry["layer"]] == entry["choice"]
            assert entry["input_shape"][0] == result["batch"]
            for formulation, seconds in entry["times_s"].items():
                positive_finite(seconds, f"{name}.{entry['layer']}.{formulation}")

    assert [t["layer"] for t in result["targets"]] == ["basis-split", "mvnet-b-4", "versatile"]
    check_targets(result)
    for target in result["targets"]:
        assert target["threshold"] == 1.1 and target["metric"] == "chosen_over_baseline"
        assert target["passed"] == (target["value"] <= target["threshold"])
