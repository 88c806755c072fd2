"""How far `predict` holds up on product-photo-like pictures, for any model file: the robustness measurement the
assess stage makes of the chosen model (reports/assessment.json, shown in the model card), run on demand.

    python benchmarks/robustness.py --model models/relu100/model.keras            # 1,000 test images a family
    python benchmarks/robustness.py --model models/best/model.keras --images 300 --seed 1
    python benchmarks/robustness.py --model models/augmented/model.keras --first 1000     # test images 1000-1999

Prints each family's accuracy and agreement with the 28x28 originals (95% Wilson intervals), the share of answers
below the model's own unsure threshold (calibrated here on the validation split, as the assess stage does), and
the goal of the real-pictures issue: on the combined family, agreement >= 0.90 and accuracy within 5 points of
the originals'. Prints seconds per family too (this machine's).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fmnist.core import backend, dataset, robustness  # noqa: E402
from fmnist.plumbing import quiet  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="Keras model file")
    parser.add_argument("--images", type=int, default=1000, help="test images a family (default 1000)")
    parser.add_argument("--first", type=int, default=0,
                        help="the first test image used (default 0, as the assess stage); another slice of the test "
                             "set shows whether a figure holds beyond the images it was first measured on")
    parser.add_argument("--seed", type=int, default=0, help="seed of the pictures' random changes (default 0)")
    parser.add_argument("--sure-accuracy", type=float, default=0.95, help="as params.yaml select.sure_accuracy")
    args = parser.parse_args()
    quiet.filter_stderr()
    backend.use(backend.requested())
    import keras

    from fmnist.core import augmentation  # noqa: F401  (registers its layer: an augmented variant's file holds it)

    model = keras.models.load_model(args.model, safe_mode=True)
    validation, test = dataset.load_prepared("val"), dataset.load_prepared("test")
    if not 0 <= args.first < len(test.y):
        parser.error(f"--first {args.first}: the test set has images 0 to {len(test.y) - 1}")
    test = dataset.Split(test.x[args.first:], test.y[args.first:])
    started = time.perf_counter()
    pictures = robustness.make_pictures(test, args.images, args.seed)
    calibrated, found = robustness.assess(model, validation, pictures, args.sure_accuracy)
    seconds = time.perf_counter() - started
    threshold, images = calibrated["threshold"], min(args.images, len(test.y))
    combined, original = robustness.family(found, "combined"), found["originals"]
    print(f"{args.model}: {images} test images a family from test image {args.first}, unsure below {threshold:.3f}; "
          "originals' accuracy "
          f"{original['accuracy']:.3f}; {seconds:.0f} s for {len(robustness.FAMILIES)} families")
    print(robustness.markdown(found))
    met = robustness.goal_met(found)
    print(f"combined: agreement {combined['agreement']:.3f} (goal >= 0.90), accuracy {combined['accuracy']:.3f}, "
          f"{robustness.accuracy_lost(found):.3f} below the originals (goal <= 0.05): "
          f"{'met' if met else 'NOT met'}")
    sys.exit(0 if met else 1)


if __name__ == "__main__":
    main()
