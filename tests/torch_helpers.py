"""Shared helpers for the parity tests: NumPy <-> torch conversion, one tolerance, and
seeded generators of random layer configurations.

Every parity test compares minilib against PyTorch in float64 with the tolerance the
design guide fixes (rtol=1e-7, atol=1e-9). The configuration generators draw from a
``numpy.random.Generator`` with a fixed seed, so every run tests the same cases and
each case gets its own pytest id (``parametrize`` over the config index).
"""
from __future__ import annotations

import numpy as np
import torch

from minilib.im2col import conv_output_size

RTOL, ATOL = 1e-7, 1e-9
N_CONFIGS = 24          # >= 20 random configurations per layer (the guide's rule)


# ----------------------------------------------------------------------------- conversion
def to_torch(a, requires_grad: bool = False) -> torch.Tensor:
    """A float64 torch copy of a NumPy array (a copy, so torch never writes into minilib's arrays)."""
    t = torch.from_numpy(np.array(a, dtype=np.float64, copy=True))
    return t.requires_grad_(requires_grad)


def to_numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


def assert_close(actual, expected, name: str = "") -> None:
    """``np.testing.assert_allclose`` at the project tolerance; accepts torch tensors on either side."""
    if isinstance(actual, torch.Tensor):
        actual = to_numpy(actual)
    if isinstance(expected, torch.Tensor):
        expected = to_numpy(expected)
    assert np.shape(actual) == np.shape(expected), f"{name}: shape {np.shape(actual)} != {np.shape(expected)}"
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=ATOL, err_msg=name)


# ----------------------------------------------------------------------------- modules
def named_grads(module) -> dict[str, np.ndarray]:
    """Gradients of a minilib module by qualified name ("0.weight"), as torch's ``named_parameters``."""
    return {(f"{prefix}.{key}" if prefix else key): grad
            for prefix, sub in module.named_modules() for key, grad in sub.grads.items()}


def load_into_torch(ml_module, torch_module: torch.nn.Module) -> torch.nn.Module:
    """Copy minilib parameters and buffers into a torch module by ``state_dict`` name.

    The names must match one to one (torch's BatchNorm ``num_batches_tracked`` counter is
    the only key minilib has no twin for), so a naming drift fails here.
    """
    torch_module.double()           # before loading: load_state_dict casts into the existing dtype
    ml_state = ml_module.state_dict()
    torch_keys = {k for k in torch_module.state_dict() if not k.endswith("num_batches_tracked")}
    assert set(ml_state) == torch_keys, f"state_dict names differ: {sorted(ml_state)} vs {sorted(torch_keys)}"
    torch_module.load_state_dict({k: to_torch(v) for k, v in ml_state.items()}, strict=False)
    return torch_module


def check_module_parity(ml_module, torch_module, x: np.ndarray, rng: np.random.Generator) -> None:
    """Forward, input gradient and every parameter gradient of a minilib module against torch.

    Parameters are copied from minilib into ``torch_module`` first; both modules must be
    in the same train/eval mode. ``dout`` is random so that every output element matters.
    """
    load_into_torch(ml_module, torch_module)
    out = ml_module.forward(x)
    x_t = to_torch(x, requires_grad=True)
    out_t = torch_module(x_t)
    assert_close(out, out_t, "forward")

    dout = rng.standard_normal(out.shape)
    dx = ml_module.backward(dout)
    out_t.backward(to_torch(dout))
    assert_close(dx, x_t.grad, "dx")

    torch_params = dict(torch_module.named_parameters())
    grads = named_grads(ml_module)
    assert set(grads) == set(torch_params), f"parameter names differ: {sorted(grads)} vs {sorted(torch_params)}"
    for name, grad in grads.items():
        assert_close(grad, torch_params[name].grad, f"grad of {name}")


# ----------------------------------------------------------------------------- configurations
def _fits(size, kernel, stride, padding, dilation) -> bool:
    return dilation * (kernel - 1) + 1 <= size + 2 * padding and conv_output_size(size, kernel, stride, padding, dilation) >= 1


def conv_configs(n: int = N_CONFIGS, seed: int = 0, max_dilation: int = 2) -> list[dict]:
    """Random convolution configurations whose (dilated) kernel fits the padded input.

    Keys: N, C, F, H, W, kernel (kh, kw), stride (sh, sw), padding (ph, pw), dilation (dh, dw), bias.
    Config 0 has batch 1 and config 1 a rectangular kernel, so those cases are always present;
    ``test_conv_configs_cover_the_edge_cases`` checks the rest of the coverage.
    """
    rng = np.random.default_rng(seed)
    configs = []
    while len(configs) < n:
        cfg = dict(
            N=1 if len(configs) == 0 else int(rng.integers(1, 4)),
            C=int(rng.integers(1, 4)), F=int(rng.integers(1, 4)),
            H=int(rng.integers(3, 10)), W=int(rng.integers(3, 10)),
            kernel=tuple(int(k) for k in rng.integers(1, 5, size=2)),
            stride=tuple(int(s) for s in rng.integers(1, 4, size=2)),
            padding=tuple(int(p) for p in rng.integers(0, 3, size=2)),
            dilation=tuple(int(d) for d in rng.integers(1, max_dilation + 1, size=2)),
            bias=bool(rng.random() < 0.7),
        )
        if len(configs) == 1 and cfg["kernel"][0] == cfg["kernel"][1]:
            continue
        if all(_fits(cfg[s], cfg["kernel"][a], cfg["stride"][a], cfg["padding"][a], cfg["dilation"][a])
               for a, s in enumerate("HW")):
            configs.append(cfg)
    return configs


def pool_configs(n: int = N_CONFIGS, seed: int = 1) -> list[dict]:
    """Random pooling configurations (torch's rule: padding <= kernel // 2; stride None = kernel).

    Keys: N, C, H, W, kernel (kh, kw), stride (pair or None), padding (ph, pw).
    """
    rng = np.random.default_rng(seed)
    configs = []
    while len(configs) < n:
        kernel = tuple(int(k) for k in rng.integers(1, 5, size=2))
        stride = None if rng.random() < 0.25 else tuple(int(s) for s in rng.integers(1, 4, size=2))
        padding = tuple(int(rng.integers(0, k // 2 + 1)) for k in kernel)
        cfg = dict(N=1 if len(configs) == 0 else int(rng.integers(1, 4)), C=int(rng.integers(1, 4)),
                   H=int(rng.integers(2, 10)), W=int(rng.integers(2, 10)),
                   kernel=kernel, stride=stride, padding=padding)
        s = kernel if stride is None else stride
        if all(_fits(cfg[d], kernel[a], s[a], padding[a], 1) for a, d in enumerate("HW")):
            configs.append(cfg)
    return configs


def config_id(cfg: dict) -> str:
    """A short readable pytest id, e.g. ``N2C3F1-7x5-k3x1-s2x1-p0x2-d1x2-bias``."""
    parts = [f"N{cfg['N']}C{cfg['C']}" + (f"F{cfg['F']}" if "F" in cfg else ""), f"{cfg['H']}x{cfg['W']}"]
    for key, tag in (("kernel", "k"), ("stride", "s"), ("padding", "p"), ("dilation", "d")):
        if key in cfg:
            value = cfg[key]
            parts.append(f"{tag}{'none' if value is None else 'x'.join(map(str, value))}")
    if "bias" in cfg:
        parts.append("bias" if cfg["bias"] else "nobias")
    return "-".join(parts)
