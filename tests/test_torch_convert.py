"""``minilib.torch.convert``: every nn.Conv2d of a model becomes the method's twin, widths unchanged.

The converted model keeps every layer's out_channels, so its forward shape is the same, while
the stored weights shrink exactly as ``versatile_shape`` predicts (P = out_channels / (s*n)
primary filters of c or ĉ channels), for a filter basis as Eq. 6 counts them (m*p*k*k
basis weights + n*s*m coefficients), and for full-stack filters to k = n/s filters plus the
mask latents (Eq. 3-5). Layers the twin cannot express fail loudly by name.
"""
import numpy as np
import pytest
import torch
from torch import nn

from minilib.basis import optimal_splits
from minilib.methods import KeywordError
from minilib.torch import BasisConv2d, FullStackConv2d, SharedBasis, VersatileConv2d, convert
from minilib.torch.zoo import layer_rules
from minilib.versatile import versatile_shape


class Net(nn.Module):
    """A nested model: a bias-free stem, a strided block inside a Sequential, a 1x1 conv, a head."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 12, 3, padding=1, bias=False)
        self.block = nn.Sequential(nn.Conv2d(12, 12, 5, stride=2, padding=2), nn.ReLU(), nn.Conv2d(12, 8, 1))
        self.head = nn.Linear(8 * 4 * 4, 10)

    def forward(self, x):
        return self.head(self.block(torch.relu(self.stem(x))).flatten(1))


CONV_NAMES = ["stem", "block.0", "block.2"]
X = torch.randn(2, 3, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0))


def model():
    torch.manual_seed(0)
    return Net().double()


def expected_parameters(conv: nn.Conv2d, **kw) -> int:
    """Stored weights of the versatile twin (Prop. 1, Eq. 8) plus its biases."""
    shape = versatile_shape(conv.in_channels, conv.out_channels, conv.kernel_size, kw.get("delta", 0), kw.get("g", 1),
                            kw.get("combine", "concat"), kw.get("channel_mode", "paper"))
    biases = 0 if conv.bias is None else (shape.primaries if kw.get("shared_bias") else conv.out_channels)
    return int(np.prod(shape.weight_shape)) + biases


OPTIONS = [{}, {"delta": 1}, {"delta": 2, "g": 2, "channel_mode": "official", "shared_bias": True},
           {"combine": "sum"}, {"delta": 1, "rng": np.random.default_rng(0)}]


@pytest.mark.parametrize("kw", OPTIONS, ids=["spatial", "channel", "official-shared", "sum", "rng"])
def test_convert_keeps_widths_and_shrinks_weights_as_predicted(kw):
    net = model()
    before = {name: net.get_submodule(name) for name in CONV_NAMES}
    out_shape, total_before = net(X).shape, sum(p.numel() for p in net.parameters())

    assert convert(net, "versatile", **kw) is net
    assert not any(type(m) is nn.Conv2d for m in net.modules())
    for name, conv in before.items():
        twin = net.get_submodule(name)
        assert isinstance(twin, VersatileConv2d), name
        assert (twin.in_channels, twin.out_channels, (twin.kernel_size,) * 2, twin.stride, twin.padding) == \
               (conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding), name
        assert (twin.bias is None) == (conv.bias is None), name
        assert twin.weight.dtype == torch.float64, name
        assert sum(p.numel() for p in twin.parameters()) == expected_parameters(conv, **kw), name

    saved = sum(sum(p.numel() for p in c.parameters()) - expected_parameters(c, **kw) for c in before.values())
    assert sum(p.numel() for p in net.parameters()) == total_before - saved
    if kw.get("combine") != "sum":
        assert saved > 0
    out = net(X)
    assert out.shape == out_shape
    out.sum().backward()
    assert all(p.grad is not None for p in net.parameters())


def test_the_numbers_for_one_model():
    """stem 3x3 (s=2): 12 outputs from 6 primaries of 3x3x3; block.0 5x5 (s=3): 4 primaries; 1x1 stays."""
    net = convert(model(), "versatile")
    assert net.stem.weight.shape == (6, 3, 3, 3) and net.stem.bias is None
    assert net.block[0].weight.shape == (4, 12, 5, 5) and net.block[0].bias.shape == (12,)
    assert net.block[2].weight.shape == (8, 12, 1, 1)


def test_exclude_keeps_the_named_layers():
    net = convert(model(), "versatile", exclude=["stem", "block.2"])
    assert type(net.stem) is nn.Conv2d and type(net.block[2]) is nn.Conv2d
    assert isinstance(net.block[0], VersatileConv2d)


def test_exclude_must_name_conv_layers():
    with pytest.raises(ValueError, match=r"exclude=\['block.1', 'stemm'\] names no nn.Conv2d"):
        convert(model(), "versatile", exclude=["stemm", "block.1"])


def test_a_bare_conv_returns_its_twin():
    twin = convert(nn.Conv2d(4, 8, 3, padding=1), "versatile")
    assert isinstance(twin, VersatileConv2d) and twin.weight.shape == (4, 4, 3, 3)


UNCONVERTIBLE = {
    "groups": (dict(groups=2), r"groups=2 must be 1"),
    "dilation": (dict(dilation=2), r"dilation=\(2, 2\) must be 1"),
    "non-square": (dict(kernel_size=(3, 5)), r"kernel_size=\(3, 5\) must be square"),
    "padding_mode": (dict(padding_mode="reflect"), r"padding_mode='reflect' must be 'zeros'"),
    "padding-string": (dict(padding="same"), r"padding='same' must be given as numbers"),
    "out_channels": (dict(out_channels=10, kernel_size=5), r"out_channels=10 must be divisible by s\*n=3"),
}


@pytest.mark.parametrize("case", UNCONVERTIBLE)
def test_unconvertible_layers_fail_by_name_unless_excluded(case):
    changes, rule = UNCONVERTIBLE[case]
    conv = nn.Conv2d(**{"in_channels": 4, "out_channels": 12, "kernel_size": 3, "padding": 1, **changes})
    net = nn.Sequential(nn.Conv2d(3, 4, 1), nn.Sequential(nn.ReLU(), conv))
    with pytest.raises(ValueError, match=r"cannot convert layer '1.1' .*" + rule):
        convert(net, "versatile")
    convert(net, "versatile", exclude=["1.1"])
    assert net[1][1] is conv and isinstance(net[0], VersatileConv2d)


def test_method_arguments_are_checked_per_layer():
    with pytest.raises(ValueError, match=r"cannot convert layer 'stem' .*delta=3 must be smaller than in_channels=3"):
        convert(model(), "versatile", delta=3)


def test_unknown_method_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"method='versatil' is not known; known methods: \[.*'basis'.*'versatile'"):
        convert(model(), "versatil")


# ----------------------------------------------------------------------------- method "basis"
def basis_sizes(conv: nn.Conv2d, **kw) -> tuple[int, int]:
    """(m, p) that the basis options give for ``conv``."""
    c, n = conv.in_channels, conv.out_channels
    m = kw["n_basis"] if "n_basis" in kw else max(1, round(kw["basis_ratio"] * n))
    if "basis_channels" in kw:
        return m, kw["basis_channels"]
    splits = optimal_splits(c, n, conv.kernel_size) if kw["splits"] == "optimal" else kw["splits"]
    return m, c // splits


def expected_basis_parameters(conv: nn.Conv2d, **kw) -> int:
    """Eq. 6: m*p*kh*kw basis weights + n*s*m coefficients, plus the n biases."""
    (m, p), (kh, kw_), n = basis_sizes(conv, **kw), conv.kernel_size, conv.out_channels
    return m * p * kh * kw_ + n * (conv.in_channels // p) * m + (0 if conv.bias is None else n)


BASIS_OPTIONS = [{"n_basis": 4, "basis_channels": 3}, {"basis_ratio": 0.5, "splits": 1},
                 {"n_basis": 6, "splits": "optimal"},
                 {"basis_ratio": 0.25, "basis_channels": 3, "split_mode": "loop", "rng": np.random.default_rng(0)}]


def convert_basis(net, **kw):
    """convert with the basis vocabulary (n_basis, basis_channels) or the trainer's per-layer rule words
    (basis_ratio, splits), which minilib.torch.zoo.layer_rules translates."""
    kw, per_layer = layer_rules("basis", kw)
    return convert(net, "basis", per_layer=per_layer, **kw)


@pytest.mark.parametrize("kw", BASIS_OPTIONS, ids=["m-and-p", "ratio-and-s", "optimal-s", "loop-rng"])
def test_convert_to_basis_keeps_widths_and_counts_eq_6(kw):
    net = model()
    before = {name: net.get_submodule(name) for name in CONV_NAMES}
    out_shape = net(X).shape

    assert convert_basis(net, **kw) is net
    assert not any(type(m) is nn.Conv2d for m in net.modules())
    for name, conv in before.items():
        twin = net.get_submodule(name)
        assert isinstance(twin, BasisConv2d), name
        assert (twin.in_channels, twin.out_channels, twin.kernel_size, twin.stride, twin.padding) == \
               (conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding), name
        assert (twin.n_basis, twin.basis_channels) == basis_sizes(conv, **kw), name
        assert (twin.bias is None) == (conv.bias is None) and twin.coeff.dtype == torch.float64, name
        assert twin.split_mode == kw.get("split_mode", "reshape")
        assert sum(p.numel() for p in twin.parameters()) == expected_basis_parameters(conv, **kw), name
    out = net(X)
    assert out.shape == out_shape
    out.sum().backward()
    assert all(p.grad is not None for p in net.parameters())


def test_basis_numbers_for_one_model():
    """stem 3->12 3x3 with p=3 (s=1), block.0 12->12 5x5 with s=4, the 1x1 block.2 12->8 with s=4."""
    net = convert(model(), "basis", n_basis=4, basis_channels=3)
    assert net.stem.basis.shape == (4, 3, 3, 3) and net.stem.coeff.shape == (12, 4) and net.stem.bias is None
    assert net.block[0].basis.shape == (4, 3, 5, 5) and net.block[0].coeff.shape == (12, 16)
    assert net.block[2].basis.shape == (4, 3, 1, 1) and net.block[2].coeff.shape == (8, 16)


def test_basis_splits_that_do_not_divide_name_the_layer_unless_excluded():
    with pytest.raises(ValueError, match=r"cannot convert layer 'stem' .*splits=2 must divide in_channels=3"):
        convert_basis(model(), n_basis=4, splits=2)
    with pytest.raises(ValueError, match=r"cannot convert layer 'stem' .*basis_channels=4 must divide in_channels=3"):
        convert(model(), "basis", n_basis=4, basis_channels=4)
    net = convert(model(), "basis", n_basis=4, basis_channels=6, exclude=["stem"])
    assert type(net.stem) is nn.Conv2d and net.block[0].splits == net.block[2].splits == 2


@pytest.mark.parametrize("kw, message", [
    ({"basis_channels": 3}, r"give exactly one of n_basis \(m\) and basis_ratio"),
    ({"n_basis": 4, "basis_ratio": 0.5, "splits": 1}, r"give exactly one of n_basis \(m\) and basis_ratio"),
    ({"n_basis": 4}, r"give exactly one of basis_channels \(p\) and splits"),
    ({"n_basis": 4, "basis_channels": 3, "splits": 1}, r"give exactly one of basis_channels \(p\) and splits"),
], ids=["no-m", "two-m", "no-p", "two-p"])
def test_the_trainers_basis_words_are_required_once(kw, message):
    with pytest.raises(KeywordError, match=message):
        convert_basis(model(), **kw)


@pytest.mark.parametrize("kw, message", [
    ({"basis_channels": 3}, r"method='basis' needs n_basis= \(m: "),
    ({"n_basis": 4}, r"method='basis' needs basis_channels= \(p: "),
    ({"n_basis": 4, "splits": 1}, r"method='basis' takes the keywords .*, not splits=1"),
    ({"n_basis": 4, "basis_channels": 3, "s": 2}, r"method='basis' takes the keywords .*, not s=2"),
    ({"n_basis": 4, "basis_channels": 3, "share_basis": True}, r"share_basis is for the network builders"),
], ids=["no-m", "no-p", "old-word", "unknown", "network-only"])
def test_basis_keywords_are_the_vocabulary(kw, message):
    with pytest.raises(KeywordError, match=message):
        convert(model(), "basis", **kw)


def test_basis_converts_non_square_kernels():
    twin = convert_basis(nn.Conv2d(4, 6, (3, 5), padding=(1, 2)), n_basis=3, splits=2)
    assert isinstance(twin, BasisConv2d) and twin.basis.shape == (3, 2, 3, 5)
    assert twin(torch.zeros(1, 4, 7, 7)).shape == (1, 6, 7, 7)


def test_convert_with_one_shared_basis():
    """basis=SharedBasis goes to every layer: one basis for the whole model (Sec. 4.2), counted once."""
    net = nn.Sequential(nn.Conv2d(4, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1))
    shared = SharedBasis(5, 4, 3)
    convert(net, "basis", n_basis=5, basis_channels=4, basis=shared)
    assert net[0].basis is net[2].basis is shared.basis
    assert sum(p.numel() for p in net.parameters()) == 5 * 4 * 9 + (8 * 5 + 8) + (8 * 10 + 8)
    net(torch.randn(2, 4, 6, 6)).sum().backward()
    assert shared.basis.grad is not None


# ----------------------------------------------------------------------------- method "fullstack"
def expected_fullstack_parameters(conv: nn.Conv2d, s: int, masks: str = "shared", learn_masks: bool = True) -> int:
    """k*c*kh*kw filter weights (k = n/s) + the latent mask reals when they are learned + the n biases (Eq. 3-5)."""
    c, n, (kh, kw) = conv.in_channels, conv.out_channels, conv.kernel_size
    mask_rows = s if masks == "shared" else n
    return (n // s) * c * kh * kw + (mask_rows * c * kh * kw if learn_masks else 0) + (0 if conv.bias is None else n)


FULLSTACK_OPTIONS = [{"s": 4}, {"s": 2, "masks": "separate"}, {"s": 4, "learn_masks": False},
                     {"s": 4, "masks": "separate", "rng": np.random.default_rng(0)}]


@pytest.mark.parametrize("kw", FULLSTACK_OPTIONS, ids=["shared", "separate", "fixed-masks", "separate-rng"])
def test_convert_to_fullstack_keeps_widths_and_counts_eq_3_to_5(kw):
    net = model()
    before = {name: net.get_submodule(name) for name in CONV_NAMES}
    out_shape = net(X).shape

    assert convert(net, "fullstack", **kw) is net
    assert not any(type(m) is nn.Conv2d for m in net.modules())
    for name, conv in before.items():
        twin = net.get_submodule(name)
        assert isinstance(twin, FullStackConv2d), name
        assert (twin.in_channels, twin.out_channels, twin.kernel_size, twin.stride, twin.padding) == \
               (conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding), name
        assert (twin.s, twin.n_filters, twin.masks) == (kw["s"], conv.out_channels // kw["s"],
                                                        kw.get("masks", "shared")), name
        assert (twin.bias is None) == (conv.bias is None) and twin.filters.dtype == twin.mask_latent.dtype == \
               torch.float64, name
        assert sum(p.numel() for p in twin.parameters()) == expected_fullstack_parameters(
            conv, kw["s"], kw.get("masks", "shared"), kw.get("learn_masks", True)), name
    out = net(X)
    assert out.shape == out_shape
    out.sum().backward()
    assert all(p.grad is not None for p in net.parameters())


def test_fullstack_numbers_for_one_model():
    """s=4: stem 3->12 3x3 from k=3 filters, block.0 12->12 5x5 from 3, the 1x1 block.2 12->8 from 2; shared masks."""
    net = convert(model(), "fullstack", s=4)
    assert net.stem.filters.shape == (3, 3, 3, 3) and net.stem.mask_latent.shape == (4, 3, 3, 3)
    assert net.stem.bias is None and net.stem.stride == (1, 1) and net.stem.padding == (1, 1)
    assert net.block[0].filters.shape == (3, 12, 5, 5) and net.block[0].stride == (2, 2)
    assert net.block[2].filters.shape == (2, 12, 1, 1) and net.block[2].mask_latent.shape == (4, 12, 1, 1)
    separate = convert(model(), "fullstack", s=4, masks="separate")
    assert separate.block[2].mask_latent.shape == (8, 12, 1, 1)


def test_fullstack_s_that_does_not_divide_names_the_layer_unless_excluded():
    with pytest.raises(ValueError, match=r"cannot convert layer 'block.2' .*out_channels=8 must be divisible by s=3"):
        convert(model(), "fullstack", s=3)
    net = convert(model(), "fullstack", s=3, exclude=["block.2"])
    assert type(net.block[2]) is nn.Conv2d and net.stem.n_filters == net.block[0].n_filters == 4


def test_fullstack_needs_s():
    with pytest.raises(TypeError, match=r"method='fullstack' needs s= \(the number of masks"):
        convert(model(), "fullstack")


def test_fullstack_converts_a_bare_non_square_conv():
    twin = convert(nn.Conv2d(4, 6, (3, 5), stride=(2, 1), padding=(1, 2)), "fullstack", s=3)
    assert isinstance(twin, FullStackConv2d) and twin.filters.shape == (2, 4, 3, 5) and twin.stride == (2, 1)
    assert twin(torch.zeros(1, 4, 7, 7)).shape == (1, 6, 4, 7)
