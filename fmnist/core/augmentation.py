"""Random changes to training images, as one layer: a variant's `augmentation` (params.yaml).

Each image gets its own turn, shift and zoom, composed into one affine map and applied in one bilinear resampling
(pixels from outside the image are 0, Fashion-MNIST's black background), then its own contrast and brightness.
Keras's five random layers (RandomRotation, RandomTranslation, RandomZoom, RandomContrast, RandomBrightness) do the
same with three resamplings and no XLA kernel; this one is keras.ops only, so the seeds' stack trains under XLA,
and it is vectorised over the stacked replicates (fmnist.core.replicates). Six uniform draws an image, from the
layer's own generator:

    angle  = rotation · 2π · (2u₀ − 1)         shift = translation · 28 · (2u₁ − 1, 2u₂ − 1)
    scale  = 1 + zoom · (2u₃ − 1)              (above 1 the garment looks larger)
    source = centre + R(−angle) · (target − centre − shift) / scale      for every output pixel, bilinear
    image  = clip((image − its mean) · (1 + contrast · (2u₄ − 1)) + its mean, 0, 1)
    image  = clip(image + brightness · (2u₅ − 1), 0, 1)

In training only: at inference the layer passes images through unchanged, so evaluation and `predict` see them as
they are. On TensorFlow the transform is one XLA computation wherever it runs (compiled()), so a lone model and
its replicate in the stack change images with the same arithmetic. Import only after fmnist.core.backend.use()
(it imports keras).
"""
from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

from fmnist.core.idx import IMAGE_SHAPE

DRAWS = 6  # uniforms an image: angle, shift x, shift y, scale, contrast, brightness
HEIGHT, WIDTH = IMAGE_SHAPE
PIXELS = HEIGHT * WIDTH
_rows, _columns = np.meshgrid(np.arange(HEIGHT, dtype=np.float32), np.arange(WIDTH, dtype=np.float32), indexing="ij")
# Every output pixel's (x, y) about the image's centre, in row-major order.
TARGET_X = (_columns.reshape(-1) - (WIDTH - 1) / 2).astype(np.float32)
TARGET_Y = (_rows.reshape(-1) - (HEIGHT - 1) / 2).astype(np.float32)


def draw(generator: keras.random.SeedGenerator, images: int):
    """(images, DRAWS) uniforms in [0, 1) from `generator`: one image's changes a row."""
    return keras.random.uniform((images, DRAWS), seed=generator)


def transform(flat, uniforms, *, rotation: float, translation: float, zoom: float, contrast: float, brightness: float):
    """(N, 784) images in 0-1, each changed by its row of (N, DRAWS) uniforms (the module's formulas)."""
    spread = 2.0 * uniforms - 1.0  # each in [-1, 1)
    angle = rotation * 2.0 * math.pi * spread[:, 0:1]
    shift_x, shift_y = translation * WIDTH * spread[:, 1:2], translation * HEIGHT * spread[:, 2:3]
    scale = 1.0 + zoom * spread[:, 3:4]
    cos, sin = ops.cos(angle), ops.sin(angle)
    dx, dy = TARGET_X[None, :] - shift_x, TARGET_Y[None, :] - shift_y  # (N, 784)
    source_x = (cos * dx + sin * dy) / scale + (WIDTH - 1) / 2
    source_y = (cos * dy - sin * dx) / scale + (HEIGHT - 1) / 2
    left, top = ops.floor(source_x), ops.floor(source_y)
    right_share, bottom_share = source_x - left, source_y - top
    resampled = 0.0
    for column, row, weight in ((left, top, (1 - right_share) * (1 - bottom_share)),
                                (left + 1, top, right_share * (1 - bottom_share)),
                                (left, top + 1, (1 - right_share) * bottom_share),
                                (left + 1, top + 1, right_share * bottom_share)):
        inside = ops.logical_and(ops.logical_and(column >= 0, column <= WIDTH - 1),
                                 ops.logical_and(row >= 0, row <= HEIGHT - 1))
        index = ops.cast(ops.clip(row, 0, HEIGHT - 1) * WIDTH + ops.clip(column, 0, WIDTH - 1), "int32")
        resampled = resampled + ops.take_along_axis(flat, index, axis=1) * weight * ops.cast(inside, flat.dtype)
    mean = ops.mean(resampled, axis=1, keepdims=True)
    changed = ops.clip((resampled - mean) * (1.0 + contrast * spread[:, 4:5]) + mean, 0.0, 1.0)
    return ops.clip(changed + brightness * spread[:, 5:6], 0.0, 1.0)


def compiled():
    """transform as the layers run it. On TensorFlow, one XLA computation: Keras's fit leaves XLA off on a CPU
    (jit_compile "auto"), so a lone model would run the transform's ~50 small ops one by one, seed 42's augmented
    epoch 3.9 s against 2.3 s compiled (docs/speed.md); the stack is compiled whole either way. JAX compiles it
    with the step."""
    if keras.backend.backend() != "tensorflow":
        return transform
    import tensorflow as tf

    return tf.function(transform, jit_compile=True, reduce_retracing=True)


apply = compiled()  # transform as both layers run it


@keras.saving.register_keras_serializable(package="fmnist")
class RandomAugmentation(keras.layers.Layer):
    """A lone model's augmentation: (batch, 28, 28) images in 0-1, each changed by draws from this layer's own
    generator (seeded by `seed`), in training only."""

    def __init__(self, *, rotation=0.0, translation=0.0, zoom=0.0, contrast=0.0, brightness=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.factors = {"rotation": rotation, "translation": translation, "zoom": zoom, "contrast": contrast,
                        "brightness": brightness}
        self.seed = seed
        self.generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=False):
        if not training:
            return images
        flat = ops.reshape(images, (-1, PIXELS))
        changed = apply(flat, draw(self.generator, ops.shape(flat)[0]), **self.factors)
        return ops.reshape(changed, ops.shape(images))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), **self.factors, "seed": self.seed}
