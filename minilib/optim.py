"""Optimisers that update a model's parameters in place, with PyTorch's exact update rules.

An optimiser walks ``model.named_modules()`` and updates every ``module.params[key]``
with ``module.grads[key]``; state (momentum buffers, Adam moments) is kept per
qualified parameter name. A parameter shared by several layers (one array reachable by
several names, e.g. a shared filter basis) is updated once per step, under its first name,
as ``torch.optim`` does with ``model.parameters()``.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from . import checks


class Optimizer:
    def __init__(self, model, lr):
        self.model = model
        self.lr = checks.positive_number(lr, "lr")
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
        momentum = checks.non_negative_number(momentum, "momentum")
        weight_decay = checks.non_negative_number(weight_decay, "weight_decay")
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
        if not (isinstance(betas, (tuple, list)) and len(betas) == 2
                and all(isinstance(b, numbers.Real) and 0.0 <= b < 1.0 for b in betas)):
            raise ValueError(f"betas={betas!r} must be a pair of numbers in [0, 1)")
        eps = checks.non_negative_number(eps, "eps")
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
        self.optimizer, self.step_size, self.gamma = optimizer, checks.positive_int(step_size, "step_size"), float(gamma)
        self.base_lr, self.epoch = optimizer.lr, 0

    def step(self):
        self.epoch += 1
        self.optimizer.lr = self.base_lr * self.gamma ** (self.epoch // self.step_size)


class CosineLR:
    """Cosine annealing from the optimiser's learning rate to 0 over ``epochs`` epochs (call ``step()`` once per epoch):

    lr_e = lr_0 * (1 + cos(pi * e / epochs)) / 2, as ``torch.optim.lr_scheduler.CosineAnnealingLR(T_max=epochs)``.
    """

    def __init__(self, optimizer, epochs):
        self.optimizer, self.epochs = optimizer, checks.positive_int(epochs, "epochs")
        self.base_lr, self.epoch = optimizer.lr, 0

    def step(self):
        self.epoch += 1
        self.optimizer.lr = self.base_lr * (1 + math.cos(math.pi * self.epoch / self.epochs)) / 2
