"""Every formulation of a twin computes the same function with the same gradients, and the chooser picks among them.

For many seeded random configurations of each twin (float64): the forward pass, dx and the gradient of every
parameter agree between all of the twin's formulations (Wang et al.'s Eq. 2-4 and 8: "cropped" and "dense";
Li et al.'s Eq. 9-11: "reshape", "loop", "grouped", "dense", also on a shared and on a wider shared basis);
the dense weights equal the NumPy core's; whole ResNets agree with every layer switched. Then
:func:`minilib.torch.formulations.choose_formulations`: a complete, JSON-ready record, the choice set on the layers,
no side effects (BatchNorm statistics, gradients, torch's generator, modes), replay with ``set_formulations``, and
clear errors for bad names. No timing is asserted: on a shared machine speed is not a test outcome.
"""
from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch

import minilib.torch as mt
from minilib import basis as B
from minilib import versatile as V
from minilib.torch import basis as tb
from minilib.torch import fullstack as tf
from minilib.torch import versatile as tv
from minilib.torch.formulations import (TWINS, choose_formulations, fastest, formulations_of, input_shapes,
                                        set_formulations, time_formulations, twin_layers)
from minilib.torch.resnet import cifar_resnet
from torch_helpers import assert_close

N_CASES = 36


# ----------------------------------------------------------------------------- helpers
def outputs_and_grads(layer, x, formulation):
    """Forward output, dx and every parameter's gradient of ``layer`` under ``formulation``, from a fixed,
    position-dependent output gradient (so a permuted output channel would show)."""
    layer.formulation = formulation
    layer.zero_grad(set_to_none=True)
    x = x.detach().clone().requires_grad_(True)
    out = layer(x)
    weights = torch.arange(out.numel(), dtype=out.dtype).reshape(out.shape).sin()
    (out * weights).sum().backward()
    grads = {name: p.grad.clone() for name, p in layer.named_parameters()}
    return {"out": out.detach(), "dx": x.grad, **grads}


def assert_formulations_agree(layer, x, label=""):
    results = {f: outputs_and_grads(layer, x, f) for f in TWINS[type(layer)][0]}
    reference = results.pop(TWINS[type(layer)][1])
    for formulation, found in results.items():
        assert found.keys() == reference.keys()
        for key, value in found.items():
            assert_close(value, reference[key], f"{label} {formulation} {key}")


def _pair(rng, high):
    first = int(rng.integers(0, high + 1))
    return first if rng.random() < 0.7 else (first, int(rng.integers(0, high + 1)))


# ----------------------------------------------------------------------------- versatile (Eq. 2-4, 8)
def versatile_configs(n=N_CASES, seed=11):
    rng = np.random.default_rng(seed)
    configs = []
    for idx in range(n):
        d = 1 + idx % 6
        g = int(rng.integers(1, 3))
        delta = 0 if idx % 3 == 0 else g * int(rng.integers(1, 3))
        s, windows = (d + 1) // 2, delta // g + 1
        combine = "sum" if idx % 4 == 3 else "concat"
        primaries = int(rng.integers(1, 4))
        configs.append(dict(
            in_channels=delta + int(rng.integers(1, 4)),
            out_channels=primaries * (s * windows if combine == "concat" else windows), kernel_size=d,
            stride=(1, 2, (1, 2))[idx % 3], padding=_pair(rng, d // 2 + 1),
            bias=idx % 5 != 4, shared_bias=idx % 5 == 1, delta=delta, g=g, combine=combine,
            channel_mode=("paper", "official")[(idx // 2) % 2]))
    return configs


VERSATILE = versatile_configs()


def test_versatile_configs_cover_the_cases():
    assert {c["kernel_size"] for c in VERSATILE} == set(range(1, 7))
    assert {c["channel_mode"] for c in VERSATILE} == {"paper", "official"}
    assert {c["combine"] for c in VERSATILE} == {"concat", "sum"}
    assert any(c["delta"] > 0 for c in VERSATILE) and any(c["delta"] == 0 for c in VERSATILE)
    assert any(c["stride"] == (1, 2) for c in VERSATILE) and any(c["shared_bias"] for c in VERSATILE)
    # a padding smaller than the secondaries' offset i (the cropped input) and one larger
    assert any(np.min(c["padding"]) < (c["kernel_size"] + 1) // 2 - 1 for c in VERSATILE)
    assert any(np.max(c["padding"]) > (c["kernel_size"] - 1) // 2 for c in VERSATILE)


@pytest.mark.parametrize("idx", range(len(VERSATILE)))
def test_versatile_formulations_agree(idx):
    cfg = VERSATILE[idx]
    layer = mt.VersatileConv2d(**cfg, rng=idx, dtype=torch.float64)
    d, (ph, pw) = cfg["kernel_size"], layer.padding
    rng = np.random.default_rng(idx)
    shape = (2, cfg["in_channels"], max(d - 2 * ph, 1) + int(rng.integers(0, 4)),
             max(d - 2 * pw, 1) + int(rng.integers(0, 4)))
    assert_formulations_agree(layer, torch.from_numpy(rng.standard_normal(shape)), str(cfg))


@pytest.mark.parametrize("idx", range(0, len(VERSATILE), 3))
def test_versatile_stacked_weight_is_the_numpy_dense_weight(idx):
    cfg = VERSATILE[idx]
    layer = mt.VersatileConv2d(**cfg, rng=idx, dtype=torch.float64)
    expected = V.dense_weight(layer.weight.detach().numpy(), cfg["in_channels"], delta=cfg["delta"], g=cfg["g"],
                              combine=cfg["combine"], channel_mode=cfg["channel_mode"])
    assert_close(layer.stacked_weight(), expected, "stacked weight (Eq. 2-5, 8)")


def test_versatile_secondary_masks_are_eq_2():
    layer = mt.VersatileConv2d(2, 6, 5, dtype=torch.float64)
    assert_close(layer.secondary_masks(), V.secondary_masks(5), "masks")


# ----------------------------------------------------------------------------- filter basis (Eq. 9-11)
def basis_configs(n=N_CASES, seed=12):
    rng = np.random.default_rng(seed)
    configs = []
    for idx in range(n):
        kernel = (1 + 2 * (idx % 3), 1 + 2 * ((idx // 3) % 3)) if idx % 4 else 1 + 2 * (idx % 3)
        p, s = int(rng.integers(1, 4)), (1, 2, 3, 4)[idx % 4]
        kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
        configs.append(dict(in_channels=p * s, out_channels=int(rng.integers(1, 7)), kernel_size=kernel,
                            n_basis=int(rng.integers(1, 6)), basis_channels=p, stride=(1, 2, (2, 1))[idx % 3],
                            padding=_pair(rng, max(kh, kw) // 2), bias=idx % 3 != 2))
    return configs


BASIS = basis_configs()


def test_basis_configs_cover_the_cases():
    assert {c["in_channels"] // c["basis_channels"] for c in BASIS} == {1, 2, 3, 4}
    assert any(isinstance(c["kernel_size"], tuple) and c["kernel_size"][0] != c["kernel_size"][1] for c in BASIS)
    assert any(not c["bias"] for c in BASIS) and any(c["stride"] == (2, 1) for c in BASIS)
    assert any(c["n_basis"] > c["out_channels"] for c in BASIS)


@pytest.mark.parametrize("idx", range(len(BASIS)))
def test_basis_formulations_agree(idx):
    cfg = BASIS[idx]
    layer = mt.BasisConv2d(**cfg, rng=idx, dtype=torch.float64)
    rng = np.random.default_rng(idx)
    (kh, kw), (ph, pw) = layer.kernel_size, layer.padding
    shape = (2, cfg["in_channels"], max(kh - 2 * ph, 1) + int(rng.integers(0, 4)),
             max(kw - 2 * pw, 1) + int(rng.integers(0, 4)))
    assert_formulations_agree(layer, torch.from_numpy(rng.standard_normal(shape)), str(cfg))


@pytest.mark.parametrize("idx", range(0, len(BASIS), 4))
def test_basis_dense_weight_is_eq_9_10(idx):
    layer = mt.BasisConv2d(**BASIS[idx], rng=idx, dtype=torch.float64)
    expected = B.weight_from_basis(layer.basis.detach().numpy(), layer.coeff.detach().numpy())
    assert_close(layer.dense_weight(), expected, "W = coeff . basis")


@pytest.mark.parametrize("first, second", list(itertools.product(tb.FORMULATIONS, repeat=2)))
def test_a_shared_basis_gets_the_same_gradient_whatever_each_layer_runs(first, second):
    """Two layers on one SharedBasis of p' = 4 channels, the first using p = 2 of them (Fig. 3), each in its own
    formulation: the shared gradient is the sum over both layers, the same in every combination."""
    def model(rng):
        shared = mt.SharedBasis(3, 4, 3, rng=rng, dtype=torch.float64)
        return shared, torch.nn.Sequential(
            mt.BasisConv2d(6, 8, 3, 3, 2, padding=1, basis=shared, rng=rng, dtype=torch.float64),
            torch.nn.Tanh(),
            mt.BasisConv2d(8, 5, 3, 3, 4, stride=2, basis=shared, rng=rng, bias=False, dtype=torch.float64))

    x = torch.from_numpy(np.random.default_rng(3).standard_normal((2, 6, 7, 6)))
    grads = {}
    for formulations in (("reshape", "reshape"), (first, second)):
        shared, net = model(np.random.default_rng(0))
        set_formulations(net, dict(zip(("0", "2"), formulations)))
        net(x).square().sum().backward()
        grads[formulations] = [p.grad for p in (shared.basis, *net.parameters())]
    for found, expected in zip(grads[(first, second)], grads[("reshape", "reshape")]):
        assert_close(found, expected, f"{first}/{second}")


def test_split_mode_and_formulation_are_one_setting():
    layer = mt.BasisConv2d(4, 3, 3, 2, 2, split_mode="grouped")
    assert layer.formulation == layer.split_mode == "grouped"
    layer.formulation = "dense"
    assert layer.split_mode == "dense" and "split_mode='dense'" in repr(layer)
    assert tb.FORMULATIONS == tb.SPLIT_MODES and tb.DEFAULT_FORMULATION == "reshape"


# ----------------------------------------------------------------------------- full-stack (Eq. 3-5)
@pytest.mark.parametrize("masks", ["shared", "separate"])
def test_fullstack_has_the_dense_formulation(masks):
    layer = mt.FullStackConv2d(4, 8, 3, 4, padding=1, masks=masks, dtype=torch.float64)
    assert layer.formulation == "dense" and tf.FORMULATIONS == ("dense",)
    assert_formulations_agree(layer, torch.randn(2, 4, 5, 5, dtype=torch.float64))


# ----------------------------------------------------------------------------- whole networks
NETWORKS = {
    "versatile": {},
    "basis-shared": {"n_basis": (3, 5, 9), "share_basis": True},
    "basis-split": {"n_basis": 2, "basis_channels": (2, 4, 8), "share_basis": True},
    "basis-own": {"n_basis": 4, "share_basis": False},
    "fullstack": {"s": 2},
}


def small_resnet(name, seed=0):
    method = name.split("-")[0]
    return cifar_resnet(depth=8, width=4, method=method, rng=seed, dtype=torch.float64, **NETWORKS[name])


@pytest.mark.parametrize("name", NETWORKS)
def test_resnets_agree_in_every_formulation(name):
    """A ResNet-8 with every block convolution in each formulation: same scores, same gradient of every parameter
    (a shared basis included), in float64; BatchNorm in training mode."""
    x = torch.from_numpy(np.random.default_rng(5).standard_normal((3, 3, 8, 8)))
    results = {}
    for formulation in TWINS[type(twin_layers(small_resnet(name))[0][1])][0]:
        net = small_resnet(name)
        set_formulations(net, {layer: formulation for layer in formulations_of(net)})
        out = net(x)
        out.sin().sum().backward()
        results[formulation] = [out.detach()] + [p.grad for p in net.parameters()]
    reference = results.pop(next(iter(results)))
    for formulation, found in results.items():
        for a, b in zip(found, reference):
            assert_close(a, b, f"{name} {formulation}")


# ----------------------------------------------------------------------------- the chooser
def test_choose_formulations_records_and_sets_the_choice():
    net = small_resnet("basis-split")
    x = torch.randn(4, 3, 8, 8, dtype=torch.float64)
    record = choose_formulations(net, x, repeats=1)
    assert [entry["layer"] for entry in record] == list(formulations_of(net))
    assert len(record) == 6
    for entry in record:
        assert entry["kind"] == "BasisConv2d" and entry["default"] == "reshape"
        assert set(entry["times_s"]) == set(tb.FORMULATIONS)
        assert all(0 < t < float("inf") for t in entry["times_s"].values())
        assert entry["choice"] == fastest(entry["times_s"], "reshape")
        assert net.get_submodule(entry["layer"]).formulation == entry["choice"]
        assert entry["measured_on"] in formulations_of(net)
    shapes = {entry["layer"]: tuple(entry["input_shape"]) for entry in record}
    assert shapes["stages.0.0.conv1"] == (4, 4, 8, 8) and shapes["stages.2.0.conv2"] == (4, 16, 2, 2)
    # layers alike (same configuration and input shape) share one timing, so they choose alike
    by_source = {}
    for entry in record:
        by_source.setdefault(entry["measured_on"], set()).add(entry["choice"])
    assert all(len(choices) == 1 for choices in by_source.values())
    assert record[1]["measured_on"] == "stages.0.0.conv1"       # stages.0.0.conv2: 4 -> 4 channels on 8x8 alike
    assert json.loads(json.dumps(record)) == record


def test_choose_formulations_has_no_side_effects():
    net = small_resnet("versatile")
    x = torch.randn(4, 3, 8, 8, dtype=torch.float64)
    net(x).sum().backward()                                     # gradients and BatchNorm statistics to keep
    net.stages[1].eval()
    state = {k: v.clone() for k, v in net.state_dict().items()}
    grads = {k: p.grad.clone() for k, p in net.named_parameters()}
    modes = {k: m.training for k, m in net.named_modules()}
    rng_state = torch.get_rng_state()
    choose_formulations(net, x, repeats=1)
    assert torch.equal(torch.get_rng_state(), rng_state)
    assert {k: m.training for k, m in net.named_modules()} == modes
    for key, value in net.state_dict().items():
        assert torch.equal(value, state[key]), key
    for key, p in net.named_parameters():
        assert torch.equal(p.grad, grads[key]), key


def test_choose_formulations_under_no_grad_and_for_inference():
    net = small_resnet("fullstack")
    with torch.no_grad():
        record = choose_formulations(net, torch.randn(2, 3, 8, 8, dtype=torch.float64), repeats=1)
    assert {entry["choice"] for entry in record} == {"dense"}
    record = choose_formulations(small_resnet("versatile"), torch.randn(2, 3, 8, 8, dtype=torch.float64),
                                 repeats=1, backward=False)
    assert all(set(entry["times_s"]) == {"cropped", "dense"} for entry in record)


def test_a_model_without_twins_gives_an_empty_record():
    net = cifar_resnet(depth=8, width=4, rng=0)
    assert choose_formulations(net, torch.randn(2, 3, 8, 8), repeats=1) == []
    assert formulations_of(net) == {} and twin_layers(net) == []


def test_time_formulations_times_every_formulation_and_keeps_the_layer():
    layer = mt.VersatileConv2d(4, 8, 3, padding=1, formulation="dense")
    layer(torch.randn(2, 4, 6, 6)).sum().backward()
    grad = layer.weight.grad.clone()
    times = time_formulations(layer, (2, 4, 6, 6), repeats=2)
    assert set(times) == {"cropped", "dense"} and all(t > 0 for t in times.values())
    assert layer.formulation == "dense" and torch.equal(layer.weight.grad, grad)


def test_input_shapes_are_captured_without_changing_batchnorm():
    net = small_resnet("versatile")
    before = net.bn.running_mean.clone()
    shapes = input_shapes(net, torch.randn(5, 3, 8, 8, dtype=torch.float64))
    assert shapes["stages.1.0.conv1"] == (5, 4, 8, 8) and shapes["stages.1.0.conv2"] == (5, 8, 4, 4)
    assert torch.equal(net.bn.running_mean, before) and net.training


def test_fastest_keeps_the_default_on_a_near_tie():
    assert fastest({"cropped": 1.0, "dense": 0.5}, "cropped") == "dense"
    assert fastest({"cropped": 1.0, "dense": 0.97}, "cropped") == "cropped"
    assert fastest({"cropped": 1.0, "dense": 0.97}, "cropped", margin=0.0) == "dense"
    assert fastest({"reshape": 1.0, "loop": 0.8, "dense": 0.6}, "reshape") == "dense"
    assert fastest({"dense": 1.0}, "dense") == "dense"


def test_set_formulations_replays_a_record():
    net = small_resnet("versatile")
    record = [{"layer": name, "choice": "dense"} for name in formulations_of(net)]
    assert set(set_formulations(net, record).values()) == {"dense"}
    assert set_formulations(net, {"stages.0.0.conv1": "cropped"})["stages.0.0.conv1"] == "cropped"


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("make, name, allowed", [
    (lambda f: mt.VersatileConv2d(4, 8, 3, formulation=f), "formulation", "'cropped', 'dense'"),
    (lambda f: mt.BasisConv2d(4, 3, 3, 2, 2, split_mode=f), "split_mode", "'reshape', 'loop', 'grouped', 'dense'"),
    (lambda f: mt.FullStackConv2d(4, 8, 3, 4, formulation=f), "formulation", "'dense'"),
])
def test_bad_formulations_name_the_argument_value_and_choices(make, name, allowed):
    with pytest.raises(ValueError, match=rf"{name}='eq13' must be one of {allowed}"):
        make("eq13")
    with pytest.raises(TypeError, match=rf"{name}"):
        make(None)


@pytest.mark.parametrize("layer", [mt.VersatileConv2d(4, 8, 3), mt.BasisConv2d(4, 3, 3, 2, 2),
                                   mt.FullStackConv2d(4, 8, 3, 4)], ids=lambda layer: type(layer).__name__)
def test_setting_a_bad_formulation_is_refused_and_changes_nothing(layer):
    before = layer.formulation
    with pytest.raises(ValueError, match=r"formulation='fast' must be one of '"):
        layer.formulation = "fast"
    with pytest.raises(TypeError, match="formulation"):
        layer.formulation = ["dense"]
    assert layer.formulation == before


def test_chooser_arguments_are_checked():
    net = small_resnet("versatile")
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    with pytest.raises(TypeError, match="model"):
        choose_formulations("net", x)
    with pytest.raises(TypeError, match="example_input"):
        choose_formulations(net, x.numpy())
    with pytest.raises(ValueError, match="repeats=0"):
        choose_formulations(net, x, repeats=0)
    with pytest.raises(TypeError, match="backward"):
        choose_formulations(net, x, backward="yes")
    with pytest.raises(ValueError, match="margin=1"):
        choose_formulations(net, x, margin=1)


def test_set_formulations_refuses_unknown_layers_and_formulations_before_changing_any():
    net = small_resnet("versatile")
    with pytest.raises(ValueError, match=r"choices names layer 'stem'.*stages\.0\.0\.conv1"):
        set_formulations(net, {"stages.0.0.conv1": "dense", "stem": "dense"})
    with pytest.raises(ValueError, match=r"choices\['stages.0.0.conv2'\]='loop' must be one of 'cropped', 'dense'"):
        set_formulations(net, {"stages.0.0.conv1": "dense", "stages.0.0.conv2": "loop"})
    assert set(formulations_of(net).values()) == {tv.DEFAULT_FORMULATION}
    with pytest.raises(TypeError, match="choices"):
        set_formulations(net, "dense")
    with pytest.raises(TypeError, match="choices"):
        set_formulations(net, [("stages.0.0.conv1", "dense")])


# ----------------------------------------------------------------------------- the training loop
def _train(net, formulations, epochs=2):
    from minilib.training import Recipe, fit

    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 3, 8, 8))
    y = rng.integers(0, 10, 16)
    recipe = Recipe(optimizer="sgd", lr=0.05, batch_size=8, momentum=0.9, weight_decay=5e-4)

    def batches(epoch):
        return ((x[i:i + 8], y[i:i + 8]) for i in range(0, 16, 8))

    return fit(net, recipe, epochs=epochs, steps_per_epoch=2, batches=batches, formulations=formulations)


def test_fit_chooses_or_sets_formulations_and_trains_the_same_function():
    """fit(formulations="fastest") times on the first mini-batch and returns the record; a dict sets them; in float64
    every formulation trains to the same losses and weights."""
    plain, chosen, dense = (small_resnet("basis-split") for _ in range(3))
    trained = {"plain": _train(plain, None), "chosen": _train(chosen, "fastest"),
               "dense": _train(dense, {name: "dense" for name in formulations_of(dense)})}
    assert trained["plain"]["formulations"] is None and trained["dense"]["formulations"] is None
    record = trained["chosen"]["formulations"]
    assert [entry["input_shape"][0] for entry in record] == [8] * 6
    assert formulations_of(chosen) == {entry["layer"]: entry["choice"] for entry in record}
    assert set(formulations_of(dense).values()) == {"dense"}
    losses = {key: [loss for entry in value["history"] for loss in entry["batch_losses"]]
              for key, value in trained.items()}
    for key in ("chosen", "dense"):
        np.testing.assert_allclose(losses[key], losses["plain"], rtol=1e-9)
        for (name, p), q in zip(plain.named_parameters(), {"chosen": chosen, "dense": dense}[key].parameters()):
            assert_close(q, p, f"{key} {name}")


def test_fit_refuses_a_bad_formulations_request():
    net = small_resnet("versatile")
    with pytest.raises(ValueError, match="formulations='fast' must be one of 'fastest'"):
        _train(net, "fast")
    with pytest.raises(TypeError, match="formulations must be None, 'fastest'"):
        _train(net, 3)
    with pytest.raises(ValueError, match="choices names layer 'stem'"):
        _train(net, {"stem": "dense"})


def test_cifar10_run_with_fastest_formulations_stores_the_choice():
    """``python -m minilib.reproduce cifar10 --formulations fastest``: the run's payload holds the chooser's record
    (random images stand in for CIFAR-10: only the plumbing is checked); the default run holds none."""
    from minilib.reproduce import cifar10

    rng = np.random.default_rng(0)
    def images(n):
        return rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8), rng.integers(0, 10, n).astype(np.int64)
    (x_val, y_val), (x_test, y_test) = images(16), images(20)
    splits = {"train": images(128), "val": (cifar10.normalize(x_val), y_val),
              "test": (cifar10.normalize(x_test), y_test), "test_selection": "all", "variant": "jpeg",
              "stats": {"mean": [0.5] * 3, "std": [0.25] * 3}}
    run = cifar10.Run("versatile")
    payload = cifar10.train_run(run, 0, splits, quick=True, formulations="fastest")
    record = payload["formulations"]
    assert [entry["layer"] for entry in record] == [name for name, _ in cifar10.build_model("versatile").block_convs()]
    assert all(entry["choice"] in tv.FORMULATIONS and entry["input_shape"][0] == 128 for entry in record)
    assert "formulations" not in cifar10.train_run(run, 0, splits, quick=True)
