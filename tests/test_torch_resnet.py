"""The CIFAR ResNet builder :func:`minilib.torch.resnet.cifar_resnet`: shapes, the parameter-free option-A
shortcut, parameter counts against hand counts and :func:`minilib.accounting.summarize`, the per-stage
shared filter basis (one parameter, gradients summed over its users), argument errors and seeding.

Small networks (depth 8, width 8) keep every test well under a second.
"""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from minilib.accounting import summarize
from minilib.torch import BasisConv2d, FullStackConv2d, VersatileConv2d
from minilib.torch.resnet import ShortcutA, blocks_per_stage, cifar_resnet

WIDTH = 8
STAGE_WIDTHS = (8, 16, 32)
# (in, out) channels of the block convs of a depth-8 (one block per stage), width-8 ResNet
BLOCK_CONVS = [(8, 8), (8, 8), (8, 16), (16, 16), (16, 32), (32, 32)]
# block convs reading each stage width, so using its basis: a stage's convs and the next stage's downsampling conv1
READERS = {8: 3, 16: 2, 32: 1}
BASIS_KW = {"n_basis": (4, 8, 12), "basis_channels": (8, 8, 8)}     # s = 1, 2, 4 splits
METHOD_KW = {
    "baseline": {},
    "basis": BASIS_KW,
    "fullstack": {"s": 4},
    "versatile": {},
}


def tiny(method, seed=0, **kw):
    return cifar_resnet(8, WIDTH, method, rng=np.random.default_rng(seed), **{**METHOD_KW[method], **kw})


def standard_params():
    """Everything but the block convs: stem conv 3->8 (no bias), a BatchNorm (weight and bias per channel) after
    the stem and after every block conv, classifier 32->10."""
    batchnorm = 2 * (WIDTH + sum(n for _, n in BLOCK_CONVS))
    return 3 * WIDTH * 9 + batchnorm + 32 * 10 + 10


def hand_conv_params(method, share_basis=True):
    """Stored parameters of the six block convs (no biases), from the papers' formulas."""
    if method == "baseline":
        return sum(9 * c * n for c, n in BLOCK_CONVS)
    if method == "versatile":                                   # P = n/2 primaries of c x 3 x 3 (Prop. 1)
        return sum(9 * c * n // 2 for c, n in BLOCK_CONVS)
    if method == "fullstack":                                   # k = n/s filters; masks are bits (Eq. 9-10)
        return sum(9 * c * n // 4 for c, n in BLOCK_CONVS)
    m = dict(zip(STAGE_WIDTHS, BASIS_KW["n_basis"]))
    s = {w: w // p for w, p in zip(STAGE_WIDTHS, BASIS_KW["basis_channels"])}
    coefficients = sum(n * s[c] * m[c] for c, n in BLOCK_CONVS)            # (n, s*m) per conv (Eq. 11)
    if share_basis:                                                         # one (m, p, 3, 3) basis per stage
        return coefficients + sum(m[w] * (w // s[w]) * 9 for w in STAGE_WIDTHS)
    return coefficients + sum(m[c] * (c // s[c]) * 9 for c, _ in BLOCK_CONVS)


# ----------------------------------------------------------------------------- structure
@pytest.mark.parametrize("method", list(METHOD_KW))
def test_output_shapes_and_method_layers(method):
    model = tiny(method)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert cifar_resnet(8, WIDTH, method, num_classes=7, **METHOD_KW[method])(torch.randn(1, 3, 16, 16)).shape == (1, 7)
    twin = {"baseline": torch.nn.Conv2d, "basis": BasisConv2d, "fullstack": FullStackConv2d,
            "versatile": VersatileConv2d}[method]
    convs = model.block_convs()
    assert len(convs) == len(BLOCK_CONVS) and all(type(layer) is twin for _, layer in convs)
    assert [(layer.in_channels, layer.out_channels) for _, layer in convs] == BLOCK_CONVS
    assert type(model.stem) is torch.nn.Conv2d and type(model.classifier) is torch.nn.Linear, "stem, fc stay standard"
    assert len(cifar_resnet(20, 16, method, **({"n_basis": 4} if method == "basis" else METHOD_KW[method]))
               .block_convs()) == 18


def test_option_a_shortcut_is_parameter_free_strided_and_zero_padded():
    shortcut = ShortcutA(8, 16, stride=2)
    assert list(shortcut.parameters()) == [] and list(shortcut.buffers()) == []
    x = torch.randn(2, 8, 6, 6)
    out = shortcut(x)
    assert out.shape == (2, 16, 3, 3)
    torch.testing.assert_close(out[:, 4:12], x[:, :, ::2, ::2], rtol=0, atol=0)
    assert not out[:, :4].any() and not out[:, 12:].any()
    assert ShortcutA(8, 8)(x) is x
    model = tiny("baseline")
    shortcuts = [m for m in model.modules() if isinstance(m, ShortcutA)]
    assert len(shortcuts) == 3 and all(not list(m.parameters()) for m in shortcuts)


def test_depth_gives_blocks_per_stage():
    assert [blocks_per_stage(d) for d in (8, 20, 56, 110)] == [1, 3, 9, 18]


# ----------------------------------------------------------------------------- parameter counts
@pytest.mark.parametrize("method", list(METHOD_KW))
def test_parameter_counts_equal_hand_counts_and_summarize(method):
    model = tiny(method)
    summary = summarize(model, (3, 32, 32))
    expected = standard_params() + hand_conv_params(method)
    assert summary.params == expected
    converted = [row for row in summary.rows if row.name.endswith((".conv1", ".conv2"))]
    assert sum(row.params for row in converted) == hand_conv_params(method)
    # torch trains the masks as real-valued latents: one per mask bit, beyond the stored parameters
    mask_bits = 9 * sum(c * n for c, n in BLOCK_CONVS) if method == "fullstack" else 0
    assert summary.mask_bits == mask_bits
    assert sum(p.numel() for p in model.parameters()) == expected + mask_bits


@pytest.mark.parametrize("method, fraction", [("baseline", 1), ("fullstack", 4), ("versatile", None)])
def test_multiplications_equal_hand_counts(method, fraction):
    """summarize traces through the residual blocks: conv taps x output pixels, plus the classifier (Eq. 13-14)."""
    sides = {8: 32, 16: 16, 32: 8}                      # output side of a conv with n output channels
    if method == "versatile":                           # 3x3 and 1x1 secondaries of n/2 primaries (Prop. 1)
        block = sum((9 + 1) * c * n // 2 * sides[n] ** 2 for c, n in BLOCK_CONVS)
    else:                                               # full-stack: k = n/s filters multiply, masks only add
        block = sum(9 * c * n // fraction * sides[n] ** 2 for c, n in BLOCK_CONVS)
    expected = 3 * WIDTH * 9 * 32 * 32 + block + 32 * 10
    assert summarize(tiny(method), (3, 32, 32)).flops == expected


def test_unshared_basis_counts_one_basis_per_conv():
    model = tiny("basis", share_basis=False)
    assert len(model.bases) == 0
    assert summarize(model, (3, 32, 32)).params == standard_params() + hand_conv_params("basis", share_basis=False)


def test_resnet20_baseline_has_the_published_parameter_count():
    # He et al.'s ResNet-20 with option-A shortcuts: 0.27M parameters (269,722 with BatchNorm and the classifier)
    assert summarize(cifar_resnet(20, 16), (3, 32, 32)).params == 269_722


# ----------------------------------------------------------------------------- the shared basis
def test_one_basis_per_stage_is_shared_by_the_convs_that_read_its_width():
    model = tiny("basis")
    assert len(model.bases) == 3
    for width, shared in zip(STAGE_WIDTHS, model.bases):
        users = [layer for _, layer in model.block_convs() if layer.in_channels == width]
        assert len(users) == READERS[width] and all(layer.basis is shared.basis for layer in users)
    basis_params = [name for name, _ in model.named_parameters() if name.endswith("basis")]
    assert basis_params == ["bases.0.basis", "bases.1.basis", "bases.2.basis"], "each shared basis listed once"


def test_shared_basis_gradient_is_the_sum_over_its_users():
    shared = cifar_resnet(8, WIDTH, "basis", rng=np.random.default_rng(1), dtype=torch.float64, **BASIS_KW)
    separate = cifar_resnet(8, WIDTH, "basis", rng=np.random.default_rng(2), dtype=torch.float64,
                            share_basis=False, **BASIS_KW)
    # the same function: every conv of the separate model gets a copy of its stage's basis
    separate.load_state_dict({k: v for k, v in shared.state_dict().items() if not k.startswith("bases.")})
    x, y = torch.randn(4, 3, 16, 16, dtype=torch.float64), torch.tensor([0, 1, 2, 3])
    for model in (shared, separate):
        torch.nn.functional.cross_entropy(model(x), y).backward()
    for width, basis in zip(STAGE_WIDTHS, shared.bases):
        users = [layer for _, layer in separate.block_convs() if layer.in_channels == width]
        assert len(users) == READERS[width]
        torch.testing.assert_close(basis.basis.grad, sum(layer.basis.grad for layer in users), rtol=1e-10, atol=1e-12)


# ----------------------------------------------------------------------------- arguments and seeding
@pytest.mark.parametrize("kwargs, message", [
    ({"depth": 21}, "depth=21 must be 6n\\+2"),
    ({"depth": 2}, "depth=2 must be 6n\\+2"),
    ({"width": 7}, "width=7 must be even"),
    ({"method": "pruned"}, "method='pruned' is not known"),
    ({"method": "basis"}, "method='basis' needs n_basis= \\(m: "),
    ({"method": "fullstack"}, "method='fullstack' needs s= "),
    ({"method": "basis", "n_basis": 4, "s": 2}, "takes the keywords \\['n_basis', 'basis_channels', 'share_basis'\\], "
                                                "not s=2"),
    ({"method": "baseline", "s": 2}, "takes the keywords none, not s=2"),
    ({"method": "basis", "n_basis": 4, "basis": None}, "basis is for its layers \\(a network builder makes its own\\)"),
    ({"method": "basis", "n_basis": (4, 8)}, "n_basis=\\(4, 8\\) must be one int or 3 ints"),
    ({"method": "basis", "n_basis": 4, "basis_channels": 3}, "basis_channels=3 must divide the stage width 8"),
    ({"method": "fullstack", "s": 3}, "out_channels=8 must be divisible by s=3"),
])
def test_bad_arguments_name_the_argument_and_the_rule(kwargs, message):
    kwargs = {"depth": 8, "width": WIDTH, **kwargs}
    with pytest.raises(ValueError, match=message):
        cifar_resnet(**kwargs)


@pytest.mark.parametrize("method", list(METHOD_KW))
def test_same_rng_same_initial_weights(method):
    first, second, other = tiny(method, seed=3).state_dict(), tiny(method, seed=3).state_dict(), tiny(method, seed=4)
    assert first.keys() == second.keys()
    assert all(torch.equal(first[key], second[key]) for key in first)
    assert not torch.equal(first["stem.weight"], other.state_dict()["stem.weight"])
    conv = next(name for name in first if name.startswith("stages.2.0.conv2."))
    assert not torch.equal(first[conv], other.state_dict()[conv])
