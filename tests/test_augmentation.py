"""The random image changes' arithmetic (fmnist.core.augmentation.transform) against NumPy's exact versions: a
quarter turn is np.rot90, a whole-pixel shift is a shift with zeros coming in, contrast and brightness are their
formulas, and no change is no change."""
import numpy as np
import pytest

from fmnist.core import backend

backend.use("tensorflow")

from fmnist.core.augmentation import DRAWS, transform  # noqa: E402

IMAGES = np.random.default_rng(0).random((3, 28, 28)).astype(np.float32)
NONE = {"rotation": 0.0, "translation": 0.0, "zoom": 0.0, "contrast": 0.0, "brightness": 0.0}


def changed(draw: dict[int, float], **factors) -> np.ndarray:
    """The images changed with every uniform at 0.5 (no change) but those in `draw` (index: value)."""
    uniforms = np.full((len(IMAGES), DRAWS), 0.5, dtype=np.float32)
    for index, value in draw.items():
        uniforms[:, index] = value
    return np.asarray(transform(IMAGES.reshape(len(IMAGES), -1), uniforms, **(NONE | factors))).reshape(IMAGES.shape)


def test_no_change_leaves_the_images_as_they_are():
    np.testing.assert_allclose(changed({}, rotation=0.1, translation=0.1, zoom=0.1, contrast=0.3, brightness=0.2),
                               IMAGES, atol=1e-6)
    np.testing.assert_allclose(changed({0: 0.9, 1: 0.1, 3: 0.7}), IMAGES, atol=1e-6)  # every factor 0


@pytest.mark.parametrize("uniform, turns", [(1.0, 3), (0.0, 1)])
def test_a_quarter_turn_is_rot90(uniform, turns):
    np.testing.assert_allclose(changed({0: uniform}, rotation=0.25), np.rot90(IMAGES, turns, axes=(1, 2)), atol=1e-5)


def test_a_whole_pixel_shift_moves_the_image_and_fills_with_zeros():
    right = np.zeros_like(IMAGES)
    right[:, :, 3:] = IMAGES[:, :, :-3]
    np.testing.assert_allclose(changed({1: 1.0}, translation=3 / 28), right, atol=1e-6)
    up = np.zeros_like(IMAGES)
    up[:, :-2, :] = IMAGES[:, 2:, :]
    np.testing.assert_allclose(changed({2: 0.0}, translation=2 / 28), up, atol=1e-6)


def test_a_zoom_in_magnifies_about_the_centre_by_bilinear_interpolation():
    """Scale 2: output pixel (13, 13) samples the source at (13.25, 13.25), a quarter of the way to (14, 14)."""
    zoomed = changed({3: 1.0}, zoom=1.0)
    source = IMAGES[:, 13:15, 13:15]
    expected = (source[:, 0, 0] * 0.75 * 0.75 + source[:, 0, 1] * 0.25 * 0.75 + source[:, 1, 0] * 0.75 * 0.25
                + source[:, 1, 1] * 0.25 * 0.25)
    np.testing.assert_allclose(zoomed[:, 13, 13], expected, atol=1e-6)
    assert np.all(changed({3: 0.0}, zoom=0.5)[:, 0, :] == 0)  # zoomed out by half: a black border comes in


def test_contrast_and_brightness_are_their_formulas_clipped_to_0_1():
    mean = IMAGES.mean(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(changed({4: 1.0}, contrast=0.5), np.clip((IMAGES - mean) * 1.5 + mean, 0, 1), atol=1e-6)
    np.testing.assert_allclose(changed({5: 0.0}, brightness=0.2), np.clip(IMAGES - 0.2, 0, 1), atol=1e-6)
