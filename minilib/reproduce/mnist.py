"""MNIST: Versatile filters Tables 2-3 (Wang et al., NeurIPS 2018), MVNet Table 1 and Fig. 2 (Han et al., NeurIPS 2019).

Every run trains one LeNet variant of :mod:`minilib.models` with ONE recipe, the same for every
variant and both backends (:data:`RECIPE`):

- data: MNIST pixels / 255, standardised with the mean and std of the training split; train on the
  first 50,000 training images, validate on the last 10,000 (as Wang et al. Sec. 3.1), report the
  10,000 test images once, after the last epoch (the last epoch's model; no model selection);
- SGD, momentum 0.9, weight decay 5e-4 on every parameter, batch 128, learning rate 0.02
  annealed to 0 by a cosine over the run's epochs (stepped once per epoch), 12 epochs, no
  augmentation, float32; initial weights from ``lenet(name, rng=np.random.default_rng(seed))``,
  and the same generator then shuffles the mini-batches, so one seed means the same network and
  the same batches in both backends;
- loss: cross-entropy, plus λ L_ortho (Eq. 7-8 of MVNet, summed over the full-stack layers) for
  MVNets with learned masks, λ = 0.1 as in the paper (Sec. 3.1.1). Fixed-mask ("rand") MVNets
  have no penalty. Two scales of the penalty are run side by side: Eq. 7 as the paper writes it
  (1/2 ||M^T M / D - I||_F^2 per full-stack filter), and the released code's mean over all of a
  layer's masks (``-released`` runs; 2/s^2 times Eq. 7 for shared masks, so 50x weaker at s = 10
  and 200x at s = 20). ``-nomaskwd`` runs exempt the mask latents from weight decay.

With 2 torch threads the baseline takes about 4.5 minutes (seed 0: 99.24% test accuracy, 99.04%
validation accuracy after the last epoch); the other variants take between about as long and
twice as long per epoch (versatile-1 and the channel-versatile v2 models are the slowest).
A learning rate of 0.05 makes this LeNet diverge: it has no ReLU after its first two convolutions
and no batch normalisation.

Runs (:func:`default_plan`): Table 2 ``baseline``, ``versatile-1..3``; Table 3 ``versatile-v2-1..3``;
MVNet Table 1 ``mvnet-{a,b}-{10,20}`` under both penalty scales, ``mvnet-{a,b}-rand-20``, and
``mvnet-{a,b}-20-<scale>-nomaskwd``; Fig. 2(a) ``mvnet-a-{2,5,10,20,50}`` under both scales;
Fig. 2(b) ``mvnet-a-{5,10,20}-lam{0.001,...,10}-e5``, trained for 5 epochs instead of 12 (the λ sweep
is 15 points). Three seeds (0, 1, 2) for every run that a claim of chapter 9 or 5 compares
(:func:`default_seeds`); seed 0 for the rest. With ``--backend numpy`` the default runs are
``baseline`` and ``versatile-3`` (seed 0), trained with minilib's own layers and :func:`minilib.train.fit`.

A run's name says everything that differs from the recipe:
``<variant>[-released][-lam<λ>][-e<epochs>][-nomaskwd]``, plus ``-numpy`` for the NumPy backend.
``--lam`` and ``--epochs`` add those suffixes. One JSON per
run and seed, ``<out-dir>/<run>_seed<seed>.json``; a run whose file counts as done (:func:`expected_result`,
:func:`minilib.results.check_result`) is skipped unless ``--force``, so the sweep can be stopped and resumed; a
damaged, ``--quick`` or other-recipe file is set aside (``<file>.rejected-<why>``) and its run made again::

    python -m minilib.reproduce mnist --list                          # the plan, and what is done
    python -m minilib.reproduce mnist --runs baseline --seeds 0       # one run, about 4.5 minutes
    python -m minilib.reproduce mnist                                 # everything (hours), resumable
    python -m minilib.reproduce mnist --backend numpy                 # the NumPy-backend runs
    python -m minilib.reproduce mnist --quick --out-dir /tmp/mnist    # smoke test, seconds
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import re
import sys
import time

import numpy as np

from ..accounting import summarize
from ..models import VARIANTS, lenet
from ..timing import blas_threads
from .common import (add_common_arguments, epoch_line, history_lists, plan_runs, run_experiment, shuffled_batches,
                     versions)

HELP = "LeNet variants on MNIST: Versatile Tables 2-3, MVNet Table 1 and Fig. 2"

RECIPE = {
    "optimizer": "SGD",
    "lr": 0.02,
    "momentum": 0.9,
    "nesterov": False,
    "weight_decay": 5e-4,
    "weight_decay_applies_to": "every parameter (filters, biases, mask latents)",
    "batch_size": 128,
    "schedule": "cosine annealing from lr to 0 over the run's epochs, stepped once per epoch",
    "epochs": 12,
    "loss": "cross-entropy + lam * L_ortho (MVNet Eq. 7-8) for MVNets with learned masks",
    "lam": 0.1,
    "penalty": "eq7",
    "inputs": "pixels / 255, standardised with the training split's mean and std",
    "augmentation": None,
    "dtype": "float32",
    "init": "minilib.models.lenet(model, rng=np.random.default_rng(seed)); the same rng then shuffles",
    "split": "train: first 50,000 training images; val: last 10,000; test: the 10,000 test images",
    "model_selection": "none: the last epoch's model is tested once; val accuracy is only reported",
}
NO_MASK_DECAY = "filters and biases; not the mask latents (-nomaskwd runs)"
N_TRAIN, N_VAL = 50_000, 10_000
QUICK_SIZES = {"train": 1024, "val": 512, "test": 512}      # --quick: a smoke test in seconds

TABLE_RUNS = ("baseline", "versatile-1", "versatile-2", "versatile-3",                 # Versatile Table 2
              "versatile-v2-1", "versatile-v2-2", "versatile-v2-3",                     # Versatile Table 3
              "mvnet-a-10", "mvnet-b-10", "mvnet-a-20", "mvnet-b-20",                   # MVNet Table 1
              "mvnet-a-rand-20", "mvnet-b-rand-20")
MVNET_TABLE = ("mvnet-a-10", "mvnet-b-10", "mvnet-a-20", "mvnet-b-20")
PENALTIES = ("eq7", "released")       # Eq. 7 as printed; the released code's mean over a layer's masks
# The scale chapter 9 recommends, and under which the -nomaskwd and Fig. 2(a) runs are made: at λ = 0.1 the
# printed Eq. 7 is 200x the released penalty at s = 20, and the 5-epoch λ sweep there gains about a point when
# λ shrinks by that much. Chapter 9 asserts that the 12-epoch seeds agree.
RECOMMENDED_PENALTY = "released"
THREE_SEEDS = ("baseline", "versatile-3", "versatile-v2-1", *MVNET_TABLE, "mvnet-a-rand-20", "mvnet-b-rand-20")
FIG2A_S = (2, 5, 10, 20, 50)
FIG2A_THREE_SEEDS_FROM = 20           # Fig. 2(a): three seeds at s >= 20, where the curve bends
FIG2B_S, FIG2B_LAMBDAS, FIG2B_EPOCHS = (5, 10, 20), (0.001, 0.01, 0.1, 1, 10), 5
NUMPY_RUNS = ("baseline", "versatile-3")
BACKENDS = ("torch", "numpy")

_NAME = re.compile(r"^(?P<model>.+?)(?P<released>-released)?(?:-lam(?P<lam>\d+(?:\.\d+)?(?:e-?\d+)?))?"
                   r"(?:-e(?P<epochs>\d+))?(?P<nomaskwd>-nomaskwd)?$")


def learns_masks(model: str) -> bool:
    """True when the variant has full-stack layers with learned masks (the ortho penalty applies)."""
    return spec_learns_masks(VARIANTS[model])


def spec_learns_masks(spec) -> bool:
    """True when a LeNet spec (:mod:`minilib.models`) has full-stack layers with learned masks."""
    return any(kind == "fullstack" and kwargs.get("learn_masks", True) for kind, kwargs in spec)


@dataclasses.dataclass(frozen=True)
class Run:
    """One training configuration; ``lam`` and ``epochs`` are None where the recipe's values hold.

    ``penalty``: ``"eq7"`` (Eq. 7 as printed) or ``"released"`` (the released code's scale); ``mask_weight_decay``
    False exempts the mask latents from weight decay. Both only for variants with learned masks."""
    model: str
    lam: float | None = None
    epochs: int | None = None
    backend: str = "torch"
    penalty: str = "eq7"
    mask_weight_decay: bool = True

    def __post_init__(self):
        if self.model not in VARIANTS:
            raise ValueError(f"model={self.model!r} is not a LeNet variant; known variants: {', '.join(VARIANTS)}")
        if self.lam is not None and not learns_masks(self.model):
            raise ValueError(f"lam={self.lam} given for {self.model!r}: the orthogonality penalty applies only to "
                             f"MVNet variants with learned masks")
        if self.lam is not None and self.lam < 0:
            raise ValueError(f"lam={self.lam} must be >= 0")
        if self.epochs is not None and self.epochs < 1:
            raise ValueError(f"epochs={self.epochs} must be a positive integer")
        if self.backend not in BACKENDS:
            raise ValueError(f"backend={self.backend!r} must be one of {BACKENDS}")
        if self.penalty not in PENALTIES:
            raise ValueError(f"penalty={self.penalty!r} must be one of {PENALTIES}")
        changed = [f"penalty={self.penalty!r}"] * (self.penalty != "eq7") + ["mask_weight_decay=False"] * (
            not self.mask_weight_decay)
        if changed and not learns_masks(self.model):
            raise ValueError(f"{' and '.join(changed)} given for {self.model!r}: only MVNet variants with learned "
                             f"masks have a penalty and mask latents")
        if not self.mask_weight_decay and self.backend != "torch":
            raise ValueError("mask_weight_decay=False is implemented for backend='torch' only")

    @property
    def name(self) -> str:
        """``<model>[-lam<λ>][-e<epochs>][-numpy]``: the file stem before ``_seed<seed>``."""
        return (self.model + ("-released" if self.penalty == "released" else "")
                + ("" if self.lam is None else f"-lam{self.lam:g}") + ("" if self.epochs is None else f"-e{self.epochs}")
                + ("" if self.mask_weight_decay else "-nomaskwd") + ("-numpy" if self.backend == "numpy" else ""))

    @property
    def n_epochs(self) -> int:
        return RECIPE["epochs"] if self.epochs is None else self.epochs

    @property
    def penalty_lam(self) -> float | None:
        """λ of Eq. 8 for this run, or None where no mask is learned."""
        if not learns_masks(self.model):
            return None
        return RECIPE["lam"] if self.lam is None else self.lam

    @property
    def released_penalty(self) -> bool:
        return self.penalty == "released"

    def with_overrides(self, epochs=None, lam=None) -> Run:
        """The run with ``--epochs`` / ``--lam`` applied; a value equal to the run's own changes nothing,
        and ``lam`` is ignored by runs without learned masks."""
        run = self
        if epochs is not None and epochs != run.n_epochs:
            run = dataclasses.replace(run, epochs=epochs)
        if lam is not None and run.penalty_lam is not None and lam != run.penalty_lam:
            run = dataclasses.replace(run, lam=lam)
        return run


def parse_run(text: str, backend: str = "torch") -> Run:
    """``"mvnet-a-10-lam0.01-e5"`` -> ``Run("mvnet-a-10", lam=0.01, epochs=5)``,
    ``"mvnet-a-20-released-nomaskwd"`` -> ``Run("mvnet-a-20", penalty="released", mask_weight_decay=False)``;
    a bare variant name uses the recipe."""
    match = _NAME.match(text)
    if match is None or match["model"] not in VARIANTS:
        raise ValueError(f"run {text!r} is not <variant>[-released][-lam<lambda>][-e<epochs>][-nomaskwd] with a "
                         f"variant of minilib.models.VARIANTS ({', '.join(VARIANTS)})")
    lam, epochs = match["lam"], match["epochs"]
    return Run(match["model"], None if lam is None else float(lam), None if epochs is None else int(epochs), backend,
               penalty="released" if match["released"] else "eq7", mask_weight_decay=not match["nomaskwd"])


def default_seeds(run: Run) -> tuple:
    """Seeds 0, 1, 2 for the torch runs a claim compares (:func:`three_seed_runs`); seed 0 otherwise."""
    return (0, 1, 2) if run.backend == "torch" and run.name in three_seed_runs() else (0,)


def three_seed_runs() -> set:
    """Names of the runs trained with three seeds: the recipe runs of :data:`THREE_SEEDS` under both penalty
    scales where masks are learned, the ``-nomaskwd`` runs, Fig. 2(a) at s >= 20 and every Fig. 2(b) point."""
    runs = [Run(model) for model in THREE_SEEDS] + _released_table_runs() + _no_mask_decay_runs()
    runs += [run for run in _fig2a_runs() if int(run.model.rsplit("-", 1)[1]) >= FIG2A_THREE_SEEDS_FROM]
    runs += _fig2b_runs()
    return {run.name for run in runs}


def _released_table_runs() -> list:
    return [Run(model, penalty="released") for model in MVNET_TABLE]


def _no_mask_decay_runs() -> list:
    return [Run(f"mvnet-{kind}-20", penalty=RECOMMENDED_PENALTY, mask_weight_decay=False) for kind in "ab"]


def _fig2a_runs() -> list:
    return [Run(f"mvnet-a-{s}", penalty=penalty) for penalty in PENALTIES for s in FIG2A_S]


def _fig2b_runs() -> list:
    return [Run(f"mvnet-a-{s}", lam=lam, epochs=FIG2B_EPOCHS) for s in FIG2B_S for lam in FIG2B_LAMBDAS]


def default_runs(backend: str = "torch") -> list:
    """Every MNIST run of the papers: Tables 2-3, MVNet Table 1 under both penalty scales, the mask-decay runs,
    Fig. 2(a) and the Fig. 2(b) λ sweep (torch); or the NumPy-backend runs. Each run appears once."""
    if backend == "numpy":
        return [Run(model, backend="numpy") for model in NUMPY_RUNS]
    runs = [Run(model) for model in TABLE_RUNS] + _released_table_runs() + _no_mask_decay_runs()
    runs += _fig2a_runs() + [Run("mvnet-a-50", lam=released_lam(50))] + _fig2b_runs()
    return list({run.name: run for run in runs}.values())


def released_lam(s: int, lam: float = RECIPE["lam"]) -> float:
    """The λ at which Eq. 7's penalty of an MVNet-A equals the released code's at ``lam``: for shared masks the
    released penalty is 2/s^2 times Eq. 7 (:func:`minilib.torch.ortho_loss_released`); 8e-05 for s = 50. The run
    ``mvnet-a-50-lam8e-05`` (Eq. 7 at that λ) is the ``mvnet-a-50-released`` run written the other way."""
    return float(f"{2 * lam / s ** 2:.6g}")


def default_plan(backend: str = "torch") -> list:
    """``[(Run, seeds), ...]`` of :func:`default_runs` with :func:`default_seeds`."""
    return [(run, default_seeds(run)) for run in default_runs(backend)]


def make_plan(names=None, seeds=None, backend="torch", epochs=None, lam=None) -> list:
    """``[(Run, seeds), ...]``: the named runs (default: :func:`default_runs`), overrides applied,
    each with ``seeds`` or its :func:`default_seeds`; a run named twice is planned once."""
    runs = default_runs(backend) if not names else [parse_run(name, backend) for name in names]
    return plan_runs([run.with_overrides(epochs, lam) for run in runs], seeds, default_seeds)


# ----------------------------------------------------------------------------- data
def load_splits(quick: bool = False) -> dict:
    """``{"train", "val", "test": (x float32 (N, 1, 28, 28), y int64 (N,)), "mean", "std"}``, standardised.

    Train: the first 50,000 training images; val: the last 10,000. With ``quick``, from the embedded sample
    (no data or network needed): the first :data:`QUICK_SIZES` training images, the last ones of the sample for
    validation, the first test images. ``"variant"`` says which ("full" or "sample").
    """
    from ..data import load_mnist
    from ..data.transforms import images_to_nchw, standardize

    (x, y), (x_test, y_test) = load_mnist("train", sample=quick), load_mnist("test", sample=quick)
    sizes = QUICK_SIZES if quick else {"train": N_TRAIN, "val": N_VAL, "test": len(x_test)}
    train = slice(0, sizes["train"])
    val = slice(len(x) - sizes["val"], len(x))      # full data: images 50,000 .. 59,999
    x_train, mean, std = standardize(images_to_nchw(x[train]))
    splits = {"train": (x_train, y[train]),
              "val": (standardize(images_to_nchw(x[val]), mean, std)[0], y[val]),
              "test": (standardize(images_to_nchw(x_test[:sizes["test"]]), mean, std)[0], y_test[:sizes["test"]])}
    splits = {key: (np.ascontiguousarray(xs, dtype=np.float32), ys.astype(np.int64))
              for key, (xs, ys) in splits.items()}
    return {**splits, "mean": float(mean[0]), "std": float(std[0]), "variant": "sample" if quick else "full"}


# ----------------------------------------------------------------------------- training, one backend each
# one entry per epoch; "seconds" is the epoch's wall time including its validation pass
HISTORY_KEYS = ("epoch", "lr", "train_loss", "train_accuracy", "penalty", "val_loss", "val_accuracy", "seconds")


def train_torch(run: Run, seed: int, splits: dict, epochs: int) -> dict:
    """Train with the PyTorch twins (:func:`train_torch_model`); returns the run's measurements."""
    from ..torch.models import lenet as torch_lenet

    rng = np.random.default_rng(seed)
    model = torch_lenet(run.model, rng=rng)
    return train_torch_model(model, rng, splits, epochs, run.penalty_lam, f"{run.name} seed {seed}",
                             released=run.released_penalty, mask_weight_decay=run.mask_weight_decay)


def train_torch_model(model, rng: np.random.Generator, splits: dict, epochs: int, lam: float | None,
                      label: str, released: bool = False, mask_weight_decay: bool = True) -> dict:
    """The recipe's training (:func:`minilib.training.fit` under :func:`loop_recipe`) of any torch LeNet
    ``model`` (made float32 here), its mini-batches drawn from ``rng`` (the generator that drew the initial
    weights, so one seed fixes both); ``lam`` is λ of MVNet Eq. 8 (None: no penalty), at the released code's
    scale with ``released``; ``mask_weight_decay=False`` exempts the full-stack mask latents from weight decay;
    ``label`` names the run in the progress lines.

    Returns ``{"model", "history", "initial", "test_loss", "test_accuracy", "threads", "diverged", "loop"}``.
    """
    from ..training import evaluate, fit

    model = model.float()
    recipe = loop_recipe(lam, released, mask_weight_decay)
    x, y = splits["train"]
    initial = dict(zip(("val_loss", "val_accuracy"), evaluate(model, *splits["val"])))
    trained = fit(model, recipe, epochs=epochs, steps_per_epoch=-(-len(x) // recipe.batch_size),
                  batches=lambda epoch: shuffled_batches(x, y, recipe.batch_size, rng),
                  validate=lambda: dict(zip(("val_loss", "val_accuracy"), evaluate(model, *splits["val"]))),
                  label=label, epoch_line=lambda entry: epoch_line(label, entry, epochs))
    diverged = trained["diverged"]
    test_loss, test_accuracy = (None, None) if diverged else evaluate(model, *splits["test"])
    return {"model": model, "history": history_lists(trained["history"], HISTORY_KEYS), "initial": initial,
            "test_loss": test_loss, "test_accuracy": test_accuracy, "threads": trained["threads"],
            "diverged": diverged, "loop": recipe.fields()["loop"]}


def loop_recipe(lam: float | None, released: bool = False, mask_weight_decay: bool = True):
    """:data:`RECIPE` as the training loop's recipe: SGD, cosine stepped once per epoch, a divergence recorded."""
    from ..training import Recipe

    return Recipe(optimizer="sgd", lr=RECIPE["lr"], batch_size=RECIPE["batch_size"], momentum=RECIPE["momentum"],
                  nesterov=RECIPE["nesterov"], weight_decay=RECIPE["weight_decay"], schedule="cosine",
                  schedule_step="epoch", lam=lam, penalty_scale="released" if released else "paper",
                  mask_weight_decay=mask_weight_decay, on_nonfinite="record")


def train_numpy(run: Run, seed: int, splits: dict, epochs: int) -> dict:
    """Train with minilib's own layers and :func:`minilib.train.fit` (its tqdm bar per epoch).

    A run whose loss (or penalty) stops being finite is recorded as diverged, as the torch path records it: the
    epochs before in the history, ``diverged`` = ``{"epoch", "batch", "batches_per_epoch"}``, no test evaluation.
    """
    from ..fullstack import OrthoPenalty
    from ..losses import softmax_cross_entropy
    from ..optim import SGD, CosineLR
    from ..train import Diverged, evaluate, fit

    rng = np.random.default_rng(seed)
    model = lenet(run.model, rng=rng).astype(np.float32)
    optimizer = SGD(model, lr=RECIPE["lr"], momentum=RECIPE["momentum"], nesterov=RECIPE["nesterov"],
                    weight_decay=RECIPE["weight_decay"])
    lam = run.penalty_lam
    regularizer = None if lam is None else OrthoPenalty(model, lam=lam, released=run.released_penalty)
    lrs = [RECIPE["lr"] * (1 + math.cos(math.pi * e / epochs)) / 2 for e in range(epochs)]    # what CosineLR sets

    initial = dict(zip(("val_loss", "val_accuracy"), evaluate(model, softmax_cross_entropy, *splits["val"])))
    print(f"{run.name} seed {seed}: NumPy backend, {epochs} epochs", file=sys.stderr)
    try:
        fitted = fit(model, softmax_cross_entropy, optimizer, *splits["train"], epochs=epochs,
                     batch_size=RECIPE["batch_size"], rng=rng, x_val=splits["val"][0], y_val=splits["val"][1],
                     scheduler=CosineLR(optimizer, epochs), progress="bar", regularizer=regularizer,
                     log=lambda line: print(f"{run.name} seed {seed} {line}", file=sys.stderr))
        diverged = None
    except Diverged as stop:        # one history entry per epoch (evals_per_epoch=1): the epochs completed before
        fitted = stop.history
        diverged = {"epoch": stop.epoch, "batch": stop.batch, "batches_per_epoch": stop.batches_per_epoch}
        print(f"{run.name} seed {seed}: {stop}", file=sys.stderr)
    done = len(fitted["epoch"])
    history = {"epoch": [int(e) for e in fitted["epoch"]], "lr": [float(lr) for lr in lrs[:done]],
               "train_loss": fitted["loss"], "train_accuracy": fitted["accuracy"],
               "penalty": fitted["penalty"] or [None] * done, "val_loss": fitted["val_loss"],
               "val_accuracy": fitted["val_accuracy"], "seconds": fitted["seconds"]}
    test_loss, test_accuracy = ((None, None) if diverged
                                else evaluate(model, softmax_cross_entropy, *splits["test"]))
    return {"model": model, "history": history, "initial": initial, "test_loss": test_loss,
            "test_accuracy": test_accuracy, "threads": blas_threads(), "diverged": diverged}


TRAINERS = {"torch": train_torch, "numpy": train_numpy}


# ----------------------------------------------------------------------------- one run, the command
# the recipe's numbers that a result must hold to count as done for a run of this recipe (expected_result)
CHECKED_RECIPE = ("optimizer", "lr", "momentum", "nesterov", "weight_decay", "batch_size")


def run_epochs(run: Run, quick: bool = False) -> int:
    """Epochs a run trains for: one for a ``--quick`` smoke test, else the run's own."""
    return 1 if quick else run.n_epochs


def expected_result(run: Run, seed: int, quick: bool = False) -> dict:
    """What the result file of ``run`` and ``seed`` must hold to count as done (:func:`minilib.results.check_result`):
    the values :func:`train_run` writes for them, the recipe's numbers (:data:`CHECKED_RECIPE`) among them."""
    epochs = run_epochs(run, quick)
    return {"experiment": "mnist", "run": run.name, "seed": seed, "model": run.model, "backend": run.backend,
            "quick": quick, "epochs": epochs, "lam": run.penalty_lam,
            "recipe": {**{key: RECIPE[key] for key in CHECKED_RECIPE}, "epochs": epochs, "lam": run.penalty_lam}}


def train_run(run: Run, seed: int, splits: dict, quick: bool = False) -> dict:
    """Train ``run`` with ``seed`` and return the JSON payload (:func:`minilib.results.write_result` adds
    the seed, command, date and git revision)."""
    epochs = run_epochs(run, quick)
    start = time.perf_counter()
    trained = TRAINERS[run.backend](run, seed, splits, epochs)
    wall = time.perf_counter() - start
    return {
        "experiment": "mnist", "run": run.name, "model": run.model, "backend": run.backend,
        "epochs": epochs, "lam": run.penalty_lam, "quick": quick,
        "penalty": run.penalty if run.penalty_lam is not None else None, "mask_weight_decay": run.mask_weight_decay,
        "recipe": {**RECIPE, "epochs": epochs, "lam": run.penalty_lam, "penalty": run.penalty,
                   **({} if run.mask_weight_decay else {"weight_decay_applies_to": NO_MASK_DECAY}),
                   **({"loop": trained["loop"]} if "loop" in trained else {})},
        **measurements(trained, splits, wall),
    }


def measurements(trained: dict, splits: dict, wall_seconds: float) -> dict:
    """The part of a result payload that every MNIST training writes alike: data sizes, history, accuracies,
    divergence, costs (:func:`minilib.accounting.summarize` of the trained model), times, threads, versions.

    ``trained``: what :func:`train_torch_model` or :func:`train_numpy` return."""
    summary = summarize(trained["model"], (1, 28, 28))
    history = trained["history"]
    # a diverged run keeps the epochs it finished; it may have none
    best = int(np.argmax(history["val_accuracy"])) if history["val_accuracy"] else None
    return {
        "data": {"dataset": "MNIST", "variant": splits.get("variant", "full"), "train": len(splits["train"][0]), "val": len(splits["val"][0]),
                 "test": len(splits["test"][0]), "mean": splits["mean"], "std": splits["std"]},
        "history": history, "initial": trained["initial"],
        "test_loss": trained["test_loss"], "test_accuracy": trained["test_accuracy"],
        "diverged": trained["diverged"],
        "best_val_accuracy": None if best is None else history["val_accuracy"][best],
        "best_epoch": None if best is None else history["epoch"][best],
        "last_val_accuracy": history["val_accuracy"][-1] if history["val_accuracy"] else None,
        "cost": {**summary.totals, "params_32bit": summary.params_32bit},
        "paper_strings": summary.paper_strings(),
        "wall_seconds": wall_seconds,
        "epoch_seconds": float(np.mean(history["seconds"])) if history["seconds"] else None,
        "threads": trained["threads"], "versions": versions(),
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runs", nargs="+", metavar="NAME",
                        help="runs to train, <variant>[-lam<lambda>][-e<epochs>] (default: every run of the papers' "
                             "MNIST tables and figures)")
    parser.add_argument("--seeds", nargs="+", type=int, metavar="SEED",
                        help="seeds for every run (default: 0 1 2 for the five seeded runs, 0 for the rest)")
    parser.add_argument("--epochs", type=int, help=f"epochs for every run (default: {RECIPE['epochs']}; "
                        f"{FIG2B_EPOCHS} for the Fig. 2(b) runs); adds -e<epochs> to the run names")
    parser.add_argument("--backend", choices=BACKENDS, default="torch",
                        help="torch (the twins) or numpy (minilib layers; adds -numpy to the run names)")
    parser.add_argument("--lam", type=float, help=f"lambda of the orthogonality penalty for MVNets with learned "
                        f"masks (default {RECIPE['lam']}); adds -lam<lambda> to their names")
    add_common_arguments(parser, "mnist", "smoke test in seconds: {train} training, {val} validation and {test} "
                         "test images, 1 epoch".format(**QUICK_SIZES))


def describe(payload: dict) -> str:
    """The line printed when a run is done."""
    if payload["diverged"]:
        where = payload["diverged"]
        return f"diverged at epoch {where['epoch']}, mini-batch {where['batch']}, {payload['wall_seconds']:.0f} s"
    return (f"test accuracy {payload['test_accuracy']:.4f}, best val {payload['best_val_accuracy']:.4f}, "
            f"{payload['wall_seconds']:.0f} s")


def main(args: argparse.Namespace) -> int:
    return run_experiment(args, "mnist", lambda: make_plan(args.runs, args.seeds, args.backend, args.epochs, args.lam),
                          lambda: load_splits(args.quick), train_run, describe, expect=expected_result)
