"""Losses against PyTorch in float64: value and gradient with respect to the prediction.

``softmax_cross_entropy`` vs ``F.cross_entropy``, ``mse`` vs ``F.mse_loss``, ``l1`` vs
``F.l1_loss`` (all with mean reduction), each on >= 20 seeded random configurations,
plus the edge cases where implementations typically differ: huge logits (overflow),
batch 1, and ``l1`` at pred == target (the gradient is 0 there in both).
"""
import numpy as np
import pytest
import torch.nn.functional as TF

import minilib as ml
from torch_helpers import N_CONFIGS, assert_close, to_torch

INDICES = range(N_CONFIGS)


def ce_configs(seed=30):
    rng = np.random.default_rng(seed)
    # Logit scales up to 1e3: a naive exp would overflow there; the max-shift must keep it exact.
    return [dict(N=1 if i == 0 else int(rng.integers(1, 9)), K=int(rng.integers(2, 11)),
                 scale=float(rng.choice([0.1, 1.0, 10.0, 1e3]))) for i in INDICES]


CE = ce_configs()


def check_loss(ml_loss, torch_loss, pred, target, target_t):
    loss, dpred = ml_loss(pred, target)
    pred_t = to_torch(pred, requires_grad=True)
    loss_t = torch_loss(pred_t, target_t)
    loss_t.backward()
    assert np.ndim(loss) == 0
    assert_close(loss, loss_t, "loss")
    assert_close(dpred, pred_t.grad, "dpred")


@pytest.mark.parametrize("idx", INDICES, ids=[f"{i}-N{c['N']}K{c['K']}-scale{c['scale']:g}" for i, c in enumerate(CE)])
def test_softmax_cross_entropy_matches_torch(idx):
    cfg, rng = CE[idx], np.random.default_rng(100 + idx)
    logits = rng.standard_normal((cfg["N"], cfg["K"])) * cfg["scale"]
    labels = rng.integers(0, cfg["K"], size=cfg["N"])
    check_loss(ml.softmax_cross_entropy, TF.cross_entropy, logits, labels, to_torch(labels).long())


def regression_shapes(seed):
    rng = np.random.default_rng(seed)
    return [tuple(int(s) for s in rng.integers(1, 6, size=int(rng.integers(1, 5)))) for _ in INDICES]


SHAPES = regression_shapes(31)
SHAPE_IDS = [f"{i}-{'x'.join(map(str, s))}" for i, s in enumerate(SHAPES)]


@pytest.mark.parametrize("idx", INDICES, ids=SHAPE_IDS)
def test_mse_matches_torch(idx):
    rng = np.random.default_rng(200 + idx)
    pred, target = rng.standard_normal(SHAPES[idx]), rng.standard_normal(SHAPES[idx])
    check_loss(ml.mse, TF.mse_loss, pred, target, to_torch(target))


@pytest.mark.parametrize("idx", INDICES, ids=SHAPE_IDS)
def test_l1_matches_torch(idx):
    rng = np.random.default_rng(300 + idx)
    pred, target = rng.standard_normal(SHAPES[idx]), rng.standard_normal(SHAPES[idx])
    tie = rng.random(pred.shape) < 0.3
    target[tie] = pred[tie]                     # pred == target: the gradient is sign(0) = 0 in both
    check_loss(ml.l1, TF.l1_loss, pred, target, to_torch(target))


def test_cross_entropy_of_uniform_logits_is_log_k():
    loss, dlogits = ml.softmax_cross_entropy(np.zeros((3, 5)), np.array([0, 2, 4]))
    np.testing.assert_allclose(loss, np.log(5))
    # Each row of the gradient sums to zero: softmax sums to 1 and one label takes 1 away.
    np.testing.assert_allclose(dlogits.sum(axis=1), 0.0, atol=1e-15)


def test_cross_entropy_survives_huge_logits():
    logits = np.array([[1e4, 0.0, -1e4], [0.0, 1e4, 1e4]])
    loss, dlogits = ml.softmax_cross_entropy(logits, np.array([0, 2]))
    assert np.isfinite(loss) and np.all(np.isfinite(dlogits))
    np.testing.assert_allclose(loss, np.log(2) / 2)          # row 1 is certain; row 2 is a 50/50 tie


def test_losses_do_not_modify_inputs():
    rng = np.random.default_rng(0)
    pred, target, labels = rng.standard_normal((4, 3)), rng.standard_normal((4, 3)), np.array([0, 1, 2, 0])
    copies = pred.copy(), target.copy()
    for loss_fn, tgt in ((ml.mse, target), (ml.l1, target), (ml.softmax_cross_entropy, labels)):
        loss_fn(pred, tgt)
        np.testing.assert_array_equal(pred, copies[0])
        np.testing.assert_array_equal(target, copies[1])
