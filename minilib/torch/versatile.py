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

# How the forward pass computes Wang et al.'s Eq. 3/4 (and 8); every formulation gives the same numbers in exact
# arithmetic and the same gradients (float32 rounding may differ in the last bits). :mod:`minilib.torch.formulations`
# times them per layer and picks the fastest.
FORMULATIONS = ("cropped", "dense")
DEFAULT_FORMULATION = "cropped"


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

    ``formulation`` says how the responses are computed; both give the same outputs and gradients:

    * ``"cropped"`` (default): s convolutions, secondary i with its kernel cropped to the (d-2i) x (d-2i)
      window, so it multiplies only its own taps (Prop. 1); channel windows run as n groups of one
      convolution on the input's n channel windows stacked;
    * ``"dense"``: ONE ordinary convolution with :meth:`stacked_weight`, every secondary M_i ∘ f (Eq. 2)
      placed on its channel window (Eq. 8) and stacked, rebuilt from ``weight`` in every forward pass so
      autograd sums the secondaries' gradients into the primary. It multiplies the masked-out zeros too
      (as many multiplications as the standard convolution), but a single large convolution often runs
      faster than s small ones; :func:`minilib.torch.formulations.choose_formulations` measures which.

    ``rng``: a NumPy Generator, an int seed, or None (torch's generator); ``dtype``: float32 or float64
    (None: torch's default); ``bias`` and ``shared_bias`` real bools. Bad arguments raise ``TypeError`` or
    ``ValueError`` naming the argument, its value and the rule (:mod:`minilib.torch.common`).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True, delta=0, g=1,
                 shared_bias=False, combine="concat", channel_mode="paper", rng=None, *, device=None, dtype=None,
                 formulation=DEFAULT_FORMULATION):
        super().__init__()
        d = square_kernel(kernel_size)
        self.formulation = formulation
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

    @property
    def formulation(self) -> str:
        """How :meth:`forward` computes the responses: one of :data:`FORMULATIONS` (see the class docstring)."""
        return self._formulation

    @formulation.setter
    def formulation(self, value) -> None:
        self._formulation = choice(value, "formulation", FORMULATIONS)

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

    def secondary_masks(self) -> torch.Tensor:
        """(s, d, d): M_i keeps the centred (d-2i) x (d-2i) window (Wang et al.'s Eq. 2), in the weight's dtype."""
        d, s = self.kernel_size, self.s
        masks = torch.zeros((s, d, d), dtype=self.weight.dtype, device=self.weight.device)
        for i in range(s):
            masks[i, i:d - i, i:d - i] = 1
        return masks

    def embedded_weight(self) -> torch.Tensor:
        """(n, P, c, d, d): primary p as channel window j sees it (Eq. 8), zero outside input channels
        [j*g, j*g + ĉ), so every window becomes an ordinary filter over all c input channels."""
        c, c_hat, g, n = self.in_channels, self.c_hat, self.g, self.n
        if self.channel_mode == "paper":
            # window j uses the stored channels at the positions it reads: a 0/1 channel mask of the weight
            inside = torch.zeros((n, 1, c, 1, 1), dtype=self.weight.dtype, device=self.weight.device)
            for j in range(n):
                inside[j, :, j * g:j * g + c_hat] = 1
            return self.weight[None] * inside
        # official: the ĉ stored channels are shifted to [j*g, j*g + ĉ); F.pad is differentiable
        return torch.stack([F.pad(self.weight, (0, 0, 0, 0, j * g, c - c_hat - j * g)) for j in range(n)])

    def stacked_weight(self) -> torch.Tensor:
        """(out_channels, c, d, d): every secondary filter as one ordinary weight, for ONE ``F.conv2d``.

        Row (i*n + j)*P + p is M_i ∘ f_p on window j (Eq. 2, 3, 8); with combine="sum" row j*P + p is
        (sum_i M_i) ∘ f_p (Eq. 4-5). Built from ``weight`` by products with fixed 0/1 masks, so autograd
        gives ``weight`` the sum of its secondaries' gradients, masked, as the cropped kernels do.
        """
        windows, masks = self.embedded_weight(), self.secondary_masks()
        d = self.kernel_size
        if self.combine == "sum":
            return (windows * masks.sum(0)).reshape(-1, self.in_channels, d, d)
        stacked = windows[None] * masks[:, None, None, None]                # (s, n, P, c, d, d)
        return stacked.reshape(-1, self.in_channels, d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = self.kernel_size
        check_input(x, self.in_channels, (d, d), self.padding, self.weight)
        if self.formulation == "dense":
            out = F.conv2d(x, self.stacked_weight(), stride=self.stride, padding=self.padding)
        else:
            out = self._cropped_responses(x)
        if self.bias is not None:
            out = out + self.full_bias()[:, None, None]
        return out

    def _cropped_responses(self, x: torch.Tensor) -> torch.Tensor:
        """The s secondaries as s convolutions with cropped kernels (Prop. 1), n channel windows as groups."""
        d, (ph, pw) = self.kernel_size, self.padding
        if self.n > 1:
            # stack the n channel windows x[:, j*g : j*g + ĉ] -> (N, n*ĉ, H, W); one conv group each
            x = x.unfold(1, self.c_hat, self.g).permute(0, 1, 4, 2, 3).flatten(1, 2)
        weight, h, w = self.window_weight(), x.shape[2], x.shape[3]
        responses = []
        for i in range(self.s):
            # Secondary i = weight masked to its centred window (Eq. 2). Its cropped kernel on the input padded by
            # p - i gives the same sums without the zero taps; where padding < i, the input is cropped by i - p
            # instead (the window's first tap lies inside the image).
            ch, cw = max(i - ph, 0), max(i - pw, 0)
            part = x[:, :, ch:h - ch, cw:w - cw] if ch or cw else x
            responses.append(F.conv2d(part, weight[..., i:d - i, i:d - i], stride=self.stride,
                                      padding=(max(ph - i, 0), max(pw - i, 0)), groups=self.n))
        return torch.cat(responses, dim=1) if self.combine == "concat" else sum(responses)  # Eq. 3 / Eq. 4

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
        if self.formulation != DEFAULT_FORMULATION:
            text += f", formulation={self.formulation!r}"
        return text
