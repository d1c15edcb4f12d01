"""Super-resolution pieces: the protocol of :mod:`minilib.sr` (Y, PSNR, MATLAB-style bicubic, patches)
and the small EDSR of :mod:`minilib.torch.edsr` (shapes, parameter counts, basis sharing, seeding).

Hand-computed values are derived in the comments, so a reader can check them with pencil and paper.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from data_full import needs_data

from minilib import sr

needs_sr_data = needs_data("sr/Set5/bird.png", "SR images")


# ----------------------------------------------------------------------------- PSNR and Y
def test_psnr_equals_a_hand_computed_value():
    a = np.zeros((4, 4))
    b = a.copy()
    b[1, 2] = 16.0                      # one error of 16 among 16 pixels: MSE = 16^2 / 16 = 16
    assert sr.psnr(a, b) == pytest.approx(36.0896037821, abs=1e-9)        # 10 log10(255^2 / 16)
    b[0, 0] = 8.0                       # MSE = (256 + 64) / 16 = 20; peak 1 instead of 255
    assert sr.psnr(a / 255, b / 255, peak=1.0) == pytest.approx(10 * math.log10(255 ** 2 / 20), abs=1e-9)


def test_identical_images_give_inf_and_the_border_is_removed_before_the_mse():
    a = np.full((6, 6), 100.0)
    assert sr.psnr(a, a) == math.inf
    b = a.copy()
    b[0, :] = 0.0                       # errors only in the outermost ring ...
    b[:, 5] = 0.0
    assert sr.psnr(a, b, border=1) == math.inf      # ... vanish with a border of 1
    b[2, 3] = 104.0                     # inner 4x4: one error of 4, MSE = 1
    assert sr.psnr(a, b, border=1) == pytest.approx(20 * math.log10(255), abs=1e-9)
    assert sr.shave(np.arange(36).reshape(6, 6), 2).tolist() == [[14, 15], [20, 21]]


def test_y_of_pure_colours_follows_bt601():
    colours = np.array([[[255, 255, 255], [0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255]]], dtype=np.uint8)
    # 16 + 65.481 R + 128.553 G + 24.966 B with RGB in [0, 1]
    np.testing.assert_allclose(sr.rgb_to_y(colours), [[235.0, 16.0, 81.481, 144.553, 40.966]], atol=1e-12)
    np.testing.assert_allclose(sr.rgb_to_y(np.array([[255, 0]], dtype=np.uint8)), [[235.0, 16.0]], atol=1e-12)  # gray
    assert sr.psnr_y(colours, colours, border=0) == math.inf


def test_images_must_hold_numbers():
    with pytest.raises(TypeError, match="dtype <U1"):
        sr.rgb_to_y(np.array([["a"]]))


def test_to_uint8_rounds_half_up_and_clips():
    assert sr.to_uint8([-3.0, 0.5, 1.5, 2.5, 254.5, 300.0]).tolist() == [0, 1, 2, 3, 255, 255]


@pytest.mark.parametrize("call, match", [
    (lambda: sr.psnr(np.zeros((4, 4)), np.zeros((4, 5))), "same shape"),
    (lambda: sr.psnr(np.zeros((4, 4)), np.zeros((4, 4)), border=2), "border=2"),
    (lambda: sr.psnr(np.zeros((4, 4)), np.zeros((4, 4)), peak=0), "peak"),
    (lambda: sr.rgb_to_y(np.zeros((4, 4, 4))), r"\(H, W, 3\)"),
    (lambda: sr.imresize(np.zeros((4, 4)), 0), "scale=0"),
    (lambda: sr.imresize(np.zeros((4, 4)), -2.0), "scale=-2.0"),
    (lambda: sr.imresize(np.zeros((4, 4)), float("nan")), "scale=nan"),
    (lambda: sr.imresize(np.zeros((4, 4)), True), "scale=True"),
    (lambda: sr.imresize(np.zeros(4), 2), r"\(H, W\)"),
    (lambda: sr.modcrop(np.zeros((1, 5, 3)), 2), "smaller than scale=2"),
    (lambda: sr.dihedral(np.zeros((2, 2)), 8), "k=8"),
    (lambda: sr.from_nchw(np.zeros((4, 2, 2))), r"\(3, H, W\)"),
])
def test_bad_arguments_raise_clear_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ----------------------------------------------------------------------------- bicubic resize
def test_cubic_kernel_at_hand_computed_points():
    # a = -0.5: 1.5|x|^3 - 2.5|x|^2 + 1 on [0, 1], -0.5|x|^3 + 2.5|x|^2 - 4|x| + 2 on (1, 2)
    np.testing.assert_allclose(sr.cubic([0, 0.5, 1, 1.5, 2, -0.5, 3]), [1, 0.5625, 0, -0.0625, 0, 0.5625, 0],
                               atol=1e-15)


def test_resize_matrix_matches_hand_computed_rows():
    # x2 up, output 0 sits at u = 0.5/2 - 0.5 = -0.25: taps -2..1 at distances 1.75, 0.75, -0.25, -1.25
    # with weights -0.0234375, 0.2265625, 0.8671875, -0.0703125; taps -2, -1 mirror onto 1, 0.
    up = sr.resize_matrix(4, 8, 2.0)
    np.testing.assert_allclose(up[0], [0.2265625 + 0.8671875, -0.0234375 - 0.0703125, 0, 0], atol=1e-15)
    # output 1 at u = 0.25: taps -1..2 at 1.25, 0.25, -0.75, -1.75; tap -1 mirrors onto 0
    np.testing.assert_allclose(up[1], [-0.0703125 + 0.8671875, 0.2265625, -0.0234375, 0], atol=1e-15)
    # x0.5 down, antialiased: h(x) = 0.5 cubic(0.5 x), 8 taps. Output 1 sits at u = 1.5/0.5 - 0.5 = 2.5:
    # taps -1..7 at distances 3.5 .. -4.5 give 0.5 cubic(1.75, 1.25, 0.75, 0.25, 0.25, 0.75, 1.25, 1.75, 2.25);
    # tap -1 mirrors onto 0.
    down = sr.resize_matrix(8, 4, 0.5)
    expected = [-0.01171875 - 0.03515625, 0.11328125, 0.43359375, 0.43359375, 0.11328125, -0.03515625,
                -0.01171875, 0.0]
    np.testing.assert_allclose(down[1], expected, atol=1e-15)
    # without antialiasing the kernel is not widened: 4 taps around u = 2.5
    np.testing.assert_allclose(sr.resize_matrix(8, 4, 0.5, antialias=False)[1],
                               [0, -0.0625, 0.5625, 0.5625, -0.0625, 0, 0, 0], atol=1e-15)
    # the same numbers through imresize on a 1-pixel-wide image (the width-1 axis stays an identity)
    column = np.zeros((8, 1))
    column[3, 0] = 1.0
    assert sr.imresize(column, 0.5)[:, 0] == pytest.approx(down[:, 3], abs=1e-15)


@pytest.mark.parametrize("scale", [0.5, 1 / 3, 0.25, 2.0, 3.0, 1.5])
def test_imresize_keeps_constants_and_has_matlab_output_sizes(scale):
    image = np.full((12, 18, 3), 77.0)
    out = sr.imresize(image, scale)
    assert out.shape == (math.ceil(12 * scale - 1e-9), math.ceil(18 * scale - 1e-9), 3)
    np.testing.assert_allclose(out, 77.0, atol=1e-10)


def test_downsampling_an_upsampled_image_restores_its_shape():
    image = np.random.default_rng(0).uniform(0, 255, (10, 14, 3))
    up = sr.imresize(image, 2.0)
    assert up.shape == (20, 28, 3) and sr.imresize(up, 0.5).shape == image.shape
    assert sr.imresize(np.zeros((7, 9)), 0.5).shape == (4, 5)           # ceil, as MATLAB


@pytest.mark.parametrize("scale, margin", [(0.5, 2), (0.25, 2), (2.0, 5), (3.0, 7)])
def test_imresize_matches_torch_antialiased_bicubic_away_from_the_borders(scale, margin):
    """torch's ``interpolate(mode="bicubic", antialias=True)`` uses the same a = -0.5 kernel, widened when
    downsampling, and the same pixel-centre alignment; it renormalises the taps cut off at an edge where
    MATLAB mirrors them. So they agree to float64 rounding except within ``margin`` output pixels of an edge
    (the kernel's reach: 2 output pixels when downsampling, 2.5 r - 0.5 when upsampling by r), where random
    noise differs by up to about 14 grey levels."""
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    image = np.random.default_rng(1).uniform(0, 255, (64, 80, 3))
    theirs = F.interpolate(torch.from_numpy(image.transpose(2, 0, 1)[None].copy()), scale_factor=scale,
                           mode="bicubic", antialias=True, align_corners=False)[0].numpy().transpose(1, 2, 0)
    ours = sr.imresize(image, scale)
    assert ours.shape == theirs.shape
    inner = (slice(margin, -margin), slice(margin, -margin))
    np.testing.assert_allclose(ours[inner], theirs[inner], rtol=0, atol=1e-9)
    assert np.abs(ours - theirs).max() < 20.0
    assert np.abs(ours - theirs).max() > 0.1, "the borders differ (mirroring vs renormalising)"


@needs_sr_data
def test_bicubic_on_set5_reproduces_the_literature():
    """Bicubic x2 on Set5 is 33.66 dB in the SR literature (MATLAB, Y rounded to integers); ours, with Y not
    rounded, must land within 0.05 dB: a wrong kernel (a = -0.75) or no antialiasing misses by more."""
    from minilib.data import load_sr_images

    scores = []
    for image in load_sr_images("Set5").values():
        hr, lr = sr.make_lr(sr.as_rgb(image), 2)
        scores.append(sr.psnr_y(sr.bicubic_upscale(lr, 2), hr, border=2))
    assert np.mean(scores) == pytest.approx(33.66, abs=0.05)


# ----------------------------------------------------------------------------- protocol and patches
def test_make_lr_crops_to_a_multiple_of_the_scale_and_rounds_to_uint8():
    image = np.random.default_rng(2).integers(0, 256, (13, 17, 3), dtype=np.uint8)
    hr, lr = sr.make_lr(image, 2)
    assert hr.shape == (12, 16, 3) and lr.shape == (6, 8, 3) and lr.dtype == np.uint8
    np.testing.assert_array_equal(hr, image[:12, :16])
    np.testing.assert_array_equal(lr, sr.to_uint8(sr.imresize(hr, 0.5)))
    assert sr.as_rgb(np.zeros((3, 4), dtype=np.uint8)).shape == (3, 4, 3)


def test_dihedral_gives_the_eight_distinct_orientations():
    image = np.arange(9).reshape(3, 3)
    orientations = {sr.dihedral(image, k).tobytes() for k in range(8)}
    assert len(orientations) == 8 and sr.dihedral(image, 0).tobytes() == image.tobytes()


def test_patches_are_aligned_in_every_orientation():
    rng = np.random.default_rng(3)
    # HR made of 2x2 blocks of the LR pixels: an HR patch is aligned with its LR patch iff it is exactly
    # the LR patch with every pixel repeated 2x2, whichever flip or rotation both received
    pairs = []
    for shape in [(10, 12, 3), (9, 15, 3)]:
        lr = rng.integers(0, 256, shape, dtype=np.uint8)
        pairs.append((np.kron(lr, np.ones((2, 2, 1), dtype=np.uint8)), lr))
    lr_batch, hr_batch = sr.sample_patches(pairs, 32, 5, 2, rng)
    assert lr_batch.shape == (32, 3, 5, 5) and hr_batch.shape == (32, 3, 10, 10)
    assert lr_batch.dtype == np.float32 and 0.0 <= lr_batch.min() and lr_batch.max() <= 1.0
    np.testing.assert_array_equal(hr_batch, lr_batch.repeat(2, axis=2).repeat(2, axis=3))
    with pytest.raises(ValueError, match="patch_size=11"):
        sr.sample_patches(pairs, 1, 11, 2, rng)
    with pytest.raises(ValueError, match="scale=3"):
        sr.sample_patches(pairs, 1, 4, 3, rng)


# ----------------------------------------------------------------------------- the network
BLOCK_COUNTS = {        # per residual block, biases included (see minilib.torch.edsr), width w = 32
    "baseline": ({}, 2 * (9 * 32 * 32 + 32), 0),                                       # 18,496
    "basis": ({"method": "basis", "n_basis": 16, "basis_channels": 8},                 # s = 4 splits
              2 * (9 * 16 * 8 + 32 * 4 * 16 + 32), 0),                                   # 6,464
    "shared": ({"method": "basis", "n_basis": 16, "basis_channels": 8, "share_basis": True},
               9 * 16 * 8 + 2 * (32 * 4 * 16 + 32), 0),                                    # 5,312
    "basis-s1": ({"method": "basis", "n_basis": 8, "basis_channels": 32},
                 2 * (9 * 8 * 32 + 32 * 8 + 32), 0),                                       # 5,184
    "mvnet-b": ({"method": "fullstack", "s": 4}, 2 * (9 * 8 * 32 + 32), 2 * 9 * 32 * 32),     # 4,672 + 18,432 bits
    "versatile": ({"method": "versatile"}, 2 * (9 * 32 * 16 + 32), 0),                     # P = 16 primaries: 9,280
}


@pytest.mark.parametrize("name", BLOCK_COUNTS)
def test_edsr_upscales_and_its_blocks_have_the_hand_computed_counts(name):
    torch = pytest.importorskip("torch")
    from minilib.accounting import summarize
    from minilib.torch.edsr import edsr

    kwargs, params, mask_bits = BLOCK_COUNTS[name]
    model = edsr(rng=np.random.default_rng(0), **kwargs)
    assert model(torch.rand(2, 3, 7, 9)).shape == (2, 3, 14, 18)
    block = summarize(model.blocks[0], (32, 6, 6))
    assert (block.params, block.mask_bits) == (params, mask_bits)
    if name != "mvnet-b":               # every float parameter is stored (mvnet-b's latents become 1-bit masks)
        assert sum(p.numel() for p in model.blocks[0].parameters()) == params
    # head 3->32, closing conv 32->32, upsampler 32->128, tail 32->3, all 3x3 with bias, stay standard
    standard = (9 * 3 * 32 + 32) + (9 * 32 * 32 + 32) + (9 * 32 * 128 + 128) + (9 * 32 * 3 + 3)
    assert summarize(model, (3, 6, 6)).params == standard + 4 * params
    assert edsr(scale=3, width=8, n_blocks=1)(torch.rand(1, 3, 5, 4)).shape == (1, 3, 15, 12)


def test_a_shared_basis_is_one_parameter_fed_by_both_convs():
    torch = pytest.importorskip("torch")
    from minilib.torch.edsr import ResidualBlock

    torch.manual_seed(0)
    shared = ResidualBlock(8, "basis", share_basis=True, rng=np.random.default_rng(0), n_basis=4, basis_channels=4)
    assert shared.conv1.basis is shared.conv2.basis is shared.shared_basis.basis
    assert [name for name, _ in shared.named_parameters() if name.endswith("basis")] == ["shared_basis.basis"]
    # the same block with two separate copies of that basis: the shared gradient must be their sum
    separate = ResidualBlock(8, "basis", rng=np.random.default_rng(1), n_basis=4, basis_channels=4)
    # the shared basis is listed under conv1.basis and conv2.basis too, as minilib.torch.BasisConv2d documents
    separate.load_state_dict({key: value for key, value in shared.state_dict().items()
                              if not key.startswith("shared_basis.")})
    assert separate.conv1.basis.equal(separate.conv2.basis) and separate.conv1.basis is not separate.conv2.basis
    x = torch.rand(2, 8, 5, 5)
    shared(x).square().sum().backward()
    separate(x).square().sum().backward()
    grad1, grad2 = separate.conv1.basis.grad, separate.conv2.basis.grad
    assert grad1.abs().sum() > 0 and grad2.abs().sum() > 0
    torch.testing.assert_close(shared.shared_basis.basis.grad, grad1 + grad2, rtol=1e-5, atol=1e-6)


def test_the_same_rng_seed_gives_the_same_network():
    pytest.importorskip("torch")
    from minilib.torch.edsr import edsr

    variants = [{}, {"method": "basis", "n_basis": 8, "basis_channels": 16, "share_basis": True},
                {"method": "fullstack", "s": 8}, {"method": "versatile", "delta": 2, "g": 2}]
    for kwargs in variants:
        first, again = edsr(rng=np.random.default_rng(5), **kwargs), edsr(rng=np.random.default_rng(5), **kwargs)
        other = edsr(rng=np.random.default_rng(6), **kwargs)
        for key, value in first.state_dict().items():
            assert value.equal(again.state_dict()[key]), key
        assert not first.head.weight.equal(other.head.weight)
        assert not first.blocks[0].conv1.bias.equal(other.blocks[0].conv1.bias)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"method": "pruned"}, ValueError, "method"),
    ({"method": "basis", "n_basis": 8, "basis_channels": 3}, ValueError, "basis_channels=3 must divide width=32"),
    ({"method": "basis", "n_basis": 8, "splits": 4}, TypeError, "takes the keywords .* not splits=4"),
    ({"method": "fullstack", "s": 5}, ValueError, "s=5 must divide width=32"),
    ({"share_basis": True}, ValueError, "share_basis=True needs method='basis'"),
    ({"method": "basis", "basis_channels": 16}, TypeError, "needs n_basis="),
    ({"method": "fullstack"}, TypeError, "s="),
    ({"method": "baseline", "s": 4}, TypeError, "takes the keywords"),
    ({"width": 0}, ValueError, "width=0"),
    ({"res_scale": 0}, ValueError, "res_scale"),
    ({"rng": "0"}, TypeError, "rng"),      # an int seed is a valid rng (issue 21); a string is not
])
def test_edsr_refuses_bad_arguments(kwargs, error, match):
    pytest.importorskip("torch")
    from minilib.torch.edsr import edsr

    with pytest.raises(error, match=match):
        edsr(**kwargs)


def test_crops_round_trip_through_png_text_exactly():
    image = np.random.default_rng(0).integers(0, 256, size=(20, 30, 3), dtype=np.uint8)
    close_up = sr.crop(image, (4, 10, 8))
    np.testing.assert_array_equal(close_up, image[4:12, 10:18])
    np.testing.assert_array_equal(sr.from_png_base64(sr.png_base64(close_up)), close_up)
    with pytest.raises(ValueError, match="inside"):
        sr.crop(image, (15, 0, 8))
    with pytest.raises(TypeError, match="uint8"):
        sr.png_base64(close_up.astype(np.float64))
