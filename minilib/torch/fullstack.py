"""PyTorch twin of :class:`minilib.fullstack.FullStackConv2d` (full-stack filters, MVNet; Han et al., 2019).

Same constructor arguments, parameter names ("filters", "mask_latent", "bias"), shapes and
output channel order as the NumPy layer, so weights copy across by ``state_dict`` name, and
the same NumPy Generator gives the same initial values. Symbols as in the paper: c in_channels,
n out_channels, d x d kernel (D = c*d^2 entries per filter), k full-stack filters, s binary masks
per filter. :func:`ortho_loss` is Eq. 7 as a differentiable tensor (autograd through the
straight-through estimator), :func:`ortho_penalty` the λ-term of Eq. 8 for a whole model.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..fullstack import MASK_MODES, configure_layer, fullstack_cost, separate_filters
from .common import check_input, choice, dtype_of, flag, generator, module, parameters_fit, real, tensor, uniform_

# How the forward pass computes Han et al.'s Eq. 3-5 (:mod:`minilib.torch.formulations` treats every twin alike).
# Only the dense weight M∘B and one convolution: Eq. 13 (each patch times the k full-stack filters, then ±1-masked
# sums, as the NumPy layer's fast path) is equal, but on a CPU it runs (k + k*s)*D machine multiplications per
# position, more than the dense n*D, and it unfolds the input; measured with the 16 -> 16 channel, 32x32 layer of
# the chapter-7 ResNet-20 (s = 4, batch 128, float32), its forward+backward took 24x the dense one's.
FORMULATIONS = ("dense",)
DEFAULT_FORMULATION = "dense"


class BinarizeSTE(torch.autograd.Function):
    """M = sign(latent) in {-1, +1} with sign(0) = +1, and a clipped straight-through gradient.

    Backward (BinaryConnect / BNN straight-through estimator, the paper's STE [4]):
    dL/dlatent = dL/dM * 1[|latent| <= 1], so a latent that has left [-1, 1] stops moving.
    """

    @staticmethod
    def forward(ctx, latent):
        ctx.save_for_backward(latent)
        one = torch.ones((), dtype=latent.dtype, device=latent.device)
        return torch.where(latent >= 0, one, -one)

    @staticmethod
    def backward(ctx, grad):
        latent, = ctx.saved_tensors
        return grad * (latent.abs() <= 1).to(grad.dtype)


def binarize(latent: torch.Tensor) -> torch.Tensor:
    """sign(latent) with sign(0) = +1, differentiable by the straight-through estimator of :class:`BinarizeSTE`;
    ``latent`` a floating tensor."""
    return BinarizeSTE.apply(tensor(latent, "latent"))


class FullStackConv2d(nn.Module):
    """A c -> n convolution whose n sub-filters are k full-stack filters times binary masks (Eq. 3-5).

    Sub-filter o (output channel o) is f̂_o = b_{o mod k} ∘ m, with m = sign(mask_latent[o // k])
    for ``masks="shared"`` (MVNet-A, Eq. 3: s masks shared by all k filters) or
    m = sign(mask_latent[o]) for ``masks="separate"`` (MVNet-B, Eq. 4-5: every filter has its own s masks).
    k = ``n_filters``, or n/s when it is not given; with ``n_filters`` only the first n of the
    k*s sub-filters are used (the paper's LeNet gets 50 maps from k = ceil(50/20) = 3 filters).

    Parameters: ``filters`` B (k, c, kh, kw); ``mask_latent`` (s, c, kh, kw) shared or
    (n, c, kh, kw) separate; ``bias`` (n,). With ``learn_masks=False`` ``mask_latent`` is a
    registered buffer (fixed random masks, the paper's "-Rand" rows of Table 1): it is saved in
    the ``state_dict`` but gets no gradient.

    The forward pass builds the dense weight M∘B (n, c, kh, kw) and runs ONE convolution, as the
    released code does: the s-fold multiplication saving of Eq. 12-14 (multiply each patch by the k
    full-stack filters once, then only add and subtract) is not realised here; the NumPy layer's
    fast path computes it that way. Gradients: exact for filters and bias, straight-through
    (:func:`binarize`) for ``mask_latent``. ``formulation``: "dense", the only one of :data:`FORMULATIONS`
    (the module's comment says why Eq. 13 is not one).

    Initialisation as in the NumPy layer: filters U(-1/sqrt(c*kh*kw), +) (the ``nn.Conv2d`` bound),
    mask_latent U(-1, 1) (so sign gives Rademacher masks, as the released code), bias
    U(-1/sqrt(c*kh*kw), +), drawn in that order from ``rng`` (a NumPy Generator: the NumPy
    layer's draws) or, without it, from torch's generator.

    Shapes: x (N, c, H, W) -> (N, n, OH, OW), OH = floor((H + 2*ph - kh) / sh) + 1, likewise OW. ``x`` is a
    floating tensor in the parameters' dtype (any floating one under autocast); N = 0 gives an empty output.
    ``rng`` may also be an int seed; ``dtype`` float32 or float64 (None: torch's default); ``bias`` and
    ``learn_masks`` real bools. Bad arguments raise ``TypeError`` or ``ValueError`` naming the argument,
    its value and the rule.
    """

    def __init__(self, in_channels, out_channels, kernel_size, s, stride=1, padding=0, bias=True, masks="shared",
                 learn_masks=True, rng=None, n_filters=None, *, device=None, dtype=None,
                 formulation=DEFAULT_FORMULATION):
        super().__init__()
        choice(masks, "masks", MASK_MODES)
        self.formulation = formulation
        # configure_layer checks every argument, learn_masks too, as for the NumPy layer (one message for both)
        shape = configure_layer(self, in_channels, out_channels, kernel_size, s, stride, padding, masks, learn_masks,
                                n_filters)
        bias, rng, dtype = flag(bias, "bias"), generator(rng), dtype_of(dtype)
        parameters_fit("FullStackConv2d", [("filters", (shape.k, shape.c, *shape.kernel)),
                                           ("mask_latent", shape.mask_shape)], dtype,
                       f"in_channels={in_channels}, out_channels={out_channels}, kernel_size={shape.kernel}, s={s}")
        factory = dict(device=device, dtype=dtype)
        self.filters = nn.Parameter(torch.empty((shape.k, shape.c, *shape.kernel), **factory))
        latent = torch.empty(shape.mask_shape, **factory)
        if self.learn_masks:
            self.mask_latent = nn.Parameter(latent)
        else:
            self.register_buffer("mask_latent", latent)
        self.bias = nn.Parameter(torch.empty(self.out_channels, **factory)) if bias else None
        self.reset_parameters(rng)

    def reset_parameters(self, rng=None) -> None:
        """Draw filters, mask_latent and bias, in that order (see the class docstring)."""
        rng = generator(rng)
        bound = 1.0 / math.sqrt(self.filters[0].numel())
        uniform_(self.filters, bound, rng)
        uniform_(self.mask_latent, 1.0, rng)
        if self.bias is not None:
            uniform_(self.bias, bound, rng)

    @property
    def formulation(self) -> str:
        """How :meth:`forward` computes the layer: one of :data:`FORMULATIONS`."""
        return self._formulation

    @formulation.setter
    def formulation(self, value) -> None:
        self._formulation = choice(value, "formulation", FORMULATIONS)

    def binary_masks(self) -> torch.Tensor:
        """M = sign(mask_latent) in {-1, +1}, (s or n, c, kh, kw), with the straight-through gradient."""
        return binarize(self.mask_latent)

    def dense_weight(self) -> torch.Tensor:
        """(n, c, kh, kw): row o is the sub-filter b_{o mod k} ∘ m_{o // k} (shared, Eq. 3) or b_{o mod k} ∘ m_o
        (separate, Eq. 5)."""
        n, k = self.out_channels, self.n_filters
        repeats = -(-n // k)
        filters = self.filters.repeat(repeats, 1, 1, 1)[:n]                 # row o: b_{o mod k}
        masks = self.binary_masks()
        if self.masks == "shared":
            masks = masks.repeat_interleave(k, dim=0)[:n]                   # row o: m_{o // k}
        return filters * masks

    def ortho_loss(self, released: bool = False) -> torch.Tensor:
        """Eq. 7 for this layer's masks (:func:`ortho_loss`), or the released variant (:func:`ortho_loss_released`)."""
        if flag(released, "released"):
            return ortho_loss_released(self.mask_latent)
        return ortho_loss(self.mask_latent, None if self.masks == "shared" else self.n_filters)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, self.in_channels, self.kernel_size, self.padding, self.filters)
        return F.conv2d(x, self.dense_weight(), self.bias, self.stride, self.padding)

    def cost(self, in_shape, out_shape) -> dict:
        """Weights, mask bits, parameters and multiplications per sample, as the NumPy layer's ``cost`` (Eq. 9-14)."""
        return fullstack_cost(self, tuple(out_shape)[-2:])

    def extra_repr(self) -> str:
        text = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, s={self.s}, "
                f"n_filters={self.n_filters}, stride={self.stride}, padding={self.padding}, masks={self.masks!r}")
        if self.bias is None:
            text += ", bias=False"
        if not self.learn_masks:
            text += ", learn_masks=False"
        return text


# ----------------------------------------------------------------------------- Eq. 7-8: orthogonal masks
def _mask_columns(mask_latent: torch.Tensor) -> torch.Tensor:
    """M (D, rows): the binarised masks as columns, differentiable by the straight-through estimator."""
    return binarize(_check_latent(mask_latent)).reshape(mask_latent.shape[0], -1).T


def _check_latent(mask_latent: torch.Tensor) -> torch.Tensor:
    """``mask_latent`` if it is a float32 or float64 tensor of 4 dimensions (rows, c, kh, kw)."""
    tensor(mask_latent, "mask_latent")
    if mask_latent.dtype not in (torch.float32, torch.float64):
        # the Gram matrix M^T M sums D = c*kh*kw products of ±1: float16 holds such sums exactly only up to 2048
        raise TypeError(f"mask_latent must be float32 or float64, got {mask_latent.dtype}: the Gram matrix of Eq. 7 "
                        f"sums c*kh*kw products, more than half precision holds exactly; pass mask_latent.float()")
    if mask_latent.dim() != 4:
        raise ValueError(f"mask_latent must be a 4-dimensional tensor (s or out_channels, c, kh, kw), "
                         f"got shape {tuple(mask_latent.shape)}")
    return mask_latent


def _gram_residual(columns: torch.Tensor) -> torch.Tensor:
    """A = M^T M / D - I for masks M (D, m) as columns."""
    d, m = columns.shape
    return columns.T @ columns / d - torch.eye(m, dtype=columns.dtype, device=columns.device)


def ortho_loss(mask_latent: torch.Tensor, n_filters=None) -> torch.Tensor:
    """Eq. 7, L = 1/2 ||M^T M / D - I||_F^2 over the masks M = [m_1, ..., m_s] (D x s) of ONE full-stack filter.

    ``mask_latent`` (s, c, kh, kw) shared masks (``n_filters=None``: one set, Eq. 3), or the
    (n, c, kh, kw) separate masks with ``n_filters=k``: filter i owns masks i, i+k, i+2k, ...
    (Eq. 4-5) and the loss is the sum of the k filters' terms. A scalar tensor; its gradient
    reaches the latent through :func:`binarize`'s STE, as :func:`minilib.fullstack.ortho_loss` computes it.
    """
    columns = _mask_columns(mask_latent)
    if n_filters is None:
        return 0.5 * _gram_residual(columns).square().sum()
    return _separate_ortho_sum(columns[None], separate_filters(n_filters, columns.shape[1]))


def _separate_ortho_sum(columns: torch.Tensor, k: int) -> torch.Tensor:
    """Eq. 7 summed over the k full-stack filters of each of G layers with separate masks: ``columns`` (G, D, n),
    the binarised masks of every layer as columns; filter i owns columns i, i + k, ..."""
    layers, d, n = columns.shape
    s = -(-n // k)
    # All k filters (of all G layers) at once, as one batched product instead of k small ones (a Python loop over
    # k = 250 filters took longer than the rest of a training step). Zero-padded to k*s columns, they reshape to
    # (G, D, s, k). A padded column is zero, so its Gram entries are zero and its entry of I is left out: it adds
    # nothing, as in the per-filter sum.
    padded = torch.cat([columns, columns.new_zeros(layers, d, k * s - n)], dim=2).reshape(layers, d, s, k)
    padded = padded.permute(0, 3, 1, 2)                                                         # (G, k, D, s)
    owned = (torch.arange(k * s, device=columns.device) < n).reshape(s, k).T.to(columns.dtype)   # (k, s)
    residual = padded.transpose(2, 3) @ padded / d - torch.diag_embed(owned)
    return 0.5 * residual.square().sum()


def ortho_loss_released(mask_latent: torch.Tensor) -> torch.Tensor:
    """The released code's form of Eq. 7: mean((M^T M / D - I)^2) with ALL masks of the layer as the columns of M.

    That is ||.||_F^2 / m^2 for m masks instead of 1/2 ||.||_F^2 per full-stack filter: 2/s^2 times
    :func:`ortho_loss` for shared masks; for separate masks it also couples masks of different filters.
    """
    return _gram_residual(_mask_columns(mask_latent)).square().mean()


def ortho_penalty(model: nn.Module, lam: float = 0.1, released: bool = False) -> torch.Tensor:
    """λ sum_l L_ortho(M^l), the second term of Eq. 8, over every :class:`FullStackConv2d` of ``model``.

    Layers with ``learn_masks=False`` are left out (fixed masks). Add it to the task loss before
    ``backward``; the paper sets λ = 0.1 (Sec. 3.1.1). ``released=True`` uses :func:`ortho_loss_released`.
    """
    model, lam, released = module(model, "model"), real(lam, "lam", ">= 0"), flag(released, "released")
    layers = [m for m in model.modules() if isinstance(m, FullStackConv2d) and m.learn_masks]
    if not layers:
        return torch.zeros(())
    if released:
        return lam * sum(layer.ortho_loss(released) for layer in layers)
    # Layers with separate masks of one shape and one k are summed in ONE batched product (a ResNet-20 has 18 such
    # layers of 5 shapes): the same terms, in a few operations instead of a dozen per layer, which was a few
    # per cent of a training step. The other layers (shared masks) go one by one.
    groups, terms = {}, []
    for layer in layers:
        if layer.masks == "separate":
            latent = _check_latent(layer.mask_latent)
            key = (tuple(latent.shape), layer.n_filters, latent.dtype, latent.device)
            groups.setdefault(key, []).append(latent)
        else:
            terms.append(layer.ortho_loss())
    for (shape, k, _, _), latents in groups.items():
        columns = binarize(torch.stack(latents)).reshape(len(latents), shape[0], -1).transpose(1, 2)
        terms.append(_separate_ortho_sum(columns, separate_filters(k, shape[0])))
    return lam * sum(terms)
