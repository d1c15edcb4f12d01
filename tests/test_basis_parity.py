"""Filter basis (Eq. 9-11): the NumPy layer, its torch twin and a plain convolution must agree.

For every seeded random configuration (k = 1..5, s = 1..4 splits, m around n, stride 1-2,
padding 0..k//2, bias on/off, both ``split_mode``s of the twin) the forward pass, dx, dbasis,
dcoeff and dbias agree between

* the NumPy layer ``minilib.basis.BasisConv2d`` (hand-written backward),
* the PyTorch twin ``minilib.torch.BasisConv2d`` (autograd), and
* one ``F.conv2d`` with the dense weight of Eq. 9-10 built here in torch from basis and coeff,
  W[i, g*p:(g+1)*p] = sum_b coeff[i, g*m + b] * basis[b] (autograd through the construction).

Then: a basis shared by two layers (Sec. 4.2, also the DenseNet slice of Fig. 3) in both
backends, state_dict names, initialisation from one NumPy Generator, cost, and bad input.
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import minilib as ml
import minilib.torch as mt
from minilib import basis as B
from minilib.accounting import summarize
from torch_helpers import assert_close, load_into_torch, to_numpy, to_torch

N_CASES = 40     # every (k, s) with k = 1..5 and s = 1..4, once per split mode


# ----------------------------------------------------------------------------- configurations
def basis_configs(n=N_CASES, seed=23):
    """Random configurations; (k, s) cycle through all 20 pairs, each once per split mode.

    Keys: N, C (= s*p), F (n), H, W, kernel (kh, kw), s, p, m, stride, padding, bias, split_mode.
    Every seventh configuration has a rectangular kernel (k, k+1).
    """
    rng = np.random.default_rng(seed)
    configs = []
    for idx in range(n):
        k, s = 1 + idx % 5, 1 + (idx // 5) % 4
        kernel = (k, k + 1) if idx % 7 == 6 else (k, k)
        p, n_out = int(rng.integers(1, 4)), int(rng.integers(1, 7))
        padding = tuple(int(rng.integers(0, kk // 2 + 1)) for kk in kernel)
        configs.append(dict(
            N=int(rng.integers(1, 4)), C=s * p, F=n_out, kernel=kernel, s=s, p=p,
            m=max(1, n_out + int(rng.integers(-2, 3))),
            H=int(rng.integers(max(1, kernel[0] - 2 * padding[0]), kernel[0] + 5)),
            W=int(rng.integers(max(1, kernel[1] - 2 * padding[1]), kernel[1] + 5)),
            stride=int(rng.integers(1, 3)), padding=padding, bias=idx % 3 != 2,
            split_mode=("reshape", "loop")[(idx + idx // 20) % 2]))
    return configs


CONFIGS = basis_configs()


def config_id(i, cfg):
    return (f"{i}-N{cfg['N']}C{cfg['C']}F{cfg['F']}-{cfg['H']}x{cfg['W']}-k{cfg['kernel'][0]}x{cfg['kernel'][1]}"
            f"-s{cfg['s']}p{cfg['p']}m{cfg['m']}-st{cfg['stride']}-pad{cfg['padding'][0]}x{cfg['padding'][1]}"
            f"-{'bias' if cfg['bias'] else 'nobias'}-{cfg['split_mode']}")


def layer_kwargs(cfg):
    return dict(in_channels=cfg["C"], out_channels=cfg["F"], kernel_size=cfg["kernel"], n_basis=cfg["m"],
                basis_channels=cfg["p"], stride=cfg["stride"], padding=cfg["padding"], bias=cfg["bias"])


def test_configs_cover_the_cases():
    assert {(c["kernel"][0], c["s"], c["split_mode"]) for c in CONFIGS} == \
           {(k, s, mode) for k in range(1, 6) for s in range(1, 5) for mode in ("reshape", "loop")}
    assert {c["stride"] for c in CONFIGS} == {1, 2} and {False, True} == {c["bias"] for c in CONFIGS}
    assert any(c["kernel"][0] != c["kernel"][1] for c in CONFIGS)
    assert {0, 1, 2} <= {c["padding"][0] for c in CONFIGS}
    assert any(c["m"] < c["F"] for c in CONFIGS) and any(c["m"] > c["F"] for c in CONFIGS)


# ----------------------------------------------------------------------------- Eq. 9-10 written out in torch
def dense_weight(basis, coeff, splits):
    """W (n, s*p, kh, kw): split g of filter i is sum_b coeff[i, g*m + b] * basis[b] (Eq. 10), stacked (Eq. 9)."""
    m = basis.shape[0]
    rows = []
    for i in range(coeff.shape[0]):
        parts = [sum(coeff[i, g * m + b] * basis[b] for b in range(m)) for g in range(splits)]
        rows.append(torch.cat(parts, dim=0))
    return torch.stack(rows)


def leaf(a):
    return None if a is None else to_torch(a, requires_grad=True)


# ----------------------------------------------------------------------------- parity
@pytest.mark.parametrize("idx", range(N_CASES), ids=[config_id(i, c) for i, c in enumerate(CONFIGS)])
def test_numpy_torch_and_dense_convolution_agree(idx):
    cfg, rng = CONFIGS[idx], np.random.default_rng(200 + idx)
    layer = B.BasisConv2d(**layer_kwargs(cfg), rng=rng)
    twin = load_into_torch(layer, mt.BasisConv2d(**layer_kwargs(cfg), split_mode=cfg["split_mode"]))
    x = rng.standard_normal((cfg["N"], cfg["C"], cfg["H"], cfg["W"]))

    basis_t, coeff_t, bias_t, x_t = leaf(layer.basis), leaf(layer.coeff), leaf(layer.bias), leaf(x)
    weight_t = dense_weight(basis_t, coeff_t, cfg["s"])
    out_t = F.conv2d(x_t, weight_t, bias_t, cfg["stride"], cfg["padding"])
    assert_close(B.reconstruct_weight(layer), weight_t, "reconstruct_weight")

    x_twin = to_torch(x, requires_grad=True)
    out_twin = twin(x_twin)
    assert_close(layer.forward(x), out_t, "forward (NumPy layer)")
    assert_close(out_twin, out_t, "forward (torch twin)")

    dout = rng.standard_normal(tuple(out_t.shape))
    out_t.backward(to_torch(dout))
    out_twin.backward(to_torch(dout))
    dx = layer.backward(dout)
    expected = {"x": x_t.grad, "basis": basis_t.grad, "coeff": coeff_t.grad}
    numpy_grads = {"x": dx, **{k: layer.grads[k] for k in ("basis", "coeff")}}
    twin_grads = {"x": x_twin.grad, "basis": twin.basis.grad, "coeff": twin.coeff.grad}
    if cfg["bias"]:
        expected["bias"], numpy_grads["bias"], twin_grads["bias"] = bias_t.grad, layer.grads["bias"], twin.bias.grad
    else:
        assert twin.bias is None and "bias" not in layer.grads
    for name, grad in expected.items():
        assert_close(numpy_grads[name], grad, f"d{name} (NumPy layer)")
        assert_close(twin_grads[name], grad, f"d{name} (torch twin)")


@pytest.mark.parametrize("stride, padding", [(1, 1), (2, 0), ((2, 1), (0, 2))])
def test_split_modes_agree(stride, padding):
    """x reshaped to (N*s, p, H, W) and one convolution = s convolutions sharing the basis (Sec. 3.3)."""
    twins = {mode: mt.BasisConv2d(12, 7, 3, 5, 3, stride, padding, split_mode=mode, dtype=torch.float64)
             for mode in ("reshape", "loop")}
    twins["loop"].load_state_dict(twins["reshape"].state_dict())
    x = torch.randn(3, 12, 9, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    outs = {mode: twin(x) for mode, twin in twins.items()}
    assert_close(outs["loop"], outs["reshape"], "forward")
    for out in outs.values():
        out.square().sum().backward()
    for name in ("basis", "coeff", "bias"):
        assert_close(getattr(twins["loop"], name).grad, getattr(twins["reshape"], name).grad, f"d{name}")


# ----------------------------------------------------------------------------- Sec. 4.2: one basis, two layers
def numpy_shared_model(rng):
    """Two layers on one SharedBasis (m=3, P=4, 3x3): the first uses p=2 of its channels (Fig. 3), the second all 4."""
    shared = B.SharedBasis(3, 4, 3, rng=rng)
    model = ml.Sequential(B.BasisConv2d(6, 8, 3, 3, 2, padding=1, basis=shared, rng=rng), ml.ReLU(),
                          B.BasisConv2d(8, 5, 3, 3, 4, stride=2, basis=shared, rng=rng, bias=False))
    return model, shared


def torch_shared_model(split_mode="reshape", rng=None):
    shared = mt.SharedBasis(3, 4, 3, rng=rng, dtype=torch.float64)
    model = nn.Sequential(
        mt.BasisConv2d(6, 8, 3, 3, 2, padding=1, basis=shared, rng=rng, split_mode=split_mode, dtype=torch.float64),
        nn.ReLU(),
        mt.BasisConv2d(8, 5, 3, 3, 4, stride=2, basis=shared, rng=rng, bias=False, split_mode=split_mode,
                       dtype=torch.float64))
    return model, shared


@pytest.mark.parametrize("split_mode", ["reshape", "loop"])
def test_shared_basis_gradient_is_summed_alike_in_both_backends(split_mode):
    rng = np.random.default_rng(4)
    model, shared = numpy_shared_model(rng)
    twin, shared_t = torch_shared_model(split_mode)
    load_into_torch(model, twin)
    assert list(twin.state_dict()) == ["0.basis", "0.coeff", "0.bias", "2.basis", "2.coeff"]
    assert [name for name, _ in twin.named_parameters()] == ["0.basis", "0.coeff", "0.bias", "2.coeff"]
    x = rng.standard_normal((2, 6, 7, 7))

    # the same network written out: two dense convolutions built from ONE basis leaf
    basis_t, x_t = leaf(shared.basis), leaf(x)
    first, second = model[0], model[2]
    c1, b1, c2 = leaf(first.coeff), leaf(first.bias), leaf(second.coeff)
    hidden = torch.relu(F.conv2d(x_t, dense_weight(basis_t[:, :2], c1, 3), b1, 1, 1))
    out_t = F.conv2d(hidden, dense_weight(basis_t, c2, 2), None, 2, 0)

    x_twin = to_torch(x, requires_grad=True)
    out_twin = twin(x_twin)
    assert_close(model.forward(x), out_t, "forward (NumPy)")
    assert_close(out_twin, out_t, "forward (torch twin)")
    dout = rng.standard_normal(tuple(out_t.shape))
    model.zero_grad()
    dx = model.backward(dout)
    out_twin.backward(to_torch(dout))
    out_t.backward(to_torch(dout))
    assert_close(dx, x_t.grad, "dx (NumPy)")
    assert_close(x_twin.grad, x_t.grad, "dx (torch twin)")
    assert_close(shared.grads["basis"], basis_t.grad, "dbasis (NumPy)")
    assert_close(shared_t.basis.grad, basis_t.grad, "dbasis (torch twin)")
    for name, grad in {"0.coeff": c1.grad, "0.bias": b1.grad, "2.coeff": c2.grad}.items():
        assert_close(dict(twin.named_parameters())[name].grad, grad, f"grad of {name} (torch twin)")


def test_shared_basis_gradient_is_the_sum_of_the_layers_own_gradients():
    """Each layer alone on a private copy of the basis; the shared gradient is the sum of the two."""
    twin, shared_t = torch_shared_model(rng=np.random.default_rng(5))
    first, second = twin[0], twin[2]
    x = torch.randn(2, 6, 7, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    twin(x).sum().backward()
    shared_grad = shared_t.basis.grad.clone()

    def alone(layer):
        """The layer with the same coefficients on a private copy of the first p basis channels."""
        copy = nn.Parameter(shared_t.basis.detach()[:, :layer.basis_channels].clone())
        private = mt.BasisConv2d(layer.in_channels, layer.out_channels, 3, 3, layer.basis_channels, layer.stride,
                                 layer.padding, bias=layer.bias is not None, basis=copy, dtype=torch.float64)
        private.load_state_dict({k: v for k, v in layer.state_dict().items() if k != "basis"}, strict=False)
        return private

    first_alone, second_alone = alone(first), alone(second)
    # through the first layer (the second one fixed), and the second layer on the first's output
    second_fixed = alone(second)
    second_fixed.basis.requires_grad_(False)
    second_fixed(torch.relu(first_alone(x))).sum().backward()
    second_alone(torch.relu(first(x)).detach()).sum().backward()
    total = second_alone.basis.grad.clone()
    total[:, :2] += first_alone.basis.grad
    assert_close(shared_grad, total, "shared dbasis")


def test_a_basis_parameter_shared_between_two_twins():
    """basis=other.basis: one parameter, registered in both layers, yielded once, counted once."""
    first = mt.BasisConv2d(6, 6, 3, 4, 3, padding=1, dtype=torch.float64)
    second = mt.BasisConv2d(6, 4, 3, 4, 3, padding=1, basis=first.basis, dtype=torch.float64)
    model = nn.Sequential(first, nn.Tanh(), second)
    assert second.basis is first.basis and not second.owns_basis
    assert list(model.state_dict()) == ["0.basis", "0.coeff", "0.bias", "2.basis", "2.coeff", "2.bias"]
    assert [name for name, _ in model.named_parameters()] == ["0.basis", "0.coeff", "0.bias", "2.coeff", "2.bias"]
    x = torch.randn(2, 6, 5, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    basis = first.basis.detach().clone().requires_grad_(True)
    ref = F.conv2d(torch.tanh(F.conv2d(x, dense_weight(basis, first.coeff, 2), first.bias, 1, 1)),
                   dense_weight(basis, second.coeff, 2), second.bias, 1, 1)
    assert_close(model(x), ref, "forward")
    model(x).sum().backward()
    ref.sum().backward()
    assert_close(first.basis.grad, basis.grad, "summed dbasis")
    summary = summarize(model, (6, 5, 5))
    assert summary.params == sum(p.numel() for p in model.parameters())
    assert summary.rows[2].conv_weights == second.coeff.numel()          # the basis is charged to the first user
    assert second.cost((6, 5, 5), (4, 5, 5))["shared"][0][0] is first.basis
    assert "shared basis (4, 3, 3, 3)" in repr(second) and "shared" not in repr(first)


def test_sharing_survives_dtype_conversion_and_counts_once():
    twin, shared_t = torch_shared_model()
    twin.float()
    assert twin[0].basis is twin[2].basis is shared_t.basis and shared_t.basis.dtype == torch.float32
    model, _ = numpy_shared_model(np.random.default_rng(0))
    numpy_summary, torch_summary = summarize(model, (6, 7, 7)), summarize(twin, (6, 7, 7))
    assert torch_summary.totals == numpy_summary.totals
    assert torch_summary.params == sum(p.numel() for p in twin.parameters()) == model.num_parameters()


# ----------------------------------------------------------------------------- shared contract of both backends
STATE_CASES = {"own": {}, "no-bias": {"bias": False}, "shared": {"shared": True}}


@pytest.mark.parametrize("case", STATE_CASES)
def test_state_dict_names_shapes_and_attributes_match(case):
    options = dict(STATE_CASES[case])
    kwargs = dict(in_channels=6, out_channels=5, kernel_size=(3, 2), n_basis=4, basis_channels=2, padding=1,
                  bias=options.get("bias", True))
    if options.get("shared"):
        layer = B.BasisConv2d(**kwargs, basis=B.SharedBasis(4, 3, (3, 2)), rng=np.random.default_rng(0))
        twin = mt.BasisConv2d(**kwargs, basis=mt.SharedBasis(4, 3, (3, 2)))
    else:
        layer, twin = B.BasisConv2d(**kwargs, rng=np.random.default_rng(0)), mt.BasisConv2d(**kwargs)
    numpy_shapes = {k: v.shape for k, v in layer.state_dict().items()}
    assert numpy_shapes == {k: tuple(v.shape) for k, v in twin.state_dict().items()}
    assert list(numpy_shapes) == list(twin.state_dict())
    expected = {"coeff": (5, 12), "bias": (5,)}
    expected["basis"] = (4, 3, 3, 2) if options.get("shared") else (4, 2, 3, 2)
    if not kwargs["bias"]:
        del expected["bias"]
    assert numpy_shapes == expected
    assert tuple(twin.layer_basis().shape) == layer.layer_basis().shape == (4, 2, 3, 2)
    assert twin.owns_basis == layer.owns_basis == (not options.get("shared"))
    for attr in ("in_channels", "out_channels", "kernel_size", "stride", "padding", "n_basis", "basis_channels",
                 "splits"):
        assert getattr(layer, attr) == getattr(twin, attr), attr


@pytest.mark.parametrize("seed", range(4))
def test_same_rng_gives_same_initial_weights(seed):
    kwargs = dict(in_channels=8, out_channels=3 + seed, kernel_size=1 + seed, n_basis=2 + seed,
                  basis_channels=(1, 2, 4, 8)[seed], bias=seed != 2)
    layer = B.BasisConv2d(**kwargs, rng=np.random.default_rng(seed))
    twin = mt.BasisConv2d(**kwargs, rng=np.random.default_rng(seed), dtype=torch.float64)
    for name, value in twin.state_dict().items():
        np.testing.assert_array_equal(to_numpy(value), layer.state_dict()[name], err_msg=name)
    model, shared = numpy_shared_model(np.random.default_rng(seed))
    twin_model, _ = torch_shared_model(rng=np.random.default_rng(seed))
    for name, value in twin_model.state_dict().items():
        np.testing.assert_array_equal(to_numpy(value), model.state_dict()[name], err_msg=name)


def test_torch_default_init_uses_the_conv2d_bounds():
    torch.manual_seed(0)
    twin = mt.BasisConv2d(8, 6, 3, 5, 4)                 # p*k*k = 36, s*m = 10
    for param, bound in ((twin.basis, 1 / 6), (twin.coeff, 1 / np.sqrt(10)), (twin.bias, 1 / np.sqrt(10))):
        assert param.dtype == torch.get_default_dtype()
        assert 0.5 * bound < param.abs().max().item() <= bound
    shared = mt.SharedBasis(5, 4, 3)
    assert 0.5 / 6 < shared.basis.abs().max().item() <= 1 / 6


def test_torch_twin_cost_delegates_to_basis_cost():
    kwargs = dict(in_channels=8, out_channels=6, kernel_size=3, n_basis=5, basis_channels=4, padding=1)
    twin, layer = mt.BasisConv2d(**kwargs), B.BasisConv2d(**kwargs, rng=np.random.default_rng(0))
    out = twin(torch.zeros(1, 8, 6, 6))
    twin_cost, numpy_cost = twin.cost((8, 6, 6), tuple(out.shape[1:])), layer.cost((8, 6, 6), (6, 6, 6))
    (owner, weights, params), = twin_cost.pop("shared")
    assert owner is twin.basis and weights == params == twin.basis.numel()
    assert [(weights, params)] == [entry[1:] for entry in numpy_cost.pop("shared")]
    assert twin_cost == numpy_cost
    assert twin_cost["conv_weights"] == twin.basis.numel() + twin.coeff.numel()
    shared = mt.SharedBasis(5, 8, 3)
    cost = mt.BasisConv2d(**kwargs, basis=shared).cost((8, 6, 6), (6, 6, 6))
    assert cost["conv_weights"] == 5 * 8 * 9 + 6 * 2 * 5 and cost["shared"] == [(shared.basis, 5 * 8 * 9, 5 * 8 * 9)]
    text = repr(twin)
    assert "n_basis=5" in text and "basis_channels=4" in text and "splits=2" in text
    assert "split_mode='loop'" in repr(mt.BasisConv2d(**kwargs, split_mode="loop"))


# ----------------------------------------------------------------------------- bad input, both backends
BACKENDS = {"numpy": lambda **kw: B.BasisConv2d(**kw, rng=np.random.default_rng(0)),
            "torch": lambda **kw: mt.BasisConv2d(**kw)}
SHARED = {"numpy": B.SharedBasis, "torch": mt.SharedBasis}
GOOD = dict(in_channels=6, out_channels=4, kernel_size=3, n_basis=3, basis_channels=2)
BAD_ARGUMENTS = {
    "p-not-dividing-c": (dict(basis_channels=4), ValueError, r"basis_channels=4 must divide in_channels=6"),
    "m-zero": (dict(n_basis=0), ValueError, r"n_basis=0 must be >= 1"),
    "m-float": (dict(n_basis=2.5), TypeError, r"n_basis must be an int"),
    "p-zero": (dict(basis_channels=0), ValueError, r"basis_channels=0 must be >= 1"),
    "out_channels-zero": (dict(out_channels=0), ValueError, r"out_channels=0 must be >= 1"),
    "stride-zero": (dict(stride=0), ValueError, r"stride=0 must be >= 1"),
    "padding-negative": (dict(padding=-1), ValueError, r"padding=-1 must be >= 0"),
    "kernel-pair-of-three": (dict(kernel_size=(3, 3, 3)), TypeError, r"kernel_size must be an int or a pair"),
}
NEEDS = r" but the layer needs \(n_basis=3, basis_channels>=2, 3, 3\)"
BAD_BASES = {   # SharedBasis(m, P, k) arguments -> the rule the layer names
    "n_basis-mismatch": ((4, 2, 3), r"basis has shape \(4, 2, 3, 3\)" + NEEDS),
    "kernel-mismatch": ((3, 2, 5), r"basis has shape \(3, 2, 5, 5\)" + NEEDS),
    "too-few-channels": ((3, 1, 3), r"basis has shape \(3, 1, 3, 3\)" + NEEDS),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", BAD_ARGUMENTS)
def test_bad_arguments_fail_alike(backend, case):
    changes, error, message = BAD_ARGUMENTS[case]
    with pytest.raises(error, match=message):
        BACKENDS[backend](**{**GOOD, **changes})


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", BAD_BASES)
def test_mismatched_shared_basis_fails_alike(backend, case):
    args, message = BAD_BASES[case]
    with pytest.raises(ValueError, match=message):
        BACKENDS[backend](**GOOD, basis=SHARED[backend](*args))


def test_twin_rejects_bad_basis_parameters_and_split_modes():
    with pytest.raises(ValueError, match=r"basis has shape \(3, 2, 3, 1\)" + NEEDS):
        mt.BasisConv2d(**GOOD, basis=nn.Parameter(torch.zeros(3, 2, 3, 1)))
    with pytest.raises(TypeError, match=r"basis must be None, a SharedBasis or an nn.Parameter, got ndarray"):
        mt.BasisConv2d(**GOOD, basis=np.zeros((3, 2, 3, 3)))
    with pytest.raises(TypeError, match=r"basis must be None, a SharedBasis or an nn.Parameter, got SharedBasis"):
        mt.BasisConv2d(**GOOD, basis=B.SharedBasis(3, 2, 3))            # the NumPy module is not a torch one
    with pytest.raises(ValueError, match=r"split_mode='conv3d' must be one of 'reshape', 'loop'"):
        mt.BasisConv2d(**GOOD, split_mode="conv3d")
    with pytest.raises(TypeError, match=r"SharedBasis only holds a basis"):
        mt.SharedBasis(3, 2, 3)(torch.zeros(1, 2, 3, 3))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape, message", [((1, 4, 5, 5), r"x has 4 channels but the layer expects in_channels=6"),
                                            ((6, 5, 5), r"x must have 4 dimensions"),
                                            ((1, 6, 2, 5), r"larger than the padded input|kernel|window")],
                         ids=["channels", "ndim", "too-small"])
def test_forward_rejects_bad_input(backend, shape, message):
    layer = BACKENDS[backend](**GOOD)
    x = np.zeros(shape)
    with pytest.raises(ValueError, match=message):
        layer.forward(x if backend == "numpy" else to_torch(x).float())
