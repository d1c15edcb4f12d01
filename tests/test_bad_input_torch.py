"""Bad input on the torch side (issue 21): the twins' constructors and forward passes, ``convert``, the builders,
the loop's :class:`Recipe`, the trainer's :class:`TrainConfig` and its non-finite-loss stop.

Every bad call must raise the stated exception type with a message that names the argument (and, where there is
one, the value and the rule); an empty batch goes through every twin as through ``nn.Conv2d``; and valid calls
give what they gave before the checks were added (parameters bit for bit, outputs to 1e-12: the numbers were
recorded on this project's CPU before the change, and another machine's kernels may sum in another order).
"""
from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
from torch import nn
from torch_train_helpers import _restore_torch_globals  # noqa: F401 (an autouse fixture)

import minilib.training.trainer as trainer_module
from minilib.models import lenet as numpy_lenet
from minilib.models import variant
from minilib.torch import (BasisConv2d, FullStackConv2d, SharedBasis, VersatileConv2d, binarize, convert, ortho_loss,
                           ortho_penalty)
from minilib.torch.common import standard_conv
from minilib.torch.edsr import edsr
from minilib.torch.models import build, lenet
from minilib.torch.resnet import cifar_resnet
from minilib.torch.zoo import VGG16, TinyCNN, build_model
from minilib.training import Diverged, Recipe, evaluate, fit, windows
from minilib.training.__main__ import main, parse_args
from minilib.training.checkpoint import load_checkpoint
from minilib.training.loop import loss_value
from minilib.training.trainer import TrainConfig, Trainer, train

NAN, INF = float("nan"), float("inf")

TWINS = {   # a valid configuration of every twin, 4 input channels
    "versatile": (VersatileConv2d, dict(in_channels=4, out_channels=8, kernel_size=3, padding=1, delta=2, g=2)),
    "basis": (BasisConv2d, dict(in_channels=4, out_channels=6, kernel_size=3, n_basis=3, basis_channels=2,
                                padding=1)),
    "basis-loop": (BasisConv2d, dict(in_channels=4, out_channels=6, kernel_size=(3, 2), n_basis=2, basis_channels=2,
                                     stride=(2, 1), split_mode="loop")),
    "fullstack": (FullStackConv2d, dict(in_channels=4, out_channels=8, kernel_size=3, s=4, padding=1)),
    "fullstack-separate": (FullStackConv2d, dict(in_channels=4, out_channels=6, kernel_size=3, s=2, masks="separate",
                                                 n_filters=4, stride=2)),
}


def twin(name, **changes):
    cls, kwargs = TWINS[name]
    return cls(**{**kwargs, **changes})


def raises(error, *words):
    """``pytest.raises(error)`` whose message must contain every one of ``words``."""
    class Check:
        def __enter__(self):
            self.context = pytest.raises(error)
            self.info = self.context.__enter__()
            return self.info

        def __exit__(self, *exc):
            suppressed = self.context.__exit__(*exc)
            message = str(self.info.value)
            for word in words:
                assert word in message, f"{word!r} not in the message {message!r}"
            return suppressed
    return Check()


# --------------------------------------------------------------------------------------------------
# Twins: constructors
# --------------------------------------------------------------------------------------------------

COMMON_BAD = [      # (changes, error, words the message must hold), for every twin
    (dict(bias="no"), TypeError, ["bias", "'no'", "True or False"]),
    (dict(bias=1), TypeError, ["bias", "1"]),
    (dict(rng="x"), TypeError, ["rng", "'x'", "Generator, an int seed or None"]),
    (dict(rng=1.5), TypeError, ["rng", "1.5"]),
    (dict(rng=True), TypeError, ["rng", "True"]),
    (dict(rng=-1), ValueError, ["rng=-1", ">= 0"]),
    (dict(rng=np.random.RandomState(0)), TypeError, ["rng", "RandomState"]),
    (dict(dtype=torch.float16), ValueError, ["dtype=torch.float16", "torch.float32, torch.float64"]),
    (dict(dtype=torch.bfloat16), ValueError, ["dtype=torch.bfloat16"]),
    (dict(dtype=torch.int64), ValueError, ["dtype=torch.int64"]),
    (dict(dtype="float16"), ValueError, ["dtype='float16'"]),
    (dict(dtype=np.float32), TypeError, ["dtype", "float32"]),
    (dict(in_channels="4"), TypeError, ["in_channels", "'4'"]),
    (dict(out_channels=0), ValueError, ["out_channels=0"]),
    (dict(stride=0), ValueError, ["stride=0"]),
    (dict(padding=-1), ValueError, ["padding=-1"]),
]
SPECIFIC_BAD = [    # (twin, changes, error, words)
    ("versatile", dict(shared_bias="no"), TypeError, ["shared_bias", "'no'"]),
    ("versatile", dict(combine=1), TypeError, ["combine", "'concat', 'sum'"]),
    ("versatile", dict(combine=["sum"]), TypeError, ["combine"]),
    ("versatile", dict(channel_mode=None), TypeError, ["channel_mode", "None"]),
    ("versatile", dict(channel_mode=np.array(["paper"])), TypeError, ["channel_mode"]),
    ("versatile", dict(delta=1.0), TypeError, ["delta"]),
    ("versatile", dict(formulation="masked"), ValueError, ["formulation='masked'", "'cropped', 'dense'"]),
    ("versatile", dict(formulation=None), TypeError, ["formulation", "None"]),
    ("basis", dict(split_mode=3), TypeError, ["split_mode", "'reshape', 'loop'"]),
    ("basis", dict(split_mode="conv3d"), ValueError, ["split_mode='conv3d'", "'reshape', 'loop', 'grouped', 'dense'"]),
    ("basis", dict(n_basis=0), ValueError, ["n_basis=0"]),
    ("basis", dict(basis_channels=3), ValueError, ["basis_channels=3"]),
    ("basis", dict(basis="shared"), TypeError, ["basis"]),
    ("fullstack", dict(masks=None), TypeError, ["masks", "'shared', 'separate'"]),
    ("fullstack", dict(masks="both"), ValueError, ["masks='both'"]),
    ("fullstack", dict(learn_masks=1), TypeError, ["learn_masks"]),
    ("fullstack", dict(learn_masks="yes"), TypeError, ["learn_masks", "'yes'"]),
    ("fullstack", dict(s=2.0), TypeError, ["s "]),
    ("fullstack", dict(n_filters=0), ValueError, ["n_filters=0"]),
    ("fullstack", dict(formulation="eq13"), ValueError, ["formulation='eq13'", "'dense'"]),
]


@pytest.mark.parametrize("name", TWINS)
@pytest.mark.parametrize("changes, error, words", COMMON_BAD, ids=[str(c) for c, _, _ in COMMON_BAD])
def test_twin_constructors_name_the_bad_argument(name, changes, error, words):
    with raises(error, *words):
        twin(name, **changes)


@pytest.mark.parametrize("name, changes, error, words", SPECIFIC_BAD,
                         ids=[f"{n}-{c}" for n, c, _, _ in SPECIFIC_BAD])
def test_twin_specific_arguments_are_named(name, changes, error, words):
    with raises(error, *words):
        twin(name, **changes)


def test_shared_basis_arguments_and_dtype_are_checked():
    with raises(TypeError, "rng", "'seed'"):
        SharedBasis(3, 2, 3, rng="seed")
    with raises(ValueError, "dtype=torch.float16"):
        SharedBasis(3, 2, 3, dtype=torch.float16)
    with raises(TypeError, "n_basis"):
        SharedBasis("3", 2, 3)
    shared = SharedBasis(3, 2, 3, dtype=torch.float64)
    with raises(TypeError, "basis has dtype torch.float64", "torch.float32"):
        twin("basis", basis=shared, dtype=torch.float32)
    assert twin("basis", basis=shared, dtype=torch.float64).basis is shared.basis


@pytest.mark.parametrize("name", TWINS)
def test_an_int_seed_is_the_generator_it_names(name):
    a = twin(name, rng=7, dtype=torch.float64)
    b = twin(name, rng=np.random.default_rng(7), dtype=torch.float64)
    for (key, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(p, q), key
    assert twin(name, dtype="float64").coeff.dtype == torch.float64 if name.startswith("basis") else True


def test_standard_conv_checks_its_arguments():
    with raises(TypeError, "bias", "'no'"):
        standard_conv(3, 4, 3, bias="no")
    with raises(TypeError, "rng", "'x'"):
        standard_conv(3, 4, 3, rng="x")
    with raises(ValueError, "kernel_size=0"):
        standard_conv(3, 4, 0)
    with raises(ValueError, "dtype=torch.float16"):
        standard_conv(3, 4, 3, dtype=torch.float16)
    a, b = standard_conv(3, 4, 3, rng=3), standard_conv(3, 4, 3, rng=np.random.default_rng(3))
    assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)


# --------------------------------------------------------------------------------------------------
# Twins: forward
# --------------------------------------------------------------------------------------------------

BAD_INPUTS = {  # name -> (input for a float32 layer of 4 channels, error, words)
    "numpy": (np.zeros((1, 4, 6, 6), dtype=np.float32), TypeError, ["x must be a torch.Tensor", "numpy.ndarray",
                                                                     "torch.from_numpy(x)"]),
    "list": ([[[[0.0]]]], TypeError, ["x must be a torch.Tensor", "list"]),
    "none": (None, TypeError, ["x must be a torch.Tensor", "NoneType"]),
    "int64": (torch.zeros((1, 4, 6, 6), dtype=torch.int64), TypeError, ["x", "floating", "torch.int64"]),
    "bool": (torch.zeros((1, 4, 6, 6), dtype=torch.bool), TypeError, ["x", "floating", "torch.bool"]),
    "float64-to-float32": (torch.zeros((1, 4, 6, 6), dtype=torch.float64), TypeError,
                           ["x has dtype torch.float64", "parameters are torch.float32"]),
    "float16-to-float32": (torch.zeros((1, 4, 6, 6), dtype=torch.float16), TypeError,
                           ["x has dtype torch.float16", "parameters are torch.float32"]),
    "3-d": (torch.zeros((4, 6, 6)), ValueError, ["x must have 4 dimensions", "(4, 6, 6)"]),
    "5-d": (torch.zeros((1, 1, 4, 6, 6)), ValueError, ["x must have 4 dimensions"]),
    "channels": (torch.zeros((1, 3, 6, 6)), ValueError, ["x has 3 channels", "in_channels=4"]),
    "too-small": (torch.zeros((1, 4, 0, 0)), ValueError, ["kernel_size", "larger than the padded input"]),
}


@pytest.mark.parametrize("name", TWINS)
@pytest.mark.parametrize("case", BAD_INPUTS)
def test_twin_forward_names_a_bad_input(name, case):
    x, error, words = BAD_INPUTS[case]
    layer = twin(name, rng=0)
    with raises(error, *words):
        layer(x)


@pytest.mark.parametrize("name", TWINS)
def test_float32_input_to_a_float64_layer_names_both_dtypes(name):
    layer = twin(name, rng=0, dtype=torch.float64)
    with raises(TypeError, "x has dtype torch.float32", "parameters are torch.float64"):
        layer(torch.zeros(2, 4, 6, 6))
    assert layer(torch.zeros(2, 4, 6, 6, dtype=torch.float64)).dtype == torch.float64


@pytest.mark.parametrize("name", TWINS)
def test_autocast_may_mix_the_dtypes_it_casts(name):
    layer = twin(name, rng=0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert layer(torch.zeros(1, 4, 6, 6, dtype=torch.bfloat16)).shape[0] == 1
        with raises(TypeError, "torch.float64"):       # autocast leaves float64 alone: still a mismatch
            layer(torch.zeros(1, 4, 6, 6, dtype=torch.float64))


@pytest.mark.parametrize("name", TWINS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_an_empty_batch_gives_an_empty_output_and_zero_gradients(name, dtype):
    layer = twin(name, rng=0, dtype=dtype)
    full = layer(torch.zeros(3, 4, 7, 6, dtype=dtype))
    x = torch.zeros(0, 4, 7, 6, dtype=dtype, requires_grad=True)
    out = layer(x)
    assert out.shape == (0, *full.shape[1:]) and out.dtype == dtype
    out.sum().backward()
    assert x.grad.shape == x.shape
    for key, p in layer.named_parameters():
        assert p.grad is not None and p.grad.shape == p.shape and not p.grad.any(), key


def test_an_empty_batch_goes_through_a_converted_network_as_through_the_original():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3), nn.Flatten())
    shape = net(torch.zeros(0, 3, 8, 8)).shape
    for method, kw in (("versatile", {}), ("basis", {"n_basis": 4, "basis_channels": 1}), ("fullstack", {"s": 2})):
        converted = convert(nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3),
                                          nn.Flatten()), method, rng=0, **kw)
        assert converted(torch.zeros(0, 3, 8, 8)).shape == shape, method


# --------------------------------------------------------------------------------------------------
# Losses of the torch side
# --------------------------------------------------------------------------------------------------


def test_fullstack_losses_name_a_bad_argument():
    layer = twin("fullstack", rng=0)
    with raises(TypeError, "latent", "torch.from_numpy"):
        binarize(np.zeros(3))
    with raises(TypeError, "mask_latent", "torch.Tensor"):
        ortho_loss(np.zeros((4, 4, 3, 3)))
    with raises(TypeError, "mask_latent", "floating"):
        ortho_loss(torch.zeros((4, 4, 3, 3), dtype=torch.int64))
    with raises(ValueError, "mask_latent", "4-dimensional", "(4, 36)"):
        ortho_loss(torch.zeros(4, 36))
    with raises(ValueError, "lam=inf", "finite"):
        ortho_penalty(layer, lam=INF)
    with raises(ValueError, "lam=nan"):
        ortho_penalty(layer, lam=NAN)
    with raises(TypeError, "lam", "'0.1'"):
        ortho_penalty(layer, lam="0.1")
    with raises(TypeError, "model", "torch.nn.Module", "NoneType"):
        ortho_penalty(None)
    with raises(TypeError, "released", "'yes'"):
        ortho_penalty(layer, released="yes")
    with raises(TypeError, "released"):
        layer.ortho_loss(released=None)


def test_the_loop_refuses_a_loss_over_nothing():
    with raises(ValueError, "empty batch", "(0, 3)"):
        loss_value("cross_entropy", torch.zeros(0, 3), torch.zeros(0, dtype=torch.int64))
    with raises(ValueError, "empty batch"):
        loss_value("l1_grey", torch.zeros(0, 3, 4, 4), torch.zeros(0, 3, 4, 4))
    with raises(ValueError, "loss='mse'"):
        loss_value("mse", torch.zeros(2, 3), torch.zeros(2, 3))


# --------------------------------------------------------------------------------------------------
# convert
# --------------------------------------------------------------------------------------------------


def small_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 8, 3))


CONVERT_BAD = [    # (module factory, method, keywords, error, words)
    (lambda: None, "versatile", {}, TypeError, ["module must be a torch.nn.Module", "NoneType"]),
    (lambda: "net", "versatile", {}, TypeError, ["module must be a torch.nn.Module", "str"]),
    (lambda: numpy_lenet("baseline", rng=np.random.default_rng(0)), "versatile", {}, TypeError,
     ["NumPy minilib model", "Sequential", "minilib.torch"]),
    (small_net, "pruned", {}, ValueError, ["method='pruned' is not known"]),
    (small_net, "baseline", {}, ValueError, ["method='baseline' is not known"]),
    (small_net, None, {}, TypeError, ["method", "None"]),
    (small_net, ["versatile"], {}, TypeError, ["method", "list"]),
    (small_net, "versatile", {"exclude": "conv"}, ValueError, ["exclude=['conv'] names no nn.Conv2d"]),
    (small_net, "versatile", {"exclude": ["0", "7"]}, ValueError, ["exclude=['7'] names no nn.Conv2d"]),
    (small_net, "versatile", {"exclude": [0]}, TypeError, ["exclude", "strings", "[0]"]),
    (small_net, "versatile", {"exclude": 0}, TypeError, ["exclude", "int"]),
    (small_net, "versatile", {"exclude": {"0": 1}}, TypeError, ["exclude", "dict"]),
    (small_net, "versatile", {"rng": "x"}, TypeError, ["rng", "'x'"]),
    (small_net, "versatile", {"rng": -2}, ValueError, ["rng=-2"]),
    (small_net, "versatile", {"per_layer": 5}, TypeError, ["per_layer", "int"]),
    (small_net, "basis", {"per_layer": lambda conv: [("n_basis", 2)]}, TypeError, ["per_layer must return a dict",
                                                                                   "list"]),
    (small_net, "versatile", {"bias": False}, TypeError, ["bias"]),
    (small_net, "versatile", {"delta": "1"}, TypeError, ["delta", "'1'"]),
    (small_net, "versatile", {"shared_bias": "yes"}, TypeError, ["shared_bias", "'yes'"]),
    (small_net, "fullstack", {"s": 2, "learn_masks": "no"}, TypeError, ["learn_masks", "'no'"]),
]


@pytest.mark.parametrize("make, method, kw, error, words", CONVERT_BAD,
                         ids=[f"{i}-{c[1]}-{sorted(c[2])}" for i, c in enumerate(CONVERT_BAD)])
def test_convert_names_a_bad_argument(make, method, kw, error, words):
    with raises(error, *words):
        convert(make(), method, **kw)


def test_convert_takes_one_name_as_a_string_and_an_int_seed():
    net = convert(small_net(), "versatile", exclude="0", rng=5)
    assert type(net[0]) is nn.Conv2d and isinstance(net[2], VersatileConv2d)
    same = convert(small_net(), "versatile", exclude=("0",), rng=np.random.default_rng(5))
    for (key, p), q in zip(net.state_dict().items(), same.state_dict().values()):
        assert torch.equal(p, q), key
    assert isinstance(convert(small_net(), "versatile", exclude=None)[0], VersatileConv2d)


def test_convert_refuses_a_half_precision_model_naming_the_layer():
    with raises(ValueError, "cannot convert layer '0'", "dtype=torch.float16"):
        convert(small_net().half(), "versatile")


# --------------------------------------------------------------------------------------------------
# Builders
# --------------------------------------------------------------------------------------------------

BUILDER_BAD = [     # (call, error, words)
    (lambda: lenet("baseline", rng="x"), TypeError, ["rng", "'x'"]),
    (lambda: lenet("baseline", dtype=torch.float16), ValueError, ["dtype=torch.float16"]),
    (lambda: lenet("baseline", dtype="half"), ValueError, ["dtype='half'"]),
    (lambda: lenet("baseline", dtype=None), TypeError, ["dtype", "None"]),
    (lambda: lenet("baseline", in_channels=0), ValueError, ["in_channels=0"]),
    (lambda: lenet("baseline", num_classes="10"), TypeError, ["num_classes", "'10'"]),
    (lambda: lenet("baseline", num_classes=2.5), TypeError, ["num_classes", "2.5"]),
    (lambda: build("baseline"), TypeError, ["spec", "str"]),
    (lambda: build([("conv", {"out_channels": 4, "kernel_size": 3}), "relu"]), TypeError, ["spec[1]", "'relu'"]),
    (lambda: build(variant("versatile-1"), rng=3.0), TypeError, ["rng", "3.0"]),
    (lambda: cifar_resnet(8, 4, rng="x"), TypeError, ["rng", "'x'"]),
    (lambda: cifar_resnet(8, 4, dtype=torch.int32), ValueError, ["dtype=torch.int32"]),
    (lambda: cifar_resnet(8, 4, dtype=None), TypeError, ["dtype", "None"]),
    (lambda: cifar_resnet(8, 4, method=None), TypeError, ["method", "None"]),
    (lambda: cifar_resnet(8, 4, num_classes=0), ValueError, ["num_classes=0"]),
    (lambda: cifar_resnet("20"), TypeError, ["depth", "'20'"]),
    (lambda: cifar_resnet(8, 4, "basis", n_basis=2, share_basis="yes"), TypeError, ["share_basis", "'yes'"]),
    (lambda: cifar_resnet(8, 4, "fullstack", s=2, learn_masks=0), TypeError, ["learn_masks"]),
    (lambda: edsr(1, 4, res_scale=INF), ValueError, ["res_scale=inf", "finite"]),
    (lambda: edsr(1, 4, res_scale=0), ValueError, ["res_scale=0", "> 0"]),
    (lambda: edsr(1, 4, res_scale="1"), TypeError, ["res_scale", "'1'"]),
    (lambda: edsr(1, 4, share_basis=1), TypeError, ["share_basis", "1"]),
    (lambda: edsr(1, 4, rng="x"), TypeError, ["rng", "'x'"]),
    (lambda: edsr(1, 4, method=3), TypeError, ["method", "3"]),
    (lambda: edsr(1, 4, scale=0), ValueError, ["scale=0"]),
    (lambda: edsr(-1, 4), ValueError, ["n_blocks=-1"]),
    (lambda: build_model("tiny-cnn", num_classes=10, width=INF), ValueError, ["width=inf", "finite"]),
    (lambda: build_model("tiny-cnn", num_classes=10, width=NAN), ValueError, ["width=nan"]),
    (lambda: build_model("tiny-cnn", num_classes=10, width="1"), TypeError, ["width", "'1'"]),
    (lambda: build_model("tiny-cnn", num_classes=0), ValueError, ["num_classes=0"]),
    (lambda: build_model(None, num_classes=10), ValueError, ["model=None is not known"]),
    (lambda: build_model("tiny-cnn", num_classes=10, method=["versatile"]), ValueError, ["method=['versatile']"]),
    (lambda: build_model("tiny-cnn", num_classes=10, method="fullstack", method_kw=["s", 2]), TypeError,
     ["method_kw", "list"]),
    (lambda: build_model("tiny-cnn", num_classes=10, method="versatile", exclude=[1]), TypeError, ["exclude"]),
    (lambda: VGG16(10, width=0.05, dropout=1.0), ValueError, ["dropout=1.0", "[0, 1)"]),
    (lambda: VGG16(10, width=0.05, dropout=-0.1), ValueError, ["dropout=-0.1"]),
    (lambda: VGG16(10, width=0.05, batch_norm="yes"), TypeError, ["batch_norm", "'yes'"]),
    (lambda: TinyCNN(num_classes=0), ValueError, ["num_classes=0"]),
    (lambda: TinyCNN(in_channels="3"), TypeError, ["in_channels", "'3'"]),
]


@pytest.mark.parametrize("index", range(len(BUILDER_BAD)))
def test_builders_name_a_bad_argument(index):
    call, error, words = BUILDER_BAD[index]
    with raises(error, *words):
        call()


def test_builders_take_an_int_seed_and_a_dtype_name():
    a = lenet("versatile-1", rng=4, dtype="float32")
    b = lenet("versatile-1", rng=np.random.default_rng(4), dtype=torch.float32)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
    r = cifar_resnet(8, 4, rng=4, dtype="float64")
    assert r.classifier.weight.dtype == torch.float64
    e1, e2 = edsr(1, 4, rng=9), edsr(1, 4, rng=np.random.default_rng(9))
    assert all(torch.equal(p, q) for p, q in zip(e1.state_dict().values(), e2.state_dict().values()))


# --------------------------------------------------------------------------------------------------
# The loop: Recipe, fit, evaluate, windows
# --------------------------------------------------------------------------------------------------

SGD = dict(optimizer="sgd", lr=0.5, batch_size=16, momentum=0.9, weight_decay=5e-4)
ADAM = dict(optimizer="adam", lr=1e-3, batch_size=16)
RECIPE_BAD = [      # (base, changes, error, words)
    (SGD, dict(lr=INF), ValueError, ["lr=inf", ">= 0"]),
    (SGD, dict(lr=1e308 * 10), ValueError, ["lr=inf"]),
    (SGD, dict(lr=-0.1), ValueError, ["lr=-0.1"]),
    (SGD, dict(lr=True), TypeError, ["lr", "True"]),
    (SGD, dict(lr="0.1"), TypeError, ["lr", "'0.1'"]),
    (SGD, dict(lr=np.float32(0.1)), TypeError, ["lr", "float32"]),
    (SGD, dict(momentum=1.0), ValueError, ["momentum=1.0", "[0, 1)"]),
    (SGD, dict(momentum=INF), ValueError, ["momentum=inf"]),
    (SGD, dict(momentum=-0.5), ValueError, ["momentum=-0.5"]),
    (SGD, dict(momentum=None), TypeError, ["momentum", "None"]),
    (SGD, dict(weight_decay=INF), ValueError, ["weight_decay=inf"]),
    (SGD, dict(weight_decay=NAN), ValueError, ["weight_decay=nan"]),
    (SGD, dict(momentum=0.0, nesterov=True), ValueError, ["nesterov=True", "momentum"]),
    (SGD, dict(nesterov="no"), TypeError, ["nesterov"]),
    (SGD, dict(batch_size=16.0), TypeError, ["batch_size", "16.0"]),
    (SGD, dict(batch_size=0), ValueError, ["batch_size=0"]),
    (SGD, dict(optimizer=None), TypeError, ["optimizer", "'sgd', 'adam'"]),
    (SGD, dict(schedule="linear"), ValueError, ["schedule='linear'"]),
    (SGD, dict(drop_factor=0.0), ValueError, ["drop_factor=0.0", "> 0"]),
    (SGD, dict(drop_factor=INF), ValueError, ["drop_factor=inf"]),
    (SGD, dict(drop_at=(3, 2)), ValueError, ["drop_at=(3, 2)", "numerator <= denominator"]),
    (SGD, dict(drop_at=(1, 0)), ValueError, ["drop_at=(1, 0)"]),
    (SGD, dict(drop_at=(0.5, 1)), TypeError, ["drop_at"]),
    (SGD, dict(drop_at=2), TypeError, ["drop_at", "int"]),
    (SGD, dict(lam=True), TypeError, ["lam", "True"]),
    (SGD, dict(lam=-1.0), ValueError, ["lam=-1.0"]),
    (SGD, dict(lam=INF), ValueError, ["lam=inf"]),
    (SGD, dict(mask_weight_decay=None), TypeError, ["mask_weight_decay"]),
    (ADAM, dict(eps=0.0), ValueError, ["eps=0.0", "> 0"]),
    (ADAM, dict(eps=INF), ValueError, ["eps=inf"]),
    (ADAM, dict(eps=-1e-8), ValueError, ["eps=-1e-08"]),
    (ADAM, dict(betas=(0.9, 1.0)), ValueError, ["betas[1]=1.0", "[0, 1)"]),
    (ADAM, dict(betas=(-0.1, 0.999)), ValueError, ["betas[0]=-0.1"]),
    (ADAM, dict(betas=(NAN, 0.999)), ValueError, ["betas[0]=nan"]),
    (ADAM, dict(betas=(0.9,)), TypeError, ["betas", "pair"]),
    (ADAM, dict(betas="ab"), TypeError, ["betas", "str"]),
    (ADAM, dict(betas=(0.9, "0.999")), TypeError, ["betas[1]", "'0.999'"]),
]


@pytest.mark.parametrize("base, changes, error, words", RECIPE_BAD,
                         ids=[f"{b['optimizer']}-{c}" for b, c, _, _ in RECIPE_BAD])
def test_a_bad_recipe_field_is_named_with_its_value_and_rule(base, changes, error, words):
    with raises(error, "Recipe", *words):
        Recipe(**{**base, **changes})


def test_valid_recipes_are_unchanged():
    assert Recipe(**SGD).fields()["loop"]["momentum"] == 0.9
    assert Recipe(**ADAM, betas=[0.5, 0.0], eps=1e-12, momentum=0.0).fields()["loop"]["betas"] == [0.5, 0.0]
    assert Recipe(**{**SGD, "lr": 0}, drop_at=(0, 1), drop_factor=2.0).lr == 0
    assert Recipe(**ADAM, nesterov=True).nesterov      # Adam ignores nesterov: no momentum rule


def _task(n=32):
    x = np.random.default_rng(0).standard_normal((n, 1, 4, 4)).astype(np.float32)
    return x, (x.sum(axis=(1, 2, 3)) > 0).astype(np.int64)


def _linear():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 2))


def test_fit_names_bad_arguments_and_an_empty_mini_batch():
    x, y = _task()
    recipe = Recipe(**SGD)
    good = dict(epochs=1, steps_per_epoch=2, batches=lambda epoch: iter([(x[:16], y[:16]), (x[16:], y[16:])]))
    for changes, error, words in [(dict(epochs=0), ValueError, ["epochs=0"]),
                                  (dict(epochs=1.0), TypeError, ["epochs", "1.0"]),
                                  (dict(steps_per_epoch=-1), ValueError, ["steps_per_epoch=-1"]),
                                  (dict(total_steps=0), ValueError, ["total_steps=0"]),
                                  (dict(batches=None), TypeError, ["batches", "NoneType"]),
                                  (dict(validate=5), TypeError, ["validate", "int"])]:
        with raises(error, *words):
            fit(_linear(), recipe, **{**good, **changes})
    with raises(TypeError, "recipe", "dict"):
        fit(_linear(), dict(SGD), **good)
    with raises(TypeError, "model", "torch.nn.Module"):
        fit(None, recipe, **good)
    empty = dict(good, batches=lambda epoch: iter([(x[:16], y[:16]), (x[:0], y[:0])]))
    with raises(ValueError, "run:", "mini-batch 2 of epoch 1 is empty"):
        fit(_linear(), recipe, label="run", **empty)


def test_evaluate_and_windows_name_bad_arguments():
    x, y = _task()
    with raises(ValueError, "batch_size=0"):
        evaluate(_linear(), x, y, batch_size=0)
    with raises(ValueError, "x has 32 samples but y has 31"):
        evaluate(_linear(), x, y[:1 - 2])
    with raises(TypeError, "x must be a numpy.ndarray", "Tensor"):
        evaluate(_linear(), torch.from_numpy(x), y)
    with raises(ValueError, "at least one sample"):
        evaluate(_linear(), x[:0], y[:0])
    with raises(ValueError, "n_iterations=0"):
        windows(0, 5, lambda: (x, y))
    with raises(ValueError, "per_window=0"):
        windows(10, 0, lambda: (x, y))
    with raises(TypeError, "draw", "NoneType"):
        windows(10, 5, None)


# --------------------------------------------------------------------------------------------------
# The full-scale trainer: TrainConfig and the non-finite stop
# --------------------------------------------------------------------------------------------------


def config(folder, **kw) -> TrainConfig:
    base = {"model": "tiny-cnn", "data": "synthetic", "epochs": 2, "batch_size": 32, "milestones": [1], "gamma": 0.5,
            "dtype": "float64", "threads": 1, "progress": False, "out": str(folder)}
    return TrainConfig(**{**base, **kw})


CONFIG_BAD = [      # (changes, error, words)
    (dict(lr=INF), ValueError, ["lr=inf", ">= 0"]),
    (dict(lr=-1.0), ValueError, ["lr=-1.0"]),
    (dict(lr="0.1"), TypeError, ["lr", "'0.1'"]),
    (dict(momentum=1.0), ValueError, ["momentum=1.0", "[0, 1)"]),
    (dict(momentum=NAN), ValueError, ["momentum=nan"]),
    (dict(weight_decay=INF), ValueError, ["weight_decay=inf"]),
    (dict(gamma=0.0), ValueError, ["gamma=0.0", "> 0"]),
    (dict(gamma=INF), ValueError, ["gamma=inf"]),
    (dict(ortho_lambda=NAN), ValueError, ["ortho_lambda=nan"]),
    (dict(ortho_lambda="0.1"), TypeError, ["ortho_lambda", "'0.1'"]),
    (dict(width=0), ValueError, ["width=0"]),
    (dict(width=INF), ValueError, ["width=inf"]),
    (dict(width="1"), TypeError, ["width", "'1'"]),
    (dict(epochs=0), ValueError, ["epochs=0"]),
    (dict(epochs=2.0), TypeError, ["epochs", "2.0"]),
    (dict(batch_size=True), TypeError, ["batch_size", "True"]),
    (dict(seed=-1), ValueError, ["seed=-1"]),
    (dict(workers=-1), ValueError, ["workers=-1"]),
    (dict(threads=0), ValueError, ["threads=0"]),
    (dict(checkpoint_every=-1), ValueError, ["checkpoint_every=-1"]),
    (dict(max_steps=0), ValueError, ["max_steps=0"]),
    (dict(limit=0), ValueError, ["limit=0"]),
    (dict(image_size=0), ValueError, ["image_size=0"]),
    (dict(milestones=[0]), ValueError, ["milestones[0]=0"]),
    (dict(milestones=[1, "2"]), TypeError, ["milestones[1]", "'2'"]),
    (dict(milestones=5), TypeError, ["milestones", "5"]),
    (dict(nesterov="yes"), TypeError, ["nesterov", "'yes'"]),
    (dict(nesterov=True, momentum=0.0), ValueError, ["nesterov=True", "momentum"]),
    (dict(augment=1), TypeError, ["augment"]),
    (dict(sync_bn=None), TypeError, ["sync_bn"]),
    (dict(progress="no"), TypeError, ["progress", "'no'"]),
    (dict(device="tpu"), ValueError, ["device='tpu'", "'auto', 'cpu', 'cuda'"]),
    (dict(dtype="float16"), ValueError, ["dtype='float16'"]),
    (dict(amp="maybe"), ValueError, ["amp='maybe'"]),
    (dict(channels_last=True), TypeError, ["channels_last", "True"]),
    (dict(model="resnet18"), ValueError, ["model='resnet18'"]),
    (dict(method="pruned"), ValueError, ["method='pruned'"]),
    (dict(preset="fast"), ValueError, ["preset='fast'"]),
    (dict(method_kw=[("s", 2)]), TypeError, ["method_kw"]),
    (dict(exclude="conv1"), TypeError, ["exclude", "'conv1'"]),
    (dict(data=""), TypeError, ["data", "''"]),
    (dict(out=None), TypeError, ["out", "None"]),
    (dict(resume=3), TypeError, ["resume", "3"]),
]


@pytest.mark.parametrize("changes, error, words", CONFIG_BAD, ids=[str(c) for c, _, _ in CONFIG_BAD])
def test_a_bad_train_config_field_is_named(tmp_path, changes, error, words):
    with raises(error, "TrainConfig", *words):
        config(tmp_path, **changes)


@pytest.mark.parametrize("argv, message", [
    (["--momentum", "1"], "argument --momentum: must be a float in [0, 1), got '1'"),
    (["--momentum", "inf"], "argument --momentum: must be a float in [0, 1)"),
    (["--nesterov", "--momentum", "0"], "TrainConfig nesterov=True needs momentum > 0"),
])
def test_the_command_line_states_the_new_rules(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        parse_args(["--model", "tiny-cnn", "--data", "synthetic", *argv])
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def poison(monkeypatch, at_step):
    """Make the objective of the ``at_step``-th training step (1-based, this process) NaN."""
    real = trainer_module.forward_objective
    calls = []

    def forward_objective(net, x, y, **kw):
        out, loss, term, objective = real(net, x, y, **kw)
        calls.append(1)
        return out, loss, term, objective * NAN if len(calls) == at_step else objective

    monkeypatch.setattr(trainer_module, "forward_objective", forward_objective)


def run_watched(cfg, every_step: bool):
    """A trainer as :func:`train` builds it, checking every step (the CPU's way) or only where a GPU run reads the
    device anyway (``every_step=False``: the watch)."""
    from minilib.training import distributed
    ctx = distributed.setup(cfg.device)
    try:
        trainer = Trainer(cfg, ctx)
        trainer.check_every_step = every_step
        return trainer.run()
    finally:
        distributed.cleanup(ctx, barrier=False)


def test_a_non_finite_loss_stops_the_trainer_at_its_step_on_the_cpu(tmp_path, monkeypatch):
    poison(monkeypatch, 11)                 # 8 steps per epoch: epoch 2, step 3
    with raises(Diverged, "not finite (nan) at epoch 2, step 3 of 8 (global step 11)", "checkpoint.pt holds the last "
                "state before it"):
        train(config(tmp_path))
    state = load_checkpoint(tmp_path / "checkpoint.pt")
    assert (state["epoch"], state["step"], state["global_step"]) == (1, 0, 8)
    assert all(torch.isfinite(v).all() for v in state["model"].values())


@pytest.mark.parametrize("checkpoint_every", [0, 2])
def test_the_watch_names_the_step_without_a_sync_per_step(tmp_path, monkeypatch, checkpoint_every):
    # The GPU's way: the step is noted on the device and read at the next checkpoint or epoch end.
    poison(monkeypatch, 11)
    with raises(Diverged, "not finite at epoch 2, step 3 of 8 (global step 11)"):
        run_watched(config(tmp_path, checkpoint_every=checkpoint_every), every_step=False)
    state = load_checkpoint(tmp_path / "checkpoint.pt")
    assert state["global_step"] == (10 if checkpoint_every else 8)  # the last save before step 11
    assert all(torch.isfinite(v).all() for v in state["model"].values())


def test_the_watch_changes_no_number_of_the_run(tmp_path):
    plain = run_watched(config(tmp_path / "every", checkpoint_every=3), every_step=True)
    watched = run_watched(config(tmp_path / "watched", checkpoint_every=3), every_step=False)
    assert [r["train_loss"] for r in plain["epochs"]] == [r["train_loss"] for r in watched["epochs"]]
    a, b = (load_checkpoint(tmp_path / folder / "checkpoint.pt") for folder in ("every", "watched"))
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key


def test_the_command_line_reports_a_non_finite_loss_in_one_line(tmp_path, monkeypatch, capsys):
    poison(monkeypatch, 1)
    code = main(["--model", "tiny-cnn", "--data", "synthetic", "--threads", "1", "--no-progress", "--epochs", "1",
                 "--batch-size", "32", "--out", str(tmp_path)])
    assert code == 1
    err = capsys.readouterr().err
    assert "error: the training loss is not finite (nan) at epoch 1, step 1 of 8" in err
    assert "no checkpoint was written" in err and not (tmp_path / "checkpoint.pt").exists()


# --------------------------------------------------------------------------------------------------
# Valid calls: as before the checks
# --------------------------------------------------------------------------------------------------

def parameter_hash(module) -> str:
    h = hashlib.sha256()
    for key, value in module.state_dict().items():
        h.update(key.encode())
        h.update(value.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def summary(t) -> list:
    t = t.detach().double()
    return [float(t.sum()), float((t * t).sum()), float(t.flatten()[0]), float(t.flatten()[-1])]


X = np.random.default_rng(1).standard_normal((2, 4, 7, 6))
BEFORE = {   # recorded at commit bba77f4, before the checks: parameter hash, summary of the output on X
    "versatile": (lambda: VersatileConv2d(4, 8, 3, padding=1, delta=2, g=2, rng=np.random.default_rng(0),
                                          dtype=torch.float64),
                  "326d32a9a28b6672", [36.34359596521821, 53.01953919653826, 0.11970290988803328,
                                       -0.08804559096813566]),
    "versatile-sum-official": (lambda: VersatileConv2d(4, 6, 5, stride=2, padding=2, combine="sum",
                                                       channel_mode="official", delta=2, g=1, shared_bias=True,
                                                       rng=np.random.default_rng(0), dtype=torch.float64),
                               "03339cc995e76443", [-17.866272209850788, 86.07876446969246, -0.30955854095498736,
                                                    -0.07438628630886489]),
    "basis": (lambda: BasisConv2d(4, 6, 3, n_basis=3, basis_channels=2, padding=1, rng=np.random.default_rng(0),
                                  dtype=torch.float64),
              "64e7a8d4d1b4ff1b", [117.35361714668927, 100.46030557291147, 0.5043988127358507, 0.5693275115987972]),
    "basis-loop": (lambda: BasisConv2d(4, 6, (3, 2), n_basis=2, basis_channels=2, stride=(2, 1), bias=False,
                                       split_mode="loop", rng=np.random.default_rng(0), dtype=torch.float64),
                   "361b2d14919955f8", [-3.679399529328206, 14.167381262908428, 0.20333428487820449,
                                        -0.27978262987036995]),
    "fullstack": (lambda: FullStackConv2d(4, 8, 3, s=4, padding=1, rng=np.random.default_rng(0), dtype=torch.float64),
                  "50d8731aee066756", [21.101219664645665, 163.15316805139327, 0.3984257598755824,
                                       0.21560100643807428]),
    "fullstack-separate": (lambda: FullStackConv2d(4, 6, 3, s=2, masks="separate", learn_masks=False, n_filters=4,
                                                   rng=np.random.default_rng(0), dtype=torch.float64),
                           "6280bd91daf3e43e", [-1.6178014643134309, 77.22388755789773, 1.0653620564356545,
                                                0.025510258180405976]),
}


@pytest.mark.parametrize("name", BEFORE)
def test_twins_give_what_they_gave_before_the_checks(name):
    make, params, out = BEFORE[name]
    layer = make()
    assert parameter_hash(layer) == params
    assert summary(layer(torch.from_numpy(X))) == pytest.approx(out, rel=1e-12, abs=1e-14)


def test_builders_and_convert_give_what_they_gave_before_the_checks():
    image = torch.from_numpy(np.random.default_rng(2).standard_normal((2, 1, 28, 28)))
    model = lenet("versatile-2", rng=np.random.default_rng(0))
    assert parameter_hash(model) == "fb959a2f1a2b261e"
    assert summary(model(image)) == pytest.approx([0.4415617883812857, 0.049530454087426526, -0.004322698107760269,
                                                   0.08149203389842483], rel=1e-12, abs=1e-14)
    model = lenet("mvnet-b-5", rng=np.random.default_rng(0), dtype="float32")
    assert parameter_hash(model) == "aea1b52faa6e1d33"
    resnet = cifar_resnet(8, 4, "versatile", rng=np.random.default_rng(0), dtype=torch.float64).eval()
    assert parameter_hash(resnet) == "43130804bb6aa301"
    x = torch.from_numpy(np.random.default_rng(3).standard_normal((2, 3, 8, 8)))
    assert summary(resnet(x)) == pytest.approx([-0.6436461936744668, 0.4076256328536805, -0.11627751784785284,
                                                -0.19807500010838788], rel=1e-12, abs=1e-14)
    assert parameter_hash(edsr(1, 4, 2, "fullstack", s=2, rng=np.random.default_rng(0))) == "05ec1446fe73a3c5"
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 8, 3)).double()
    assert parameter_hash(convert(net, "versatile", exclude=["0"], rng=np.random.default_rng(5))) == "ae7428168c5390a8"


def test_every_recipe_the_project_trains_with_passes_the_checks():
    from minilib.reproduce import cifar10, compare, mnist, sr
    recipes = [mnist.loop_recipe(None), mnist.loop_recipe(0.1, released=True), cifar10.loop_recipe(None),
               cifar10.loop_recipe(0.1), sr.loop_recipe(None, 16), sr.loop_recipe(0.1, 16)]
    assert all(isinstance(recipe, Recipe) for recipe in recipes)
    assert compare.RECIPE["momentum"] < 1
    for name, preset in trainer_module.PRESETS.items():
        config("runs/x", **{field: getattr(preset, field) for field in trainer_module.PRESET_FIELDS},
               preset=name, model=preset.model, data=preset.data or "synthetic")
