"""CIFAR-10: a ResNet-20 with each method's 3x3 convolutions (filter basis, MVNet-B, versatile filters).

WHICH CIFAR-10: the JPEG-decoded copy when it is under the data root (it was decoded from JPEG
re-encodings of the original images, mean PSNR 30.5 dB against the originals, so accuracies are not
comparable digit-for-digit with published numbers; its test set is sorted by class), else the
official release (fetched on first use). Each result records the copy it read (``data.variant``).

Model (:func:`build_model`, :func:`minilib.torch.resnet.cifar_resnet`): ResNet-20 of He et al.
(CVPR 2016, Sec. 4.2), width 16 (stages 16, 32, 64 channels, 3 blocks each), option-A
(parameter-free, strided, zero-padded) shortcuts, BatchNorm, global average pooling. Only the 18
block 3x3 convolutions change with the run; the stem convolution and the classifier stay
standard. Runs (:data:`RUNS`):

- ``baseline``: ``nn.Conv2d``; 269,722 parameters, 40.6 M multiplications per image;
- ``basis-shared``: filter basis as the released ResNet-56 config (Li et al., ICCV 2019,
  Sec. 4.2): s = 1 (no splits), ONE basis per stage shared by every block convolution that reads
  that stage's width (so the downsampling conv1 of stage i+1 uses stage i's basis, as the release),
  m = 24, 48, 84 basis filters (the release's defaults), 1x1 coefficients; 40.3% of the baseline's
  parameters but 156% of its multiplications (m > n: Eq. 11 costs m/n + m/(p k^2) of a conv);
- ``basis-split``: the split-wise form, s = 4 splits in every stage (Eq. 7's s* = sqrt(c k^2/n) = 3,
  quantised to the divisor p of c nearest p* = sqrt(nc/k^2), gives p = c/4 in all three stages),
  m = n/2 = 8, 16, 32, one basis per stage as above; 25.2% of the parameters, 71% of the
  multiplications (about the parameter budget of mvnet-b-4);
- ``mvnet-b-4``: full-stack filters with separate learned masks (Han et al., NeurIPS 2019,
  MVNet-B), s = 4, ortho penalty λ = 0.1 (Eq. 8, as the MNIST recipe); 25.7% of the 32-bit
  parameters (28.8% counting the 1-bit masks), 25.8% of the multiplications (Eq. 13-14);
- ``versatile``: spatial versatile filters (Wang et al., NeurIPS 2018, Eq. 2-3): every 3x3
  primary filter gives s = 2 secondaries (3x3 and its 1x1 centre); 50.5% of the parameters,
  56% of the multiplications.

The shortcut subsamples with stride 2 as He et al.'s option A; the filter-basis release averages
2x2 pixels instead (its ``DownSampleA``).

ONE recipe for every run (:data:`RECIPE`): train on the first 6,400 of the first 45,000 training
images; hold out the last 5,000 training images and validate on the first 2,000 of them after
every epoch; report all 10,000 test images once, after the last epoch (no model selection).
Augmentation: random 32x32 crop of the image zero-padded by 4 pixels, and a horizontal flip with
probability 1/2, drawn afresh every epoch. Normalisation: per channel, mean (125.3, 123.0, 113.9)/255
and std (63.0, 62.1, 66.7)/255, the constants of the data loader of the filter-basis author's
framework (ofsoundof/group_sparsity, data/cifar10.py; the learning_filter_basis release omits its
loader, and the paper says only "channel-wise mean and standard deviation of the training set");
the JSON also records the mean and std computed from the training subset used. SGD, momentum 0.9,
weight decay 5e-4 on every parameter, batch 128, learning rate 0.1 annealed to 0 by a cosine
stepped after every mini-batch, 5 epochs, float32, cross-entropy (+ λ L_ortho for mvnet-b-4).
Initial weights from ``build_model(run, rng=np.random.default_rng(seed))``; the same generator
then draws the augmentation and shuffles the mini-batches.

Budget (no GPU, at most 15 minutes per run on 2 cores). Measured with ONE torch thread on this
2-core machine while two other training processes (and at times a third job) were running, load
average 3.5-4.5, so the numbers are pessimistic: one real epoch of this recipe (augmenting the
6,400 images, 50 mini-batches of forward + backward + SGD step, validating on 2,000 images) took
baseline 63 s (1.1 s per batch), mvnet-b-4 68 s (1.2 s), basis-shared 84 s (1.4 s), versatile
94 s (1.6 s), basis-split 119 s (2.1 s; its s = 4 splits run as 4N small images of p channels);
250 batches in all. Validation runs at 3.5-7.5 ms per image, so the 10,000 test images take 35-75 s;
loading CIFAR-10 (LZMA) 15-35 s; the latency block about 10-20 s. A run of 5 epochs thus takes about
6.5 minutes (baseline, mvnet-b-4), 9 (basis-shared), 10 (versatile) and 12 (basis-split): the whole
sweep about 45 minutes, and less with 2 free cores (``--threads 2``, the default).

Costs (``cost``, ``compression``): :func:`minilib.accounting.summarize` of the trained model for
one 32x32 image. It hooks the leaf layers, so the residual additions in the blocks' forward do not
disturb it; the option-A shortcuts, ReLU and pooling have no parameters and no multiplications,
BatchNorm has parameters but no multiplications (it folds into the preceding convolution), a
shared basis is counted once. ``converted_*`` are the 18 block convolutions alone; ``params_32bit``
counts 1-bit masks as 1/32 parameter (MVNet's "#param (32-bit)"); FLOPs are multiplications
(Eq. 11 of the basis paper, Eq. 13 of MVNet, Prop. 1 of versatile filters).

Latency (:mod:`minilib.timing`, :mod:`minilib.training.timing`, stored under ``latency``): the trained torch model in
eval mode at batch 1 and 128; and the NumPy forward of stage 2's second block's conv1 (32 -> 32
channels, 16x16) in its method's layer against ``minilib.layers.Conv2d`` at the same shapes, batch
32, as a ratio measured in the same run.

Formulations (:mod:`minilib.torch.formulations`): by default every twin trains in the formulation it is built
with, as the committed results did. ``--formulations fastest`` times each block convolution's equal formulations
on the first mini-batch and trains with the fastest (the step then takes about the baseline's time,
``benchmarks/step_benchmark.py``); the result stores the choices under ``formulations``. Same function in exact
arithmetic; float32 rounding, and so the trained numbers, may differ in the last digits.

One JSON per run and seed, ``<out-dir>/<run>[-e<epochs>]_seed<seed>.json``; a run whose file
counts as done (:func:`expected_result`) is skipped unless ``--force``, any other file set aside and made again::

    python -m minilib.reproduce cifar10 --list                          # the plan, and what is done
    python -m minilib.reproduce cifar10 --runs baseline --seeds 0       # one run
    python -m minilib.reproduce cifar10                                 # every run (~45 min), resumable
    python -m minilib.reproduce cifar10 --quick --out-dir /tmp/cifar    # smoke test, seconds
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import re
import time

import numpy as np

from ..accounting import summarize
from ..methods import basis_channels_from_splits
from .common import (add_common_arguments, epoch_line, history_lists, plan_runs, run_experiment, shuffled_batches,
                     versions)

HELP = "CIFAR-10 ResNet-20: baseline, filter basis (shared, split), MVNet-B and versatile filters"

ARCHITECTURE = {"depth": 20, "width": 16}
INPUT_SHAPE = (3, 32, 32)
RUNS = {                        # run -> method and its keyword arguments for cifar_resnet
    "baseline": {"method": "baseline"},
    "basis-shared": {"method": "basis", "n_basis": (24, 48, 84), "splits": 1, "share_basis": True},
    "basis-split": {"method": "basis", "n_basis": (8, 16, 32), "splits": 4, "share_basis": True},
    "mvnet-b-4": {"method": "fullstack", "s": 4, "masks": "separate", "learn_masks": True},
    "versatile": {"method": "versatile", "delta": 0, "g": 1},
}
LAM = 0.1                       # λ of MVNet Eq. 8 for runs with learned masks

NORM_MEAN = tuple(v / 255 for v in (125.3, 123.0, 113.9))
NORM_STD = tuple(v / 255 for v in (63.0, 62.1, 66.7))
DATA_NOTES = {"jpeg": "CIFAR-10 decoded from JPEG re-encodings (lossy, mean PSNR 30.5 dB against the original "
                       "pixels); the test set is stored sorted by class",
              "official": "CIFAR-10, the official release (lossless pixels, converted from its python tarball)"}
DATA_NOTE = DATA_NOTES["jpeg"]      # the copy the committed results read
N_POOL, N_TRAIN, N_VAL = 45_000, 6_400, 2_000       # training pool; train on its first N_TRAIN; val after it
QUICK_SIZES = {"train": 512, "val": 256, "test": 200}           # --quick: a smoke test in seconds
RECIPE = {
    "architecture": ("ResNet-20 (He et al. 2016, CIFAR version): 3x3 stem conv (16) + BN + ReLU, 3 stages x 3 "
                     "basic blocks (16, 32, 64 channels; stride 2 at the start of stages 2 and 3), global average "
                     "pooling, linear classifier; no conv biases; the 18 block convs use the run's method, the "
                     "stem conv and the classifier stay standard"),
    **ARCHITECTURE,
    "shortcut": "option A: identity, or stride-2 subsampling + zero-padded channels (parameter-free)",
    "optimizer": "SGD",
    "lr": 0.1,
    "momentum": 0.9,
    "nesterov": False,
    "weight_decay": 5e-4,
    "weight_decay_applies_to": "every parameter (conv, basis, coefficients, mask latents, BatchNorm, classifier)",
    "batch_size": 128,
    "schedule": "cosine annealing from lr to 0 over all mini-batches of the run, stepped after every mini-batch",
    "epochs": 5,
    "loss": "cross-entropy + lam * L_ortho (MVNet Eq. 7-8) for runs with learned full-stack masks",
    "lam": LAM,
    "augmentation": "random 32x32 crop of the image zero-padded by 4 pixels, horizontal flip with p = 0.5, "
                    "drawn afresh every epoch",
    "normalization": {"mean": NORM_MEAN, "std": NORM_STD,
                      "source": "(125.3, 123.0, 113.9)/255 and (63.0, 62.1, 66.7)/255: the CIFAR-10 loader of the "
                                "filter-basis author's framework (ofsoundof/group_sparsity data/cifar10.py); the "
                                "paper: channel-wise mean and std of the training set"},
    "data": "the JPEG-decoded copy when it is under the data root, else the official release",
    "dtype": "float32",
    "init": "minilib.reproduce.cifar10.build_model(run, rng=np.random.default_rng(seed)); the same rng then draws "
            "the augmentation and shuffles",
    "split": f"train: training images 0..{N_TRAIN - 1}; val: training images {N_POOL}..{N_POOL + N_VAL - 1} (the "
             f"last 5,000 are held out); test: all 10,000 test images",
    "model_selection": "none: the last epoch's model is tested once; val accuracy is only reported",
}
# one entry per epoch; "seconds" is the epoch's wall time including augmentation and its validation pass;
# "batch_losses" the epoch's mini-batch cross-entropies in training order (a learning curve within the epoch)
HISTORY_KEYS = ("epoch", "lr", "train_loss", "train_accuracy", "penalty", "val_loss", "val_accuracy", "seconds",
                "batch_losses")
LATENCY_LAYER = "stages.1.1.conv1"          # stage 2, second block, first conv: 2w -> 2w channels at 16x16
LATENCY_NUMPY_BATCH = 32

_NAME = re.compile(r"^(?P<model>.+?)(?:-e(?P<epochs>\d+))?$")


@dataclasses.dataclass(frozen=True)
class Run:
    """One training configuration: a model of :data:`RUNS`, and ``epochs`` when it differs from the recipe."""
    model: str
    epochs: int | None = None

    def __post_init__(self):
        if self.model not in RUNS:
            raise ValueError(f"model={self.model!r} is not a CIFAR-10 run; known runs: {', '.join(RUNS)}")
        if self.epochs is not None and self.epochs < 1:
            raise ValueError(f"epochs={self.epochs} must be a positive integer")

    @property
    def name(self) -> str:
        """``<model>[-e<epochs>]``: the file stem before ``_seed<seed>``."""
        return self.model + ("" if self.epochs is None else f"-e{self.epochs}")

    @property
    def n_epochs(self) -> int:
        return RECIPE["epochs"] if self.epochs is None else self.epochs

    @property
    def penalty_lam(self) -> float | None:
        """λ of Eq. 8, or None for a run without learned full-stack masks."""
        spec = RUNS[self.model]
        return LAM if spec["method"] == "fullstack" and spec.get("learn_masks", True) else None

    def with_epochs(self, epochs) -> Run:
        """The run with ``--epochs`` applied; the recipe's own value changes nothing."""
        if epochs is None or epochs == self.n_epochs:
            return self
        return dataclasses.replace(self, epochs=epochs)


def parse_run(text: str) -> Run:
    """``"basis-split-e3"`` -> ``Run("basis-split", epochs=3)``; a bare run name uses the recipe."""
    match = _NAME.match(text)
    if match is None or match["model"] not in RUNS:
        raise ValueError(f"run {text!r} is not <run>[-e<epochs>] with a run of {', '.join(RUNS)}")
    return Run(match["model"], None if match["epochs"] is None else int(match["epochs"]))


def make_plan(names=None, seeds=None, epochs=None) -> list:
    """``[(Run, seeds), ...]``: the named runs (default: every run of :data:`RUNS`), ``--epochs`` applied,
    each with ``seeds`` (default: seed 0); a run named twice is planned once."""
    runs = [Run(model) for model in RUNS] if not names else [parse_run(name) for name in names]
    return plan_runs([run.with_epochs(epochs) for run in runs], seeds, lambda run: (0,))


def build_model(model: str, rng=None):
    """The torch ResNet of run ``model`` (a key of :data:`RUNS`), float32.

    :data:`RUNS` (and the results' ``architecture``) give a basis run's splits s, one per network; the
    builder takes the method's word, p = w_i / s channels per stage (:mod:`minilib.methods`)."""
    from ..torch.resnet import STAGES, cifar_resnet

    if model not in RUNS:
        raise ValueError(f"model={model!r} is not a CIFAR-10 run; known runs: {', '.join(RUNS)}")
    kwargs = dict(RUNS[model])
    if "splits" in kwargs:
        widths = tuple(ARCHITECTURE["width"] * 2 ** i for i in range(STAGES))
        kwargs["basis_channels"] = basis_channels_from_splits(kwargs.pop("splits"), widths, "stage width")
    return cifar_resnet(**ARCHITECTURE, rng=rng, **kwargs)


# ----------------------------------------------------------------------------- data
def stratified_indices(labels, per_class: int, rng) -> np.ndarray:
    """``per_class`` random indices of every class, sorted: a test subset that is not just the first classes."""
    labels = np.asarray(labels)
    chosen = [rng.choice(np.flatnonzero(labels == c), size=per_class, replace=False) for c in np.unique(labels)]
    return np.sort(np.concatenate(chosen))


def to_nchw(images) -> np.ndarray:
    """Stored (N, 32, 32, 3) uint8 -> (N, 3, 32, 32) uint8, contiguous."""
    return np.ascontiguousarray(np.asarray(images).transpose(0, 3, 1, 2))


def normalize(images) -> np.ndarray:
    """(N, 3, H, W) uint8 -> float32 (x / 255 - mean) / std with the recipe's per-channel constants."""
    mean = np.asarray(NORM_MEAN, dtype=np.float32)[:, None, None]
    std = np.asarray(NORM_STD, dtype=np.float32)[:, None, None]
    return (images.astype(np.float32) / np.float32(255) - mean) / std


def random_crop_flip(images, rng, padding: int = 4) -> np.ndarray:
    """Standard CIFAR augmentation of uint8 (N, C, H, W): zero-pad by ``padding``, crop a random HxW window,
    flip horizontally with probability 1/2; one draw per image."""
    n, _, h, w = images.shape
    padded = np.pad(images, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (h, w), axis=(2, 3))    # (N, C, 2p+1, 2p+1, H, W)
    dy, dx = rng.integers(0, 2 * padding + 1, size=(2, n))
    out = windows[np.arange(n), :, dy, dx]                                              # (N, C, H, W)
    flip = rng.random(n) < 0.5
    out[flip] = out[flip, :, :, ::-1]
    return out


def load_splits(quick: bool = False) -> dict:
    """``{"train": (uint8 NCHW, labels), "val" / "test": (float32 normalised NCHW, labels), "test_selection",
    "stats"}``; ``stats`` holds the channel mean and std of the training subset (recorded, not used).

    Train stays uint8 (it is augmented every epoch, then normalised). With ``quick``: the first
    :data:`QUICK_SIZES` training and validation images and a stratified random test subset
    (the stored test set is sorted by class).
    """
    from ..data import cifar10_variant, load_cifar10

    variant = cifar10_variant()
    (x, y), (x_test, y_test) = load_cifar10("train", variant=variant), load_cifar10("test", variant=variant)
    sizes = QUICK_SIZES if quick else {"train": N_TRAIN, "val": N_VAL, "test": len(x_test)}
    train, val = slice(0, sizes["train"]), slice(N_POOL, N_POOL + sizes["val"])
    if sizes["test"] < len(x_test):
        test = stratified_indices(y_test, sizes["test"] // 10, np.random.default_rng(0))
    else:
        test = np.arange(len(x_test))
    x_train = to_nchw(x[train])
    pixels = x_train.astype(np.float64) / 255
    stats = {"mean": pixels.mean(axis=(0, 2, 3)).tolist(), "std": pixels.std(axis=(0, 2, 3)).tolist()}
    return {"train": (x_train, y[train].astype(np.int64)),
            "val": (normalize(to_nchw(x[val])), y[val].astype(np.int64)),
            "test": (normalize(to_nchw(x_test[test])), y_test[test].astype(np.int64)),
            "test_selection": "all" if len(test) == len(x_test) else "stratified random (seed 0), "
                                                                   f"{sizes['test'] // 10} per class",
            "stats": stats, "variant": variant}


# ----------------------------------------------------------------------------- training
def train_model(run: Run, seed: int, splits: dict, epochs: int, formulations: str | None = None) -> dict:
    """Train ``run`` with the torch twins (:func:`minilib.training.fit` under :func:`loop_recipe`, ``formulations``
    passed on: None or "fastest"); returns the model, per-epoch history, test numbers and the formulations' record."""
    from ..training import evaluate, fit

    rng = np.random.default_rng(seed)
    model = build_model(run.model, rng)
    recipe = loop_recipe(run.penalty_lam)
    x_train, y_train = splits["train"]
    label = f"{run.name} seed {seed}"

    def batches(epoch):
        # augmentation drawn afresh every epoch, before the shuffle, from the same rng
        yield from shuffled_batches(normalize(random_crop_flip(x_train, rng)), y_train, recipe.batch_size, rng)

    initial = dict(zip(("val_loss", "val_accuracy"), evaluate(model, *splits["val"])))
    trained = fit(model, recipe, epochs=epochs, steps_per_epoch=-(-len(x_train) // recipe.batch_size),
                  batches=batches,
                  validate=lambda: dict(zip(("val_loss", "val_accuracy"), evaluate(model, *splits["val"]))),
                  label=label, epoch_line=lambda entry: epoch_line(label, entry, epochs), formulations=formulations)
    test_loss, test_accuracy = evaluate(model, *splits["test"])
    return {"model": model, "history": history_lists(trained["history"], HISTORY_KEYS), "initial": initial,
            "test_loss": test_loss, "test_accuracy": test_accuracy, "threads": trained["threads"],
            "loop": recipe.fields()["loop"], "formulations": trained["formulations"]}


def loop_recipe(lam: float | None):
    """:data:`RECIPE` as the training loop's recipe: SGD, cosine stepped after every mini-batch; a non-finite
    loss is an error (no result file)."""
    from ..training import Recipe

    return Recipe(optimizer="sgd", lr=RECIPE["lr"], batch_size=RECIPE["batch_size"], momentum=RECIPE["momentum"],
                  nesterov=RECIPE["nesterov"], weight_decay=RECIPE["weight_decay"], schedule="cosine",
                  schedule_step="batch", lam=lam, on_nonfinite="raise")


# ----------------------------------------------------------------------------- costs and latency
def model_cost(model) -> dict:
    """Storage and multiplications of one 32x32 image (:func:`minilib.accounting.summarize`): the totals
    (conv_weights, mask_bits, params, memory_kb, flops, params_32bit) and ``converted_*``, the same for the
    18 block convolutions that the method replaces (a shared basis counted once, in its first user)."""
    summary = summarize(model, INPUT_SHAPE)
    blocks = [row for row in summary.rows if row.name.endswith((".conv1", ".conv2"))]
    converted = {f"converted_{key}": sum(getattr(row, key) for row in blocks)
                 for key in ("conv_weights", "mask_bits", "params", "flops")}
    return {**summary.totals, "params_32bit": summary.params_32bit, **converted}


@functools.cache
def baseline_cost() -> dict:
    return model_cost(build_model("baseline", np.random.default_rng(0)))


def compression(cost: dict) -> dict:
    """The run's cost relative to the baseline ResNet (1.0 = no saving): params, params with 1-bit masks, FLOPs."""
    base = baseline_cost()
    def converted_32bit(c):
        return c["converted_params"] + c["converted_mask_bits"] / 32

    return {"params": cost["params"] / base["params"], "params_32bit": cost["params_32bit"] / base["params_32bit"],
            "converted_params": cost["converted_params"] / base["converted_params"],
            "converted_params_32bit": converted_32bit(cost) / converted_32bit(base),
            "flops": cost["flops"] / base["flops"], "converted_flops": cost["converted_flops"] / base["converted_flops"]}


def measure_latency(model, quick: bool = False) -> dict:
    """Torch latency of the whole model (batch 1 and 128) and the NumPy method layer vs standard conv ratio."""
    from ..timing import numpy_layer_latency
    from ..training.timing import torch_model_latency

    repeats = 2 if quick else 5
    layer = model.get_submodule(LATENCY_LAYER)
    width = ARCHITECTURE["width"] * 2
    return {"torch": torch_model_latency(model, INPUT_SHAPE, (1, 128), repeats=repeats, warmup=1 if quick else 2),
            "numpy_layer": {"name": LATENCY_LAYER,
                            **numpy_layer_latency(layer, (LATENCY_NUMPY_BATCH, width, 16, 16), repeats=repeats)}}


# ----------------------------------------------------------------------------- one run, the command
# the recipe's numbers that a result must hold to count as done for a run of this recipe (expected_result)
CHECKED_RECIPE = ("optimizer", "lr", "momentum", "nesterov", "weight_decay", "batch_size")


def run_epochs(run: Run, quick: bool = False) -> int:
    """Epochs a run trains for: one for a ``--quick`` smoke test, else the run's own."""
    return 1 if quick else run.n_epochs


def expected_result(run: Run, seed: int, quick: bool = False) -> dict:
    """What the result file of ``run`` and ``seed`` must hold to count as done (:func:`minilib.results.check_result`):
    the values :func:`train_run` writes for them, the architecture and the recipe's numbers among them."""
    epochs = run_epochs(run, quick)
    spec = RUNS[run.model]
    return {"experiment": "cifar10", "run": run.name, "seed": seed, "model": run.model, "method": spec["method"],
            "architecture": {**ARCHITECTURE, **spec}, "quick": quick, "epochs": epochs, "lam": run.penalty_lam,
            "recipe": {**{key: RECIPE[key] for key in CHECKED_RECIPE}, "epochs": epochs, "lam": run.penalty_lam}}


def train_run(run: Run, seed: int, splits: dict, quick: bool = False, formulations: str | None = None) -> dict:
    """Train ``run`` with ``seed`` and return the JSON payload (:func:`minilib.results.write_result` adds
    the seed, command, date and git revision); with ``formulations="fastest"`` the payload holds the chooser's
    record under ``formulations`` (see the module docstring)."""
    epochs = run_epochs(run, quick)
    start = time.perf_counter()
    trained = train_model(run, seed, splits, epochs, formulations)
    train_seconds = time.perf_counter() - start
    latency = measure_latency(trained["model"], quick)
    cost = model_cost(trained["model"])
    history = trained["history"]
    best = int(np.argmax(history["val_accuracy"]))
    spec = RUNS[run.model]
    return {
        "experiment": "cifar10", "run": run.name, "model": run.model, "method": spec["method"],
        "architecture": {**ARCHITECTURE, **spec},
        "epochs": epochs, "lam": run.penalty_lam, "quick": quick,
        "recipe": {**RECIPE, "epochs": epochs, "lam": run.penalty_lam, "data": DATA_NOTES[splits["variant"]],
                   "loop": trained["loop"]},
        "data": {"dataset": "CIFAR-10", "variant": splits["variant"], "note": DATA_NOTES[splits["variant"]],
                 "jpeg_decoded": splits["variant"] == "jpeg", "train": len(splits["train"][0]),
                 "val": len(splits["val"][0]), "test": len(splits["test"][0]),
                 "test_selection": splits["test_selection"], "train_subset_mean": splits["stats"]["mean"],
                 "train_subset_std": splits["stats"]["std"]},
        "history": history, "initial": trained["initial"],
        "test_loss": trained["test_loss"], "test_accuracy": trained["test_accuracy"],
        "best_val_accuracy": history["val_accuracy"][best], "best_epoch": history["epoch"][best],
        "last_val_accuracy": history["val_accuracy"][-1],
        "cost": cost, "compression": compression(cost), "latency": latency,
        "wall_seconds": time.perf_counter() - start, "train_seconds": train_seconds,
        "epoch_seconds": float(np.mean(history["seconds"])), "threads": trained["threads"], "versions": versions(),
        **({} if trained["formulations"] is None else {"formulations": trained["formulations"]}),
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runs", nargs="+", metavar="NAME",
                        help=f"runs to train, <run>[-e<epochs>] with a run of {', '.join(RUNS)} (default: all)")
    parser.add_argument("--seeds", nargs="+", type=int, metavar="SEED", help="seeds for every run (default: 0)")
    parser.add_argument("--epochs", type=int, help=f"epochs for every run (default: {RECIPE['epochs']}); "
                        f"adds -e<epochs> to the run names")
    parser.add_argument("--formulations", choices=("default", "fastest"), default="default",
                        help="the twins' formulations: as built (default), or the fastest of each block convolution, "
                             "timed on the first mini-batch (same function; float32 rounding may differ)")
    add_common_arguments(parser, "cifar10", "smoke test in seconds: {train} training, {val} validation and {test} "
                         "test images (stratified), 1 epoch".format(**QUICK_SIZES))


def describe(payload: dict) -> str:
    """The line printed when a run is done."""
    return (f"test accuracy {payload['test_accuracy']:.4f}, best val {payload['best_val_accuracy']:.4f}, "
            f"params {payload['cost']['params']:,} ({payload['compression']['params']:.3f} of baseline), "
            f"{payload['wall_seconds']:.0f} s")


def main(args: argparse.Namespace) -> int:
    formulations = "fastest" if getattr(args, "formulations", "default") == "fastest" else None
    return run_experiment(args, "cifar10", lambda: make_plan(args.runs, args.seeds, args.epochs),
                          lambda: load_splits(args.quick), functools.partial(train_run, formulations=formulations),
                          describe, expect=expected_result)
