"""Bad arguments fail early with an error that names the argument and the rule it broke.

The guide's rule: validate at construction and at the top of forward/backward, raise
``ValueError`` for a wrong value or shape, ``TypeError`` for a wrong type (including an
integer dtype where a floating array is needed), and ``RuntimeError`` for ``backward``
before ``forward``. Each case below checks the exception type and, with ``match``, that
the message names the offending argument - not a shape error from deep inside NumPy.
"""
import numpy as np
import pytest

import minilib as ml
from minilib import functional as F

RNG = np.random.default_rng(0)
X4 = RNG.standard_normal((2, 3, 5, 5))          # (N, C, H, W) with C=3
W = RNG.standard_normal((2, 3, 3, 3))           # (F, C, kh, kw) with F=2
X_INT = np.ones((2, 3, 5, 5), dtype=np.int64)


def conv(**kwargs):
    return ml.Conv2d(3, 2, 3, rng=np.random.default_rng(0), **kwargs)


def linear():
    return ml.Linear(4, 3, rng=np.random.default_rng(0))


def after_forward(layer, x):
    layer.forward(x)
    return layer


def small_model():
    return ml.Sequential(linear())


VALUE_ERRORS = {
    # wrong number of dimensions
    "conv2d_forward-x-3d": (lambda: ml.conv2d_forward(X4[0], W), r"x must have 4 dimensions \(N, C, H, W\)"),
    "conv2d_forward_naive-x-3d": (lambda: ml.conv2d_forward_naive(X4[0], W), r"x must have 4 dimensions"),
    "Conv2d.forward-x-3d": (lambda: conv().forward(X4[0]), r"x must have 4 dimensions"),
    "im2col-x-3d": (lambda: ml.im2col(X4[0], 3), r"x must have 4 dimensions"),
    "im2col-x-5d": (lambda: ml.im2col(X4[None], 3), r"x must have 4 dimensions"),
    "MaxPool2d.forward-x-3d": (lambda: ml.MaxPool2d(2).forward(X4[0]), r"x must have 4 dimensions"),
    "AvgPool2d.forward-x-2d": (lambda: ml.AvgPool2d(2).forward(X4[0, 0]), r"x must have 4 dimensions"),
    "BatchNorm2d.forward-x-2d": (lambda: ml.BatchNorm2d(3).forward(X4[0, 0]), r"x must have 4 dimensions"),
    "Linear.forward-x-4d": (lambda: linear().forward(X4), r"x must have 2 dimensions \(N, in_features\)"),
    "Flatten.forward-x-1d": (lambda: ml.Flatten().forward(np.ones(3)), r"x must have at least 2 dimensions"),
    "conv2d_forward-w-3d": (lambda: ml.conv2d_forward(X4, W[0]), r"w must have 4 dimensions"),
    "conv2d_forward-b-2d": (lambda: ml.conv2d_forward(X4, W, np.ones((2, 1))), r"b must have 1 dimensions"),
    # shapes that do not fit together
    "conv2d_forward-channel-mismatch": (lambda: ml.conv2d_forward(X4[:, :2], W),
                                        r"x has 2 channels but w expects in_channels=3"),
    "Conv2d.forward-channel-mismatch": (lambda: ml.Conv2d(4, 2, 3, rng=RNG).forward(X4),
                                        r"x has 3 channels but w expects in_channels=4"),
    "conv2d_forward-bias-length": (lambda: ml.conv2d_forward(X4, W, np.ones(3)), r"b has shape \(3,\).*out_channels=2"),
    "conv2d_forward-kernel-too-large": (lambda: ml.conv2d_forward(X4, RNG.standard_normal((2, 3, 6, 2))),
                                        r"kernel_size=\(6, 2\).*larger than the padded input 5x5"),
    "Conv2d-dilated-kernel-too-large": (lambda: conv(dilation=3).forward(X4), r"kernel_size=.*dilation=\(3, 3\)"),
    "MaxPool2d-kernel-too-large": (lambda: ml.MaxPool2d(6).forward(X4), r"kernel_size=\(6, 6\).*larger than the padded"),
    "col2im-cols-shape": (lambda: ml.col2im(np.ones((27, 2)), X4.shape, 3), r"cols must have shape \(27, 18\)"),
    "Linear.forward-feature-mismatch": (lambda: linear().forward(np.ones((2, 5))),
                                        r"x has 5 features but w expects in_features=4"),
    "BatchNorm2d-channel-mismatch": (lambda: ml.BatchNorm2d(4).forward(X4),
                                     r"x has 3 channels but the layer has num_features=4"),
    "BatchNorm2d-eval-channel-mismatch": (lambda: ml.BatchNorm2d(4).eval().forward(X4), r"num_features=4"),
    "BatchNorm2d-train-one-value-per-channel": (lambda: ml.BatchNorm2d(3).forward(X4[:1, :, :1, :1]),
                                                r"more than one value per channel"),
    # geometry arguments out of range
    "Conv2d-stride-0": (lambda: conv(stride=0), r"stride=0 must be >= 1"),
    "conv2d_forward-stride-negative": (lambda: ml.conv2d_forward(X4, W, stride=-1), r"stride=-1 must be >= 1"),
    "im2col-stride-pair-0": (lambda: ml.im2col(X4, 3, stride=(1, 0)), r"stride=\(1, 0\) must be >= 1"),
    "Conv2d-padding-negative": (lambda: conv(padding=-1), r"padding=-1 must be >= 0"),
    "im2col-padding-negative": (lambda: ml.im2col(X4, 3, padding=(0, -2)), r"padding=\(0, -2\) must be >= 0"),
    "Conv2d-kernel_size-0": (lambda: ml.Conv2d(3, 2, 0), r"kernel_size=0 must be >= 1"),
    "MaxPool2d-kernel_size-0": (lambda: ml.MaxPool2d(0), r"kernel_size=0 must be >= 1"),
    "Conv2d-dilation-0": (lambda: conv(dilation=0), r"dilation=0 must be >= 1"),
    "Conv2d-in_channels-0": (lambda: ml.Conv2d(0, 2, 3), r"in_channels=0 must be >= 1"),
    "Linear-out_features-0": (lambda: ml.Linear(4, 0), r"out_features=0 must be >= 1"),
    "BatchNorm2d-num_features-0": (lambda: ml.BatchNorm2d(0), r"num_features=0 must be >= 1"),
    "BatchNorm2d-momentum-2": (lambda: ml.BatchNorm2d(3, momentum=2.0), r"momentum=2.0 must be in \[0, 1\]"),
    "MaxPool2d-padding-over-half-kernel": (lambda: ml.MaxPool2d(2, padding=2).forward(X4),
                                           r"padding=\(2, 2\) must be at most half of kernel_size"),
    "AvgPool2d-padding-over-half-kernel": (lambda: ml.AvgPool2d(3, padding=2).forward(X4),
                                           r"padding=\(2, 2\) must be at most half of kernel_size"),
    "Dropout-p-1": (lambda: ml.Dropout(1.0), r"p=1.0 must be a number in \[0, 1\)"),
    "Dropout-p-negative": (lambda: ml.Dropout(-0.1), r"p=-0.1"),
    # losses
    "cross_entropy-labels-out-of-range": (lambda: ml.softmax_cross_entropy(np.zeros((2, 3)), np.array([0, 3])),
                                          r"labels must lie in \[0, 3\), got range \[0, 3\]"),
    "cross_entropy-labels-negative": (lambda: ml.softmax_cross_entropy(np.zeros((2, 3)), np.array([-1, 0])),
                                      r"labels must lie in \[0, 3\)"),
    "cross_entropy-labels-wrong-length": (lambda: ml.softmax_cross_entropy(np.zeros((2, 3)), np.array([0, 1, 2])),
                                          r"labels must be integers of shape \(2,\)"),
    "cross_entropy-labels-float": (lambda: ml.softmax_cross_entropy(np.zeros((2, 3)), np.array([0.0, 1.0])),
                                   r"labels must be integers"),
    "cross_entropy-logits-1d": (lambda: ml.softmax_cross_entropy(np.zeros(3), np.array([0])),
                                r"logits must have 2 dimensions"),
    "mse-shape-mismatch": (lambda: ml.mse(np.zeros((2, 3)), np.zeros((3, 2))),
                           r"pred has shape \(2, 3\) but target has shape \(3, 2\)"),
    "l1-shape-mismatch": (lambda: ml.l1(np.zeros(4), np.zeros((4, 1))), r"pred has shape \(4,\) but target has shape"),
    # optimisers
    "SGD-lr-negative": (lambda: ml.SGD(small_model(), lr=-0.1), r"lr=-0.1 must be >= 0"),
    "SGD-lr-nan": (lambda: ml.SGD(small_model(), lr=float("nan")), r"lr=nan must be a finite number >= 0"),
    "Adam-lr-negative": (lambda: ml.Adam(small_model(), lr=-1.0), r"lr=-1.0 must be >= 0"),
    "SGD-nesterov-without-momentum": (lambda: ml.SGD(small_model(), lr=0.1, nesterov=True), r"nesterov=True requires momentum"),
    "SGD-momentum-negative": (lambda: ml.SGD(small_model(), lr=0.1, momentum=-0.5), r"momentum=-0.5 must be in \[0, 1\)"),
    "SGD-weight_decay-negative": (lambda: ml.SGD(small_model(), lr=0.1, weight_decay=-1), r"weight_decay=-1 must be >= 0"),
    "Adam-betas-out-of-range": (lambda: ml.Adam(small_model(), betas=(0.9, 1.0)), r"betas=\(0.9, 1.0\)"),
    "Adam-betas-not-a-pair": (lambda: ml.Adam(small_model(), betas=(0.9,)), r"betas=\(0.9,\) must be a pair"),
    "Adam-eps-negative": (lambda: ml.Adam(small_model(), eps=-1e-8), r"eps=-1e-08 must be > 0"),
    "Adam-weight_decay-negative": (lambda: ml.Adam(small_model(), weight_decay=-0.1), r"weight_decay=-0.1 must be >= 0"),
    "StepLR-step_size-0": (lambda: ml.StepLR(ml.SGD(small_model(), lr=0.1), step_size=0), r"step_size=0 must be >= 1"),
    # upstream gradients that do not match the forward output
    "conv2d_backward-dout-shape": (lambda: ml.conv2d_backward(np.ones((2, 2, 2, 2)), ml.conv2d_forward(X4, W)[1]),
                                   r"dout has shape \(2, 2, 2, 2\)"),
    "Linear.backward-dout-shape": (lambda: after_forward(linear(), np.ones((2, 4))).backward(np.ones((2, 5))),
                                   r"dout has shape \(2, 5\) but the forward output had shape \(2, 3\)"),
    "BatchNorm2d.backward-dout-broadcastable": (
        lambda: after_forward(ml.BatchNorm2d(3), X4).backward(np.ones((2, 3, 1, 1))),
        r"dout has shape \(2, 3, 1, 1\) but the forward output had shape \(2, 3, 5, 5\)"),
    "MaxPool2d.backward-dout-shape": (lambda: after_forward(ml.MaxPool2d(2), X4).backward(np.ones((2, 3, 1, 1))),
                                      r"dout has shape \(2, 3, 1, 1\) but the forward output had shape \(2, 3, 2, 2\)"),
    "AvgPool2d.backward-dout-shape": (lambda: after_forward(ml.AvgPool2d(2), X4).backward(np.ones((2, 3, 3, 3))),
                                      r"dout has shape \(2, 3, 3, 3\)"),
    "ReLU.backward-dout-shape": (lambda: after_forward(ml.ReLU(), X4).backward(np.ones((2, 3, 5, 1))),
                                 r"dout has shape \(2, 3, 5, 1\)"),
    "Flatten.backward-dout-shape": (lambda: after_forward(ml.Flatten(), X4).backward(np.ones((2, 74))),
                                    r"dout has shape \(2, 74\) but the forward output had shape \(2, 75\)"),
    "Dropout.backward-dout-shape": (lambda: after_forward(ml.Dropout(0.5, RNG), X4).backward(np.ones((2, 3))),
                                    r"dout has shape \(2, 3\)"),
    # state dicts
    "load_state_dict-shape": (lambda: linear().load_state_dict({"weight": np.ones((4, 3)), "bias": np.ones(3)}),
                              r"state\['weight'\] has shape \(4, 3\), expected \(3, 4\)"),
}

TYPE_ERRORS = {
    "Conv2d-kernel_size-float": (lambda: ml.Conv2d(3, 2, 2.5), r"kernel_size must be an int or a pair of ints, got 2.5"),
    "Conv2d-kernel_size-triple": (lambda: ml.Conv2d(3, 2, (3, 3, 3)), r"kernel_size must be an int or a pair"),
    "Conv2d-kernel_size-bool": (lambda: ml.Conv2d(3, 2, True), r"kernel_size must be an int"),
    "MaxPool2d-kernel_size-float": (lambda: ml.MaxPool2d(2.0), r"kernel_size must be an int or a pair"),
    "im2col-stride-float": (lambda: ml.im2col(X4, 3, stride=1.5), r"stride must be an int or a pair"),
    "Conv2d-in_channels-float": (lambda: ml.Conv2d(3.0, 2, 3), r"in_channels must be an int, got 3.0"),
    "Linear-in_features-str": (lambda: ml.Linear("4", 3), r"in_features must be an int"),
    "conv2d_forward-int-x": (lambda: ml.conv2d_forward(X_INT, W), r"x must have a floating dtype, got int64"),
    "conv2d_forward-int-w": (lambda: ml.conv2d_forward(X4, W.astype(np.int32)), r"w must have a floating dtype"),
    "Conv2d.forward-int-x": (lambda: conv().forward(X_INT), r"x must have a floating dtype"),
    "Linear.forward-int-x": (lambda: linear().forward(np.ones((2, 4), dtype=np.int64)), r"x must have a floating dtype"),
    "ReLU.forward-int-x": (lambda: ml.ReLU().forward(X_INT), r"x must have a floating dtype"),
    "MaxPool2d.forward-int-x": (lambda: ml.MaxPool2d(2).forward(X_INT), r"x must have a floating dtype"),
    "BatchNorm2d.forward-int-x": (lambda: ml.BatchNorm2d(3).forward(X_INT), r"x must have a floating dtype"),
    "Dropout.forward-int-x": (lambda: ml.Dropout(0.5, RNG).forward(X_INT), r"x must have a floating dtype"),
    "Flatten.forward-int-x": (lambda: ml.Flatten().forward(X_INT), r"x must have a floating dtype"),
    "im2col-list": (lambda: ml.im2col(X4.tolist(), 3), r"x must be a numpy.ndarray, got list"),
    "ReLU.forward-list": (lambda: ml.ReLU().forward([1.0, -1.0]), r"x must be a numpy.ndarray, got list"),
    "mse-target-list": (lambda: ml.mse(np.zeros(3), [0.0, 1.0, 2.0]), r"target must be a numpy.ndarray"),
    "l1-int-target": (lambda: ml.l1(np.zeros(3), np.arange(3)), r"target must have a floating dtype"),
    "mse-int-pred": (lambda: ml.mse(np.arange(3), np.zeros(3)), r"pred must have a floating dtype"),
    "Sequential-non-Module": (lambda: ml.Sequential(linear(), lambda x: x), r"layer 1 of Sequential must be a minilib Module"),
    "SGD-lr-str": (lambda: ml.SGD(small_model(), lr="0.1"), r"lr must be a number, got str '0.1'"),
    "StepLR-step_size-float": (lambda: ml.StepLR(ml.SGD(small_model(), lr=0.1), step_size=2.5), r"step_size must be an int"),
    "numeric_gradient-int-x": (lambda: ml.numeric_gradient(lambda: 0.0, np.arange(3)), r"x must have a floating dtype"),
}

LAYERS_FOR_BACKWARD = {
    "Conv2d": conv, "Linear": linear, "ReLU": ml.ReLU, "MaxPool2d": lambda: ml.MaxPool2d(2),
    "AvgPool2d": lambda: ml.AvgPool2d(2), "Flatten": ml.Flatten, "BatchNorm2d": lambda: ml.BatchNorm2d(3),
    "Dropout": lambda: ml.Dropout(0.5, RNG), "Sequential": lambda: ml.Sequential(ml.ReLU(), linear()),
}


def test_there_are_enough_cases():
    assert len(VALUE_ERRORS) + len(TYPE_ERRORS) + len(LAYERS_FOR_BACKWARD) >= 10


@pytest.mark.parametrize("case", VALUE_ERRORS)
def test_value_error_names_the_argument(case):
    call, message = VALUE_ERRORS[case]
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize("case", TYPE_ERRORS)
def test_type_error_names_the_argument(case):
    call, message = TYPE_ERRORS[case]
    with pytest.raises(TypeError, match=message):
        call()


@pytest.mark.parametrize("name", LAYERS_FOR_BACKWARD)
def test_backward_before_forward_is_a_runtime_error(name):
    layer = LAYERS_FOR_BACKWARD[name]()
    # Sequential runs its layers backwards, so the last one (Linear) is the one that complains.
    expected = "Linear" if name == "Sequential" else name
    with pytest.raises(RuntimeError, match=rf"{expected}\.backward called before forward"):
        layer.backward(np.ones((2, 3)))


def test_dropout_eval_backward_after_forward_is_fine():
    """The backward-before-forward guard must not fire for the (mask-free) evaluation mode."""
    layer = ml.Dropout(0.5, RNG).eval()
    x = RNG.standard_normal((2, 3))
    np.testing.assert_array_equal(layer.forward(x), x)
    np.testing.assert_array_equal(layer.backward(np.ones((2, 3))), np.ones((2, 3)))


def test_rejected_batchnorm_forward_leaves_running_stats_alone():
    """Validation happens before the in-place running-statistics update."""
    layer = ml.BatchNorm2d(3)
    with pytest.raises(ValueError):
        layer.forward(X4[:1, :, :1, :1])
    np.testing.assert_array_equal(layer.buffers["running_mean"], np.zeros(3))
    np.testing.assert_array_equal(layer.buffers["running_var"], np.ones(3))


def test_functional_checks_also_guard_the_pure_functions():
    """The layers are thin: the same messages come from the functional core."""
    with pytest.raises(ValueError, match=r"x has 5 features but w expects in_features=4"):
        F.linear_forward(np.ones((2, 5)), np.ones((3, 4)))
    with pytest.raises(ValueError, match=r"dout has shape"):
        F.relu_backward(np.ones(3), F.relu_forward(np.ones(4))[1])
