"""Stage baseline: the chapter's SGDClassifier(log_loss, max_iter=5) with 5-fold CV (0.8196), plus
validation and test accuracy of the same model fitted on the train split, for the comparison table.
"""
import numpy as np

from fmnist.core import baseline, dataset
from fmnist.plumbing import params, paths, runner
from fmnist.plumbing.transaction import Transaction
from fmnist.schema.baseline import BaselineParams


def main() -> None:
    p = params.load(BaselineParams)
    # The chapter cross-validates the 60,000 training images in their original order, scaled in float64.
    images, labels = dataset.load_raw("train")
    splits = {name: dataset.load_prepared(name) for name in dataset.SPLITS}
    metrics, details, timing, notes = baseline.run(p, dataset.scale(images, np.float64), labels, **splits)
    with Transaction(paths.BASELINE) as outputs:
        outputs.write_json(paths.details_file(paths.BASELINE), details)
        outputs.write_json(paths.metrics_file(paths.BASELINE), metrics)
        outputs.write_json(paths.timing_file(paths.BASELINE), timing)
    print(f"{paths.metrics_file(paths.BASELINE)}: CV accuracy {metrics['cv_accuracy']:.4f} "
          f"± {metrics['cv_accuracy_std']:.4f} ({metrics['cv_folds']} folds), "
          f"validation {metrics['val_accuracy']:.4f}, "
          f"test {metrics['test_accuracy']:.4f}" + "".join(f"; {note}" for note in notes))


if __name__ == "__main__":
    runner.run(main)
