"""Timing the networks of chapters 7 and 10 together (``python -m minilib.reproduce compare-timing``, chapter 10).

:func:`minilib.timing.interleaved_medians` is checked with a fake clock (every round calls each function
once, in changing orders, and the medians are exact); the command's quick mode writes the schema the chapter reads;
the committed ``results/compare_timing.json`` is a full run over every network of today's plan; and
:func:`minilib.reports.compare.compare_rows` takes its times from the file when given one.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import reproduce_helpers

from minilib.reports import compare as C
from minilib.reproduce import cifar10, compare, compare_timing
from minilib.timing import interleaved_medians, interleaved_times
from minilib.results import RESULTS_DIR

ROOT = Path(__file__).resolve().parents[1]


class FakeClock:
    """A clock that only advances when a timed function says so, and a log of the calls."""

    def __init__(self):
        self.now, self.calls = 0.0, []

    def __call__(self):
        return self.now

    def function(self, name, durations):
        durations = iter(durations)

        def call():
            self.calls.append(name)
            self.now += next(durations)
        return call


def test_interleaved_medians_time_every_call_once_per_round_in_changing_orders():
    clock = FakeClock()
    calls = {"a": clock.function("a", [9, 1, 5, 3]), "b": clock.function("b", [9, 2, 2, 7]),
             "c": clock.function("c", [9, 4, 6, 8])}                          # first entry: the warm-up call
    medians = interleaved_medians(calls, rounds=3, warmup=1, seed=3, clock=clock)
    assert medians == {"a": 3, "b": 2, "c": 6}
    assert clock.calls[:3] == ["a", "b", "c"]
    rounds = [clock.calls[3 + 3 * r: 6 + 3 * r] for r in range(3)]
    assert all(sorted(order) == ["a", "b", "c"] for order in rounds)
    clock = FakeClock()
    times = interleaved_times({"a": clock.function("a", [9, 1, 5, 3])}, rounds=3, warmup=1, clock=clock)
    assert times == {"a": [1, 5, 3]}                                  # one time per round, in round order
    orders = {tuple(interleaved_medians_order(seed)) for seed in range(5)}
    assert len(orders) > 1, "the order of the calls changes with the seed"


def interleaved_medians_order(seed):
    clock = FakeClock()
    interleaved_medians({name: clock.function(name, [1] * 2) for name in "abcd"}, rounds=1, warmup=1, seed=seed,
                        clock=clock)
    return clock.calls[4:]


@pytest.mark.parametrize("kwargs, message", [({"calls": {}}, "calls must name at least one"),
                                             ({"rounds": 0}, "rounds"), ({"warmup": -1}, "warmup")])
def test_interleaved_medians_refuses_bad_input(kwargs, message):
    arguments = {"calls": {"a": lambda: None}, "rounds": 1, **kwargs}
    with pytest.raises(ValueError, match=message):
        interleaved_medians(**arguments)


def check_timing(timing: dict, quick: bool) -> None:
    """The file names every network of today's plan and its numbers are consistent."""
    assert timing["experiment"] == "compare-timing" and timing["quick"] is quick
    assert timing["command"].startswith("python -m minilib.reproduce compare-timing")
    assert isinstance(timing["git_revision"], str) and timing["git_revision"] and timing["date"]
    sizes = compare_timing.SIZES["quick" if quick else "full"]
    assert timing["batches"] == list(sizes["batches"]) and timing["numpy_batch"] == sizes["numpy_batch"]
    assert timing["threads"]["torch"] >= 1
    runs = compare.default_runs()
    assert list(timing["networks"]) == [run.name for run in runs]
    assert list(timing["cifar10_networks"]) == list(cifar10.RUNS)
    for kind, key, names in (("lenet", "networks", {run.name: compare_timing.timed_as(run) for run in runs}),
                             ("cifar10", "cifar10_networks", {run: run for run in cifar10.RUNS})):
        for name, architecture in names.items():
            entry = timing[key][name]
            assert entry["timed_as"] == architecture
            assert set(entry["torch_per_image_ms"]) == {f"batch_{b}" for b in sizes["batches"]}
            assert all(ms > 0 for ms in entry["torch_per_image_ms"].values())
            assert entry["numpy_ratio"] == pytest.approx(entry["numpy_method_seconds"] /
                                                         entry["numpy_standard_seconds"])
            assert entry["numpy_layer"]["name"] == compare_timing.NUMPY_LAYER[kind][0]
            assert entry["numpy_layer"]["input_shape"][0] == sizes["numpy_batch"][kind]
            assert entry == {**timing[key][entry["timed_as"]], "timed_as": architecture}
            assert len(entry["halves"]) == 2
            for half in entry["halves"]:
                assert half.keys() == {"torch_per_image_ms", "numpy_method_seconds", "numpy_standard_seconds",
                                       "numpy_ratio"}
                assert all(ms > 0 for ms in half["torch_per_image_ms"].values())


def test_quick_command_writes_every_network_and_skips_an_existing_file(tmp_path):
    out = tmp_path / "timing.json"
    proc = reproduce_helpers.run_command("compare-timing", "--quick", "--out", str(out), cwd=ROOT)
    assert "16 LeNets and 5 CIFAR-10 ResNets timed" in proc.stdout
    timing = json.loads(out.read_text())
    check_timing(timing, quick=True)
    assert timing["networks"]["basis-from-conv-b25"]["timed_as"] == "basis-scratch-b25"
    assert "BasisConv2d" in timing["networks"]["basis-from-conv-b25"]["numpy_layer"]["layer"]
    again = reproduce_helpers.run_command("compare-timing", "--quick", "--out", str(out), cwd=ROOT)
    assert "exists" in again.stdout and json.loads(out.read_text()) == timing


def test_bad_rounds_exit_with_a_message(tmp_path, capsys):
    from minilib.reproduce.__main__ import main

    assert main(["compare-timing", "--quick", "--rounds", "0", "--out", str(tmp_path / "t.json")]) == 2
    assert "--rounds must be a positive integer" in capsys.readouterr().err
    assert not (tmp_path / "t.json").exists()


def test_committed_timing_is_a_full_run_over_todays_plan():
    check_timing(json.loads((RESULTS_DIR / "compare_timing.json").read_text()), quick=False)


def test_rows_take_their_times_from_the_timing_file():
    runs = compare.default_runs()
    timing = {"networks": {run.name: {"torch_per_image_ms": {"batch_1": 1.0 + i, "batch_128": 0.5 + i},
                                      "numpy_ratio": 2.0 + i} for i, run in enumerate(runs)}}
    rows = C.compare_rows({}, timing=timing)
    assert [(row["latency_1"], row["latency_128"], row["numpy_ratio"]) for row in rows] == [
        (1.0 + i, 0.5 + i, 2.0 + i) for i in range(len(runs))]
    assert all(row["latency_1"] is None for row in C.compare_rows({}))
