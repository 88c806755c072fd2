"""Classify your own pictures with a trained model: the top classes of each PNG or JPEG, as a table or JSON.

    python -m fmnist.tools.predict --export-samples samples/   # ten test images as PNG, one of each class
    python -m fmnist.tools.predict samples/ shirt.jpg          # models/best (the select stage's choice)
    python -m fmnist.tools.predict --variant relu100 shirt.jpg # or any trained variant, or --model FILE

Pictures are made into Fashion-MNIST images first (fmnist.core.images), one at a time, each answer printed as it
comes. A picture that cannot be read for any reason (damaged, too large, not a product photo: its border is not one
plain backdrop), gets one line on standard error; the others are still classified, and the exit status is then 1.
An answer less confident than the model's calibrated threshold (fmnist/core/calibration.py) is marked unsure.
Run from the repository root (models/, reports/ and data/ are found there).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from fmnist.core import backend, calibration, dataset, images, results
from fmnist.core.dataset import CLASS_NAMES
from fmnist.core.idx import IMAGE_SHAPE, NUM_CLASSES
from fmnist.plumbing import atomic, params, paths, quiet
from fmnist.plumbing.errors import StageError
from fmnist.plumbing.runner import run
from fmnist.schema.reporting import SelectParams
from fmnist.schema.training import VariantsParams

SAMPLES_PER_CLASS = 1  # --export-samples: the first test image of each class


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m fmnist.tools.predict", description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", type=Path, metavar="PATH", help="PNG or JPEG files, or folders of them")
    chosen = parser.add_mutually_exclusive_group()
    chosen.add_argument("--variant", metavar="NAME", help="a trained variant of params.yaml (default: models/best)")
    chosen.add_argument("--model", metavar="FILE", type=Path, help="a Keras model file (.keras)")
    parser.add_argument("--top", type=int, default=3, choices=range(1, NUM_CLASSES + 1), metavar="K",
                        help="classes shown per image (1-10, default 3)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--export-samples", metavar="DIR", type=Path,
                        help="write test-set images as PNG into DIR (one of each class), to try predict on")
    args = parser.parse_args(argv)
    if not args.paths and args.export_samples is None:
        parser.error("give at least one PATH (or --export-samples DIR)")
    return args


def model_file(args: argparse.Namespace) -> tuple[Path, str]:
    """(the model file to use, what it is) from --model, --variant or models/best; missing ones say what makes them."""
    if args.model is not None:
        if not args.model.is_file():
            raise StageError(f"{args.model}: model file not found")
        return args.model, str(args.model)
    if args.variant is not None:
        variants = params.load(VariantsParams).root
        if args.variant not in variants:
            raise StageError(f"--variant {args.variant}: not declared in params.yaml (declared: {', '.join(variants)})")
        details = results.read_json(paths.details_file(args.variant), args.variant)
        path = paths.MODELS_DIR / args.variant / details["evaluated_file"]
        if not path.is_file():
            raise StageError(f"{path}: not found; run `dvc repro train@{args.variant}`, or `dvc pull {path.parent}` "
                             "to fetch it from the remote")
        return path, f"variant {args.variant}"
    path = paths.BEST_DIR / paths.BEST_MODEL_FILE
    if not path.is_file():
        raise StageError(f"{path}: not found; run `dvc repro select` to make it, or `dvc pull {paths.BEST_DIR}` "
                         "to fetch it from the remote")
    try:
        variant = json.loads((paths.BEST_DIR / paths.SELECTION_FILE).read_text())["variant"]
    except (OSError, ValueError, KeyError):
        variant = "unknown variant"
    return path, f"models/best: {variant}"


def load_model(path: Path):
    """The Keras model at path, checked to take 28x28 images and give 10 class probabilities."""
    quiet.filter_stderr()  # TensorFlow's start-up notices
    backend.use(backend.requested())
    from fmnist.core import models  # keras: only once the backend is chosen

    model = models.load(path)
    if tuple(model.input_shape[1:]) != IMAGE_SHAPE or tuple(model.output_shape[1:]) != (NUM_CLASSES,):
        raise StageError(f"{path}: takes {model.input_shape} and gives {model.output_shape}; a Fashion-MNIST "
                         f"model takes (None, 28, 28) and gives (None, {NUM_CLASSES})")
    return model


def unsure_below(path: Path, model) -> tuple[float | None, str]:
    """(the confidence below which an answer is unsure, where it comes from): models/best's calibration from the
    select stage; for another model the same rule on data/prepared's validation split, if it is there."""
    if path == paths.BEST_DIR / paths.BEST_MODEL_FILE:
        try:
            calibrated = json.loads((paths.BEST_DIR / paths.SELECTION_FILE).read_text())["calibration"]
            return calibrated["threshold"], "calibrated on the validation split by the select stage"
        except (OSError, ValueError, KeyError):
            pass  # an older models/best: calibrate it here, as any other model
    try:
        validation = dataset.load_prepared("val")
    except StageError:
        return None, "not calibrated: no data/prepared/val.npz (run `dvc repro prepare`), so no answer is marked unsure"
    rule = params.load(SelectParams)
    probabilities = model.predict(validation.x, batch_size=1000, verbose=0)  # prepared: scaled already
    threshold, _, _ = calibration.sure_threshold(probabilities, validation.y, rule.sure_accuracy)
    return threshold, f"calibrated now on the validation split (select.sure_accuracy {rule.sure_accuracy:.0%})"


def top_classes(probabilities: np.ndarray, k: int) -> list[dict]:
    order = np.argsort(-probabilities, kind="stable")[:k]
    return [{"class": CLASS_NAMES[i], "probability": float(probabilities[i])} for i in order]


def shown(path: Path) -> str:
    """A file name as it can be printed: bytes that are not UTF-8 as \\xNN, control characters (an escape sequence
    would reach the terminal) escaped."""
    text = os.fsencode(path).decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def table_header(width: int, k: int) -> str:
    ordinals = ("1st", "2nd", "3rd", *(f"{n}th" for n in range(4, k + 1)))[:k]
    return (f"{'image':<{width}}  " + "  ".join(f"{ordinal:<19}" for ordinal in ordinals)).rstrip()


def table_row(name: str, top: list[dict], unsure: bool, width: int) -> str:
    cells = "  ".join(f"{entry['class']:<12} {entry['probability']:>6.1%}" for entry in top)
    return f"{name:<{width}}  {cells}{'  unsure' if unsure else ''}"


def read_each(files: list[Path]) -> Iterator[tuple[Path, np.ndarray | None, str]]:
    """(file, its Fashion-MNIST image or None, why not) for each file in turn: any failure of one file, a
    MemoryError included, is that file's line, and the next is read."""
    for file in files:
        image, problem = None, ""
        try:
            image = images.read(file)
        except images.ImageError as error:
            problem = str(error)
        except MemoryError:
            problem = "out of memory while reading it; it needs more than this machine has free"
        except Exception as error:  # a library's own error on a file nobody foresaw: that file's line, not the batch's
            problem = f"could not be read ({type(error).__name__}: {error})"
        yield file, image, problem


def export_samples(folder: Path) -> list[Path]:
    """The first test image of each class as a 28x28 grayscale PNG, its class in the file name."""
    missing = [paths.RAW_DIR / name for name in dataset.FILES["test"] if not (paths.RAW_DIR / name).is_file()]
    if missing:
        raise StageError(f"{missing[0]}: not found; run `dvc repro download`, or `dvc pull {paths.RAW_DIR}` to "
                         "fetch it from the remote")
    test_images, test_labels = dataset.load_raw("test")
    written = []
    for label, class_name in enumerate(CLASS_NAMES):
        for index in np.flatnonzero(test_labels == label)[:SAMPLES_PER_CLASS]:
            slug = re.sub(r"[^a-z]+", "-", class_name.lower()).strip("-")
            path = folder / f"{label}-{slug}-test{index:05d}.png"
            with atomic.atomic_path(path) as tmp:
                images.to_png(test_images[index], tmp)
            written.append(path)
    return written


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.export_samples is not None:
        written = export_samples(args.export_samples)
        print(f"{args.export_samples}: wrote {len(written)} test images as PNG, one of each class "
              f"(try: python -m fmnist.tools.predict {args.export_samples})",
              file=sys.stderr if args.json else sys.stdout)
        if not args.paths:
            return
    path, what = model_file(args)
    found = [(given, images.find(given)) for given in args.paths]
    files = [file for _, listed in found for file in listed]
    width = max([len("image"), *(len(shown(file)) for file in files)])
    model, threshold, calibrated = None, None, ""
    if files:
        model = load_model(path)
        threshold, calibrated = unsure_below(path, model)
        if not args.json:
            print(f"model: {path} ({what})")
            print(f"unsure: a top class below {threshold:.1%} ({calibrated})" if threshold is not None
                  else f"unsure: {calibrated}")
            print(table_header(width, args.top), flush=True)

    # Each picture is read, classified and printed in turn, so a long batch shows its answers as they come.
    predictions, problems = [], []
    for given, listed in found:
        if not listed:  # only a folder can come back empty
            problems.append((shown(given), f"a folder with no {' or '.join(images.FORMATS)} files in it"))
            print(f"error: {problems[-1][0]}: {problems[-1][1]}", file=sys.stderr, flush=True)
        for file, image, problem in read_each(listed):
            if image is None:
                problems.append((shown(file), problem))
                print(f"error: {shown(file)}: {problem}", file=sys.stderr, flush=True)
                continue
            x = dataset.scale(image[np.newaxis])  # as prepare scales the training data
            probabilities = np.asarray(model.predict_on_batch(x))[0]
            top = top_classes(probabilities, args.top)
            unsure = threshold is not None and float(probabilities.max()) < threshold
            predictions.append((shown(file), top, unsure))
            if not args.json:
                print(table_row(shown(file), top, unsure, width), flush=True)

    if args.json:
        print(json.dumps({"model": str(path), "what": what, "unsure_below": threshold, "calibration": calibrated,
                          "predictions": [{"path": name, "top": top, "unsure": unsure}
                                          for name, top, unsure in predictions],
                          "errors": [{"path": name, "error": problem} for name, problem in problems]}, indent=2))
    if problems:
        inputs = len(files) + sum(not listed for _, listed in found)
        raise StageError(f"{len(problems)} of {inputs} inputs could not be classified (above)")


if __name__ == "__main__":
    run(main, stopped="predict stopped; the answers above are whole, and nothing was written")
