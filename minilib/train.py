"""A minimal training loop: mini-batches drawn with an explicit ``rng``, one history entry per epoch.

From a terminal, ``fit`` shows a tqdm progress bar; inside a notebook it prints one line
per epoch instead (progress bars clutter the rendered book). When the loss (or the
regularizer's penalty) stops being finite, ``fit`` raises :class:`Diverged` naming the epoch and
mini-batch, before that batch's update, so the model keeps its last finite weights.

Command line (a LeNet variant of ``minilib.models`` on MNIST or Fashion-MNIST, writes a JSON
history with provenance)::

    python -m minilib.train --dataset mnist --model versatile-3 --epochs 1 --out results/lenet_mnist.json
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from . import checks
from .data.batches import minibatches
from .layers import Module


EVAL_BATCH_SIZE = 256      # evaluate's mini-batch size; fit's validation passes use it too


class Diverged(RuntimeError):
    """The training objective stopped being finite (as :class:`minilib.training.Diverged` in the torch loop).

    Says where: ``epoch`` and ``batch`` (both from 1, the batch within its epoch) of ``batches_per_epoch``, and
    holds ``history``, what :func:`fit` would have returned for the parts of epochs completed before, so that a
    sweep can record the run as diverged (as the torch loop's ``on_nonfinite="record"`` does).
    """

    def __init__(self, message: str, *, epoch=None, batch=None, batches_per_epoch=None, history=None):
        super().__init__(message)
        self.epoch, self.batch, self.batches_per_epoch, self.history = epoch, batch, batches_per_epoch, history


def _check_data(model, loss_fn, x, y, x_name="x", y_name="y"):
    """The model, the loss and a non-empty pair of sample arrays of one length (a mean over nothing is undefined)."""
    if not isinstance(model, Module):
        raise TypeError(f"model must be a minilib Module (e.g. a Sequential), got {checks.describe(model)}")
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be a callable (scores, targets) -> (loss, dscores), "
                        f"got {checks.describe(loss_fn)}")
    for value, name in ((x, x_name), (y, y_name)):
        if not isinstance(value, np.ndarray) or value.ndim == 0:   # batches are taken with index arrays
            raise TypeError(f"{name} must be a numpy.ndarray of samples, got {checks.describe(value)}")
    if len(x) != len(y):
        raise ValueError(f"{x_name} has {len(x)} samples but {y_name} has {len(y)}; they must match")
    checks.samples(x, x_name)


def _check_finite(value, what, epoch, batch, n_batches, history=None):
    """Stop with :class:`Diverged` when the loss or penalty of a mini-batch is NaN or inf."""
    if not np.isfinite(value):
        raise Diverged(f"the {what} is not finite ({value}) at epoch {epoch}, mini-batch {batch} of {n_batches}; "
                       f"training stopped before that batch's update (a NaN gradient would poison every weight): "
                       f"lower the learning rate or check the data",
                       epoch=epoch, batch=batch, batches_per_epoch=n_batches, history=history)


def _batch_loss(loss_fn, scores, targets, y_name):
    """``loss_fn(scores, targets)`` for one mini-batch whose targets come from ``y_name``: the loss's own complaint
    (``labels must lie in [0, 3)``) is raised again with the argument named, so that it points at the caller's
    data rather than at the loss's parameter names."""
    try:
        return loss_fn(scores, targets)
    except (TypeError, ValueError) as error:
        kind = TypeError if isinstance(error, TypeError) else ValueError
        name = getattr(loss_fn, "__name__", "loss_fn")
        raise kind(f"{name} refused a mini-batch of the model's output and {y_name}: {error}") from error


def _accuracy_count(scores, y):
    """Number of correct argmax predictions, or None when the targets are not class labels."""
    y = np.asarray(y)
    if scores.ndim != 2 or y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        return None
    return int((scores.argmax(axis=1) == y).sum())


def evaluate(model, loss_fn, x, y, batch_size=EVAL_BATCH_SIZE):
    """Mean loss and accuracy (None for non-classification targets) in eval mode.

    The model's train/eval mode is restored afterwards. ``x`` and ``y`` must hold the same
    number of samples, at least one.
    """
    return _evaluate(model, loss_fn, x, y, batch_size, "x", "y")


def _evaluate(model, loss_fn, x, y, batch_size, x_name, y_name):
    """:func:`evaluate` with the names its errors give ``x`` and ``y`` (``x_val``, ``y_val`` inside :func:`fit`)."""
    _check_data(model, loss_fn, x, y, x_name, y_name)
    checks.positive_int(batch_size, "batch_size")
    was_training = model.training
    model.eval()
    total_loss, correct, n = 0.0, 0, len(x)
    try:
        for idx in minibatches(n, batch_size):
            scores = model.forward(x[idx])
            loss, _ = _batch_loss(loss_fn, scores, y[idx], y_name)
            total_loss += float(loss) * len(idx)
            count = _accuracy_count(scores, y[idx])
            correct = None if count is None else correct + count
    finally:
        model.train(was_training)
    return total_loss / n, (None if correct is None else correct / n)


def _in_notebook() -> bool:
    return "ipykernel" in sys.modules


def fit(model, loss_fn, optimizer, x, y, *, epochs, batch_size, rng, x_val=None, y_val=None,
        scheduler=None, progress=None, log=print, evals_per_epoch=1, regularizer=None):
    """Train ``model`` with mini-batch gradient descent and return the history.

    ``loss_fn(scores, targets) -> (loss, dscores)``; ``rng`` (a ``numpy.random.Generator``, or
    an int seed) shuffles every epoch, so a run is repeatable (None: no shuffling). ``progress``: ``"bar"`` (tqdm),
    ``"epoch"`` (one printed line per history entry) or ``None`` to choose by context.
    ``evals_per_epoch`` splits every epoch into that many parts and records one history
    entry after each (a learning curve inside a single epoch); ``scheduler.step()`` still
    runs once per epoch.

    ``regularizer``: an optional callable ``() -> float`` for a term added to the training
    objective, e.g. the approximation error of Eq. 12 (:class:`minilib.basis.ApproximationPenalty`).
    It runs after each backward pass and before the optimiser step, adds its gradient into the
    parameters' ``grads`` and returns its value.

    Returns ``{"epoch", "loss", "accuracy", "val_loss", "val_accuracy", "penalty", "seconds"}``,
    lists with one entry per part (``epoch`` counts epochs of data seen so far, e.g. 0.5, 1.0).
    ``loss`` and ``accuracy`` average the training mini-batches of that part (``loss`` is the
    data term only, comparable with ``val_loss``; ``penalty`` averages the regularizer's
    values, so the objective is loss + penalty); accuracies are None for regression targets;
    the val_* lists are empty without validation data, ``penalty`` without a regularizer.

    A loss or penalty that is NaN or inf stops training with :class:`Diverged` (naming the epoch
    and mini-batch) before that batch's optimiser step.
    """
    checks.positive_int(epochs, "epochs")
    checks.positive_int(evals_per_epoch, "evals_per_epoch")
    _check_data(model, loss_fn, x, y)
    progress = progress or ("epoch" if _in_notebook() else "bar")
    if progress not in {"bar", "epoch"}:
        raise ValueError(f"progress={progress!r} must be 'bar', 'epoch' or None")
    if regularizer is not None and not callable(regularizer):
        raise TypeError(f"regularizer must be a callable () -> float or None, got {type(regularizer).__name__}")
    checks.positive_int(batch_size, "batch_size")
    if (x_val is None) != (y_val is None):
        raise ValueError("x_val and y_val must be given together (or neither)")
    if x_val is not None:
        _check_data(model, loss_fn, x_val, y_val, "x_val", "y_val")
    if not callable(getattr(optimizer, "step", None)) or not callable(getattr(optimizer, "zero_grad", None)):
        raise TypeError(f"optimizer must be a minilib optimizer (SGD or Adam), got {checks.describe(optimizer)}")
    if scheduler is not None and not callable(getattr(scheduler, "step", None)):
        raise TypeError(f"scheduler must have a step() method (StepLR, CosineLR) or be None, "
                        f"got {checks.describe(scheduler)}")
    rng = None if rng is None else checks.rng(rng)     # None: the batches in order, unshuffled
    history = {key: [] for key in ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "penalty", "seconds")}
    for epoch in range(1, epochs + 1):
        batches = list(minibatches(len(x), batch_size, rng))
        bar = None
        if progress == "bar":
            from tqdm.auto import tqdm    # only command-line runs need tqdm
            bar = tqdm(total=len(batches), desc=f"epoch {epoch}/{epochs}", file=sys.stderr)
        for part, part_batches in enumerate(np.array_split(np.arange(len(batches)), evals_per_epoch), start=1):
            start = time.perf_counter()
            model.train()
            total_loss, total_penalty, correct, seen = 0.0, 0.0, 0, 0
            for b in part_batches:
                idx = batches[b]
                scores = model.forward(x[idx])
                loss, dscores = _batch_loss(loss_fn, scores, y[idx], "y")
                _check_finite(float(loss), "loss", epoch, b + 1, len(batches), history)
                optimizer.zero_grad()
                model.backward(dscores)
                if regularizer is not None:     # after backward: layers overwrite their grads there
                    penalty = float(regularizer())
                    _check_finite(penalty, "penalty", epoch, b + 1, len(batches), history)
                    total_penalty += penalty * len(idx)
                optimizer.step()
                total_loss, seen = total_loss + float(loss) * len(idx), seen + len(idx)
                count = _accuracy_count(scores, y[idx])
                correct = None if count is None or correct is None else correct + count
                if bar is not None:
                    bar.update()
                    bar.set_postfix(loss=f"{float(loss):.4f}")
            history["epoch"].append(epoch - 1 + part / evals_per_epoch)
            history["loss"].append(total_loss / max(seen, 1))
            history["accuracy"].append(None if correct is None else correct / max(seen, 1))
            if regularizer is not None:
                history["penalty"].append(total_penalty / max(seen, 1))
            if x_val is not None:
                val_loss, val_acc = _evaluate(model, loss_fn, x_val, y_val, EVAL_BATCH_SIZE, "x_val", "y_val")
                history["val_loss"].append(val_loss)
                history["val_accuracy"].append(val_acc)
            history["seconds"].append(time.perf_counter() - start)
            if log is not None:
                log(_epoch_line(history))
        if bar is not None:
            bar.close()
        if scheduler is not None:
            scheduler.step()
    return history


def _epoch_line(history) -> str:
    parts = [f"epoch {history['epoch'][-1]:g}", f"loss {history['loss'][-1]:.4f}"]
    for key in ("accuracy", "penalty", "val_loss", "val_accuracy"):
        if history[key] and history[key][-1] is not None:
            parts.append(f"{key} {history[key][-1]:.4f}")
    parts.append(f"{history['seconds'][-1]:.1f} s")
    return "  ".join(parts)


def main(argv=None):
    from .data import load_fashion_mnist, load_mnist
    from .data.transforms import images_to_nchw
    from .losses import softmax_cross_entropy
    from .models import VARIANTS, lenet
    from .optim import SGD
    from .results import write_result

    parser = argparse.ArgumentParser(prog="python -m minilib.train", description="Train a LeNet variant with minilib.")
    parser.add_argument("--dataset", choices=["mnist", "fashion-mnist"], default="mnist")
    parser.add_argument("--model", choices=list(VARIANTS), default="baseline", help="LeNet variant")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--momentum", type=float, default=0.9)
    parser.add_argument("--subset", type=int, default=None, help="use only the first N training images")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="write the history as JSON here")
    args = parser.parse_args(argv)

    load = load_mnist if args.dataset == "mnist" else load_fashion_mnist
    (x_train, y_train), (x_test, y_test) = load("train"), load("test")
    if args.subset:
        x_train, y_train = x_train[:args.subset], y_train[:args.subset]
    x_train, x_test = images_to_nchw(x_train), images_to_nchw(x_test)
    rng = np.random.default_rng(args.seed)
    model = lenet(args.model, rng=rng).astype(np.float32)
    optimizer = SGD(model, lr=args.lr, momentum=args.momentum)
    history = fit(model, softmax_cross_entropy, optimizer, x_train, y_train.astype(np.int64),
                  epochs=args.epochs, batch_size=args.batch_size, rng=rng,
                  x_val=x_test, y_val=y_test.astype(np.int64), progress="bar")
    if args.out:
        path = write_result(args.out, {"dataset": args.dataset, "args": vars(args), "history": history}, seed=args.seed)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
