"""Single-image super-resolution in NumPy: the evaluation protocol and the training data.

The common protocol of SR papers (SRCNN, VDSR, EDSR, and the filter basis paper's Tables 1-3),
which :mod:`minilib.reproduce.sr` follows:

1. **HR image**: the benchmark image, cropped at the bottom and right to a multiple of the
   scale factor r (:func:`modcrop`);
2. **LR image**: the HR image downsampled by 1/r with MATLAB's ``imresize`` (bicubic, cubic
   kernel with a = -0.5, the kernel widened by r when downsampling so that it also low-pass
   filters, symmetric mirroring at the borders; :func:`imresize`), rounded to 8 bits
   (:func:`to_uint8`), as the LR PNG files of the benchmarks are made;
3. **SR image**: the network's (or bicubic upsampling's) output, clipped and rounded to 8 bits;
4. **score**: PSNR (:func:`psnr`, peak 255) between the luma Y of SR and HR
   (:func:`rgb_to_y`: ITU-R BT.601, Y = 16 + 65.481 R + 128.553 G + 24.966 B with RGB in [0, 1],
   as MATLAB's ``rgb2ycbcr``), after removing a border of r pixels on every side (:func:`shave`);
   :func:`psnr_y` does step 4 in one call.

Bicubic x2 scored this way gives 33.68 dB on Set5 (the literature's MATLAB figure is 33.66 dB,
with Y rounded; rounding Y here gives 33.65).

Y is NOT rounded to an integer before the PSNR (as BasicSR's ``calculate_psnr(...,
test_y_channel=True)``; MATLAB's ``rgb2ycbcr`` on a uint8 image rounds Y, which moves PSNR
by a few hundredths of a dB). Grayscale images (Set14's bridge) have R = G = B, so Y = 16 + 219 v / 255.

Training data (:func:`make_lr`, :func:`sample_patches`): random LR patches with the HR patches
above them, in random orientations (the 8 flips and 90-degree rotations).

NumPy only: the network is in :mod:`minilib.torch.edsr`.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from . import checks

Y_WEIGHTS = (65.481, 128.553, 24.966)       # BT.601 luma for RGB in [0, 1], scaled to [16, 235] (rgb2ycbcr)
Y_OFFSET = 16.0
CUBIC_A = -0.5                              # Keys' cubic convolution parameter used by MATLAB's imresize


# ----------------------------------------------------------------------------- colour and PSNR
def _image(image, name) -> np.ndarray:
    """An (H, W) or (H, W, 3) array, as a float64 copy."""
    image = np.asarray(image)
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
        raise ValueError(f"{name} must have shape (H, W) or (H, W, 3), got {image.shape}")
    if not (np.issubdtype(image.dtype, np.integer) or np.issubdtype(image.dtype, np.floating)):
        raise TypeError(f"{name} must hold integers or floats, got dtype {image.dtype}")
    return image.astype(np.float64)


def rgb_to_y(image) -> np.ndarray:
    """Luma Y (H, W), float64 in [16, 235], of an RGB image (H, W, 3) with values in [0, 255].

    Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255 (ITU-R BT.601 as MATLAB's ``rgb2ycbcr``);
    white (255, 255, 255) -> 235, black -> 16. A grayscale (H, W) image counts as R = G = B.
    Not rounded (see the module docstring).
    """
    image = _image(image, "image")
    if image.ndim == 2:
        return Y_OFFSET + sum(Y_WEIGHTS) * image / 255.0
    return Y_OFFSET + image @ np.asarray(Y_WEIGHTS) / 255.0


def shave(image, border: int) -> np.ndarray:
    """``image`` without ``border`` pixels on each of its four sides (the protocol removes r of them)."""
    border = checks.non_negative_int(border, "border")
    image = np.asarray(image)
    if image.ndim < 2 or min(image.shape[:2]) <= 2 * border:
        raise ValueError(f"border={border} leaves nothing of an image of shape {image.shape}: "
                         f"both sides must exceed 2*border={2 * border}")
    return image[border:image.shape[0] - border, border:image.shape[1] - border]


def psnr(a, b, peak: float = 255.0, border: int = 0) -> float:
    """10 log10(peak^2 / MSE) in dB between two equally shaped images, ``border`` pixels shaved first.

    Identical images (MSE = 0) give ``inf``. Computed in float64.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"the images must have the same shape, got {a.shape} and {b.shape}")
    peak = checks.positive_number(peak, "peak")
    mse = float(np.mean((shave(a, border) - shave(b, border)) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(peak ** 2 / mse)


def psnr_y(sr, hr, border: int) -> float:
    """PSNR (peak 255) between the luma of ``sr`` and ``hr`` (uint8-valued RGB or grayscale), border shaved."""
    return psnr(rgb_to_y(sr), rgb_to_y(hr), 255.0, border)


def to_uint8(image) -> np.ndarray:
    """Clip to [0, 255] and round half up (MATLAB's ``uint8()``; NumPy's ``round`` would round half to even)."""
    return np.floor(np.clip(np.asarray(image, dtype=np.float64), 0.0, 255.0) + 0.5).astype(np.uint8)


def as_rgb(image) -> np.ndarray:
    """(H, W, 3): a grayscale (H, W) image repeated into three equal channels; an RGB image unchanged."""
    image = np.asarray(image)
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim == 3 and image.shape[2] == 3:
        return image
    raise ValueError(f"image must have shape (H, W) or (H, W, 3), got {image.shape}")


# ----------------------------------------------------------------------------- bicubic resize (MATLAB imresize)
def cubic(x, a: float = CUBIC_A) -> np.ndarray:
    """Keys' cubic convolution kernel: (a+2)|x|^3 - (a+3)|x|^2 + 1 for |x| <= 1,
    a|x|^3 - 5a|x|^2 + 8a|x| - 4a for 1 < |x| < 2, else 0."""
    x = np.abs(np.asarray(x, dtype=np.float64))
    near = ((a + 2) * x - (a + 3)) * x ** 2 + 1
    far = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
    return np.where(x <= 1, near, np.where(x < 2, far, 0.0))


def resize_matrix(in_length: int, out_length: int, scale: float, antialias: bool = True) -> np.ndarray:
    """The (out_length, in_length) matrix of a 1-D bicubic resize by ``scale`` (out/in), as MATLAB's ``imresize``.

    Output pixel i (0-based) sits at u = (i + 0.5) / scale - 0.5 in input coordinates (pixel
    centres aligned). When downsampling with ``antialias`` the kernel is stretched to
    h(x) = scale * cubic(scale * x), 4/scale taps wide; else h = cubic, 4 taps. Taps beyond the
    ends are mirrored (symmetric: -1 -> 0, n -> n-1, as MATLAB), and every row is normalised to sum 1.
    """
    in_length = checks.positive_int(in_length, "in_length")
    out_length = checks.positive_int(out_length, "out_length")
    scale = checks.positive_number(scale, "scale")
    stretch = scale < 1 and antialias
    width = 4.0 / scale if stretch else 4.0
    u = (np.arange(out_length) + 0.5) / scale - 0.5
    left = np.floor(u - width / 2).astype(np.int64)
    taps = left[:, None] + np.arange(math.ceil(width) + 2)                # (out, P), a superset of the support
    distance = u[:, None] - taps
    weights = scale * cubic(scale * distance) if stretch else cubic(distance)
    weights /= weights.sum(axis=1, keepdims=True)
    period = 2 * in_length                                                      # 0..n-1, n-1..0, repeating
    mirrored = np.mod(taps, period)
    mirrored = np.where(mirrored < in_length, mirrored, period - 1 - mirrored)
    matrix = np.zeros((out_length, in_length))
    np.add.at(matrix, (np.repeat(np.arange(out_length), taps.shape[1]), mirrored.ravel()), weights.ravel())
    return matrix


def imresize(image, scale: float, antialias: bool = True) -> np.ndarray:
    """Bicubic resize of an (H, W) or (H, W, C) image by ``scale`` to (ceil(H*scale), ceil(W*scale)), float64.

    MATLAB's ``imresize(image, scale)`` (default method 'bicubic', antialiasing on), applied
    separably to rows and columns in float64; values are not rounded or clipped (bicubic
    overshoots): use :func:`to_uint8` for an 8-bit image. Constants stay constant.
    ``torch.nn.functional.interpolate(mode="bicubic", antialias=True)`` uses the same kernel
    (a = -0.5, widened when downsampling) but renormalises the taps cut off at the borders
    instead of mirroring them, so the two agree except within about 2/scale pixels of an edge.
    """
    image = np.asarray(image)
    if image.ndim not in (2, 3):
        raise ValueError(f"image must have shape (H, W) or (H, W, C), got {image.shape}")
    if not isinstance(scale, numbers.Real) or isinstance(scale, bool) or not scale > 0 or not math.isfinite(scale):
        raise ValueError(f"scale={scale!r} must be a finite number > 0 (output size / input size, e.g. 0.5 or 2)")
    height, width = image.shape[:2]
    out_height, out_width = _out_length(height, scale), _out_length(width, scale)
    rows = resize_matrix(height, out_height, scale, antialias)
    cols = resize_matrix(width, out_width, scale, antialias)
    out = np.tensordot(rows, image.astype(np.float64), axes=([1], [0]))       # (OH, W, ...)
    out = np.tensordot(cols, out, axes=([1], [1]))                             # (OW, OH, ...)
    return np.swapaxes(out, 0, 1)


def _out_length(length: int, scale: float) -> int:
    # ceil as MATLAB; the rounding guards against 0.5 * 2 * n being n + 1e-15
    return math.ceil(round(length * scale, 9))


# ----------------------------------------------------------------------------- protocol and data
def modcrop(image, scale: int) -> np.ndarray:
    """``image`` cropped at the bottom and right to height and width divisible by ``scale``."""
    scale = checks.positive_int(scale, "scale")
    image = np.asarray(image)
    height, width = image.shape[:2]
    if height < scale or width < scale:
        raise ValueError(f"image of shape {image.shape} is smaller than scale={scale}")
    return image[:height - height % scale, :width - width % scale]


def make_lr(hr, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """``(hr, lr)``: the HR image modcropped to a multiple of ``scale`` and its bicubic 1/scale
    downsampling rounded to uint8 (steps 1-2 of the protocol)."""
    scale = checks.positive_int(scale, "scale")
    hr = modcrop(hr, scale)
    return hr, to_uint8(imresize(hr, 1.0 / scale))


def bicubic_upscale(lr, scale: int) -> np.ndarray:
    """The reference SR image: ``lr`` upsampled by ``scale`` with :func:`imresize`, rounded to uint8."""
    return to_uint8(imresize(lr, float(checks.positive_int(scale, "scale"))))


def to_nchw(images) -> np.ndarray:
    """uint8 (N, H, W, 3) -> float32 (N, 3, H, W) in [0, 1], the network's layout and range."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[3] != 3:
        raise ValueError(f"images must have shape (N, H, W, 3), got {images.shape}")
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2), dtype=np.float32) / np.float32(255)


def from_nchw(output) -> np.ndarray:
    """A network output (3, H, W) in [0, 1] -> uint8 (H, W, 3), clipped and rounded (step 3)."""
    output = np.asarray(output)
    if output.ndim != 3 or output.shape[0] != 3:
        raise ValueError(f"output must have shape (3, H, W), got {output.shape}")
    return to_uint8(output.transpose(1, 2, 0).astype(np.float64) * 255.0)


def dihedral(image, k: int) -> np.ndarray:
    """Orientation ``k`` in 0..7 of an (H, W, ...) image: rotate by k % 4 quarter turns, then
    flip left-right when k >= 4 (the 8 symmetries of the square: EDSR's flips and rot90)."""
    if not isinstance(k, numbers.Integral) or not 0 <= k < 8:
        raise ValueError(f"k={k!r} must be an integer in 0..7")
    out = np.rot90(image, k % 4, axes=(0, 1))
    return out[:, ::-1] if k >= 4 else out


def sample_patches(pairs, n: int, patch_size: int, scale: int, rng, augment: bool = True):
    """``n`` random training pairs from ``pairs`` = [(hr, lr), ...] of :func:`make_lr`.

    Each pair picks an image uniformly (as EDSR), then an LR patch (patch_size, patch_size) at a
    uniform position and the HR patch (r*patch_size)^2 over the same area, then (``augment``) one
    of the 8 orientations of :func:`dihedral` for both. Returns ``(lr, hr)`` float32 (n, 3,
    P, P) and (n, 3, rP, rP) in [0, 1]; RGB images only (train on :func:`as_rgb` images).
    """
    n = checks.positive_int(n, "n")
    patch = checks.positive_int(patch_size, "patch_size")
    scale = checks.positive_int(scale, "scale")
    if not pairs:
        raise ValueError("pairs is empty: give at least one (hr, lr) image pair")
    for hr, lr in pairs:
        if lr.shape[0] < patch or lr.shape[1] < patch:
            raise ValueError(f"patch_size={patch} is larger than an LR image of shape {lr.shape}")
        if hr.shape[:2] != (lr.shape[0] * scale, lr.shape[1] * scale):
            raise ValueError(f"HR shape {hr.shape} is not scale={scale} times LR shape {lr.shape}")
    lr_batch = np.empty((n, patch, patch, 3), dtype=np.uint8)
    hr_batch = np.empty((n, patch * scale, patch * scale, 3), dtype=np.uint8)
    for i in range(n):
        hr, lr = pairs[rng.integers(len(pairs))]
        top, left = rng.integers(lr.shape[0] - patch + 1), rng.integers(lr.shape[1] - patch + 1)
        lr_patch = lr[top:top + patch, left:left + patch]
        hr_patch = hr[top * scale:(top + patch) * scale, left * scale:(left + patch) * scale]
        k = int(rng.integers(8)) if augment else 0
        lr_batch[i], hr_batch[i] = dihedral(lr_patch, k), dihedral(hr_patch, k)
    return to_nchw(lr_batch), to_nchw(hr_batch)


def crop(image, box) -> np.ndarray:
    """``image[top:top+size, left:left+size]`` for ``box = (top, left, size)`` (an HR close-up, Fig. 4 of the
    filter-basis paper); the box must lie inside the image."""
    image = np.asarray(image)
    top, left, size = (int(v) for v in box)
    if top < 0 or left < 0 or size < 1 or top + size > image.shape[0] or left + size > image.shape[1]:
        raise ValueError(f"box={tuple(box)} (top, left, size) must lie inside the {image.shape[0]}x{image.shape[1]} "
                         f"image")
    return image[top:top + size, left:left + size]


def png_base64(image) -> str:
    """A uint8 image as base64 PNG text (lossless, for small crops stored in a result JSON)."""
    import base64
    import io

    from PIL import Image

    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise TypeError(f"image must be uint8 (0..255), got {image.dtype}: convert it with to_uint8 first")
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def from_png_base64(text: str) -> np.ndarray:
    """The uint8 image :func:`png_base64` stored."""
    import base64
    import io

    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(base64.b64decode(text))))
