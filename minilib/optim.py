"""Optimisers that update a model's parameters in place, with PyTorch's exact update rules.

An optimiser walks ``model.named_modules()`` and updates every ``module.params[key]``
with ``module.grads[key]``; state (momentum buffers, Adam moments) is kept per
qualified parameter name. A parameter shared by several layers (one array reachable by
several names, e.g. a shared filter basis) is updated once per step, under its first name,
as ``torch.optim`` does with ``model.parameters()``.

Hyperparameters are checked as torch checks them, plus finiteness (:func:`minilib.checks.number`):
``lr >= 0``, ``weight_decay >= 0``, ``0 <= momentum < 1``, Adam's ``eps > 0`` and
``0 <= beta < 1``, ``StepLR``'s ``gamma > 0`` and ``step_size >= 1``, all finite numbers (an
infinite or NaN rate would turn every weight into inf or NaN on the first step). A finite but
absurd rate such as 1e308 is accepted: the training loop stops when the loss stops being finite.
"""
from __future__ import annotations

import math

import numpy as np

from . import checks
from .layers import Module


class Optimizer:
    """Base class: updates ``model``'s parameters (a minilib :class:`~minilib.layers.Module`) at rate ``lr`` >= 0."""

    def __init__(self, model, lr):
        if not isinstance(model, Module):
            raise TypeError(f"model must be a minilib Module (e.g. a Sequential), got {checks.describe(model)}")
        self.model = model
        self.lr = checks.non_negative_number(lr, "lr")
        self.state: dict[str, dict[str, np.ndarray]] = {}

    def parameters(self):
        """Yield ``(name, param, grad)`` once for every parameter array of the model (shared ones once)."""
        for name, module, key in self.model.unique_parameters():
            yield name, module.params[key], module.grads[key]

    def zero_grad(self):
        self.model.zero_grad()

    def step(self):
        for name, param, grad in self.parameters():
            self._update(param, grad, self.state.setdefault(name, {}))

    def _update(self, param, grad, state):
        raise NotImplementedError


class SGD(Optimizer):
    """Stochastic gradient descent as ``torch.optim.SGD`` (dampening 0):

    g = grad + weight_decay * p;  v = momentum * v + g;  step = g + momentum * v if nesterov else v;
    p -= lr * step.
    """

    def __init__(self, model, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
        super().__init__(model, lr)
        momentum = checks.number(momentum, "momentum", low=0, high=1, high_open=True)
        weight_decay = checks.non_negative_number(weight_decay, "weight_decay")
        nesterov = checks.flag(nesterov, "nesterov")
        if nesterov and momentum == 0:
            raise ValueError("nesterov=True requires momentum > 0")
        self.momentum, self.nesterov, self.weight_decay = momentum, nesterov, weight_decay

    def _update(self, param, grad, state):
        g = grad + self.weight_decay * param if self.weight_decay else grad
        if self.momentum:
            if "velocity" not in state:
                state["velocity"] = g.copy()          # PyTorch starts the buffer at the first gradient
            else:
                state["velocity"] *= self.momentum
                state["velocity"] += g
            g = g + self.momentum * state["velocity"] if self.nesterov else state["velocity"]
        param -= self.lr * g


class Adam(Optimizer):
    """Adam as ``torch.optim.Adam`` (L2 weight decay added to the gradient, bias-corrected moments)."""

    def __init__(self, model, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(model, lr)
        if not (isinstance(betas, (tuple, list)) and len(betas) == 2):
            raise ValueError(f"betas={betas!r} must be a pair of numbers in [0, 1)")
        for i, beta in enumerate(betas):
            try:
                checks.number(beta, f"betas[{i}]", low=0, high=1, high_open=True)
            except (TypeError, ValueError) as error:   # name the pair too: "betas=(0.9, 1.0): betas[1]=1.0 ..."
                raise type(error)(f"betas={betas!r}: {error}") from None
        eps = checks.positive_number(eps, "eps")
        weight_decay = checks.non_negative_number(weight_decay, "weight_decay")
        self.betas, self.eps, self.weight_decay = betas, eps, weight_decay

    def _update(self, param, grad, state):
        beta1, beta2 = self.betas
        g = grad + self.weight_decay * param if self.weight_decay else grad
        if not state:
            state.update(step=0, m=np.zeros_like(param), v=np.zeros_like(param))
        state["step"] += 1
        state["m"] = beta1 * state["m"] + (1 - beta1) * g
        state["v"] = beta2 * state["v"] + (1 - beta2) * g * g
        m_hat = state["m"] / (1 - beta1 ** state["step"])
        v_hat = state["v"] / (1 - beta2 ** state["step"])
        param -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)


class StepLR:
    """Multiply the optimiser's learning rate by ``gamma`` every ``step_size`` epochs (call ``step()`` once per epoch)."""

    def __init__(self, optimizer, step_size, gamma=0.1):
        """``step_size`` >= 1 epochs, ``gamma`` > 0 finite (above 1 the rate grows, as torch allows)."""
        _check_optimizer(optimizer)
        self.optimizer, self.step_size = optimizer, checks.positive_int(step_size, "step_size")
        self.gamma = checks.positive_number(gamma, "gamma")
        self.base_lr, self.epoch = optimizer.lr, 0

    def step(self):
        self.epoch += 1
        self.optimizer.lr = self.base_lr * self.gamma ** (self.epoch // self.step_size)


class CosineLR:
    """Cosine annealing from the optimiser's learning rate to 0 over ``epochs`` epochs (call ``step()`` once per epoch):

    lr_e = lr_0 * (1 + cos(pi * e / epochs)) / 2, as ``torch.optim.lr_scheduler.CosineAnnealingLR(T_max=epochs)``.
    """

    def __init__(self, optimizer, epochs):
        _check_optimizer(optimizer)
        self.optimizer, self.epochs = optimizer, checks.positive_int(epochs, "epochs")
        self.base_lr, self.epoch = optimizer.lr, 0

    def step(self):
        self.epoch += 1
        self.optimizer.lr = self.base_lr * (1 + math.cos(math.pi * self.epoch / self.epochs)) / 2


def _check_optimizer(optimizer):
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"optimizer must be a minilib optimizer (SGD or Adam), got {checks.describe(optimizer)}")
