"""Centred-difference gradient checks, independent of PyTorch.

First the checking tools themselves (``rel_error`` on known values, ``numeric_gradient`` on
functions with known derivatives), so that a broken checker cannot make every layer pass.
Then every layer's analytic backward against ``check_layer_gradients`` on small float64
shapes, for the input and every parameter. Observed errors are ~1e-12..1e-7 (h=1e-5);
``BOUND`` = 1e-6 is tight enough to catch a wrong term and loose enough not to flake.
"""
import numpy as np
import pytest

import minilib as ml
from minilib import check_layer_gradients, numeric_gradient, rel_error

BOUND = 1e-6


# ----------------------------------------------------------------------------- the tools
@pytest.mark.parametrize("a, b, expected", [
    (1.0, 1.0, 0.0),
    (1.0, 2.0, 1.0 / 3.0),                      # |1-2| / (1+2)
    (1e-3, -1e-3, 1.0),                         # opposite signs: the worst possible
    ([0.0, 0.0], [0.0, 0.0], 0.0),              # both zero: eps keeps it finite
    ([1.0, 10.0], [1.0, 11.0], 1.0 / 21.0),     # the max over elements
    ([1e-14], [0.0], 1e-14 / 1e-12),            # below eps the denominator is eps
])
def test_rel_error_known_values(a, b, expected):
    assert rel_error(a, b) == pytest.approx(expected, rel=1e-12, abs=1e-300)


def test_rel_error_is_symmetric_and_scale_free():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(10), rng.standard_normal(10)
    assert rel_error(a, b) == rel_error(b, a)
    assert rel_error(1e6 * a, 1e6 * b) == pytest.approx(rel_error(a, b), rel=1e-12)


def test_numeric_gradient_of_sum_of_squares_is_2x():
    x = np.random.default_rng(1).standard_normal((3, 4))
    grad = numeric_gradient(lambda: np.sum(x ** 2), x)
    # Centred differences are exact for quadratics up to rounding (~eps * |x|^2 / h).
    np.testing.assert_allclose(grad, 2 * x, rtol=1e-8, atol=1e-9)


def test_numeric_gradient_of_sin_with_upstream_gradient():
    """For array-valued f the result is the vector-Jacobian product: d<sin(x), dout>/dx = cos(x) * dout."""
    rng = np.random.default_rng(2)
    x, dout = rng.standard_normal(5), rng.standard_normal(5)
    grad = numeric_gradient(lambda: np.sin(x), x, dout)
    assert rel_error(grad, np.cos(x) * dout) < 1e-9


def test_numeric_gradient_restores_x_and_sees_in_place_perturbations():
    x = np.arange(4.0)
    seen = []
    numeric_gradient(lambda: seen.append(x.copy()) or np.sum(x), x, h=0.5)
    np.testing.assert_array_equal(x, np.arange(4.0))
    assert len(seen) == 2 * x.size and seen[0][0] == 0.5 and seen[1][0] == -0.5


def test_check_layer_gradients_catches_a_wrong_backward():
    """A layer whose backward is off by a factor of 2 must fail the bound by a wide margin."""
    class WrongLinear(ml.Linear):
        def backward(self, dout):
            return 2.0 * super().backward(dout)

    rng = np.random.default_rng(3)
    errors = check_layer_gradients(WrongLinear(4, 3, rng=rng), rng.standard_normal((2, 4)), rng)
    assert errors["x"] > 0.3 and errors["weight"] < BOUND


# ----------------------------------------------------------------------------- the layers
def random_batchnorm(num_features, rng, training):
    layer = ml.BatchNorm2d(num_features)
    layer.params["weight"][:] = rng.uniform(0.5, 2.0, num_features)
    layer.params["bias"][:] = rng.standard_normal(num_features)
    layer.buffers["running_mean"][:] = rng.standard_normal(num_features)
    layer.buffers["running_var"][:] = rng.uniform(0.5, 2.0, num_features)
    return layer.train(training)


LAYERS = {
    "conv-3x3": (lambda rng: ml.Conv2d(2, 3, 3, rng=rng), (2, 2, 5, 5)),
    "conv-rect-stride-pad-dilation": (lambda rng: ml.Conv2d(2, 3, (3, 2), (2, 1), (1, 2), rng=rng, dilation=(2, 1)),
                                      (2, 2, 6, 5)),
    "conv-no-bias-batch1": (lambda rng: ml.Conv2d(3, 2, 2, stride=2, bias=False, rng=rng), (1, 3, 5, 4)),
    "linear": (lambda rng: ml.Linear(5, 3, rng=rng), (4, 5)),
    "linear-no-bias": (lambda rng: ml.Linear(3, 2, bias=False, rng=rng), (1, 3)),
    "batchnorm-train": (lambda rng: random_batchnorm(3, rng, training=True), (2, 3, 3, 2)),
    "batchnorm-eval": (lambda rng: random_batchnorm(3, rng, training=False), (2, 3, 3, 2)),
    "relu": (lambda rng: ml.ReLU(), (2, 3, 4)),
    "maxpool": (lambda rng: ml.MaxPool2d(2, 1, 1), (2, 2, 5, 4)),
    "avgpool": (lambda rng: ml.AvgPool2d((3, 2), (2, 1), 1), (2, 2, 5, 4)),
    "flatten": (lambda rng: ml.Flatten(), (2, 2, 3)),
    "dropout-eval": (lambda rng: ml.Dropout(0.5, rng).eval(), (3, 4)),
}


@pytest.mark.parametrize("name", LAYERS)
def test_layer_gradients_match_centred_differences(name):
    rng = np.random.default_rng(sum(map(ord, name)))
    make, shape = LAYERS[name]
    layer = make(rng)
    errors = check_layer_gradients(layer, rng.standard_normal(shape), rng)
    assert set(errors) == {"x", *layer.params}
    assert max(errors.values()) < BOUND, f"{name}: {errors}"


def test_sequential_cnn_gradients_for_every_parameter():
    """check_layer_gradients sees only a module's own params, so walk the children by name here."""
    rng = np.random.default_rng(4)
    model = ml.Sequential(ml.Conv2d(1, 2, 3, padding=1, rng=rng), random_batchnorm(2, rng, training=True), ml.ReLU(),
                          ml.MaxPool2d(2), ml.Flatten(), ml.Linear(8, 3, rng=rng))
    x = rng.standard_normal((2, 1, 4, 4))
    dout = rng.standard_normal(model.forward(x).shape)
    dx = model.backward(dout)
    errors = {"x": rel_error(dx, numeric_gradient(lambda: model.forward(x), x, dout))}
    numeric = {}
    for prefix, module in model.named_modules():
        for key, param in module.params.items():
            numeric[f"{prefix}.{key}"] = numeric_gradient(lambda: model.forward(x), param, dout)
            errors[f"{prefix}.{key}"] = rel_error(module.grads[key], numeric[f"{prefix}.{key}"])
    assert len(errors) == 1 + 6
    # Training-mode batch norm subtracts the channel mean, which cancels the conv bias: its true
    # gradient is 0, both estimates are rounding noise, and a *relative* error means nothing there.
    np.testing.assert_allclose(model[0].grads["bias"], 0.0, atol=1e-12)
    np.testing.assert_allclose(numeric.pop("0.bias"), 0.0, atol=1e-8)
    del errors["0.bias"]
    assert max(errors.values()) < BOUND, errors


@pytest.mark.parametrize("stride, padding, dilation", [(1, 0, 1), (2, 1, 1), (1, 2, 2), ((2, 1), (0, 1), (1, 2))])
def test_conv_functional_gradients_match_centred_differences(stride, padding, dilation):
    rng = np.random.default_rng(5)
    x, w, b = rng.standard_normal((2, 2, 5, 6)), rng.standard_normal((3, 2, 3, 2)), rng.standard_normal(3)
    out, cache = ml.conv2d_forward(x, w, b, stride, padding, dilation)
    dout = rng.standard_normal(out.shape)
    forward = lambda: ml.conv2d_forward(x, w, b, stride, padding, dilation)[0]  # noqa: E731
    for analytic, array in zip(ml.conv2d_backward(dout, cache), (x, w, b)):
        assert rel_error(analytic, numeric_gradient(forward, array, dout)) < BOUND


@pytest.mark.parametrize("loss_name", ["softmax_cross_entropy", "mse", "l1"])
def test_loss_gradients_match_centred_differences(loss_name):
    rng = np.random.default_rng(6)
    pred = rng.standard_normal((4, 5))
    target = rng.integers(0, 5, size=4) if loss_name == "softmax_cross_entropy" else rng.standard_normal((4, 5))
    loss_fn = getattr(ml, loss_name)
    _, dpred = loss_fn(pred, target)
    assert rel_error(dpred, numeric_gradient(lambda: loss_fn(pred, target)[0], pred)) < BOUND
