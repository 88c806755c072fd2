"""Classify your own pictures with a trained model: the top classes of each PNG or JPEG, as a table or JSON.

    python -m fmnist.tools.predict --export-samples samples/   # ten test images as PNG, one of each class
    python -m fmnist.tools.predict samples/ shirt.jpg          # models/best (the select stage's choice)
    python -m fmnist.tools.predict --variant relu100 shirt.jpg # or any trained variant, or --model FILE

Pictures are made into Fashion-MNIST images first (fmnist.core.images). A picture that cannot be read, or that
does not look like a product photo (its border is not one plain backdrop), gets one line on standard error; the
others are still classified, and the exit status is then 1. An answer less confident than the model's calibrated
threshold (fmnist/core/calibration.py) is marked unsure.
Run from the repository root (models/, reports/ and data/ are found there).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
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
    import keras

    try:
        model = keras.models.load_model(path, safe_mode=True)
    except Exception as error:  # keras raises many kinds (zip, h5, json, value) for a file that is not a model
        raise StageError(f"{path}: not a Keras model file ({type(error).__name__}: {error})") from None
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


def table(rows: list[tuple[str, list[dict], bool]]) -> str:
    width = max(len("image"), *(len(name) for name, _, _ in rows))
    k = len(rows[0][1])
    header = f"{'image':<{width}}  " + "  ".join(f"{ordinal:<19}" for ordinal in ("1st", "2nd", "3rd", *(
        f"{n}th" for n in range(4, k + 1)))[:k])
    lines = [header.rstrip()]
    for name, top, unsure in rows:
        cells = "  ".join(f"{entry['class']:<12} {entry['probability']:>6.1%}" for entry in top)
        lines.append(f"{name:<{width}}  {cells}{'  unsure' if unsure else ''}")
    return "\n".join(lines)


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
              f"(try: python -m fmnist.tools.predict {args.export_samples})", file=sys.stderr if args.json else sys.stdout)
        if not args.paths:
            return
    path, what = model_file(args)

    problems: list[tuple[Path, str]] = []  # in the order given, as are the images
    readable: list[tuple[Path, np.ndarray]] = []
    inputs = 0
    for given in args.paths:
        files = images.find(given)
        if not files:  # only a folder can come back empty
            problems.append((given, f"a folder with no {' or '.join(images.FORMATS)} files in it"))
            inputs += 1
        for file in files:
            inputs += 1
            try:
                readable.append((file, images.read(file)))
            except images.ImageError as error:
                problems.append((file, str(error)))

    predictions, threshold, calibrated = [], None, ""
    if readable:
        model = load_model(path)
        x = dataset.scale(np.stack([image for _, image in readable]))  # as prepare scales the training data
        probabilities = model.predict(x, batch_size=1000, verbose=0)
        threshold, calibrated = unsure_below(path, model)
        predictions = [(str(file), top_classes(p, args.top), threshold is not None and float(p.max()) < threshold)
                       for (file, _), p in zip(readable, probabilities)]

    if args.json:
        print(json.dumps({"model": str(path), "what": what, "unsure_below": threshold, "calibration": calibrated,
                          "predictions": [{"path": name, "top": top, "unsure": unsure}
                                          for name, top, unsure in predictions],
                          "errors": [{"path": str(file), "error": problem} for file, problem in problems]}, indent=2))
    elif predictions:
        print(f"model: {path} ({what})")
        if threshold is not None:
            print(f"unsure: a top class below {threshold:.1%} ({calibrated})")
        else:
            print(f"unsure: {calibrated}")
        print(table(predictions))
    for file, problem in problems:
        print(f"error: {file}: {problem}", file=sys.stderr)
    if problems:
        raise StageError(f"{len(problems)} of {inputs} inputs could not be classified (above)")


if __name__ == "__main__":
    run(main)
