"""LeNet variants: every spec builds in both backends, same weights and outputs for one seed, paper's layer sizes."""
import subprocess
import sys

import numpy as np
import pytest
import torch

from minilib.layers import Conv2d, Flatten, MaxPool2d, ReLU
from minilib.basis import BasisConv2d
from minilib.models import VARIANTS, basis, build, conv, lenet, lenet_spec, search_v2
from minilib.reports.papers import MVNET_TABLE1, VERSATILE_TABLE2, VERSATILE_TABLE3
from minilib.torch.models import build as build_torch
from minilib.torch.models import lenet as torch_lenet
from minilib.versatile import VersatileConv2d

from torch_helpers import assert_close, to_numpy, to_torch

NAMES = list(VARIANTS)

PARAMETERS = {              # filter weights + biases (shared: one per primary filter)
    "baseline": 430_500 + 580,
    "versatile-1": 430_500 + 580,
    "versatile-2": 218_100 + 21 + 51 + 500 + 10,
    "versatile-3": 218_100 + 7 + 17 + 250 + 10,
    "versatile-v2-1": 117_900 + 7 + 9 + 125 + 10,
    "versatile-v2-2": 117_900 + 7 + 9 + 125 + 10,
    "versatile-v2-3": 79_093 + 7 + 6 + 82 + 10,
}
# MVNet: filters + biases (27,105 for s = 20 ...) plus the float mask latents while masks are learned
# (s*c*d^2 per layer shared, n*c*d^2 separate); fixed random masks are buffers, not parameters
for _s, _filters_and_biases in ((2, 218_330), (5, 90_680), (10, 48_130), (20, 27_105), (50, 14_105)):
    PARAMETERS[f"mvnet-a-{_s}"] = _filters_and_biases + _s * (25 + 500 + 800)
    PARAMETERS[f"mvnet-b-{_s}"] = _filters_and_biases + 20 * 25 + 50 * 500 + 500 * 800
PARAMETERS["mvnet-a-rand-20"] = PARAMETERS["mvnet-b-rand-20"] = 27_105


@pytest.mark.parametrize("name", NAMES)
def test_variant_builds_in_both_backends_with_the_same_outputs(name):
    model = lenet(name, rng=np.random.default_rng(7))
    twin = torch_lenet(name, rng=np.random.default_rng(7))
    x = np.random.default_rng(1).standard_normal((3, 1, 28, 28))
    out = model.forward(x)
    assert out.shape == (3, 10)
    assert_close(out, twin(to_torch(x)), f"{name} forward")
    assert model.num_parameters() == PARAMETERS[name] == sum(p.numel() for p in twin.parameters())
    # the same names, shapes and values: both started from the same draws
    torch_state = twin.state_dict()
    assert set(model.state_dict()) == set(torch_state)
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value, to_numpy(torch_state[key]), err_msg=key)


@pytest.mark.parametrize("name", NAMES)
def test_torch_variant_trains_like_the_numpy_one(name):
    """One backward pass: input gradients agree, so the twins are the same function, not just the same output."""
    model, twin = lenet(name, rng=np.random.default_rng(3)), torch_lenet(name, rng=np.random.default_rng(3))
    x = np.random.default_rng(4).standard_normal((2, 1, 28, 28))
    x_t = to_torch(x, requires_grad=True)
    dout = np.random.default_rng(5).standard_normal((2, 10))
    model.forward(x)
    dx = model.backward(dout)
    twin(x_t).backward(to_torch(dout))
    assert_close(dx, x_t.grad, f"{name} dx")


BASIS_SPECS = {             # (m, p) per feature layer: no splits, splits, and a one-filter basis
    "whole filters": lenet_spec(basis(20, 5, 6, 1), basis(50, 5, 12, 20), basis(500, 4, 40, 50)),
    "splits": lenet_spec(basis(20, 5, 3, 1), basis(50, 5, 19, 5), basis(500, 4, 74, 25)),
    "one filter": lenet_spec(basis(20, 5, 1, 1), basis(50, 5, 1, 2), basis(500, 4, 1, 10)),
}


@pytest.mark.parametrize("name", list(BASIS_SPECS))
def test_basis_kind_builds_the_same_network_in_both_backends(name):
    """The "basis" layer kind: one rng gives the same basis, coefficients and biases in NumPy and torch (drawn in
    the order basis, coeff, bias per layer), hence the same outputs and input gradients."""
    spec = BASIS_SPECS[name]
    model, twin = build(spec, rng=np.random.default_rng(11)), build_torch(spec, rng=np.random.default_rng(11))
    layers = [layer for layer in model if isinstance(layer, BasisConv2d)]
    assert len(layers) == 3 and [layer.splits for layer in layers] == [1, 20 // layers[1].basis_channels,
                                                                       50 // layers[2].basis_channels]
    torch_state = twin.state_dict()
    assert set(model.state_dict()) == set(torch_state)
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value, to_numpy(torch_state[key]), err_msg=key)
    x = np.random.default_rng(2).standard_normal((3, 1, 28, 28))
    x_t = to_torch(x, requires_grad=True)
    out, out_t = model.forward(x), twin(x_t)
    assert_close(out, out_t, f"{name} forward")
    dout = np.random.default_rng(5).standard_normal(out.shape)
    dx = model.backward(dout)
    out_t.backward(to_torch(dout))
    assert_close(dx, x_t.grad, f"{name} dx")
    for index in (0, 2, 4):
        for key in ("basis", "coeff", "bias"):
            assert_close(model[index].grads[key], getattr(twin[index], key).grad, f"{name} layer {index} d{key}")
    assert model.num_parameters() == sum(p.numel() for p in twin.parameters())


def test_basis_kind_rejects_a_split_that_does_not_divide_the_input():
    with pytest.raises(ValueError, match="basis_channels=3 must divide in_channels=20"):
        build(lenet_spec(basis(20, 5, 2, 1), basis(50, 5, 4, 3), basis(500, 4, 8, 50)))


def test_baseline_is_matconvnet_lenet_without_relu_after_the_first_two_convs():
    model = lenet(rng=np.random.default_rng(0))
    assert [type(layer) for layer in model] == [Conv2d, MaxPool2d, Conv2d, MaxPool2d, Conv2d, ReLU, Conv2d, Flatten]
    assert [layer.params["weight"].shape for layer in model if isinstance(layer, Conv2d)] == [
        (20, 1, 5, 5), (50, 20, 5, 5), (500, 50, 4, 4), (10, 500, 1, 1)]


@pytest.mark.parametrize("name, primaries, delta, g, shared", [
    ("versatile-1", (20, 50, 500), (0, 0, 0), (1, 1, 1), False),
    ("versatile-2", (7, 17, 250), (0, 0, 0), (1, 1, 1), False),
    ("versatile-3", (7, 17, 250), (0, 0, 0), (1, 1, 1), True),
    ("versatile-v2-1", (7, 9, 125), (0, 1, 1), (1, 1, 1), True),
    ("versatile-v2-2", (7, 9, 125), (0, 2, 2), (1, 2, 2), True),
    ("versatile-v2-3", (7, 6, 82), (0, 2, 2), (1, 1, 1), True),
])
def test_versatile_layers_have_the_papers_sizes(name, primaries, delta, g, shared):
    layers = [layer for layer in lenet(name, rng=np.random.default_rng(0)) if isinstance(layer, VersatileConv2d)]
    assert tuple(layer.primaries for layer in layers) == primaries
    assert tuple(layer.delta for layer in layers) == delta and tuple(layer.g for layer in layers) == g
    assert all(layer.shared_bias == shared for layer in layers)
    assert all(layer.combine == ("sum" if name == "versatile-1" else "concat") for layer in layers)


def test_v2_model_1_second_layer_is_5x5x21x9_as_the_paper_says():
    layer = lenet("versatile-v2-1", rng=np.random.default_rng(0))[2]
    assert layer.params["weight"].shape == (9, 21, 5, 5) and layer.out_channels == 54


def test_same_seed_same_model_and_different_seed_different_model():
    a, b = lenet("versatile-3", rng=np.random.default_rng(0)), lenet("versatile-3", rng=np.random.default_rng(0))
    c = lenet("versatile-3", rng=np.random.default_rng(1))
    np.testing.assert_array_equal(a[0].params["weight"], b[0].params["weight"])
    assert not np.array_equal(a[0].params["weight"], c[0].params["weight"])


def test_in_channels_and_num_classes_options():
    model = lenet("versatile-v2-1", rng=np.random.default_rng(0), in_channels=3, num_classes=7)
    assert model.forward(np.zeros((2, 3, 28, 28))).shape == (2, 7)
    twin = torch_lenet("versatile-v2-1", rng=np.random.default_rng(0), in_channels=3, num_classes=7)
    assert twin(torch.zeros(2, 3, 28, 28, dtype=torch.float64)).shape == (2, 7)


def test_unknown_name_and_old_call_styles_are_rejected():
    for make in (lenet, torch_lenet):
        with pytest.raises(ValueError, match="known variants: baseline, versatile-1"):
            make("lenet-5")
        with pytest.raises(TypeError, match="pass a generator as rng="):
            make(np.random.default_rng(0))      # the former signature lenet(rng)
        with pytest.raises(TypeError, match="positional argument"):
            make("baseline", "torch")           # the former lenet(name, backend): torch_lenet builds in torch
    for make in (build, build_torch):
        with pytest.raises(ValueError, match="layer kind 'dropblock' is not known"):
            make([("dropblock", {})])
        with pytest.raises(TypeError, match="method='fullstack' takes the keywords .*, not shared_bias=True"):
            make(lenet_spec(conv(20, 5), conv(50, 5), ("fullstack", {"out_channels": 500, "kernel_size": 4,
                                                                     "s": 2, "shared_bias": True})))


def test_every_paper_row_names_a_variant():
    tables = set(VERSATILE_TABLE2) | set(VERSATILE_TABLE3) | set(MVNET_TABLE1)
    fig2a = {f"mvnet-{m}-{s}" for m in "ab" for s in (2, 5, 10, 20, 50)}     # MVNet's Fig. 2(a) sweep
    assert tables <= set(VARIANTS) and set(VARIANTS) == tables | fig2a


def test_search_v2_finds_the_chosen_architectures():
    v2_2 = search_v2(2, 2, VERSATILE_TABLE3["versatile-v2-2"])
    assert v2_2[0]["primaries"] == (7, 9, 125) and v2_2[0]["conv_weights"] == 117_900 and v2_2[0]["ceil_rule"]
    v2_3 = search_v2(2, 1, VERSATILE_TABLE3["versatile-v2-3"])
    assert v2_3[0]["primaries"] == (7, 6, 82) and v2_3[0]["widths"] == (21, 54, 492)
    assert [c for c in v2_3 if c["ceil_rule"]][0]["primaries"] == (7, 6, 84)
    # with c - ĉ = 1, g = 1 the search recovers v2-Model 1 (distance ~0: every printed number matches)
    v2_1 = search_v2(1, 1, VERSATILE_TABLE3["versatile-v2-1"])
    assert v2_1[0]["primaries"] == (7, 9, 125) and v2_1[0]["distance"] < 1e-3
    with pytest.raises(ValueError, match="delta=1 must be divisible by g=2"):
        search_v2(1, 2)


def test_numpy_core_does_not_import_torch():
    code = ("import sys, numpy as np; import minilib.models as m, minilib.accounting as a; "
            "a.summarize(m.lenet('versatile-v2-1', rng=np.random.default_rng(0)), (1, 28, 28)); "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
