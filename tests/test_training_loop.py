"""The one torch training loop (minilib.training.fit): schedules, penalties, divergence, and a hand-written loop
that it must match bit for bit."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from minilib.data.batches import minibatches
from minilib.training import Diverged, Recipe, evaluate, fit, predict, windows
from minilib.training.loop import Schedule, make_optimizer


def _task(n=64, seed=0):
    x = np.random.default_rng(seed).standard_normal((n, 1, 4, 4)).astype(np.float32)
    return x, (x.sum(axis=(1, 2, 3)) > 0).astype(np.int64)


def _model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 2))


def _batches(x, y, batch_size, rng):
    def batches(epoch):
        for idx in minibatches(len(x), batch_size, rng):
            yield x[idx], y[idx]
    return batches


SGD = dict(optimizer="sgd", lr=0.5, batch_size=16, momentum=0.9, weight_decay=5e-4)


def _fit(model, recipe, x, y, epochs=3, seed=0, **kwargs):
    return fit(model, recipe, epochs=epochs, steps_per_epoch=-(-len(x) // recipe.batch_size),
               batches=_batches(x, y, recipe.batch_size, np.random.default_rng(seed)), **kwargs)


def test_training_lowers_the_loss_and_records_every_epoch():
    (x, y), model = _task(), _model()
    before = evaluate(model, x, y)[0]
    trained = _fit(model, Recipe(**SGD), x, y, validate=lambda: {"val_loss": evaluate(model, x, y)[0]})
    history = trained["history"]
    assert trained["diverged"] is None and [entry["epoch"] for entry in history] == [1, 2, 3]
    assert [entry["steps"] for entry in history] == [4, 8, 12]
    assert all(len(entry["batch_losses"]) == 4 and entry["penalty"] is None for entry in history)
    assert history[-1]["val_loss"] < before and 0 <= history[-1]["train_accuracy"] <= 1


@pytest.mark.parametrize("schedule_step", ["epoch", "batch"])
def test_the_loop_equals_a_hand_written_loop_bit_for_bit(schedule_step):
    """The readable reference: SGD, CosineAnnealingLR stepped per epoch or per batch, mini-batches from the rng."""
    x, y = _task()
    recipe = Recipe(**SGD, schedule_step=schedule_step)
    fitted = _model()
    trained = _fit(fitted, recipe, x, y)

    model, rng = _model(), np.random.default_rng(0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9, weight_decay=5e-4)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=3 if schedule_step == "epoch" else 12)
    losses, lrs = [], []
    for _ in range(3):
        lrs.append(optimizer.param_groups[0]["lr"])
        for idx in minibatches(len(x), 16, rng):
            loss = F.cross_entropy(model(torch.from_numpy(x[idx])), torch.from_numpy(y[idx]))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            if schedule_step == "batch":
                scheduler.step()
        if schedule_step == "epoch":
            scheduler.step()
    assert [loss for entry in trained["history"] for loss in entry["batch_losses"]] == losses
    assert [entry["lr"] for entry in trained["history"]] == lrs
    assert all(torch.equal(a, b) for a, b in zip(fitted.parameters(), model.parameters()))


def test_a_drop_schedule_divides_the_rate_from_its_fraction_of_the_steps_on():
    model = _model()
    recipe = Recipe(optimizer="adam", lr=5e-4, batch_size=4, schedule="drop", schedule_step="batch", drop_at=(2, 3))
    schedule = Schedule(make_optimizer(model, recipe), recipe, total=30)
    rates = []
    for _ in range(30):
        rates.append(schedule.before_step())
        schedule.after_step()
    assert rates == [5e-4] * 20 + [5e-4 * 0.1] * 10


def test_windows_split_iterations_into_history_entries():
    draws = []
    run = windows(12, 5, lambda: draws.append(1) or (np.zeros((2, 1, 4, 4), np.float32), np.zeros(2, np.int64)))
    assert (run["epochs"], run["steps_per_epoch"], run["total_steps"]) == (3, 5, 12)
    assert [len(list(run["batches"](epoch))) for epoch in (1, 2, 3)] == [5, 5, 2] and len(draws) == 12


@pytest.mark.parametrize("bad_batch", [1, 3])
def test_a_non_finite_objective_is_recorded_and_makes_no_step(bad_batch, monkeypatch):
    import minilib.training.loop as loop

    calls = []

    def penalty(model, lam, released):
        calls.append(1)
        return torch.tensor(float("nan") if len(calls) == bad_batch else 0.0)

    monkeypatch.setattr(loop, "ortho_penalty", penalty)
    (x, y), model = _task(), _model()
    reference = _model()
    trained = _fit(model, Recipe(**SGD, lam=0.1, on_nonfinite="record"), x, y, epochs=1)
    assert trained["diverged"] == {"epoch": 1, "batch": bad_batch, "batches_per_epoch": 4}
    assert trained["history"] == [] and len(calls) == bad_batch
    if bad_batch == 1:           # no step was made: the weights are the initial ones
        assert all(torch.equal(a, b) for a, b in zip(model.parameters(), reference.parameters()))
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_a_non_finite_objective_raises_under_raise(monkeypatch):
    import minilib.training.loop as loop

    monkeypatch.setattr(loop, "ortho_penalty", lambda model, lam, released: torch.tensor(float("inf")))
    x, y = _task()
    with pytest.raises(Diverged, match="epoch 1, mini-batch 1"):
        _fit(_model(), Recipe(**SGD, lam=0.1), x, y, label="run")


def test_mask_latents_can_be_exempt_from_weight_decay():
    from minilib.torch import FullStackConv2d

    model = nn.Sequential(FullStackConv2d(2, 4, 3, s=2, rng=np.random.default_rng(0)), nn.Flatten())
    groups = make_optimizer(model, Recipe(**SGD, mask_weight_decay=False)).param_groups
    assert [group["weight_decay"] for group in groups] == [5e-4, 0.0]
    assert all(name.endswith("mask_latent") == (id(p) in {id(q) for q in groups[1]["params"]})
               for name, p in model.named_parameters())
    with pytest.raises(ValueError, match="no mask_latent"):
        make_optimizer(_model(), Recipe(**SGD, mask_weight_decay=False))


@pytest.mark.parametrize("field, value", [("optimizer", "rmsprop"), ("schedule", "linear"), ("lr", -1.0),
                                          ("lr", float("nan")), ("batch_size", 0), ("lam", float("inf")),
                                          ("on_nonfinite", "ignore"), ("nesterov", 1)])
def test_a_bad_recipe_field_is_named(field, value):
    with pytest.raises((ValueError, TypeError), match=field):
        Recipe(**{**SGD, field: value})


def test_predict_and_evaluate_restore_the_mode_and_refuse_nothing():
    (x, y), model = _task(), _model()
    model.train()
    assert predict(model, x).shape == (64, 2) and model.training
    assert evaluate(model, x, y)[1] <= 1 and model.training
    with pytest.raises(ValueError, match="at least one sample"):
        evaluate(model, x[:0], y[:0])


def test_recipe_fields_are_json_ready():
    import json

    fields = Recipe(**SGD, lam=0.1, penalty_scale="released").fields()
    assert json.loads(json.dumps(fields)) == fields and fields["loop"]["betas"] == [0.9, 0.999]
