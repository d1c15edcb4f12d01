"""PyTorch twin of :class:`minilib.versatile.VersatileConv2d` (Wang et al., NeurIPS 2018).

Same constructor arguments, parameter names ("weight", "bias"), shapes and output channel
order as the NumPy layer, so weights copy across by ``state_dict`` name and both backends
compute the same function. Given the same ``rng`` (a NumPy Generator) both start from the
same weights; without one the layer initialises like ``torch.nn.Conv2d``.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .. import checks
from ..versatile import CHANNEL_MODES, COMBINE_MODES, square_kernel, versatile_cost, versatile_shape
from .common import check_input, choice, dtype_of, flag, generator, parameters_fit


class VersatileConv2d(nn.Module):
    """Spatial (Eq. 2-3) and channel (Eq. 8) versatile convolution, a drop-in for ``nn.Conv2d``.

    P primary d x d filters each give s = ceil(d/2) spatial secondaries (secondary i keeps the
    centred (d-2i) x (d-2i) window, i = 0..s-1, Eq. 2) on n = delta/g + 1 channel windows
    (window j reads input channels [j*g, j*g + ĉ), ĉ = c - delta, Eq. 8).

    - combine="concat": all s*n*P responses, output channel (i*n + j)*P + p (Eq. 3 and 8);
      out_channels = s*n*P.
    - combine="sum": the s spatial responses added (Eq. 4), output channel j*P + p;
      out_channels = n*P.

    Parameters: ``weight`` (P, c, d, d) with channel_mode="paper" (window j uses weight
    channels [j*g, j*g + ĉ), as in the paper's Fig. 2) or (P, ĉ, d, d) with "official" (every
    window reuses the ĉ stored channels, as the released VConv2d); ``bias`` (out_channels,),
    or (P,) with ``shared_bias`` (b_1 = ... = b_s, the paper's Versatile-Model 3).

    Shapes: x (N, c, H, W) -> (N, out_channels, OH, OW), OH = floor((H + 2*ph - d) / sh) + 1,
    likewise OW: every secondary shares stride and padding, so all responses align. ``x`` is a floating
    tensor in the parameters' dtype (any floating one under autocast); N = 0 gives an empty output.

    ``rng``: a NumPy Generator, an int seed, or None (torch's generator); ``dtype``: float32 or float64
    (None: torch's default); ``bias`` and ``shared_bias`` real bools. Bad arguments raise ``TypeError`` or
    ``ValueError`` naming the argument, its value and the rule (:mod:`minilib.torch.common`).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True, delta=0, g=1,
                 shared_bias=False, combine="concat", channel_mode="paper", rng=None, *, device=None, dtype=None):
        super().__init__()
        d = square_kernel(kernel_size)
        choice(combine, "combine", COMBINE_MODES)
        choice(channel_mode, "channel_mode", CHANNEL_MODES)
        shape = versatile_shape(in_channels, out_channels, d, delta=delta, g=g, combine=combine,
                                channel_mode=channel_mode)
        bias, shared_bias = flag(bias, "bias"), flag(shared_bias, "shared_bias")
        rng, dtype = generator(rng), dtype_of(dtype)
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, d
        self.stride = checks.positive_pair(stride, "stride")
        self.padding = checks.non_negative_pair(padding, "padding")
        self.delta, self.g, self.combine, self.channel_mode = delta, g, combine, channel_mode
        self.shared_bias = shared_bias
        self.s, self.n, self.c_hat, self.primaries = shape.s, shape.n, shape.c_hat, shape.primaries

        parameters_fit("VersatileConv2d", [("weight", shape.weight_shape), ("bias", (out_channels,))], dtype,
                       f"in_channels={in_channels}, out_channels={out_channels}, kernel_size={kernel_size!r}")
        factory = dict(device=device, dtype=dtype)
        self.weight = nn.Parameter(torch.empty(shape.weight_shape, **factory))
        bias_shape = (shape.primaries,) if self.shared_bias else (out_channels,)
        self.bias = nn.Parameter(torch.empty(bias_shape, **factory)) if bias else None
        self.reset_parameters(rng)

    def reset_parameters(self, rng=None) -> None:
        """U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = weight.shape[1]*d*d; weight drawn before bias.

        With ``rng`` the draws are the NumPy layer's (``rng.uniform``), so both backends match;
        without it, torch's ``nn.Conv2d`` initialisation (Kaiming-uniform with a = sqrt(5),
        which has the same bound) from torch's generator. ``rng``: a Generator, an int seed or None.
        """
        rng = generator(rng)
        bound = 1.0 / math.sqrt(self.weight.shape[1] * self.kernel_size ** 2)
        with torch.no_grad():
            for param in (self.weight, self.bias):
                if param is None:
                    continue
                if rng is not None:
                    param.copy_(torch.from_numpy(rng.uniform(-bound, bound, size=tuple(param.shape))))
                elif param is self.weight:
                    nn.init.kaiming_uniform_(param, a=math.sqrt(5))
                else:
                    nn.init.uniform_(param, -bound, bound)

    def window_weight(self) -> torch.Tensor:
        """(n*P, ĉ, d, d): row j*P + p is the filter primary p applies to channel window j (Eq. 8)."""
        if self.channel_mode == "official":
            return self.weight.repeat(self.n, 1, 1, 1)
        # paper: window j takes weight channels [j*g, j*g + ĉ); unfold gives (P, n, d, d, ĉ)
        windows = self.weight.unfold(1, self.c_hat, self.g)
        return windows.permute(1, 0, 4, 2, 3).reshape(self.n * self.primaries, self.c_hat, self.kernel_size,
                                                      self.kernel_size)

    def full_bias(self) -> torch.Tensor:
        """(out_channels,): a shared (P,) bias tiled so output o gets bias[o % P].

        ``repeat`` keeps the graph, so the gradient of a shared bias is the sum over its copies.
        """
        return self.bias.repeat(self.out_channels // self.primaries) if self.shared_bias else self.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d, (ph, pw) = self.kernel_size, self.padding
        check_input(x, self.in_channels, (d, d), self.padding, self.weight)
        x = F.pad(x, (pw, pw, ph, ph))
        # stack the n channel windows x[:, j*g : j*g + ĉ] -> (N, n*ĉ, H, W); one conv group each
        x = x.unfold(1, self.c_hat, self.g).permute(0, 1, 4, 2, 3).flatten(1, 2)
        weight, h, w = self.window_weight(), x.shape[2], x.shape[3]
        # Secondary i = weight masked to its centred window (Eq. 2). Cropping kernel and padded
        # input by i on each side gives the same sums without the zero taps, and stays valid
        # when padding < i.
        responses = [F.conv2d(x[:, :, i:h - i, i:w - i], weight[..., i:d - i, i:d - i], stride=self.stride,
                              groups=self.n) for i in range(self.s)]
        out = torch.cat(responses, dim=1) if self.combine == "concat" else sum(responses)  # Eq. 3 / Eq. 4
        if self.bias is not None:
            out = out + self.full_bias()[:, None, None]
        return out

    def cost(self, in_shape, out_shape) -> dict:
        """Weights, parameters and multiplications per sample, as the NumPy layer's ``cost``."""
        return versatile_cost(self, tuple(out_shape)[-2:])

    def extra_repr(self) -> str:
        text = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, delta={self.delta}, g={self.g}, primaries={self.primaries}")
        if self.combine != "concat":
            text += f", combine={self.combine!r}"
        if self.channel_mode != "paper":
            text += f", channel_mode={self.channel_mode!r}"
        if self.bias is None:
            text += ", bias=False"
        elif self.shared_bias:
            text += ", shared_bias=True"
        return text
