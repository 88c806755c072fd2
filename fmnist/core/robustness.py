"""How far predict's answers hold up on product-photo-like pictures: made from Fashion-MNIST test images, one kind
of change at a time and all together, then classified through predict's own preprocessing (fmnist/core/images.py).

For each family: the accuracy, the agreement with the model's answers on the 28x28 originals (each with a 95%
Wilson interval), the share of answers below the unsure threshold, and how many pictures were refused (a refused
picture counts as wrong and as disagreeing). The pictures are generated from a seed; no camera took them.
"""
from __future__ import annotations

import concurrent.futures
import io
import math
import os
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageFilter

from fmnist.core import calibration, dataset, images
from fmnist.plumbing.errors import StageError

# What each family changes; `combined` draws every change at once. Ranges: what a product photo on a plain backdrop
# plausibly has (a studio's off-white or grey sweep, any garment colour, framing, a hand-held tilt, soft focus and
# sensor noise, web JPEG quality, a portrait or landscape frame).
FAMILIES = {
    "clean": "4x larger, black garment on pure white, centred",
    "background": "backdrop grey 200-250, tinted ±10 per channel, a gradient and a vignette",
    "colour": "the garment in a random colour (each channel 0-140)",
    "placement": "3-8x larger, anywhere in a frame 1.1-1.8x its size",
    "rotation": "turned by up to ±10°",
    "blur_noise": "Gaussian blur 0.3-1.5 px, then noise σ 1-5 grey levels",
    "jpeg": "saved as JPEG, quality 30-90",
    "aspect": "in a 3:4, 4:3, 2:3 or 3:2 frame",
    "dark_on_white": "28x28 grayscale, the image negated: dark garment on white",
    "combined": "all of the above at once",
}


def photo(garment: np.ndarray, rng: np.random.Generator, family: str) -> Image.Image:
    """A product-photo-like picture of one 28x28 Fashion-MNIST image (light garment on black)."""
    if family == "dark_on_white":
        return Image.fromarray(255 - garment)
    every = family == "combined"
    scale = rng.uniform(3, 8) if family in ("placement", "aspect") or every else 4
    side = round(28 * scale)
    alpha = np.clip(np.asarray(Image.fromarray(garment).resize((side, side), Image.Resampling.BICUBIC),
                               dtype=np.float32) / 255, 0, 1)
    ratio = float(rng.choice([3 / 4, 4 / 3, 2 / 3, 3 / 2])) if family == "aspect" or every else 1.0
    margin = rng.uniform(1.1, 1.8) if family in ("placement", "aspect") or every else 1.25
    width, height = int(side * margin * max(ratio, 1)), int(side * margin / min(ratio, 1))
    if family == "placement" or every:
        x, y = int(rng.integers(0, width - side + 1)), int(rng.integers(0, height - side + 1))
    else:
        x, y = (width - side) // 2, (height - side) // 2
    if family == "background" or every:
        u, v = np.arange(width)[None, :] / width - 0.5, np.arange(height)[:, None] / height - 0.5  # a row, a column
        shading = rng.uniform(-8, 8) * u + rng.uniform(-8, 8) * v - rng.uniform(0, 10) * 2 * (u * u + v * v)
        canvas = np.clip(rng.uniform(200, 250) + rng.uniform(-10, 10, 3), 0, 255)[None, None, :] + shading[..., None]
    else:
        canvas = np.broadcast_to(255.0, (height, width, 3))
    colour = rng.uniform(0, 140, 3) if family == "colour" or every else np.zeros(3)
    # The garment is blended in where it lies; elsewhere the picture is the backdrop (the same bytes as blending
    # the whole frame with a cover of zeros, without a frame-sized pass per step: combined's frames reach 600x400).
    pixels = np.clip(canvas, 0, 255).astype(np.uint8)
    window = np.s_[y:y + side, x:x + side]
    blended = canvas[window] * (1 - alpha[..., None]) + colour * alpha[..., None]
    pixels[window] = np.clip(blended, 0, 255).astype(np.uint8)
    picture = Image.fromarray(pixels, "RGB")
    if family == "rotation" or every:
        backdrop = tuple(int(c) for c in np.clip(canvas[0, 0], 0, 255))
        picture = picture.rotate(rng.uniform(-10, 10), resample=Image.Resampling.BICUBIC, expand=True,
                                 fillcolor=backdrop)
    if family == "blur_noise" or every:
        picture = picture.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.5)))
        noisy = np.asarray(picture, dtype=np.float32) + rng.normal(0, rng.uniform(1, 5), (picture.height,
                                                                                           picture.width, 3))
        picture = Image.fromarray(np.clip(noisy, 0, 255, out=noisy).astype(np.uint8), "RGB")
    if family == "jpeg" or every:
        buffer = io.BytesIO()
        picture.save(buffer, format="JPEG", quality=int(rng.integers(30, 91)))
        picture = Image.open(io.BytesIO(buffer.getvalue()))
        picture.load()
    return picture


def as_garments(scaled: np.ndarray) -> np.ndarray:
    """The uint8 Fashion-MNIST images back from prepare's scaled floats (pixel / 255: exact)."""
    return np.round(scaled * 255).astype(np.uint8)


def wilson(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """The 95% Wilson score interval of a proportion."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def family(found: dict, name: str) -> dict:
    """One family's figures from measure()'s result."""
    return next(entry for entry in found["families"] if entry["family"] == name)


class Pictures(NamedTuple):
    """The photo-like pictures of every family, made once from `garments` and measured on any number of models."""
    garments: np.ndarray  # uint8, Fashion-MNIST form: the test images the pictures were made from
    labels: np.ndarray
    families: dict[str, tuple[np.ndarray, list[int]]]  # family: (the accepted pictures as 28x28 uint8, their indices)


def _family_pictures(garments: np.ndarray, name: str, seed: int) -> tuple[np.ndarray, list[int]]:
    """One family's pictures of `garments` through predict's preprocessing: (the accepted ones, their indices)."""
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])  # a family's draws: its own, in any order
    made, kept = [], []
    for index, garment in enumerate(garments):
        try:
            made.append(images.to_fashion_mnist(photo(garment, rng, name)))
            kept.append(index)
        except images.ImageError:
            pass
    return (np.stack(made) if made else np.zeros((0, 28, 28), dtype=np.uint8)), kept


def make_pictures(test: dataset.Split, count: int, seed: int) -> Pictures:
    """Every family's pictures of the first `count` test images, each family drawn from its own seed, taken through
    predict's own preprocessing; a picture it refuses is left out (and counted against the model in measure()).
    The families are made in processes of their own, one per core: the preprocessing is Python and Pillow, about
    8 ms a picture, and each family's draws are its own, so the pictures do not depend on how many cores there are.
    `combined` goes first: it costs about four times another family, and started last it would run alone at the end
    (the pictures stage: 42-43 -> 36-37 s wall on two cores, the same file)."""
    garments, labels = as_garments(test.x[:count]), test.y[:count]
    workers = min(len(FAMILIES), os.cpu_count() or 1)
    order = sorted(FAMILIES, key=lambda name: name != "combined")
    with concurrent.futures.ProcessPoolExecutor(workers) as pool:
        made = dict(zip(order, pool.map(_family_pictures, [garments] * len(order), order, [seed] * len(order))))
        return Pictures(garments, labels, {name: made[name] for name in FAMILIES})


def save_pictures(pictures: Pictures) -> bytes:
    """The pictures as one .npz file's bytes: the garments, their labels, and each family's pictures and indices."""
    arrays = {"garments": pictures.garments, "labels": pictures.labels}
    for name, (made, kept) in pictures.families.items():
        arrays[f"{name}/pictures"], arrays[f"{name}/indices"] = made, np.asarray(kept, dtype=np.int64)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def load_pictures(path: Path) -> Pictures:
    """What save_pictures wrote (the pictures stage's output); a StageError naming the file if it is not that."""
    try:
        with np.load(path, allow_pickle=False) as arrays:
            families = {name: (arrays[f"{name}/pictures"], arrays[f"{name}/indices"].tolist()) for name in FAMILIES}
            return Pictures(arrays["garments"], arrays["labels"], families)
    except FileNotFoundError:
        raise StageError(f"{path}: not found; run `dvc repro pictures` first") from None
    except (OSError, ValueError, KeyError) as error:
        raise StageError(f"{path}: unreadable pictures ({error}); run `dvc repro pictures` again") from None


def measure(model, pictures: Pictures, threshold: float) -> dict:
    """Every family's figures for `model` (a Keras model) on `pictures`, answers below `threshold` unsure."""
    labels = pictures.labels
    originals = model.predict(dataset.scale(pictures.garments), batch_size=1000, verbose=0).argmax(axis=1)
    right = int((originals == labels).sum())
    found = {"originals": {"accuracy": right / len(labels), "accuracy_interval": wilson(right, len(labels))},
             "families": []}  # a list: in FAMILIES' order, which a JSON object's sorted keys would lose
    for name, what in FAMILIES.items():
        made, kept = pictures.families[name]
        probabilities = (model.predict(dataset.scale(made), batch_size=1000, verbose=0) if len(made)
                         else np.zeros((0, 10), dtype=np.float32))
        answers = np.full(len(labels), -1)  # a refused picture: counted against both accuracy and agreement
        answers[kept] = probabilities.argmax(axis=1)
        n = len(labels)
        correct, agree = int((answers == labels).sum()), int((answers == originals).sum())
        found["families"].append({
            "family": name, "what": what, "accuracy": correct / n, "accuracy_interval": wilson(correct, n),
            "agreement": agree / n, "agreement_interval": wilson(agree, n),
            "unsure": float((probabilities.max(axis=1) < threshold).sum() / n), "refused": n - len(kept)})
    return found


def accuracy_lost(found: dict) -> float:
    """Accuracy on the 28x28 originals minus accuracy with every change at once."""
    return found["originals"]["accuracy"] - family(found, "combined")["accuracy"]


def goal_met(found: dict) -> bool:
    """The aim for photos: with every change at once, the 28x28 answer kept for at least 90% of the pictures and
    at most 5 points of accuracy lost."""
    return family(found, "combined")["agreement"] >= 0.90 and accuracy_lost(found) <= 0.05


def markdown(found: dict) -> str:
    lines = ["| pictures | made how | accuracy (95% CI) | same class as the 28×28 (95% CI) | unsure | refused |",
             "|---|---|---:|---:|---:|---:|"]
    for family in found["families"]:
        name, (low, high) = family["family"], family["accuracy_interval"]
        a_low, a_high = family["agreement_interval"]
        lines.append(f"| {name} | {family['what']} | {family['accuracy']:.3f} ({low:.3f}–{high:.3f}) | "
                     f"{family['agreement']:.3f} ({a_low:.3f}–{a_high:.3f}) | {family['unsure']:.1%} | "
                     f"{family['refused']} |")
    return "\n".join(lines) + "\n"


def assess(model, validation: dataset.Split, pictures: Pictures, sure_accuracy: float) -> tuple[dict, dict]:
    """(the model's calibration on the validation split, its figures on `pictures`): what the assess stage records
    and benchmarks/robustness.py prints."""
    calibrated = calibration.calibrate(model.predict(validation.x, batch_size=1000, verbose=0), validation.y,
                                       sure_accuracy)
    return calibrated, measure(model, pictures, calibrated["threshold"])
