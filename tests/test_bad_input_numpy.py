"""The NumPy core's one validation layer (:mod:`minilib.checks`), used by every public entry point.

Four parts:

* bad calls, each asserting the exception type and that the message names the argument (and
  the rule): layer constructors (``rng``, flags, BatchNorm's ``eps``/``momentum``, Dropout's ``p``),
  dtypes, functionals and references, optimisers and schedules, losses and ``evaluate`` over
  nothing, and calls refused up front because an array would not fit in memory;
* empty batches: every layer's forward on N = 0 gives the empty output of the right shape and
  backward zero weight gradients, the same as the references (and as torch);
* the training loop stops with :class:`minilib.train.Diverged` naming epoch and mini-batch;
* valid calls unchanged: hashes of outputs computed on the code before the validation layer,
  with integer-valued data (every sum exact, so the hashes hold on any BLAS and CPU).
"""
import hashlib
import importlib

import numpy as np
import pytest

import minilib as ml
from minilib import basis as B
from minilib import checks
from minilib import fullstack as FS
from minilib import functional as F
from minilib import losses as L
from minilib import optim as O
from minilib import pooling as P
from minilib import train as T
from minilib import versatile as V

conv = importlib.import_module("minilib.conv")        # ml.conv2d_forward etc. are functions of these modules
im2col = importlib.import_module("minilib.im2col")
fastconv = importlib.import_module("minilib.fastconv")

X = np.random.default_rng(0).standard_normal((2, 3, 6, 6))     # (N, C, H, W), C = 3
W = np.random.default_rng(1).standard_normal((2, 3, 3, 3))     # (F, C, kh, kw), F = 2
BIG = 10 ** 6


def net():
    return ml.Sequential(ml.Linear(2, 2, rng=np.random.default_rng(0)))


def sgd(**kwargs):
    return O.SGD(net(), **{"lr": 0.1, **kwargs})


def fit(model, x, y, optimizer=None, **kwargs):
    optimizer = optimizer or O.SGD(model, lr=0.1)
    return T.fit(model, L.mse, optimizer, x, y, **{"epochs": 1, "batch_size": 2, "rng": 0, "log": None,
                                                  "progress": "epoch", **kwargs})


LAYERS = {  # name -> factory(**kwargs) of a small layer taking (N, 3, 6, 6) or (N, 4, 6, 6)
    "Conv2d": lambda **kw: ml.Conv2d(3, 2, 3, **kw),
    "Linear": lambda **kw: ml.Linear(3, 2, **kw),
    "VersatileConv2d": lambda **kw: V.VersatileConv2d(3, 4, 3, **kw),
    "BasisConv2d": lambda **kw: B.BasisConv2d(4, 4, 3, n_basis=2, basis_channels=2, **kw),
    "FullStackConv2d": lambda **kw: FS.FullStackConv2d(4, 4, 3, s=2, **kw),
}
RNG_LAYERS = {**LAYERS, "Dropout": lambda **kw: ml.Dropout(0.5, **kw),
              "SharedBasis": lambda **kw: B.SharedBasis(2, 2, 3, **kw)}

# ----------------------------------------------------------------------------- 1. layers: rng, flags, numbers
CASES = {}   # name -> (call, exception type, regex the message must match: it names the argument)
for _name, _make in RNG_LAYERS.items():
    CASES[f"{_name}-rng-str"] = (lambda m=_make: m(rng="x"), TypeError,
                                 r"rng must be a numpy.random.Generator, an int seed or None, got str 'x'")
    CASES[f"{_name}-rng-float"] = (lambda m=_make: m(rng=1.5), TypeError, r"rng must be .* got float 1.5")
    CASES[f"{_name}-rng-negative"] = (lambda m=_make: m(rng=-1), ValueError, r"rng=-1 must be a seed >= 0")
    CASES[f"{_name}-rng-RandomState"] = (lambda m=_make: m(rng=np.random.RandomState(0)), TypeError,
                                         r"rng must be .* got RandomState")
for _name, _make in LAYERS.items():
    CASES[f"{_name}-bias-str"] = (lambda m=_make: m(bias="no"), TypeError, r"bias='no' must be True or False")
    CASES[f"{_name}-bias-int"] = (lambda m=_make: m(bias=1), TypeError, r"bias=1 must be True or False")
CASES.update({
    "VersatileConv2d-shared_bias-str": (lambda: V.VersatileConv2d(3, 4, 3, shared_bias="no"), TypeError,
                                        r"shared_bias='no' must be True or False"),
    "FullStackConv2d-learn_masks-str": (lambda: FS.FullStackConv2d(4, 4, 3, 2, learn_masks="no"), TypeError,
                                        r"learn_masks must be True or False"),
    "OrthoPenalty-released-str": (lambda: FS.OrthoPenalty([], released="yes"), TypeError,
                                  r"released='yes' must be True or False"),
    "Module.train-mode-str": (lambda: net().train("no"), TypeError, r"mode='no' must be True or False"),
    "SGD-nesterov-str": (lambda: sgd(momentum=0.9, nesterov="yes"), TypeError, r"nesterov='yes' must be True or False"),
    "BatchNorm2d-eps-negative": (lambda: ml.BatchNorm2d(3, eps=-1), ValueError, r"eps=-1 must be > 0"),
    "BatchNorm2d-eps-0": (lambda: ml.BatchNorm2d(3, eps=0.0), ValueError, r"eps=0.0 must be > 0"),
    "BatchNorm2d-eps-nan": (lambda: ml.BatchNorm2d(3, eps=float("nan")), ValueError,
                            r"eps=nan must be a finite number > 0"),
    "BatchNorm2d-eps-inf": (lambda: ml.BatchNorm2d(3, eps=float("inf")), ValueError,
                            r"eps=inf must be a finite number > 0"),
    "BatchNorm2d-eps-str": (lambda: ml.BatchNorm2d(3, eps="x"), TypeError, r"eps must be a number, got str 'x'"),
    "BatchNorm2d-eps-bool": (lambda: ml.BatchNorm2d(3, eps=True), TypeError, r"eps must be a number, got bool"),
    "BatchNorm2d-momentum-None": (lambda: ml.BatchNorm2d(3, momentum=None), TypeError,
                                  r"momentum must be a number, got NoneType None"),
    "BatchNorm2d-momentum-negative": (lambda: ml.BatchNorm2d(3, momentum=-0.1), ValueError,
                                      r"momentum=-0.1 must be in \[0, 1\]"),
    "BatchNorm2d-momentum-nan": (lambda: ml.BatchNorm2d(3, momentum=float("nan")), ValueError,
                                 r"momentum=nan must be a finite number in \[0, 1\]"),
    "Dropout-p-str": (lambda: ml.Dropout("x"), TypeError, r"p must be a number in \[0, 1\), got str 'x'"),
    "Dropout-p-nan": (lambda: ml.Dropout(float("nan")), ValueError, r"p=nan must be a number in \[0, 1\)"),
    "Dropout-p-inf": (lambda: ml.Dropout(float("inf")), ValueError, r"p=inf must be a number in \[0, 1\)"),
    "VersatileConv2d-combine-int": (lambda: V.VersatileConv2d(3, 4, 3, combine=3), TypeError,
                                    r"combine must be one of 'concat', 'sum', got int 3"),
    "Module.astype-float16": (lambda: net().astype(np.float16), TypeError, r"dtype must be float32 or float64"),
    "Module.astype-int": (lambda: net().astype(int), TypeError, r"dtype must be float32 or float64, got int"),
    "Module.astype-unknown": (lambda: net().astype("x"), TypeError, r"dtype must be float32 or float64, got str 'x'"),
    "load_state_dict-None": (lambda: net().load_state_dict(None), TypeError, r"state must be a dict of arrays"),
    "load_state_dict-strings": (lambda: net().load_state_dict({"0.weight": np.full((2, 2), "a"),
                                                                "0.bias": np.zeros(2)}),
                                TypeError, r"state\['0.weight'\] must be a numeric array"),
})

# ----------------------------------------------------------------------------- dtypes: float32/float64 only
DTYPE_CALLS = {
    "Conv2d.forward": lambda x: ml.Conv2d(3, 2, 3, rng=0).forward(x),
    "VersatileConv2d.forward": lambda x: V.VersatileConv2d(3, 4, 3, rng=0).forward(x),
    "BasisConv2d.forward": lambda x: B.BasisConv2d(3, 4, 3, 2, 1, rng=0).forward(x),
    "FullStackConv2d.forward": lambda x: FS.FullStackConv2d(3, 4, 3, 2, rng=0).forward(x),
    "BatchNorm2d.forward": lambda x: ml.BatchNorm2d(3).forward(x),
    "MaxPool2d.forward": lambda x: ml.MaxPool2d(2).forward(x),
    "AvgPool2d.forward": lambda x: ml.AvgPool2d(2).forward(x),
    "ReLU.forward": lambda x: ml.ReLU().forward(x),
    "Dropout.forward": lambda x: ml.Dropout(0.5, rng=0).forward(x),
    "Flatten.forward": lambda x: ml.Flatten().forward(x),
    "Linear.forward": lambda x: ml.Linear(108, 2, rng=0).forward(x.reshape(2, -1)),
    "conv2d_forward": lambda x: ml.conv2d_forward(x, W),
    "conv2d_forward_naive": lambda x: ml.conv2d_forward_naive(x, W),
    "conv2d_forward_fast": lambda x: ml.conv2d_forward_fast(x, W),
    "im2col": lambda x: ml.im2col(x, 3),
    "im2col_naive": lambda x: ml.im2col_naive(x, 3),
    "maxpool2d_forward": lambda x: P.maxpool2d_forward(x, 2),
    "versatile_conv2d_forward_reference": lambda x: V.versatile_conv2d_forward_reference(x, W[:1]),
    "fullstack_conv2d_forward_dense": lambda x: FS.fullstack_conv2d_forward_dense(x, W, W[:1]),
    "mse": lambda x: L.mse(x, np.zeros(x.shape)),
    "numeric_gradient": lambda x: ml.numeric_gradient(lambda: 0.0, x),
}
for _name, _call in DTYPE_CALLS.items():
    for _dtype in (np.float16, np.int64, np.longdouble):
        if np.dtype(_dtype) in checks.FLOAT_DTYPES:   # longdouble is float64 on some platforms
            continue
        CASES[f"{_name}-{np.dtype(_dtype).name}"] = (
            lambda c=_call, d=_dtype: c(X.astype(d)), TypeError,
            rf"(x|pred) must have a floating dtype, got {np.dtype(_dtype).name}: float32 or float64")

# ----------------------------------------------------------------------------- 3. functionals and references
_, CONV_CACHE = ml.conv2d_forward(X, W)
_, NAIVE_CACHE = ml.conv2d_forward_naive(X, W)
_, FAST_CACHE = ml.conv2d_forward_fast(X, W)
ONES = np.ones((2, 3, 6, 6))
CASES.update({
    "linear_forward-b-2d": (lambda: F.linear_forward(np.ones((3, 4)), np.ones((2, 4)), np.ones((3, 2))), ValueError,
                            r"b must have 1 dimensions \(out_features,\), got shape \(3, 2\)"),
    "linear_forward-b-broadcast": (lambda: F.linear_forward(np.ones((3, 4)), np.ones((2, 4)), np.ones(1)),
                                   ValueError, r"b has shape \(1,\) but must have shape \(2,\)"),
    "linear_forward-b-list": (lambda: F.linear_forward(np.ones((3, 4)), np.ones((2, 4)), [1.0, 2.0]), TypeError,
                              r"b must be a numpy.ndarray, got list"),
    "conv2d_backward_naive-dout-shape": (lambda: ml.conv2d_backward_naive(np.ones((2, 2, 3, 3)), NAIVE_CACHE),
                                         ValueError, r"dout has shape \(2, 2, 3, 3\) but the forward output had "
                                                     r"shape \(2, 2, 4, 4\)"),
    "conv2d_backward_naive-dout-int": (lambda: ml.conv2d_backward_naive(np.ones((2, 2, 4, 4), int), NAIVE_CACHE),
                                       TypeError, r"dout must have a floating dtype"),
    "conv2d_backward_fast-dout-shape": (lambda: ml.conv2d_backward_fast(np.ones((2, 2, 3, 3)), FAST_CACHE),
                                        ValueError, r"dout has shape \(2, 2, 3, 3\)"),
    "col2im-x_shape-str": (lambda: ml.col2im(np.ones((27, 32)), "abcd", 3), TypeError,
                           r"x_shape must be a tuple of ints \(N, C, H, W\), got str 'abcd'"),
    "col2im-x_shape-3": (lambda: ml.col2im(np.ones((27, 32)), (2, 3, 6), 3), ValueError,
                         r"x_shape=\(2, 3, 6\) must have 4 entries"),
    "col2im-x_shape-negative": (lambda: ml.col2im(np.ones((27, 32)), (2, -3, 6, 6), 3), ValueError,
                                r"x_shape=\(2, -3, 6, 6\) must not have negative entries"),
    "col2im-x_shape-float": (lambda: ml.col2im(np.ones((27, 32)), (2.0, 3, 6, 6), 3), TypeError,
                             r"x_shape must be a tuple of ints"),
    "col2im-cols-mismatch": (lambda: ml.col2im(np.ones((27, 31)), (2, 3, 6, 6), 3), ValueError,
                             r"cols must have shape \(27, 32\) for x_shape=\(2, 3, 6, 6\), got \(27, 31\)"),
    "col2im_naive-x_shape-None": (lambda: ml.col2im_naive(np.ones((27, 32)), None, 3), TypeError,
                                  r"x_shape must be a tuple of ints"),
    "col2im_naive-cols-mismatch": (lambda: ml.col2im_naive(np.ones((27, 30)), (2, 3, 6, 6), 3), ValueError,
                                   r"cols must have shape \(27, 32\)"),
    "im2col_naive-list": (lambda: ml.im2col_naive(X.tolist(), 3), TypeError, r"x must be a numpy.ndarray, got list"),
    "conv_output_size-str": (lambda: ml.conv_output_size("a", 3), TypeError, r"size must be an int"),
    "conv_output_size-kernel-too-large": (lambda: ml.conv_output_size(3, 5), ValueError,
                                          r"kernel=5 \(span 5 with dilation=1\) is larger than the padded size 3"),
    "conv_output_size-stride-0": (lambda: ml.conv_output_size(5, 3, 0), ValueError, r"stride=0 must be >= 1"),
    "batchnorm2d_forward-gamma-list": (
        lambda: F.batchnorm2d_forward(X, [1.0] * 3, np.zeros(3), np.zeros(3), np.ones(3), True), TypeError,
        r"gamma must be a numpy.ndarray"),
    "batchnorm2d_forward-beta-shape": (
        lambda: F.batchnorm2d_forward(X, np.ones(3), np.zeros(2), np.zeros(3), np.ones(3), True), ValueError,
        r"beta has shape \(2,\) but must have shape \(3,\)"),
    "batchnorm2d_forward-running_var-shape": (
        lambda: F.batchnorm2d_forward(X, np.ones(3), np.zeros(3), np.zeros(3), np.ones((3, 1)), True), ValueError,
        r"running_var must have 1 dimensions"),
    "batchnorm2d_forward-training-str": (
        lambda: F.batchnorm2d_forward(X, np.ones(3), np.zeros(3), np.zeros(3), np.ones(3), "yes"), TypeError,
        r"training='yes' must be True or False"),
    "batchnorm2d_forward-eps-0": (
        lambda: F.batchnorm2d_forward(X, np.ones(3), np.zeros(3), np.zeros(3), np.ones(3), True, eps=0), ValueError,
        r"eps=0 must be > 0"),
    "batchnorm2d_forward-momentum-2": (
        lambda: F.batchnorm2d_forward(X, np.ones(3), np.zeros(3), np.zeros(3), np.ones(3), True, momentum=2),
        ValueError, r"momentum=2 must be in \[0, 1\]"),
    "dropout_forward-p-2": (lambda: F.dropout_forward(X, 2.0, True, np.random.default_rng()), ValueError,
                            r"p=2.0 must be a number in \[0, 1\)"),
    "dropout_forward-rng-str": (lambda: F.dropout_forward(X, 0.5, True, "x"), TypeError, r"rng must be a numpy"),
    "dropout_forward-training-int": (lambda: F.dropout_forward(X, 0.5, 1, None), TypeError,
                                     r"training=1 must be True or False"),
    "maxpool2d_forward-x-list": (lambda: P.maxpool2d_forward(X.tolist(), 2), TypeError, r"x must be a numpy.ndarray"),
    "avgpool2d_forward-stride-0": (lambda: P.avgpool2d_forward(X, 2, 0), ValueError, r"stride=0 must be >= 1"),
    "expand_bias-str": (lambda: V.expand_bias("x", 4), TypeError, r"bias must be a numpy.ndarray"),
    "expand_bias-length": (lambda: V.expand_bias(np.ones(3), 4), ValueError,
                           r"bias has shape \(3,\); its length must divide out_channels=4"),
    "binarize-list": (lambda: FS.binarize([1.0, -1.0]), TypeError, r"latent must be a numpy.ndarray"),
    "ste_gradient-str": (lambda: FS.ste_gradient("a", np.ones(3)), TypeError, r"dmasks must be a numpy.ndarray"),
    "ste_gradient-shapes": (lambda: FS.ste_gradient(np.ones(3), np.ones(4)), ValueError,
                            r"dmasks has shape \(3,\) but latent has shape \(4,\)"),
    "numeric_gradient-h-0": (lambda: ml.numeric_gradient(lambda: 0.0, np.ones(3), h=0), ValueError,
                             r"h=0 must be > 0"),
    "check_layer_gradients-rng-str": (lambda: ml.check_layer_gradients(ml.ReLU(), np.ones((1, 2)), "x"),
                                      TypeError, r"rng must be a numpy"),
})

# ----------------------------------------------------------------------------- 4. optimisers and schedules
CASES.update({
    "SGD-lr-inf": (lambda: sgd(lr=float("inf")), ValueError, r"lr=inf must be a finite number >= 0"),
    "SGD-lr-overflow": (lambda: sgd(lr=1e309), ValueError, r"lr=inf must be a finite number >= 0"),
    "SGD-lr-negative-inf": (lambda: sgd(lr=float("-inf")), ValueError, r"lr=-inf must be a finite number >= 0"),
    "SGD-lr-bool": (lambda: sgd(lr=True), TypeError, r"lr must be a number, got bool True"),
    "SGD-lr-None": (lambda: sgd(lr=None), TypeError, r"lr must be a number, got NoneType None"),
    "SGD-weight_decay-inf": (lambda: sgd(weight_decay=float("inf")), ValueError,
                             r"weight_decay=inf must be a finite number >= 0"),
    "SGD-weight_decay-nan": (lambda: sgd(weight_decay=float("nan")), ValueError, r"weight_decay=nan must be a finite"),
    "SGD-momentum-inf": (lambda: sgd(momentum=float("inf")), ValueError,
                         r"momentum=inf must be a finite number in \[0, 1\)"),
    "SGD-momentum-1": (lambda: sgd(momentum=1.0), ValueError, r"momentum=1.0 must be in \[0, 1\)"),
    "SGD-momentum-str": (lambda: sgd(momentum="0.9"), TypeError, r"momentum must be a number, got str '0.9'"),
    "SGD-model-None": (lambda: O.SGD(None, lr=0.1), TypeError, r"model must be a minilib Module"),
    "SGD-model-torch-like": (lambda: O.SGD(object(), lr=0.1), TypeError, r"model must be a minilib Module"),
    "Adam-lr-inf": (lambda: O.Adam(net(), lr=float("inf")), ValueError, r"lr=inf must be a finite number >= 0"),
    "Adam-eps-inf": (lambda: O.Adam(net(), eps=float("inf")), ValueError, r"eps=inf must be a finite number > 0"),
    "Adam-eps-0": (lambda: O.Adam(net(), eps=0.0), ValueError, r"eps=0.0 must be > 0"),
    "Adam-beta-nan": (lambda: O.Adam(net(), betas=(float("nan"), 0.9)), ValueError,
                      r"betas=\(nan, 0.9\): betas\[0\]=nan must be a finite number in \[0, 1\)"),
    "Adam-beta-negative": (lambda: O.Adam(net(), betas=(0.9, -0.1)), ValueError,
                           r"betas\[1\]=-0.1 must be in \[0, 1\)"),
    "Adam-beta-str": (lambda: O.Adam(net(), betas=("a", 0.9)), TypeError, r"betas\[0\] must be a number, got str"),
    "Adam-weight_decay-inf": (lambda: O.Adam(net(), weight_decay=float("inf")), ValueError,
                              r"weight_decay=inf must be a finite number >= 0"),
    "StepLR-gamma-0": (lambda: O.StepLR(sgd(), 1, gamma=0), ValueError, r"gamma=0 must be > 0"),
    "StepLR-gamma-negative": (lambda: O.StepLR(sgd(), 1, gamma=-0.5), ValueError, r"gamma=-0.5 must be > 0"),
    "StepLR-gamma-inf": (lambda: O.StepLR(sgd(), 1, gamma=float("inf")), ValueError,
                         r"gamma=inf must be a finite number > 0"),
    "StepLR-gamma-str": (lambda: O.StepLR(sgd(), 1, gamma="x"), TypeError, r"gamma must be a number, got str 'x'"),
    "StepLR-step_size-0": (lambda: O.StepLR(sgd(), 0), ValueError, r"step_size=0 must be >= 1"),
    "StepLR-step_size-negative": (lambda: O.StepLR(sgd(), -2), ValueError, r"step_size=-2 must be >= 1"),
    "StepLR-optimizer-None": (lambda: O.StepLR(None, 1), TypeError, r"optimizer must be a minilib optimizer"),
    "CosineLR-epochs-0": (lambda: O.CosineLR(sgd(), 0), ValueError, r"epochs=0 must be >= 1"),
    "CosineLR-optimizer-str": (lambda: O.CosineLR("sgd", 3), TypeError, r"optimizer must be a minilib optimizer"),
})

# ----------------------------------------------------------------------------- 2. a loss or evaluate over nothing
CASES.update({
    "softmax_cross_entropy-empty": (lambda: L.softmax_cross_entropy(np.zeros((0, 3)), np.zeros(0, int)), ValueError,
                                    r"logits has no samples \(shape \(0, 3\)\): a mean over nothing is undefined"),
    "mse-empty": (lambda: L.mse(np.zeros(0), np.zeros(0)), ValueError, r"pred has no elements \(shape \(0,\)\)"),
    "l1-empty": (lambda: L.l1(np.zeros((0, 2)), np.zeros((0, 2))), ValueError, r"pred has no elements"),
    "evaluate-empty": (lambda: T.evaluate(net(), L.mse, np.zeros((0, 2)), np.zeros((0, 2))), ValueError,
                       r"x has no samples \(shape \(0, 2\)\)"),
    "evaluate-mismatch": (lambda: T.evaluate(net(), L.mse, np.zeros((3, 2)), np.zeros((2, 2))), ValueError,
                          r"x has 3 samples but y has 2"),
    "evaluate-batch_size-0": (lambda: T.evaluate(net(), L.mse, np.zeros((3, 2)), np.zeros((3, 2)), batch_size=0),
                              ValueError, r"batch_size=0 must be >= 1"),
    "evaluate-model-None": (lambda: T.evaluate(None, L.mse, np.zeros((3, 2)), np.zeros((3, 2))), TypeError,
                            r"model must be a minilib Module"),
    "evaluate-x-list": (lambda: T.evaluate(net(), L.mse, [[0.0, 1.0]], np.zeros((1, 2))), TypeError,
                        r"x must be a numpy.ndarray of samples, got list"),
    "fit-y-scalar": (lambda: fit(net(), np.ones((4, 2)), np.float64(1.0)), TypeError,
                     r"y must be a numpy.ndarray of samples"),
    "evaluate-loss_fn-str": (lambda: T.evaluate(net(), "mse", np.zeros((3, 2)), np.zeros((3, 2))), TypeError,
                             r"loss_fn must be a callable"),
    "fit-empty": (lambda: fit(net(), np.zeros((0, 2)), np.zeros((0, 2))), ValueError, r"x has no samples"),
    "fit-empty-validation": (lambda: fit(net(), np.ones((4, 2)), np.ones((4, 2)), x_val=np.zeros((0, 2)),
                                         y_val=np.zeros((0, 2))), ValueError, r"x_val has no samples"),
    "fit-x_val-without-y_val": (lambda: fit(net(), np.ones((4, 2)), np.ones((4, 2)), x_val=np.ones((4, 2))),
                                ValueError, r"x_val and y_val must be given together"),
    "fit-rng-str": (lambda: fit(net(), np.ones((4, 2)), np.ones((4, 2)), rng="x"), TypeError, r"rng must be a numpy"),
    "fit-batch_size-0": (lambda: fit(net(), np.ones((4, 2)), np.ones((4, 2)), batch_size=0), ValueError,
                         r"batch_size=0 must be >= 1"),
    "fit-optimizer-None": (lambda: T.fit(net(), L.mse, None, np.ones((4, 2)), np.ones((4, 2)), epochs=1,
                                         batch_size=2, rng=0, log=None, progress="epoch"),
                           TypeError, r"optimizer must be a minilib optimizer"),
    "fit-scheduler-str": (lambda: fit(net(), np.ones((4, 2)), np.ones((4, 2)), scheduler="cosine"), TypeError,
                          r"scheduler must have a step\(\) method"),
})

# ----------------------------------------------------------------------------- 5. memory: refused up front
MEMORY = {   # name -> (call, regex naming the array and the arguments that make it too large)
    "Conv2d-parameters": (lambda: ml.Conv2d(BIG, BIG, 3), r"Conv2d's parameter 'weight' of shape \(1000000, 1000000, "
                                                          r"3, 3\) \(float64\) would need 67,055 GiB.*in_channels="
                                                          r"1000000, out_channels=1000000"),
    "Conv2d-kernel": (lambda: ml.Conv2d(3, 2, 10 ** 5), r"'weight'.*kernel_size=\(100000, 100000\)"),
    "Linear-parameters": (lambda: ml.Linear(BIG, BIG), r"Linear's parameter 'weight'.*in_features=1000000"),
    "BatchNorm2d-parameters": (lambda: ml.BatchNorm2d(10 ** 12), r"BatchNorm2d's .* num_features=1000000000000"),
    "VersatileConv2d-parameters": (lambda: V.VersatileConv2d(BIG, 2 * BIG, 3), r"VersatileConv2d's parameter"),
    "BasisConv2d-parameters": (lambda: B.BasisConv2d(BIG, BIG, 3, BIG, BIG), r"BasisConv2d's parameter 'basis'"),
    "SharedBasis-parameters": (lambda: B.SharedBasis(BIG, BIG, 3), r"SharedBasis's parameter 'basis'.*n_basis=1000000"),
    "FullStackConv2d-parameters": (lambda: FS.FullStackConv2d(BIG, BIG, 3, 1), r"FullStackConv2d's parameter"),
    "Conv2d.forward-padding": (lambda: ml.Conv2d(3, 2, 3, padding=10 ** 5, rng=0).forward(X),
                               r"the output \(N, out_channels, OH, OW\) of shape \(2, 2, 200004, 200004\) \(float64\) "
                               r"would need [\d.,]+ GiB.*caused by x.shape=\(2, 3, 6, 6\), kernel_size=\(3, 3\), "
                               r"stride=\(1, 1\), padding=\(100000, 100000\)"),
    "Conv2d.forward-dilation": (lambda: ml.Conv2d(3, 2, 3, padding=40000, dilation=10000, rng=0).forward(X),
                                r"the output .* dilation=\(10000, 10000\)"),
    "conv2d_forward-padding": (lambda: ml.conv2d_forward(X, W, padding=10 ** 5), r"the output .*padding="),
    "conv2d_forward-many-outputs": (lambda: ml.conv2d_forward(np.ones((1, 1, 3000, 3000)), np.ones((10 ** 4, 1, 1, 1))),
                                    r"the output .* out_channels=10000"),
    "conv2d_forward_naive-padding": (lambda: ml.conv2d_forward_naive(X, W, padding=10 ** 5), r"the output"),
    "conv2d_forward_fast-padding": (lambda: ml.conv2d_forward_fast(X, W, padding=10 ** 5), r"the output"),
    "conv2d_forward_fast-one-image-unfold": (
        lambda: ml.conv2d_forward_fast(np.ones((1, 1, 2000, 2000), np.float32), np.ones((1, 1, 51, 51), np.float32),
                                       padding=25),
        r"the unfolded rows of one image \(OH\*OW, kh\*kw\*C\) of shape \(4000000, 2601\)"),
    "im2col-padding": (lambda: ml.im2col(X, 3, padding=10 ** 5), r"the zero-padded input of shape \(2, 3, 200006, "
                                                                  r"200006\).*padding=\(100000, 100000\)"),
    "im2col-columns": (lambda: ml.im2col(np.ones((1, 1, 2000, 2000), np.float32), 40),
                       r"the column matrix \(C\*kh\*kw, N\*OH\*OW\) of shape \(1600, 3845521\)"),
    "im2col_naive-padding": (lambda: ml.im2col_naive(X, 3, padding=10 ** 5), r"the zero-padded input"),
    "col2im-padding": (lambda: ml.col2im(np.ones((27, 8)), (2, 3, 1, 1), 3, stride=10 ** 5, padding=10 ** 5),
                       r"the zero-padded input of shape \(2, 3, 200001, 200001\)"),
    "MaxPool2d.forward-columns": (lambda: ml.MaxPool2d(45, 1).forward(np.ones((1, 1, 2000, 2000), np.float32)),
                                  r"the column matrix \(kh\*kw, N\*C\*OH\*OW\)"),
    "VersatileConv2d.forward-padding": (lambda: V.VersatileConv2d(3, 4, 3, padding=10 ** 5, rng=0).forward(X),
                                        r"the output .*padding=\(100000, 100000\)"),
    "versatile_conv2d_forward_reference-padding": (
        lambda: V.versatile_conv2d_forward_reference(X, W[:1], padding=10 ** 5), r"the output"),
    "BasisConv2d.forward-padding": (lambda: B.BasisConv2d(4, 4, 3, 2, 2, padding=10 ** 5, rng=0).forward(
        np.zeros((1, 4, 5, 5))), r"the output .*out_channels=4"),
    "basis_conv2d_forward_reference-padding": (
        lambda: B.basis_conv2d_forward_reference(np.zeros((1, 4, 5, 5)), np.ones((2, 2, 3, 3)), np.ones((4, 4)),
                                                 padding=10 ** 5), r"the output"),
    "FullStackConv2d.forward-padding": (lambda: FS.FullStackConv2d(4, 4, 3, 2, padding=10 ** 5, rng=0).forward(
        np.zeros((1, 4, 5, 5))), r"the output"),
    "fullstack_conv2d_forward_dense-padding": (
        lambda: FS.fullstack_conv2d_forward_dense(X, W, W[:1], padding=10 ** 5), r"the output"),
    "fullstack_conv2d_forward_naive-padding": (
        lambda: FS.fullstack_conv2d_forward_naive(X, W, W[:1], padding=10 ** 5), r"the output"),
    "versatile-dense_weight": (lambda: V.dense_weight(np.ones((BIG, 3, 1, 1)), 3 * BIG, delta=3 * BIG - 3,
                                                              channel_mode="official"),
                               r"the dense weight .*weight.shape=\(1000000, 3, 1, 1\)"),
}
for _name, (_call, _regex) in MEMORY.items():
    CASES[f"memory-{_name}"] = (_call, ValueError, _regex)


def test_there_are_many_cases():
    assert len(CASES) >= 200


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_call_is_refused_with_a_message_naming_the_argument(case, monkeypatch):
    monkeypatch.setattr(checks, "MAX_ARRAY_BYTES", 1 << 30)   # the same verdicts on any machine (and little memory)
    call, error, message = CASES[case]
    with pytest.raises(error, match=message):
        call()


def test_memory_limit_is_at_most_the_constant_and_positive(monkeypatch):
    assert 0 < checks.memory_limit() <= checks.MAX_ARRAY_BYTES
    monkeypatch.setattr(checks, "MAX_ARRAY_BYTES", 1000)
    assert checks.memory_limit() == 1000
    checks.fits_in_memory((125,), np.float64, "x", "y")              # exactly the limit is fine
    with pytest.raises(ValueError, match=r"the thing of shape \(126,\) \(float64\) would need .* GiB, more than .*"
                                         r"caused by because"):
        checks.fits_in_memory((126,), np.float64, "the thing", "because")


def test_memory_check_reads_the_address_space_limit(monkeypatch):
    """A process under ``ulimit -v`` gets half of it as the limit, so the check fires before NumPy's MemoryError."""
    resource = pytest.importorskip("resource")
    monkeypatch.setattr(resource, "getrlimit", lambda which: (4 << 20, resource.RLIM_INFINITY))
    assert checks.memory_limit() == 2 << 20


# ----------------------------------------------------------------------------- rng: int seeds and Generators
@pytest.mark.parametrize("name", sorted(RNG_LAYERS))
def test_an_int_seed_draws_what_default_rng_of_that_seed_draws(name):
    make = RNG_LAYERS[name]
    by_seed, by_generator = make(rng=7), make(rng=np.random.default_rng(7))
    for key, value in by_generator.state_dict().items():
        np.testing.assert_array_equal(by_seed.state_dict()[key], value, err_msg=key)
    if name == "Dropout":
        np.testing.assert_array_equal(by_seed.forward(ONES), by_generator.forward(ONES))


def test_a_generator_is_used_as_is_and_none_gives_a_fresh_one():
    generator = np.random.default_rng(3)
    assert checks.rng(generator) is generator
    assert isinstance(checks.rng(None), np.random.Generator)
    assert checks.rng(np.int64(5)).random() == np.random.default_rng(5).random()


def test_flags_accept_numpy_bools():
    layer = ml.Conv2d(3, 2, 3, bias=np.bool_(False), rng=0)
    assert "bias" not in layer.params
    assert checks.flag(np.True_, "x") is True


def test_lr_zero_is_allowed_as_in_torch():
    model = net()
    before = model.state_dict()["0.weight"].copy()
    optimizer = O.SGD(model, lr=0)
    for _, module, key in model.unique_parameters():
        module.grads[key] = np.ones_like(module.params[key])
    optimizer.step()
    np.testing.assert_array_equal(model.state_dict()["0.weight"], before)


def test_n_basis_above_p_k_k_is_an_overcomplete_basis_and_allowed():
    """Documented (basis_shape): m > p*kh*kw gives linearly dependent basis filters; the layer still works."""
    layer = B.BasisConv2d(2, 3, 1, n_basis=4, basis_channels=1, rng=0)      # p*k*k = 1 < m = 4
    assert layer.forward(np.ones((1, 2, 3, 3))).shape == (1, 3, 3, 3)
    with pytest.raises(ValueError, match=r"n_basis=4 must be <= p\*kh\*kw=1"):
        B.from_conv(np.ones((3, 2, 1, 1)), 4, 1)


# ----------------------------------------------------------------------------- 2. empty batches
EMPTY_LAYERS = {   # name -> (layer factory, input channels)
    "Conv2d": (lambda: ml.Conv2d(3, 2, 3, padding=1, rng=0), 3),
    "Conv2d-stride-2-grayscale": (lambda: ml.Conv2d(1, 4, 3, stride=2, rng=0), 1),
    "Conv2d-no-bias": (lambda: ml.Conv2d(3, 2, 3, bias=False, rng=0), 3),
    "VersatileConv2d": (lambda: V.VersatileConv2d(3, 4, 3, padding=1, rng=0), 3),
    "VersatileConv2d-channel-sum-shared": (lambda: V.VersatileConv2d(4, 2, 3, delta=1, combine="sum",
                                                                     shared_bias=True, rng=0), 4),
    "BasisConv2d": (lambda: B.BasisConv2d(4, 4, 3, n_basis=2, basis_channels=2, rng=0), 4),
    "FullStackConv2d": (lambda: FS.FullStackConv2d(4, 4, 3, s=2, padding=1, rng=0), 4),
    "FullStackConv2d-separate": (lambda: FS.FullStackConv2d(4, 5, 3, s=2, masks="separate", n_filters=3, rng=0), 4),
    "FullStackConv2d-dense": (lambda: _dense(FS.FullStackConv2d(4, 4, 3, s=2, rng=0)), 4),
    "BatchNorm2d": (lambda: ml.BatchNorm2d(3), 3),
    "MaxPool2d": (lambda: ml.MaxPool2d(2), 3),
    "AvgPool2d": (lambda: ml.AvgPool2d(3, stride=1, padding=1), 3),
    "ReLU": (ml.ReLU, 3),
    "Dropout": (lambda: ml.Dropout(0.5, rng=0), 3),
    "Flatten": (ml.Flatten, 3),
    "Sequential": (lambda: ml.Sequential(ml.Conv2d(3, 2, 3, rng=0), ml.ReLU(), ml.Flatten(),
                                         ml.Linear(32, 4, rng=0)), 3),
}


def _dense(layer):
    layer.implementation = "dense"
    return layer


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", sorted(EMPTY_LAYERS))
def test_empty_batch_gives_empty_output_and_zero_gradients(name, dtype):
    make, channels = EMPTY_LAYERS[name]
    full = make().astype(dtype)
    full_out = full.forward(np.ones((2, channels, 6, 6), dtype))
    layer = make().astype(dtype)
    before = {key: value.copy() for key, value in layer.state_dict().items()}
    x = np.zeros((0, channels, 6, 6), dtype)
    out = layer.forward(x)
    assert out.shape == (0, *full_out.shape[1:]) and out.dtype == full_out.dtype
    dx = layer.backward(np.zeros_like(out))
    assert dx.shape == x.shape and dx.dtype == dtype
    for _, module, key in layer.unique_parameters():
        grad = module.grads[key]
        assert grad.shape == module.params[key].shape
        assert not grad.any(), f"{key}: an empty batch has zero gradients"
    for key, value in layer.state_dict().items():   # BatchNorm's running statistics stay, as in torch
        np.testing.assert_array_equal(value, before[key], err_msg=key)


def test_empty_linear_batch():
    layer = ml.Linear(4, 3, rng=0)
    out = layer.forward(np.zeros((0, 4)))
    assert out.shape == (0, 3)
    assert layer.backward(out).shape == (0, 4)
    assert not layer.grads["weight"].any() and not layer.grads["bias"].any()


def test_empty_batchnorm_in_eval_mode():
    layer = ml.BatchNorm2d(3).eval()
    assert layer.forward(np.zeros((0, 3, 4, 4))).shape == (0, 3, 4, 4)


def _empty_pairs():
    """(fast forward/backward, reference forward/backward, arguments) for every convolution and its reference."""
    x = np.zeros((0, 4, 6, 6))
    w = np.random.default_rng(0).standard_normal((2, 4, 3, 3))
    b = np.ones(2)
    basis, coeff = np.ones((3, 2, 3, 3)), np.ones((5, 6))
    filters, latent = np.ones((2, 4, 3, 3)), np.random.default_rng(1).uniform(-1, 1, (3, 4, 3, 3))
    return {
        "conv": ((ml.conv2d_forward_fast, ml.conv2d_backward_fast), (ml.conv2d_forward, ml.conv2d_backward),
                 (x, w, b, 1, 1)),
        "conv-naive": ((ml.conv2d_forward_fast, ml.conv2d_backward_fast),
                       (ml.conv2d_forward_naive, ml.conv2d_backward_naive), (x, w, b, 2, 1)),
        "versatile": ((V.versatile_conv2d_forward, V.versatile_conv2d_backward),
                      (V.versatile_conv2d_forward_reference, V.versatile_conv2d_backward_reference),
                      (x, w, np.ones(4), 1, 1)),
        "versatile-rings": ((V.versatile_conv2d_forward_fast, V.versatile_conv2d_backward_fast),
                            (V.versatile_conv2d_forward_reference, V.versatile_conv2d_backward_reference),
                            (x, w, np.ones(4), 1, 1)),
        "basis": ((B.basis_conv2d_forward, B.basis_conv2d_backward),
                  (B.basis_conv2d_forward_reference, B.basis_conv2d_backward_reference), (x, basis, coeff, np.ones(5))),
        "fullstack": ((FS.fullstack_conv2d_forward, FS.fullstack_conv2d_backward),
                      (FS.fullstack_conv2d_forward_dense, FS.fullstack_conv2d_backward_dense),
                      (x, filters, latent, np.ones(6), 1, 1)),
    }


@pytest.mark.parametrize("name", sorted(_empty_pairs()))
def test_empty_batch_fast_and_reference_agree(name):
    (fast_f, fast_b), (ref_f, ref_b), args = _empty_pairs()[name]
    fast_out, fast_cache = fast_f(*args)
    ref_out, ref_cache = ref_f(*args)
    assert fast_out.shape == ref_out.shape and fast_out.shape[0] == 0
    fast_grads, ref_grads = fast_b(np.zeros_like(fast_out), fast_cache), ref_b(np.zeros_like(ref_out), ref_cache)
    assert len(fast_grads) == len(ref_grads)
    for fast, ref in zip(fast_grads, ref_grads):
        assert fast.shape == ref.shape
        np.testing.assert_array_equal(fast, ref)
        assert not fast.any()


def test_empty_batch_references_of_the_unfold():
    x = np.zeros((0, 3, 5, 5))
    cols = ml.im2col(x, 3, padding=1)
    assert cols.shape == (27, 0)
    np.testing.assert_array_equal(cols, ml.im2col_naive(x, 3, padding=1))
    assert ml.col2im(cols, x.shape, 3, padding=1).shape == x.shape
    assert ml.col2im_naive(cols, x.shape, 3, padding=1).shape == x.shape
    out, ops = FS.fullstack_conv2d_forward_naive(np.zeros((0, 4, 5, 5)), np.ones((2, 4, 3, 3)), np.ones((2, 4, 3, 3)))
    assert out.shape == (0, 4, 3, 3) and ops["multiplications"] == 0


# ----------------------------------------------------------------------------- 6. the training loop stops on NaN/inf
def test_fit_stops_on_a_non_finite_loss_naming_epoch_and_batch():
    model = net()
    x, y = np.ones((6, 2)), np.ones((6, 2))
    y[4] = np.inf                                      # the third mini-batch of the first epoch, unshuffled
    before = {key: value.copy() for key, value in model.state_dict().items()}
    with pytest.raises(T.Diverged, match=r"the loss is not finite \(inf\) at epoch 1, mini-batch 3 of 3"):
        fit(model, x, y, rng=None)
    assert all(np.isfinite(value).all() for value in model.state_dict().values())   # no update from that batch
    assert any((model.state_dict()[key] != before[key]).any() for key in before)  # the finite batches updated


def test_fit_stops_when_the_weights_blow_up():
    model = net()
    x = np.random.default_rng(0).standard_normal((8, 2))
    with pytest.raises(T.Diverged, match=r"is not finite \((inf|nan)\) at epoch \d+, mini-batch \d+ of 4"):
        with np.errstate(all="ignore"):
            fit(model, x, 3 * x, optimizer=O.SGD(model, lr=1e154), epochs=5)


def test_fit_stops_on_a_non_finite_penalty():
    model = net()
    with pytest.raises(T.Diverged, match=r"the penalty is not finite \(nan\) at epoch 1, mini-batch 1 of 2"):
        fit(model, np.ones((4, 2)), np.ones((4, 2)), regularizer=lambda: float("nan"))


def test_diverged_is_a_runtime_error_like_the_torch_loops():
    assert issubclass(T.Diverged, RuntimeError)


# ----------------------------------------------------------------------------- 7. valid calls: bit for bit
def _ints(rng, shape, low=-2, high=3):
    """Small integers as float64: every product and sum below is exact, whatever the BLAS or summation order."""
    return rng.integers(low, high, size=shape).astype(np.float64)


def _set_integer_params(layer, rng):
    for _, module, key in layer.unique_parameters():
        module.params[key][...] = _ints(rng, module.params[key].shape)
    return layer


def exact_outputs():
    """name -> list of arrays, from valid calls whose results are exact (integer arithmetic, Generator draws).

    Uses only the API that existed before the validation layer (Generators, never int seeds), so the
    same function ran on the old code to make :data:`EXPECTED`.
    """
    rng = np.random.default_rng(2024)
    x = _ints(rng, (3, 4, 7, 7))
    out = {}
    makers = {
        "Conv2d": lambda g: ml.Conv2d(4, 3, 3, padding=1, rng=g),
        "Conv2d-strided": lambda g: ml.Conv2d(4, 2, (3, 2), stride=2, dilation=(1, 2), bias=False, rng=g),
        "Conv2d-wide": lambda g: ml.Conv2d(4, 40, 3, rng=g),
        "Versatile": lambda g: V.VersatileConv2d(4, 6, 3, padding=1, rng=g),
        "Versatile-channel": lambda g: V.VersatileConv2d(4, 18, 5, padding=2, delta=2, g=1, shared_bias=True, rng=g),
        "Versatile-sum-official": lambda g: V.VersatileConv2d(4, 4, 3, delta=2, g=2, combine="sum",
                                                              channel_mode="official", rng=g),
        "Basis": lambda g: B.BasisConv2d(4, 6, 3, n_basis=3, basis_channels=2, padding=1, rng=g),
        "FullStack": lambda g: FS.FullStackConv2d(4, 6, 3, s=2, padding=1, rng=g),
        "FullStack-separate": lambda g: FS.FullStackConv2d(4, 5, 3, s=2, masks="separate", n_filters=3, rng=g),
        "Linear": lambda g: ml.Sequential(ml.Flatten(), ml.Linear(4 * 7 * 7, 5, rng=g)),
        "Pools": lambda g: ml.Sequential(ml.MaxPool2d(2), ml.ReLU(), ml.AvgPool2d(2, stride=1)),
    }
    for name, make in makers.items():
        layer = make(np.random.default_rng(7))
        out[f"{name}-init"] = [value for _, value in sorted(layer.state_dict().items())]
        _set_integer_params(layer, np.random.default_rng(8))
        y = layer.forward(x)
        dx = layer.backward(_ints(np.random.default_rng(9), y.shape))
        grads = [module.grads[key] for _, module, key in layer.unique_parameters()]
        out[f"{name}-forward-backward"] = [y, dx, *grads]
    dropout = ml.Dropout(0.5, rng=np.random.default_rng(5))
    y = dropout.forward(x)
    out["Dropout"] = [y, dropout.backward(y)]
    w, b = _ints(rng, (5, 4, 3, 3)), _ints(rng, (5,))
    y, cache = ml.conv2d_forward(x, w, b, 2, 1, 1)
    out["conv2d"] = [y, *ml.conv2d_backward(y, cache)]
    y, cache = ml.conv2d_forward_naive(x, w, b, 1, 1, 2)
    out["conv2d_naive"] = [y, *ml.conv2d_backward_naive(y, cache)]
    cols = ml.im2col(x, 3, 1, 1)
    out["im2col"] = [cols, ml.col2im(cols, x.shape, 3, 1, 1), ml.im2col_naive(x[:1], 2, 2),
                     ml.col2im_naive(ml.im2col_naive(x[:1], 2, 2), x[:1].shape, 2, 2)]
    y, cache = F.linear_forward(x.reshape(3, -1), _ints(rng, (4, 196)), _ints(rng, (4,)))
    out["linear_forward"] = [y, *F.linear_backward(y, cache)]
    # optimisers: dyadic rates and integer gradients keep every update exact
    for name, make in {"sgd": lambda m: O.SGD(m, lr=0.5), "sgd-momentum": lambda m: O.SGD(m, lr=0.25, momentum=0.5),
                       "sgd-nesterov-decay": lambda m: O.SGD(m, lr=0.125, momentum=0.5, nesterov=True,
                                                             weight_decay=0.25)}.items():
        model = _set_integer_params(ml.Sequential(ml.Linear(3, 2, rng=np.random.default_rng(1))),
                                    np.random.default_rng(2))
        optimizer, grads = make(model), np.random.default_rng(3)
        scheduler = O.StepLR(optimizer, 1, gamma=0.5)
        for _ in range(3):
            for _, module, key in model.unique_parameters():
                module.grads[key] = _ints(grads, module.params[key].shape)
            optimizer.step()
            scheduler.step()
        out[f"optim-{name}"] = [value for _, value in sorted(model.state_dict().items())] + [np.array(optimizer.lr)]
    # the loop: a linear model from zero with mse on integer data, batch sizes and rates powers of two
    model = ml.Sequential(ml.Linear(2, 1, rng=np.random.default_rng(0)))
    for _, module, key in model.unique_parameters():
        module.params[key][...] = 0.0
    xs, ys = _ints(rng, (8, 2)), _ints(rng, (8, 1))
    history = T.fit(model, L.mse, O.SGD(model, lr=0.125), xs, ys, epochs=2, batch_size=4,
                    rng=np.random.default_rng(4), x_val=xs, y_val=ys, progress="epoch", log=None)
    out["fit"] = [value for _, value in sorted(model.state_dict().items())] + [
        np.array(history["loss"]), np.array(history["val_loss"])]
    out["mse"] = list(L.mse(x, x * 0.5))
    return out


def digest(arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.asarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


# Computed with exact_outputs() on the code before the validation layer (commit bba77f4).
EXPECTED = {
    "Basis-forward-backward": "d445837741cdd026",
    "Basis-init": "5994d5dd1b1aeca7",
    "Conv2d-forward-backward": "73510c44be93ba0e",
    "Conv2d-init": "b9a7712f72b11230",
    "Conv2d-strided-forward-backward": "db5cba22d9c071cd",
    "Conv2d-strided-init": "354b99042359a695",
    "Conv2d-wide-forward-backward": "ed9921a4e3e66dd6",
    "Conv2d-wide-init": "707933cbc33f08fe",
    "Dropout": "46e90794eb11772e",
    "FullStack-forward-backward": "12e91fa6f41d6c37",
    "FullStack-init": "70870ada77db7eae",
    "FullStack-separate-forward-backward": "e7acf9c464024337",
    "FullStack-separate-init": "deb4e6d18297023a",
    "Linear-forward-backward": "eb4f575289703482",
    "Linear-init": "1798a6c4f676fc9f",
    "Pools-forward-backward": "eda4adf3be27017d",
    "Pools-init": "e3b0c44298fc1c14",
    "Versatile-channel-forward-backward": "9929bbc37aa20611",
    "Versatile-channel-init": "3106d8eaeef01c62",
    "Versatile-forward-backward": "361c28e7afc214f2",
    "Versatile-init": "e9f6b41d91e70c39",
    "Versatile-sum-official-forward-backward": "fe6bebea64103da6",
    "Versatile-sum-official-init": "452b18e7bcddf270",
    "conv2d": "bab0ecb51b977227",
    "conv2d_naive": "9a461cbf9bbf5b90",
    "fit": "c0ba4a25cc3ce0e8",
    "im2col": "ba4d55e9ed4d4323",
    "linear_forward": "3a0281e960263d72",
    "mse": "8049e645f1adf924",
    "optim-sgd": "122a2c99b71a2098",
    "optim-sgd-momentum": "94347662f8384910",
    "optim-sgd-nesterov-decay": "cb3a6bc65406615c",
}


def test_the_exact_cases_are_all_recorded():
    assert set(exact_outputs()) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_valid_calls_are_unchanged_bit_for_bit(name):
    assert digest(exact_outputs()[name]) == EXPECTED[name]
