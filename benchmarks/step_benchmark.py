"""Benchmark one training step of the chapter-7 ResNet-20 with each method's twins against the baseline's.

    python benchmarks/step_benchmark.py [--repeats R] [--batch 128] [--out results/bench_step.json]
    python benchmarks/step_benchmark.py --quick        # smoke run: batch 8, 1 repeat

The networks are the five of :data:`minilib.reproduce.cifar10.RUNS` (ResNet-20, width 16, float32, built by
:func:`minilib.reproduce.cifar10.build_model` from seed 0): the baseline, the filter basis shared per stage (s = 1)
and split (s = 4) (Li et al.'s Eq. 9-11), MVNet-B with s = 4 (Han et al.'s Eq. 3-5, with its λ L_ortho penalty of
Eq. 7-8 in the objective) and spatial versatile filters (Wang et al.'s Eq. 2-3). A step is what
:func:`minilib.training.loop.train_step` does under the chapter's recipe (:func:`minilib.reproduce.cifar10.loop_recipe`:
SGD with momentum 0.9 and weight decay): forward, cross-entropy (+ penalty), backward, optimiser step, on one batch
of random 32x32 CIFAR-sized images with random labels.

Each method's network is timed twice: with its twins' default formulations (as built), and with the formulation of
every layer chosen by :func:`minilib.torch.formulations.choose_formulations` (timed on the layer's own input shape
at this batch size; the choices and their timings are printed and stored under ``layers``). Before timing, the two
networks (same weights) are checked to compute the same scores (float32, relative error < 1e-4): a formulation
must not change the function; a mismatch exits with status 1.

Multiplications per image come from :func:`minilib.reproduce.cifar10.model_cost` (:mod:`minilib.accounting`, the
papers' counts: Eq. 11 of the basis paper, Eq. 13 of MVNet, Prop. 1 of versatile filters), for the whole network
(``mult_ratio``) and for the 18 block convolutions the method replaces (``converted_mult_ratio``).

Target, per method that needs fewer multiplications than the baseline: the chosen formulations' step takes at most
1.1x the baseline's step. Timing: everything in ONE run, float32, torch on as many threads as NumPy's BLAS
(``bench_common.start_run``); after one untimed step each, the networks take turns, one timed step per round
(:func:`interleaved_times`), best of the rounds reported; on a shared machine only ratios measured side by side
mean anything.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

if str(Path(__file__).resolve().parent) not in sys.path:  # imported rather than run: bench_common is beside it
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_common import ROOT, format_targets, parse_args, report, run_metadata, start_run, target  # noqa: E402

DEFAULT_OUT = ROOT / "results" / "bench_step.json"
BASELINE = "baseline"
TARGET_RATIO = 1.1          # a method's chosen step <= 1.1x the baseline's, when it needs fewer multiplications
CHOOSER_REPEATS = 3         # timed calls per formulation in choose_formulations (1 with --quick)
MATCH_RTOL = 1e-4           # default and chosen formulations: the same scores up to float32 rounding
TIMING = ("best of repeats; every network takes one untimed step after a pause, then the networks take turns, one "
          "timed step each per round, for as many rounds as repeats; a step = forward, loss (+ penalty), backward, "
          "optimiser step")


# ----------------------------------------------------------------------------- networks

def build(run: str):
    """``(model, optimizer, recipe)`` of one run, built from seed 0 in float32, in training mode."""
    from minilib.reproduce.cifar10 import LAM, RUNS, build_model, loop_recipe
    from minilib.training.loop import make_optimizer

    model = build_model(run, np.random.default_rng(0))
    model.train()
    spec = RUNS[run]
    lam = LAM if spec["method"] == "fullstack" and spec.get("learn_masks", True) else None
    recipe = loop_recipe(lam)
    return model, make_optimizer(model, recipe), recipe


def step_function(network, inputs, targets, torch):
    """One training step of ``network`` on the fixed batch; a non-finite objective is an error, since a skipped
    update would be timed as a shorter step."""
    from minilib.training.loop import train_step

    model, optimizer, recipe = network

    def step():
        if not train_step(model, optimizer, recipe, inputs, targets).finite:
            raise RuntimeError("the training objective is not finite: the step was not taken, so it cannot be timed")
    return step


def max_rel_error(first, second, inputs, torch) -> float:
    """Largest |difference| of the two models' scores on ``inputs`` (eval mode, no gradient), scaled by the
    largest score; modes are restored."""
    outs = []
    for model in (first, second):
        was = model.training
        model.eval()
        with torch.no_grad():
            outs.append(model(inputs))
        model.train(was)
    scale = float(outs[0].abs().max()) or 1.0
    return float((outs[0] - outs[1]).abs().max()) / scale


def costs(run: str) -> dict:
    """The run's multiplications per 32x32 image relative to the baseline: whole network and block convolutions."""
    from minilib.reproduce.cifar10 import build_model, compression, model_cost

    cost = model_cost(build_model(run, np.random.default_rng(0)))
    ratios = compression(cost)
    return {"mults_per_image": cost["flops"], "converted_mults_per_image": cost["converted_flops"],
            "mult_ratio": ratios["flops"], "converted_mult_ratio": ratios["converted_flops"]}


# ----------------------------------------------------------------------------- timing

def interleaved_times(fns: dict, repeats: int, pause: float) -> dict:
    """Best and median seconds per name: one untimed call each (after ``pause``), then ``repeats`` rounds in which
    every function is called once, timed.

    ``bench_common.blocked_times`` runs each variant as a block of consecutive calls (it keeps OpenBLAS's spinning
    threads away from torch's); here every variant is torch, and a step takes a fifth of a second, so the finest
    alternation is affordable: a burst of other work on the shared machine then slows one step of each network
    rather than a whole block of one, and the best of the rounds sees every network at the quietest moments.
    """
    for fn in fns.values():
        time.sleep(pause)
        fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: (min(ts), float(np.median(ts))) for name, ts in times.items()}


# ----------------------------------------------------------------------------- the run

def prepare(runs, batch: int, chooser_repeats: int, torch) -> tuple[dict, list, dict]:
    """Build every network (methods twice: default and chosen formulations), choose, check they agree.

    Returns ``(networks, layer_records, chooser)``: networks by variant name (``<run>`` for the baseline and the
    default formulations, ``<run>:chosen``), the chooser's per-layer records (each with its ``network``) and per run
    ``{"seconds", "max_rel_error"}``.
    """
    from minilib.torch.formulations import choose_formulations

    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn((batch, 3, 32, 32), generator=generator)
    networks, records, chooser = {}, [], {}
    for run in runs:
        networks[run] = build(run)
        if run == BASELINE:
            continue
        chosen = build(run)
        print(f"  choosing formulations for {run} ...", file=sys.stderr, flush=True)
        start = time.perf_counter()
        record = choose_formulations(chosen[0], inputs, repeats=chooser_repeats)
        seconds = time.perf_counter() - start
        error = max_rel_error(networks[run][0], chosen[0], inputs, torch)
        if not error < MATCH_RTOL:
            raise AssertionError(f"{run}: the chosen formulations' scores differ from the default's by {error:.3g} "
                                 f"of the largest score (allowed {MATCH_RTOL})")
        networks[f"{run}:chosen"] = chosen
        records += [{"network": run, **entry} for entry in record]
        chooser[run] = {"seconds": seconds, "max_rel_error": error}
    return networks, records, chooser


def network_records(runs, times: dict, chooser: dict, layers: list) -> list[dict]:
    """One record per run: costs, step times (default and chosen formulations) and their ratios to the baseline."""
    base = times[BASELINE][0]
    records = []
    for run in runs:
        default, default_median = times[run]
        chosen, chosen_median = times.get(f"{run}:chosen", times[run])
        choices = {entry["layer"]: entry["choice"] for entry in layers if entry["network"] == run}
        records.append({
            "name": run, **costs(run),
            "step_default_s": default, "step_default_s_median": default_median,
            "step_chosen_s": chosen, "step_chosen_s_median": chosen_median,
            "default_over_baseline": default / base, "chosen_over_baseline": chosen / base,
            "chosen_over_default": chosen / default,
            "formulations": choices, "chooser_s": chooser.get(run, {}).get("seconds", 0.0),
            "max_rel_error_chosen_vs_default": chooser.get(run, {}).get("max_rel_error", 0.0),
        })
    return records


def evaluate_targets(networks: list[dict]) -> list[dict]:
    """Chosen step <= 1.1x the baseline's, for every method with fewer multiplications than the baseline."""
    return [target(f"{net['name']} (multiplications {net['mult_ratio']:.0%} of the baseline's): chosen step "
                   f"<= {TARGET_RATIO}x the baseline's", net, "chosen_over_baseline", "<=", TARGET_RATIO)
            for net in networks if net["name"] != BASELINE and net["mult_ratio"] < 1]


# ----------------------------------------------------------------------------- report

def format_choices(layers: list[dict]) -> list[str]:
    """The chooser's decisions, one line per distinct layer shape (layers measured alike are counted on it)."""
    lines = ["", "per-layer choices (forward + backward of the layer alone, ms, best of the chooser's repeats):"]
    for entry in layers:
        if entry["layer"] != entry["measured_on"]:
            continue
        alike = sum(1 for e in layers if e["network"] == entry["network"] and e["measured_on"] == entry["layer"])
        times = ", ".join(f"{name} {1e3 * t:.1f}" for name, t in entry["times_s"].items())
        shape = str(tuple(entry["input_shape"]))
        lines.append(f"  {entry['network']:<13} {entry['layer']:<17} x{alike} {shape:<18} {times} -> {entry['choice']}")
    return lines


def format_table(result: dict) -> str:
    header = (f"{'network':<13} {'mults':>6} {'blocks':>6} | {'default ms':>10} {'x base':>6} | {'chosen ms':>9} "
              f"{'x base':>6} | {'chooser s':>9}")
    lines = [header]
    for net in result["networks"]:
        lines.append(f"{net['name']:<13} {net['mult_ratio']:6.3f} {net['converted_mult_ratio']:6.3f} | "
                     f"{1e3 * net['step_default_s']:10.1f} {net['default_over_baseline']:6.2f} | "
                     f"{1e3 * net['step_chosen_s']:9.1f} {net['chosen_over_baseline']:6.2f} | "
                     f"{net['chooser_s']:9.1f}")
    lines.append("(one training step at the batch size above; 'mults' / 'blocks': multiplications per image of the "
                 "whole network / of the 18 block convolutions, relative to the baseline; 'x base' = step time / "
                 "baseline step time)")
    lines += format_choices(result["layers"])
    lines += format_targets(result["targets"], 3)
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(__doc__.split("\n\n")[0], DEFAULT_OUT, argv)
    import torch

    from minilib.reproduce.cifar10 import RUNS

    start = start_run(args, torch)
    runs = list(RUNS)
    networks, layers, chooser = prepare(runs, args.batch, 1 if args.quick else CHOOSER_REPEATS, torch)
    generator = torch.Generator().manual_seed(1)
    inputs = torch.randn((args.batch, 3, 32, 32), generator=generator)
    targets_ = torch.randint(0, 10, (args.batch,), generator=generator)
    print("  timing the training steps ...", file=sys.stderr, flush=True)
    times = interleaved_times({name: step_function(net, inputs, targets_, torch) for name, net in networks.items()},
                              args.repeats, args.pause)
    records = network_records(runs, times, chooser, layers)
    targets = evaluate_targets(records)
    result = {
        **run_metadata(start, args, torch, "step_benchmark.py", argv),
        "timing": TIMING,
        "recipe": "minilib.reproduce.cifar10.loop_recipe: SGD, lr 0.1, momentum 0.9, weight decay 5e-4 "
                  "(+ lam L_ortho for mvnet-b-4); input N x 3 x 32 x 32 standard normal, random labels",
        "chooser_repeats": 1 if args.quick else CHOOSER_REPEATS,
        "sgemm": start["sgemm"],
        "networks": records,
        "layers": layers,
        "targets": targets,
        "all_targets_passed": all(t["passed"] for t in targets),
    }
    return report(result, start["sgemm"], format_table, args.out)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except AssertionError as error:  # a formulation that changes the function must never be timed
        print(f"step_benchmark: {error}", file=sys.stderr)
        sys.exit(1)
