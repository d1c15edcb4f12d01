"""Optimisers against ``torch.optim`` in float64.

A small model gets the same seeded gradients on both sides for several steps (fixed
gradients, so the comparison isolates the update rule from the backward pass); after
every step each parameter must match torch's. Covers SGD (plain, momentum, Nesterov,
weight decay and their combinations) and Adam (with and without weight decay, other
betas/eps), and the learning-rate sequences of ``StepLR`` and ``CosineLR`` against torch's schedulers.
"""
import numpy as np
import pytest
import torch

import minilib as ml
from torch_helpers import assert_close, to_torch

N_STEPS = 6


def small_model(seed=0):
    rng = np.random.default_rng(seed)
    # Conv on (N, 2, 4, 4) inputs -> (N, 3, 2, 2) -> 12 features; mixes layers with and without bias.
    return ml.Sequential(ml.Conv2d(2, 3, 3, rng=rng), ml.ReLU(), ml.Flatten(), ml.Linear(3 * 2 * 2, 4, rng=rng),
                         ml.ReLU(), ml.Linear(4, 2, bias=False, rng=rng))


def run_both(ml_optimizer_cls, torch_optimizer_cls, **hyper):
    """Apply N_STEPS of the same gradients with minilib and torch; compare parameters after every step."""
    model = small_model()
    names = [name for name, _, _ in ml.SGD(model, lr=1.0).parameters()]
    torch_params = {name: to_torch(model.state_dict()[name], requires_grad=True) for name in names}
    ml_opt = ml_optimizer_cls(model, **hyper)
    torch_opt = torch_optimizer_cls(list(torch_params.values()), **hyper)
    rng = np.random.default_rng(1)
    for step in range(N_STEPS):
        for prefix, module in model.named_modules():
            for key in module.params:
                grad = rng.standard_normal(module.params[key].shape)
                module.grads[key] = grad
                torch_params[f"{prefix}.{key}"].grad = to_torch(grad)
        ml_opt.step()
        torch_opt.step()
        state = model.state_dict()
        for name in names:
            assert_close(state[name], torch_params[name], f"{name} after step {step + 1}")
    return model


SGD_CASES = {
    "plain": dict(lr=0.1),
    "momentum": dict(lr=0.05, momentum=0.9),
    "nesterov": dict(lr=0.05, momentum=0.8, nesterov=True),
    "weight_decay": dict(lr=0.1, weight_decay=0.01),
    "momentum+weight_decay": dict(lr=0.05, momentum=0.9, weight_decay=0.05),
    "nesterov+weight_decay": dict(lr=0.02, momentum=0.5, nesterov=True, weight_decay=0.1),
}
ADAM_CASES = {
    "default": dict(lr=1e-3),
    "large_lr": dict(lr=0.1),
    "weight_decay": dict(lr=0.01, weight_decay=0.1),
    "betas_eps": dict(lr=0.01, betas=(0.5, 0.9), eps=1e-4),
}


@pytest.mark.parametrize("case", SGD_CASES)
def test_sgd_matches_torch(case):
    run_both(ml.SGD, torch.optim.SGD, **SGD_CASES[case])


@pytest.mark.parametrize("case", ADAM_CASES)
def test_adam_matches_torch(case):
    run_both(ml.Adam, torch.optim.Adam, **ADAM_CASES[case])


def test_parameters_actually_move():
    """Guard against a comparison that passes because neither side updates anything."""
    before = {k: v.copy() for k, v in small_model().state_dict().items()}
    after = run_both(ml.SGD, torch.optim.SGD, lr=0.1).state_dict()
    assert all(not np.allclose(before[k], after[k]) for k in before)


@pytest.mark.parametrize("step_size, gamma", [(1, 0.5), (2, 0.1), (3, 0.7), (5, 0.9)])
def test_steplr_matches_torch(step_size, gamma):
    model = small_model()
    ml_opt = ml.SGD(model, lr=0.3)
    scheduler = ml.StepLR(ml_opt, step_size=step_size, gamma=gamma)
    param = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    torch_opt = torch.optim.SGD([param], lr=0.3)
    torch_scheduler = torch.optim.lr_scheduler.StepLR(torch_opt, step_size=step_size, gamma=gamma)
    ml_lrs, torch_lrs = [ml_opt.lr], [torch_opt.param_groups[0]["lr"]]
    for _ in range(12):
        torch_opt.step()                      # torch warns if the scheduler steps before the optimiser
        scheduler.step()
        torch_scheduler.step()
        ml_lrs.append(ml_opt.lr)
        torch_lrs.append(torch_opt.param_groups[0]["lr"])
    assert_close(np.array(ml_lrs), np.array(torch_lrs), "lr sequence")
    assert len(set(np.round(ml_lrs, 12))) > 1, "the schedule must change the learning rate"


def test_cosinelr_matches_torch():
    ml_opt = ml.SGD(small_model(), lr=0.3)
    scheduler = ml.CosineLR(ml_opt, epochs=7)
    param = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    torch_opt = torch.optim.SGD([param], lr=0.3)
    torch_scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(torch_opt, T_max=7)
    ml_lrs, torch_lrs = [ml_opt.lr], [torch_opt.param_groups[0]["lr"]]
    for _ in range(7):
        torch_opt.step()
        scheduler.step()
        torch_scheduler.step()
        ml_lrs.append(ml_opt.lr)
        torch_lrs.append(torch_opt.param_groups[0]["lr"])
    assert_close(np.array(ml_lrs), np.array(torch_lrs), "lr sequence")
    assert ml_lrs[0] == 0.3 and abs(ml_lrs[-1]) < 1e-12


def test_sgd_uses_the_scheduled_lr():
    model = ml.Sequential(ml.Linear(2, 1, bias=False, rng=np.random.default_rng(0)))
    opt = ml.SGD(model, lr=1.0)
    scheduler = ml.StepLR(opt, step_size=1, gamma=0.5)
    scheduler.step()                                           # lr 1.0 -> 0.5
    weight = model[0].params["weight"]
    before = weight.copy()
    model[0].grads["weight"] = np.ones_like(weight)
    opt.step()
    np.testing.assert_allclose(weight, before - 0.5)


def test_zero_grad_clears_every_gradient():
    model = small_model()
    x = np.random.default_rng(0).standard_normal((2, 2, 4, 4))
    model.backward(np.ones_like(model.forward(x)))
    ml.SGD(model, lr=0.1).zero_grad()
    assert all(np.all(g == 0) for _, m in model.named_modules() for g in m.grads.values())
