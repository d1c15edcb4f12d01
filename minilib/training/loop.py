"""The one torch training loop: every experiment of the book (MNIST, CIFAR-10, super-resolution, the comparison)
trains with :func:`fit`, and the full-scale trainer shares its step (:func:`forward_objective`, :func:`update`).

What differs between experiments is data, not code: a :class:`Recipe` holds the optimiser, the learning-rate
schedule and when it is stepped (once per epoch or once per mini-batch), the penalty λ L_ortho of MVNet Eq. 8 and
its scale, whether weight decay reaches the mask latents, and what happens when the objective stops being finite
(``"record"``: the run ends and says where, for sweeps that map where training diverges; ``"raise"``: an error).
:meth:`Recipe.fields` is what each result file records. The experiment supplies its mini-batches as NumPy arrays,
one epoch at a time (``batches(epoch)``), so that augmentation and shuffling stay with the data they belong to and
draw from the run's NumPy generator in the same order in both backends.

An "epoch" is the unit of one history entry: a pass over the training set for the classifiers, a window of
``log_every`` iterations for super-resolution (:func:`windows`).
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import sys
import time
from typing import Callable, Iterable

import numpy as np
import torch
import torch.nn.functional as F

from ..torch.common import choice, integer, module, real, same_dtype, show
from ..torch.formulations import choose_formulations, set_formulations
from ..torch.fullstack import ortho_penalty

OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("cosine", "drop", "constant")
SCHEDULE_STEPS = ("epoch", "batch")
PENALTY_SCALES = ("paper", "released")
ON_NONFINITE = ("record", "raise")
LOSSES = ("cross_entropy", "l1_grey")


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How :func:`fit` trains.

    - ``optimizer``: ``"sgd"`` (``lr``, ``momentum``, ``nesterov``, ``weight_decay``) or ``"adam"`` (``lr``,
      ``betas``, ``eps``, ``weight_decay``); ``mask_weight_decay=False`` puts the full-stack mask latents in a group
      without weight decay (a decay pulls a latent towards 0, where the sign that binarizes it flips freely).
    - ``schedule``: ``"cosine"`` (``torch.optim.lr_scheduler.CosineAnnealingLR`` from ``lr`` to 0 over the run),
      ``"drop"`` (``lr``, times ``drop_factor`` from step ⌈``drop_at`` × steps⌉ on, ``drop_at`` a fraction
      ``(numerator, denominator)``) or ``"constant"``; ``schedule_step``: ``"epoch"`` or ``"batch"``, how often
      the schedule advances.
    - ``loss``: ``"cross_entropy"`` (classification: accuracy is counted too) or ``"l1_grey"`` (mean absolute
      error in grey levels, 255 × |out − target|, for images in [0, 1]).
    - ``lam``: λ of MVNet Eq. 8 (None: no penalty); ``penalty_scale``: ``"paper"`` (Eq. 7 as printed) or
      ``"released"`` (the released code's mean over a layer's masks).
    - ``on_nonfinite``: ``"record"`` or ``"raise"`` (see the module docstring).
    """
    optimizer: str
    lr: float
    batch_size: int
    schedule: str = "cosine"
    schedule_step: str = "epoch"
    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0
    betas: tuple = (0.9, 0.999)
    eps: float = 1e-8
    drop_at: tuple = (2, 3)
    drop_factor: float = 0.1
    loss: str = "cross_entropy"
    lam: float | None = None
    penalty_scale: str = "paper"
    mask_weight_decay: bool = True
    on_nonfinite: str = "raise"

    def __post_init__(self):
        # The ranges: lr >= 0, weight decay >= 0, 0 <= momentum < 1, eps > 0, Adam's betas in [0, 1), a drop
        # factor (a schedule's gamma) > 0, all finite. A value outside makes the first step poison the weights
        # (lr = inf), divide by zero (eps = 0) or keep a moving average from ever forgetting (beta = 1).
        for name, allowed in (("optimizer", OPTIMIZERS), ("schedule", SCHEDULES), ("schedule_step", SCHEDULE_STEPS),
                              ("penalty_scale", PENALTY_SCALES), ("on_nonfinite", ON_NONFINITE), ("loss", LOSSES)):
            choice(getattr(self, name), f"Recipe {name}", allowed)
        for name, rule in (("lr", ">= 0"), ("weight_decay", ">= 0"), ("momentum", "[0, 1)"), ("eps", "> 0"),
                           ("drop_factor", "> 0")):
            _plain_number(getattr(self, name), f"Recipe {name}")
            real(getattr(self, name), f"Recipe {name}", rule)
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int):
            raise TypeError(f"Recipe batch_size must be an int, got {type(self.batch_size).__name__} "
                            f"{self.batch_size!r}")
        if self.batch_size < 1:
            raise ValueError(f"Recipe batch_size={self.batch_size!r} must be an int >= 1")
        if self.lam is not None:
            _plain_number(self.lam, "Recipe lam")
            real(self.lam, "Recipe lam", ">= 0")
        for name in ("nesterov", "mask_weight_decay"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"Recipe {name}={getattr(self, name)!r} must be a bool")
        if self.optimizer == "sgd" and self.nesterov and self.momentum == 0:
            raise ValueError("Recipe nesterov=True needs momentum > 0 (Nesterov's step looks ahead along the "
                             "momentum), got momentum=0")
        self._check_pair("betas", "[0, 1)")
        self._check_pair("drop_at", None)

    def _check_pair(self, name, rule):
        """``betas``: two numbers in [0, 1); ``drop_at``: a fraction (numerator, denominator), ints, 0 <= n <= d."""
        value = getattr(self, name)
        if not isinstance(value, (tuple, list)) or len(value) != 2:
            raise TypeError(f"Recipe {name} must be a pair (a tuple of 2), got {type(value).__name__} {value!r}")
        if rule is not None:
            for index, item in enumerate(value):
                _plain_number(item, f"Recipe {name}[{index}]")
                real(item, f"Recipe {name}[{index}]", rule)
            return
        if any(isinstance(v, bool) or not isinstance(v, int) for v in value):
            raise TypeError(f"Recipe drop_at={value!r} must be two ints (numerator, denominator)")
        numerator, denominator = value
        if denominator < 1 or not 0 <= numerator <= denominator:
            raise ValueError(f"Recipe drop_at={value!r} must be a fraction (numerator, denominator) with "
                             f"0 <= numerator <= denominator and denominator >= 1: where in the run the rate drops")

    def fields(self) -> dict:
        """The loop's part of a result's ``recipe`` (JSON-ready)."""
        return {"loop": {key: list(value) if isinstance(value, tuple) else value
                         for key, value in dataclasses.asdict(self).items()}}


def _plain_number(value, name: str) -> None:
    """A Python int or float (a recipe is written to JSON as it is: a NumPy scalar would not serialise)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number (int or float), got {type(value).__name__} {value!r}")


# ----------------------------------------------------------------------------- optimiser, schedule, loss
def make_optimizer(model: torch.nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    """The recipe's optimiser over ``model``'s parameters (see :class:`Recipe` for the mask-latent group)."""
    module(model, "model")
    _recipe(recipe)
    params = _parameter_groups(model, recipe.mask_weight_decay)
    if recipe.optimizer == "adam":
        return torch.optim.Adam(params, lr=recipe.lr, betas=tuple(recipe.betas), eps=recipe.eps,
                                weight_decay=recipe.weight_decay)
    return torch.optim.SGD(params, lr=recipe.lr, momentum=recipe.momentum, nesterov=recipe.nesterov,
                           weight_decay=recipe.weight_decay)


def _recipe(recipe) -> Recipe:
    if not isinstance(recipe, Recipe):
        raise TypeError(f"recipe must be a minilib.training.Recipe, got {type(recipe).__name__}")
    return recipe


def _parameter_groups(model, mask_weight_decay: bool):
    if mask_weight_decay:
        return list(model.parameters())
    named = list(model.named_parameters())
    latents = [p for name, p in named if name.rsplit(".", 1)[-1] == "mask_latent"]
    if not latents:
        raise ValueError("mask_weight_decay=False, but the model has no mask_latent parameters")
    return [{"params": [p for name, p in named if name.rsplit(".", 1)[-1] != "mask_latent"]},
            {"params": latents, "weight_decay": 0.0}]


class Schedule:
    """The learning rate over the run: :meth:`before_step` sets it for a step, :meth:`after_step` and
    :meth:`after_epoch` advance it as ``recipe.schedule_step`` says. ``total`` counts steps of the schedule:
    epochs or mini-batches."""

    def __init__(self, optimizer, recipe: Recipe, total: int):
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
        recipe, total = _recipe(recipe), integer(total, "total", 1)
        self.optimizer, self.recipe, self.total, self.count = optimizer, recipe, total, 0
        # CosineAnnealingLR computes each rate from the previous one; the rates are the torch ones, as released
        self.cosine = (torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
                       if recipe.schedule == "cosine" else None)

    def rate(self) -> float:
        if self.recipe.schedule == "drop":
            numerator, denominator = self.recipe.drop_at
            dropped = denominator * self.count >= numerator * self.total
            return self.recipe.lr * (self.recipe.drop_factor if dropped else 1.0)
        return self.optimizer.param_groups[0]["lr"]

    def before_step(self) -> float:
        """Set the rate of the coming step and return it."""
        lr = self.rate()
        if self.recipe.schedule == "drop":
            for group in self.optimizer.param_groups:
                group["lr"] = lr
        return lr

    def _advance(self):
        self.count += 1
        if self.cosine is not None:
            self.cosine.step()

    def after_step(self):
        if self.recipe.schedule_step == "batch":
            self._advance()

    def after_epoch(self):
        if self.recipe.schedule_step == "epoch":
            self._advance()


def loss_value(loss: str, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The data term: cross-entropy, or the mean absolute error in grey levels (``"l1_grey"``). A mean over an empty
    batch is refused (``ValueError``) rather than returned as NaN; the check reads shapes only (no device sync)."""
    choice(loss, "loss", LOSSES)
    if out.numel() == 0:
        raise ValueError(f"the {loss} loss of an empty batch is not defined (out has shape {tuple(out.shape)}): "
                         f"a mean over no samples")
    if loss == "l1_grey":
        return 255.0 * (out - target).abs().mean()          # L1 in grey levels
    return F.cross_entropy(out, target)


# ----------------------------------------------------------------------------- one step
def forward_objective(net, inputs: torch.Tensor, targets: torch.Tensor, *, loss: str = "cross_entropy",
                      lam: float | None = None, released: bool = False, penalty_model=None, autocast=None):
    """``(out, loss, term, objective)`` of one mini-batch: ``out = net(inputs)``, the data ``loss``
    (:data:`LOSSES`), ``term`` = λ L_ortho of MVNet Eq. 8 over ``penalty_model`` (default ``net``; the bare model
    under a ``DistributedDataParallel`` wrapper) or None without ``lam``, and ``objective = loss + term``.
    ``autocast``: a context for the forward pass and the loss (mixed precision); the penalty stays outside it,
    in full precision."""
    with autocast if autocast is not None else contextlib.nullcontext():
        out = net(inputs)
        value = loss_value(loss, out, targets)
    if lam is None:
        return out, value, None, value
    term = ortho_penalty(net if penalty_model is None else penalty_model, lam, released=released)
    return out, value, term, value + term


def update(optimizer, objective: torch.Tensor, scaler=None) -> None:
    """Backward from ``objective`` and one optimiser step (through a ``GradScaler`` when given)."""
    optimizer.zero_grad(set_to_none=True)
    if scaler is None:
        objective.backward()
        optimizer.step()
        return
    scaler.scale(objective).backward()
    scaler.step(optimizer)
    scaler.update()


@dataclasses.dataclass
class Step:
    """One mini-batch of :func:`fit`: its data loss and penalty (floats, penalty None without one) and the correct
    count (None for regression); ``finite`` False when the objective was not finite and no update was made."""
    loss: float
    penalty: float | None
    correct: int | None
    finite: bool = True


def train_step(model, optimizer, recipe: Recipe, inputs: torch.Tensor, targets: torch.Tensor) -> Step:
    """:func:`forward_objective` under ``recipe`` and, when the objective is finite, :func:`update`.

    A non-finite objective makes no update (a NaN gradient would poison every weight)."""
    out, loss, term, objective = forward_objective(model, inputs, targets, loss=recipe.loss, lam=recipe.lam,
                                                   released=recipe.penalty_scale == "released")
    if not torch.isfinite(objective):
        return Step(math.nan, None, None, finite=False)
    update(optimizer, objective)
    correct = int((out.argmax(dim=1) == targets).sum()) if recipe.loss == "cross_entropy" else None
    return Step(loss.item(), None if term is None else term.item(), correct)


# ----------------------------------------------------------------------------- the loop
class Diverged(RuntimeError):
    """The objective stopped being finite under ``on_nonfinite="raise"``."""


def fit(model, recipe: Recipe, *, epochs: int, steps_per_epoch: int,
        batches: Callable[[int], Iterable[tuple[np.ndarray, np.ndarray]]],
        total_steps: int | None = None, validate: Callable[[], dict] | None = None, label: str = "",
        epoch_line: Callable[[dict], str] | None = None, formulations=None) -> dict:
    """Train ``model`` for ``epochs`` epochs under ``recipe``; returns ``{"history", "diverged", "threads",
    "formulations"}``.

    ``batches(epoch)`` (1-based) yields the epoch's ``(inputs, targets)`` NumPy mini-batches, at most
    ``steps_per_epoch`` of them; ``total_steps`` (default ``epochs * steps_per_epoch``) is the number of
    mini-batches in the run, the length of a per-batch schedule and of the progress bar. ``validate()``, called
    after each epoch, returns the values to add to its history entry (e.g. ``{"val_loss", "val_accuracy"}``).

    ``history`` is a list with one dict per completed epoch: ``epoch``, ``steps`` (mini-batches so far), ``lr``
    (the rate of the epoch's first step), ``final_lr`` (of its last step), ``train_loss`` and ``penalty`` (means
    over the epoch's samples; penalty None without one), ``train_accuracy`` (None for regression),
    ``batch_losses``, ``seconds``, then ``validate()``'s values. ``diverged`` is None or, under
    ``on_nonfinite="record"``, ``{"epoch", "batch", "batches_per_epoch"}`` of the first non-finite objective; under
    ``"raise"`` that raises :class:`Diverged`. ``epoch_line(entry)`` is printed after each epoch.

    ``formulations`` (:mod:`minilib.torch.formulations`): None (the default) trains every twin in the formulation
    it was built with; ``"fastest"`` times each twin's formulations on the first mini-batch's shapes before the
    first step and keeps the fastest (:func:`~minilib.torch.formulations.choose_formulations`; seconds); a dict
    ``{layer name: formulation}`` or a stored record sets them (a replay). The formulations compute the same
    function, so the run is the same in exact arithmetic, but float32 rounding may differ in the last bits (and a
    choice made by timing may differ from machine to machine: store the record to repeat a run bit for bit).
    The returned ``formulations`` is the chooser's record for ``"fastest"``, else None.
    """
    from tqdm.auto import tqdm

    epochs, steps_per_epoch = integer(epochs, "epochs", 1), integer(steps_per_epoch, "steps_per_epoch", 1)
    total_steps = integer(total_steps, "total_steps", 1, allow_none=True)
    if not callable(batches):
        raise TypeError(f"batches must be a function of the epoch, got {type(batches).__name__}")
    for name, function in (("validate", validate), ("epoch_line", epoch_line)):
        if function is not None and not callable(function):
            raise TypeError(f"{name} must be None or a function, got {type(function).__name__}")
    choose = _formulations_request(model, formulations)
    record = None
    optimizer = make_optimizer(model, recipe)
    total_steps = epochs * steps_per_epoch if total_steps is None else total_steps
    schedule = Schedule(optimizer, recipe, epochs if recipe.schedule_step == "epoch" else total_steps)
    history, diverged, steps = [], None, 0
    unit = "batch" if recipe.loss == "cross_entropy" else "it"
    bar = tqdm(total=total_steps, desc=label, file=sys.stderr, unit=unit)
    model.train()
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        totals = {"loss": 0.0, "penalty": 0.0, "correct": 0, "seen": 0}
        first_lr = lr = None
        batch_losses = []
        for batch, (inputs, targets) in enumerate(batches(epoch), start=1):
            if len(inputs) == 0:
                bar.close()
                raise ValueError(f"{label}: mini-batch {batch} of epoch {epoch} is empty; every mini-batch needs at "
                                 f"least one sample (the loss is a mean over the batch)")
            lr = schedule.before_step()
            first_lr = lr if first_lr is None else first_lr
            if choose and record is None:       # the first mini-batch's shapes are the ones to time
                record = choose_formulations(model, torch.from_numpy(inputs))
            step = train_step(model, optimizer, recipe, torch.from_numpy(inputs), torch.from_numpy(targets))
            if not step.finite:
                diverged = {"epoch": epoch, "batch": batch, "batches_per_epoch": steps_per_epoch}
                break
            n = len(inputs)
            totals["loss"] += step.loss * n
            totals["penalty"] += 0.0 if step.penalty is None else step.penalty * n
            totals["correct"] += step.correct or 0
            totals["seen"] += n
            batch_losses.append(step.loss)
            steps += 1
            schedule.after_step()
            bar.update()
            bar.set_postfix(loss=f"{step.loss:.4f}" if unit == "batch" else f"{step.loss:.3f}")
        if diverged is not None:
            message = f"{label}: the loss is not finite at epoch {epoch}, mini-batch {diverged['batch']}"
            bar.close()
            if recipe.on_nonfinite == "raise":
                raise Diverged(message + "; no result file is written")
            tqdm.write(message, file=sys.stderr)
            break
        seen = max(totals["seen"], 1)
        entry = {"epoch": epoch, "steps": steps, "lr": first_lr, "final_lr": lr,
                 "train_loss": totals["loss"] / seen,
                 "train_accuracy": totals["correct"] / seen if recipe.loss == "cross_entropy" else None,
                 "penalty": None if recipe.lam is None else totals["penalty"] / seen,
                 "batch_losses": batch_losses}
        if validate is not None:
            entry.update(validate())
            model.train()
        schedule.after_epoch()
        entry["seconds"] = time.perf_counter() - start
        history.append(entry)
        if epoch_line is not None:
            tqdm.write(epoch_line(entry), file=sys.stderr)
    bar.close()
    return {"history": history, "diverged": diverged, "threads": torch.get_num_threads(), "formulations": record}


def _formulations_request(model, formulations) -> bool:
    """Whether :func:`fit` is to choose the formulations; a given dict or record is set on ``model`` here."""
    if formulations is None:
        return False
    if isinstance(formulations, str):
        choice(formulations, "formulations", ("fastest",))
        return True
    if not isinstance(formulations, (dict, list, tuple)):
        raise TypeError(f"formulations must be None, 'fastest', a dict {{layer name: formulation}} or a record of "
                        f"choose_formulations, got {show(formulations)}")
    set_formulations(model, formulations)
    return False


def windows(n_iterations: int, per_window: int, draw: Callable[[], tuple[np.ndarray, np.ndarray]]) -> dict:
    """Iteration-based training as epochs: the ``epochs``, ``steps_per_epoch``, ``total_steps`` and ``batches``
    arguments of :func:`fit`, where epoch k is the k-th window of ``per_window`` iterations (the last may be
    shorter) and every iteration calls ``draw()`` for a fresh mini-batch."""
    n_iterations, per_window = integer(n_iterations, "n_iterations", 1), integer(per_window, "per_window", 1)
    if not callable(draw):
        raise TypeError(f"draw must be a function returning (inputs, targets), got {type(draw).__name__}")

    def batches(epoch):
        for _ in range(min(per_window, n_iterations - (epoch - 1) * per_window)):
            yield draw()

    return {"epochs": -(-n_iterations // per_window), "steps_per_epoch": per_window, "total_steps": n_iterations,
            "batches": batches}


# ----------------------------------------------------------------------------- evaluation
@torch.no_grad()
def predict(model, inputs: np.ndarray) -> np.ndarray:
    """``model``'s output on NumPy ``inputs`` in eval mode (the mode is restored), as a NumPy array."""
    if not isinstance(inputs, np.ndarray):
        raise TypeError(f"inputs must be a numpy.ndarray, got {type(inputs).__name__}")
    was_training = model.training
    model.eval()
    out = model(torch.from_numpy(inputs)).numpy()
    model.train(was_training)
    return out


@torch.no_grad()
def evaluate(model, x: np.ndarray, y: np.ndarray, batch_size: int = 1000) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` on NumPy ``(x, y)`` in eval mode (the mode is restored).

    ``x``: floating samples (N, ...) in the dtype of the model's parameters; ``y``: N integer class labels (any
    integer dtype), each in [0, K) for the model's K outputs."""
    batch_size = integer(batch_size, "batch_size", 1)
    model = module(model, "model")
    for name, array in (("x", x), ("y", y)):
        if not isinstance(array, np.ndarray) or array.ndim == 0:
            raise TypeError(f"{name} must be a numpy.ndarray of samples, got {type(array).__name__}")
    if len(x) == 0:
        raise ValueError("evaluate needs at least one sample, got x of length 0")
    if len(y) != len(x):
        raise ValueError(f"x has {len(x)} samples but y has {len(y)} labels; they must match")
    _check_samples(model, x, y)
    was_training = model.training
    model.eval()
    total_loss, correct = 0.0, 0
    try:
        for start in range(0, len(x), batch_size):
            scores = model(torch.from_numpy(x[start:start + batch_size]))
            if start == 0:
                _check_labels(y, scores.shape[1:])
            target = torch.from_numpy(y[start:start + batch_size]).long()     # int64 labels: the very same tensor
            total_loss += F.cross_entropy(scores, target, reduction="sum").item()
            correct += int((scores.argmax(dim=1) == target).sum())
    finally:
        model.train(was_training)
    return total_loss / len(x), correct / len(x)


def _check_samples(model, x: np.ndarray, y: np.ndarray) -> None:
    """Floating ``x`` in the dtype of ``model``'s parameters (what its layers compute in) and integer labels ``y``
    (N,), as ``F.cross_entropy`` takes them; torch's own errors for either name neither."""
    if x.dtype.kind != "f":
        raise TypeError(f"x must hold floating samples (float32 or float64), got dtype {x.dtype}; convert it, "
                        f"e.g. x.astype(np.float32)")
    parameter = next((p for p in model.parameters() if p.is_floating_point()), None)
    if parameter is not None:
        same_dtype(torch.from_numpy(x[:0]), parameter)
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise TypeError(f"y must be class labels: integers of shape ({len(y)},), got {y.dtype} of shape {y.shape}")


def _check_labels(y: np.ndarray, output_shape) -> None:
    """Every label a class of the model's output (N, K): in [0, K)."""
    classes = output_shape[0] if len(output_shape) == 1 else None
    if classes is None:
        raise ValueError(f"the model's output must be (N, K) class scores for evaluate's cross-entropy, got per "
                         f"sample shape {tuple(output_shape)} (y holds class labels)")
    if y.min() < 0 or y.max() >= classes:
        raise ValueError(f"y must hold class labels in [0, {classes}) for the model's {classes} outputs, got range "
                         f"[{y.min()}, {y.max()}]")


def set_threads(threads: int) -> int:
    """``torch.set_num_threads``; returns the number in use."""
    torch.set_num_threads(threads)
    return torch.get_num_threads()


def torch_version() -> str:
    """``torch.__version__`` (recorded with every result)."""
    return torch.__version__
