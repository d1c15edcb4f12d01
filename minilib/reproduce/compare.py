"""The three methods side by side: one MNIST LeNet compressed by each method at matched budgets (chapter 10).

Methods (:data:`minilib.reproduce.budgets.METHODS`): spatial versatile filters (Wang et al., NeurIPS 2018,
Eq. 2-3), channel versatile filters "v2" (Eq. 8), filter basis (Li et al., ICCV 2019, Eq. 9-11) from random
initial weights (``basis-scratch``) and started from the trained baseline (``basis-from-conv``), MVNet-A and
MVNet-B (Han et al., NeurIPS 2019, Eq. 3-5, shared or separate masks). Every method converts the three feature
convolutions of LeNet and keeps its 1x1 classifier; :mod:`minilib.reproduce.budgets` picks, per method and
budget (50 %, 25 %, 12 % of the baseline's stored bits), the hyperparameters nearest the budget, and says
which budgets a method cannot reach (spatial versatile filters: only 50 %; v2: not 50 %).

Training is the MNIST reproduction's, unchanged (:data:`minilib.reproduce.mnist.RECIPE`, its data splits and
:func:`minilib.reproduce.mnist.train_torch_model`, :func:`minilib.training.fit`): 12 epochs of SGD with momentum, cosine schedule, batch 128,
the torch twins in float32, λ = 0.1 times Eq. 7-8's orthogonality penalty for the MVNets; initial weights from
``np.random.default_rng(seed)``, which then shuffles the mini-batches.

``basis-from-conv`` runs start from :func:`minilib.basis.from_conv`: each basis layer's basis and coefficients
are the truncated SVD of the trained baseline convolution of the SAME seed (its biases and the classifier are
copied); then the recipe trains on. The baseline run of a seed saves its trained weights to
``<out-dir>/weights/baseline_seed<seed>.npz`` (git-ignored: 1.7 MB each, and re-made by the baseline run); a
from_conv run whose file is missing, unreadable, or was made by a run of another length (``--quick``), trains the
baseline first (and writes its result file too unless one counts as done for it).

Latency (:mod:`minilib.timing`, :mod:`minilib.training.timing`, under ``latency``): the trained torch model in
eval mode at batch 1 and 128 (median of 50 calls), and conv2's NumPy fast path against :class:`minilib.layers.Conv2d` at the same
shapes (batch 128, 12x12 input, median of 30 alternating calls), as a ratio measured in the same run.
The machine has 2 cores, shared with other work: compare ratios, not absolute times. These are measured
right after each run, under whatever else shares the machine then; chapter 10's time columns come from
``python -m minilib.reproduce compare-timing`` (:mod:`minilib.reproduce.compare_timing`), which times every
network in one process.

One JSON per run and seed, ``<out-dir>/<run>_seed<seed>.json``, run = ``baseline`` or ``<method>-b<percent>``;
a run whose file counts as done (:func:`expected_result`) is skipped unless ``--force``, any other file set
aside and made again::

    python -m minilib.reproduce compare --list                       # the plan, the budgets out of reach, what is done
    python -m minilib.reproduce compare --runs mvnet-a-b25 --seeds 0  # one run
    python -m minilib.reproduce compare                              # everything (hours), resumable
    python -m minilib.reproduce compare --quick --out-dir /tmp/cmp   # smoke test, seconds
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import pathlib
import re
import time
import zipfile

import numpy as np

from ..accounting import summarize
from ..models import build
from ..results import RESULTS_DIR, write_result
from ..tempfiles import atomic_write, remove_stale
from . import budgets, mnist
from .common import (add_common_arguments, log, output_dir, plan_runs, result_status, run_experiment,
                     set_aside_rejected)

HELP = "the three methods side by side on MNIST LeNet at matched budgets of stored bits (chapter 10)"

EXPERIMENT = "compare"
SEEDS = (0, 1)
WEIGHTS_DIR = "weights"         # beside the result files; git-ignored
LATENCY_LAYER = ("conv2", 2)    # (name, index in the Sequential) of the layer timed in NumPy
# timed calls (medians); a LeNet layer takes milliseconds, so many calls and a batch of 128 keep the NumPy ratio
# within about 15 % on a loaded 2-core machine (identical layers measured 0.87-1.09)
LATENCY_NUMPY_BATCH = {"full": 128, "quick": 32}
LATENCY_REPEATS = {"full": {"torch": 50, "numpy": 30}, "quick": {"torch": 3, "numpy": 3}}
# the penalty's scale is stated in "loss" (Eq. 7 as printed, the only one these runs use), as the result files
# written before mnist's recipe had a "penalty" key record it
RECIPE = {**{key: value for key, value in mnist.RECIPE.items() if key != "penalty"},
          "init": "minilib.models.build(architecture) in torch from np.random.default_rng(seed), which then "
                  "shuffles; basis-from-conv: then basis and coefficients from minilib.basis.from_conv of the "
                  "trained baseline of the same seed (biases and classifier copied)",
          "loss": "cross-entropy + lam * L_ortho (MVNet Eq. 7-8, Eq. 7 as printed) for the MVNets"}

_NAME = re.compile(r"^(?P<method>.+)-b(?P<percent>\d+)$")


@dataclasses.dataclass(frozen=True)
class Run:
    """One network of the comparison: ``method`` at ``budget`` (a fraction of :data:`budgets.BUDGETS`), or the
    baseline (``method="baseline"``, no budget)."""
    method: str
    budget: float | None = None

    def __post_init__(self):
        if self.method == "baseline":
            if self.budget is not None:
                raise ValueError(f"budget={self.budget} given for the baseline, which is the budget's 100 %")
            return
        if self.method not in budgets.METHODS:
            raise ValueError(f"method={self.method!r} is not one of baseline, {', '.join(budgets.METHODS)}")
        if self.budget not in budgets.BUDGETS:
            raise ValueError(f"budget={self.budget!r} must be one of {budgets.BUDGETS} (fractions of the baseline's "
                             f"stored bits)")
        choice = budgets.match_budget(self.method, self.budget)
        if not choice.reachable:
            raise ValueError(f"{choice.run} is not reachable: {choice.reason}")

    @property
    def name(self) -> str:
        return self.choice.run

    @property
    def choice(self) -> budgets.Choice:
        """The hyperparameters, spec and costs (:func:`minilib.reproduce.budgets.match_budget`)."""
        if self.method == "baseline":
            return budgets.baseline_choice()
        return budgets.match_budget(self.method, self.budget)

    @property
    def penalty_lam(self) -> float | None:
        """λ of MVNet Eq. 8 for networks with learned masks, else None."""
        return RECIPE["lam"] if mnist.spec_learns_masks(self.choice.spec) else None


def parse_run(text: str) -> Run:
    """``"mvnet-a-b25"`` -> ``Run("mvnet-a", 0.25)``; ``"baseline"`` -> ``Run("baseline")``."""
    if text == "baseline":
        return Run("baseline")
    match = _NAME.match(text)
    known = ", ".join(f"{method}-b<{'|'.join(str(round(100 * b)) for b in budgets.BUDGETS)}>"
                      for method in budgets.METHODS)
    if match is None or match["method"] not in budgets.METHODS:
        raise ValueError(f"run {text!r} is not 'baseline' or <method>-b<percent>: {known}")
    budget = int(match["percent"]) / 100
    if budget not in budgets.BUDGETS:
        raise ValueError(f"run {text!r}: the budget must be one of "
                         f"{', '.join(str(round(100 * b)) for b in budgets.BUDGETS)} percent")
    return Run(match["method"], budget)


def default_runs() -> list:
    """The baseline, then every method at every budget it reaches (method-major)."""
    return [Run("baseline")] + [Run(choice.method, choice.budget) for choice in budgets.budget_table()[1:]
                                if choice.reachable]


def unreachable() -> list:
    """The (method, budget) :class:`~minilib.reproduce.budgets.Choice` s that are out of reach, with reasons."""
    return [choice for choice in budgets.budget_table()[1:] if not choice.reachable]


def make_plan(names=None, seeds=None) -> list:
    """``[(Run, seeds), ...]``: the named runs (default: :func:`default_runs`), each with ``seeds`` or 0 and 1."""
    runs = default_runs() if not names else [parse_run(name) for name in names]
    return plan_runs(runs, seeds, lambda run: SEEDS)


def architecture(spec) -> list:
    """A spec as JSON stores it: ``[[kind, {kwargs}], ...]``."""
    return json.loads(json.dumps(spec))


# ----------------------------------------------------------------------------- baseline weights and from_conv
def weights_path(out_dir, seed: int) -> pathlib.Path:
    """Where the baseline run of ``seed`` keeps its trained weights: ``<out_dir>/weights/baseline_seed<seed>.npz``."""
    return pathlib.Path(out_dir) / WEIGHTS_DIR / f"baseline_seed{seed}.npz"


def save_weights(path, model, epochs: int) -> None:
    """The torch model's ``state_dict`` as float32 arrays, with the epochs it was trained for; written atomically
    under a temporary name of this process alone (:func:`minilib.tempfiles.atomic_write`)."""
    state = {key: value.detach().cpu().numpy() for key, value in model.state_dict().items()}
    atomic_write(path, lambda f: np.savez(f, __epochs__=np.array(epochs), **state))


# the temporary files of save_weights (".<name>.<pid>.<hex>.tmp"), and "<name>.tmp.npz" of the code before it
WEIGHTS_TEMP_NAME = re.compile(r"^(?:\.(?P<target>.+)\.(?P<pid>\d+)\.[0-9a-f]{16}\.tmp|(?P<legacy>.+)\.tmp\.npz)$")


def load_weights(path, epochs: int) -> dict | None:
    """The saved state (name -> array), or None when the file is missing, cannot be read as the npz
    :func:`save_weights` writes (it is then trained and written again), or was trained for other ``epochs``."""
    path = pathlib.Path(path)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as saved:
            if int(saved["__epochs__"]) != epochs:
                return None
            return {key: saved[key] for key in saved.files if key != "__epochs__"}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None


# ----------------------------------------------------------------------------- costs and latency
@functools.cache
def _baseline_params_32bit() -> float:
    return summarize(build(budgets.baseline_choice().spec, rng=np.random.default_rng(0)),
                     budgets.INPUT_SHAPE).params_32bit


def compression(cost: dict) -> dict:
    """The run's costs relative to the baseline LeNet (1.0 = no saving): filter weights, stored bits (mask bits
    as 1/32 weight), parameters in 32-bit units (biases included) and multiplications."""
    base = budgets.baseline_cost()
    stored = 32 * cost["conv_weights"] + cost["mask_bits"]
    return {"conv_weights": cost["conv_weights"] / base.conv_weights, "stored_bits": stored / base.stored_bits,
            "params_32bit": cost["params_32bit"] / _baseline_params_32bit(), "flops": cost["flops"] / base.flops}


def measure_latency(model, quick: bool = False) -> dict:
    """Torch latency of the whole model (batch 1 and 128) and conv2's NumPy time ratio to a standard conv."""
    from ..timing import numpy_layer_latency
    from ..training.timing import torch_model_latency

    mode = "quick" if quick else "full"
    repeats, warmup, batch = LATENCY_REPEATS[mode], 1 if quick else 3, LATENCY_NUMPY_BATCH[mode]
    name, index = LATENCY_LAYER
    layer = model[index]
    return {"torch": torch_model_latency(model, budgets.INPUT_SHAPE, (1, 128), repeats=repeats["torch"],
                                         warmup=warmup),
            "numpy_layer": {"name": name, "index": index,
                            **numpy_layer_latency(layer, (batch, layer.in_channels, 12, 12),
                                                  repeats=repeats["numpy"], warmup=warmup)}}


def baseline_state(seed: int, splits: dict, quick: bool, out_dir) -> tuple:
    """``(state, trained_here)``: the trained baseline weights of ``seed``; trained now when missing."""
    epochs = 1 if quick else RECIPE["epochs"]
    state = load_weights(weights_path(out_dir, seed), epochs)
    if state is not None:
        return state, False
    payload = train_run(Run("baseline"), seed, splits, quick=quick, out_dir=out_dir)
    result = pathlib.Path(out_dir) / f"baseline_seed{seed}.json"
    baseline = Run("baseline")
    problem = result_status(result, expected_result(baseline, seed, quick),
                            expected_result(baseline, seed) if quick else None)
    if problem is not None:                 # missing, or a file that does not count: set aside, then written
        set_aside_rejected(result, problem, f"baseline seed {seed}")
        write_result(result, payload, seed=seed)
    return load_weights(weights_path(out_dir, seed), epochs), True


# ----------------------------------------------------------------------------- one run, the command
# the recipe's numbers that a result must hold to count as done for a run of this recipe (expected_result)
CHECKED_RECIPE = mnist.CHECKED_RECIPE


def expected_result(run: Run, seed: int, quick: bool = False) -> dict:
    """What the result file of ``run`` and ``seed`` must hold to count as done (:func:`minilib.results.check_result`):
    the values :func:`train_run` writes for them, the network (hyperparameters and architecture) and the recipe's
    numbers among them."""
    epochs = 1 if quick else RECIPE["epochs"]
    choice = run.choice
    return {"experiment": EXPERIMENT, "run": run.name, "seed": seed, "method": run.method, "budget": run.budget,
            "backend": "torch", "hyperparameters": choice.hyperparameters, "architecture": architecture(choice.spec),
            "quick": quick, "epochs": epochs, "lam": run.penalty_lam,
            "recipe": {**{key: RECIPE[key] for key in CHECKED_RECIPE}, "epochs": epochs, "lam": run.penalty_lam}}


def train_run(run: Run, seed: int, splits: dict, quick: bool = False, out_dir=None) -> dict:
    """Train ``run`` with ``seed`` and return the JSON payload (:func:`minilib.results.write_result` adds the
    seed, command, date and git revision). ``out_dir``: where the baseline weights are kept (default
    ``results/compare``)."""
    from ..torch.from_conv import start_from_conv
    from ..torch.models import build as build_torch

    out_dir = RESULTS_DIR / EXPERIMENT if out_dir is None else pathlib.Path(out_dir)
    epochs = 1 if quick else RECIPE["epochs"]
    choice = run.choice
    from_conv = None
    if run.method == "basis-from-conv":
        state, trained_here = baseline_state(seed, splits, quick, out_dir)
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    model = build_torch(choice.spec, rng=rng)
    if run.method == "basis-from-conv":
        errors = start_from_conv(model, state)
        names = {index: name for name, index, *_ in budgets.CONVERTED}
        from_conv = {"baseline_weights": str(weights_path(out_dir, seed).relative_to(out_dir)),
                     "baseline_trained_by_this_run": trained_here,
                     "relative_error": {names[index]: error for index, error in errors.items()}}
    trained = mnist.train_torch_model(model, rng, splits, epochs, run.penalty_lam, f"{run.name} seed {seed}")
    train_seconds = time.perf_counter() - start
    if run.method == "baseline":
        save_weights(weights_path(out_dir, seed), trained["model"], epochs)
    measured = mnist.measurements(trained, splits, train_seconds)
    latency = None if trained["diverged"] else measure_latency(trained["model"], quick)
    return {
        "experiment": EXPERIMENT, "run": run.name, "method": run.method, "budget": run.budget,
        "backend": "torch", "hyperparameters": choice.hyperparameters, "description": choice.describe(),
        "architecture": architecture(choice.spec), "converted_layers": [name for name, *_ in budgets.CONVERTED],
        "init": "from_conv" if from_conv else "random", "from_conv": from_conv,
        "epochs": epochs, "lam": run.penalty_lam, "quick": quick,
        "recipe": {**RECIPE, "epochs": epochs, "lam": run.penalty_lam, "loop": trained["loop"]},
        **measured,
        "compression": compression(measured["cost"]), "latency": latency,
        "train_seconds": train_seconds, "wall_seconds": time.perf_counter() - start,
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runs", nargs="+", metavar="NAME",
                        help="runs to train: baseline or <method>-b<percent> with a method of "
                             f"{', '.join(budgets.METHODS)} and a percent of "
                             f"{', '.join(str(round(100 * b)) for b in budgets.BUDGETS)} (default: every "
                             f"reachable one and the baseline)")
    parser.add_argument("--seeds", nargs="+", type=int, metavar="SEED",
                        help=f"seeds for every run (default: {' '.join(map(str, SEEDS))})")
    add_common_arguments(parser, EXPERIMENT, "smoke test in seconds: {train} training, {val} validation and {test} "
                         "test images, 1 epoch".format(**mnist.QUICK_SIZES))


def describe(payload: dict) -> str:
    """The line printed when a run is done."""
    if payload["diverged"]:
        where = payload["diverged"]
        return f"diverged at epoch {where['epoch']}, mini-batch {where['batch']}, {payload['wall_seconds']:.0f} s"
    return (f"test accuracy {payload['test_accuracy']:.4f}, {100 * payload['compression']['stored_bits']:.1f} % of "
            f"the baseline's bits, {100 * payload['compression']['flops']:.1f} % of its multiplications, "
            f"{payload['wall_seconds']:.0f} s")


def main(args: argparse.Namespace) -> int:
    args.out_dir = output_dir(args, EXPERIMENT)     # once: the from_conv runs look for the baseline weights there
    if args.list:
        for choice in unreachable():
            print(f"not reachable  {choice.run:<22} {choice.reason}")
    else:                                           # what a run killed while saving the baseline weights left
        for stale in remove_stale(args.out_dir / WEIGHTS_DIR, WEIGHTS_TEMP_NAME):
            log(f"removed {stale}: the temporary file of a writer that is gone")
    return run_experiment(args, EXPERIMENT, lambda: make_plan(args.runs, args.seeds),
                          lambda: mnist.load_splits(args.quick),
                          functools.partial(train_run, out_dir=args.out_dir), describe, expect=expected_result)
