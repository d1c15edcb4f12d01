"""Checks for the ste_backward exercise (chapter 8): the clipped straight-through estimator of sign,
dL/dlatent = dL/dM * 1[|latent| <= 1], element by element."""
import numpy as np

EXERCISE = "ste_backward"


def ste_by_definition(dmasks, latent):
    out = np.zeros_like(dmasks)
    for index in np.ndindex(dmasks.shape):
        if abs(latent[index]) <= 1:
            out[index] = dmasks[index]
    return out


def test_random_latents(implementation):
    rng = np.random.default_rng(0)
    latent, dmasks = rng.uniform(-2, 2, size=200), rng.standard_normal(200)
    np.testing.assert_array_equal(implementation(dmasks, latent), ste_by_definition(dmasks, latent))


def test_inside_the_clip_the_gradient_passes_unchanged(implementation):
    latent = np.array([-0.99, -0.5, 0.0, -0.0, 0.3, 0.999])
    dmasks = np.arange(1.0, 7.0)
    np.testing.assert_array_equal(implementation(dmasks, latent), dmasks)


def test_the_boundary_passes_and_outside_is_zero(implementation):
    latent = np.array([-3.0, -1.0, -1.0001, 1.0, 1.0001, 5.0])
    dmasks = np.full(6, 2.0)
    np.testing.assert_array_equal(implementation(dmasks, latent), [0.0, 2.0, 0.0, 2.0, 0.0, 0.0])


def test_mask_shaped_arrays(implementation):
    rng = np.random.default_rng(1)
    latent, dmasks = rng.normal(0, 1.2, size=(4, 3, 5, 5)), rng.standard_normal((4, 3, 5, 5))
    got = implementation(dmasks, latent)
    assert np.shape(got) == (4, 3, 5, 5), f"shape {np.shape(got)}, expected the shape of dmasks (s, c, d, d)"
    np.testing.assert_array_equal(got, ste_by_definition(dmasks, latent))


def test_keeps_dtype_and_leaves_inputs_alone(implementation):
    rng = np.random.default_rng(2)
    latent, dmasks = rng.uniform(-2, 2, size=(3, 4)).astype(np.float32), rng.standard_normal((3, 4)).astype(np.float32)
    before = latent.copy(), dmasks.copy()
    got = implementation(dmasks, latent)
    assert got.dtype == np.float32, f"dtype {got.dtype}, expected the dtype of dmasks (float32)"
    np.testing.assert_array_equal(latent, before[0])
    np.testing.assert_array_equal(dmasks, before[1])
