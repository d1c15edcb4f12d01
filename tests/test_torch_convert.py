"""``minilib.torch.convert``: every nn.Conv2d of a model becomes the method's twin, widths unchanged.

The converted model keeps every layer's out_channels, so its forward shape is the same, while
the stored weights shrink exactly as ``versatile_shape`` predicts (P = out_channels / (s*n)
primary filters of c or ĉ channels). Layers the twin cannot express fail loudly by name.
"""
import numpy as np
import pytest
import torch
from torch import nn

from minilib.torch import VersatileConv2d, convert
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
    with pytest.raises(ValueError, match=r"method='versatil' is not known; known methods: \['versatile'\]"):
        convert(model(), "versatil")
