"""Stage evaluate@<variant>: reload the saved variant from disk and score it on validation and test.

Writes reports/metrics/<variant>.json (headline results), reports/evaluation/<variant>.json
(per-class accuracy, restore checks), reports/timing/<variant>.json (wall-clock times) and reports/confusion/<variant>.csv (DVC confusion plot data).
Usage: python -m stages.evaluate <variant>
"""
import sys

from fmnist import atomic, backend, dataset, paths, stage
from stages.train import variant_spec


def main() -> None:
    name, spec, shared = variant_spec(["stages.evaluate", *sys.argv[1:]])
    val, test = dataset.load_prepared("val"), dataset.load_prepared("test")
    backend.use(shared.backend)
    from fmnist import evaluation  # imports keras: only after the backend is chosen

    metrics, details, timing, predictions = evaluation.evaluate(name, spec, paths.MODELS_DIR / name, val, test)
    atomic.write_text(paths.CONFUSION_DIR / f"{name}.csv", evaluation.confusion_rows(test.y, predictions))
    atomic.write_json(paths.timing_file(name), timing)
    atomic.write_json(paths.details_file(name), details)
    atomic.write_json(paths.metrics_file(name), metrics)
    std = metrics["val_accuracy_std"]
    spread = f" ± {std:.4f}" if std is not None else ""
    print(f"{paths.metrics_file(name)}: seed {details['spread']['seeds'][0]} validation {metrics['val_accuracy']:.4f}, "
          f"test {metrics['test_accuracy']:.4f} ({details['evaluated_file']}); {metrics['seeds']} seeds: validation "
          f"{metrics['val_accuracy_mean']:.4f}{spread}; weights and whole-model restores agree: "
          f"{details['restore']['agree']}")


if __name__ == "__main__":
    stage.run(main)
