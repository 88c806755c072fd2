"""Stage train@<variant>: train one variant of params.yaml `variants`, save it to models/<variant>/, then
reload it from disk (both of the chapter's ways) and score it on validation and test.

Writes models/<variant>/ (the model files), reports/train/<variant>/ (per-epoch history),
reports/metrics/<variant>.json (headline results), reports/evaluation/<variant>.json (per-class accuracy,
restore checks, every seed's results), reports/timing/<variant>.json (wall-clock times) and
reports/confusion/<variant>.csv (DVC confusion plot data). Training and evaluating share one process:
TensorFlow's start-up is paid once per variant, not twice.
Usage: python -m stages.train <variant>
"""
import sys
import time

from fmnist.core import backend, dataset
from fmnist.plumbing import errors, params, paths, processes, quiet, runner
from fmnist.plumbing.transaction import Transaction
from fmnist.schema.training import TrainParams, VariantsParams


def variant_spec(argv: list[str]):
    """(name, spec, shared params) for the variant named on the command line, all validated."""
    shared = params.load(TrainParams)
    variants = params.load(VariantsParams).root  # every variant: a typo anywhere stops before any training
    if len(argv) != 2:
        raise errors.StageError(f"usage: python -m {argv[0]} <variant>  (variants: {', '.join(variants)})")
    name = argv[1]
    if name not in variants:
        raise errors.StageError(f"variant '{name}' is not declared in params.yaml (declared: {', '.join(variants)})")
    return name, variants[name], shared


def main() -> None:
    started = time.perf_counter()
    quiet.filter_stderr()  # TensorFlow's start-up notices and other chatter that reports no problem
    name, spec, shared = variant_spec(["stages.train", *sys.argv[1:]])
    train, val, test = (dataset.load_prepared(split) for split in dataset.SPLITS)
    backend.use(shared.backend)
    # The other seeds train in a child process meanwhile (on a second core), the chapter's seed here.
    job = processes.Child(f"training the other seeds of {name}", "fmnist.core.replicates", name) if shared.replicates > 1 else None
    try:
        from fmnist.core import evaluation, training  # import keras: only after the backend is chosen

        # Every output below is written under a temporary name and swapped in together, or not at all.
        with Transaction(paths.stage_for(name)) as outputs:
            summary, replicated = training.run(name, spec, shared, train, val, test, outputs, job)
            model_dir = outputs.folder_of(paths.MODELS_DIR / name)
            metrics, details, timing, predictions = evaluation.evaluate(name, spec, model_dir, val, test)
            outputs.write_text(paths.CONFUSION_DIR / f"{name}.csv", evaluation.confusion_rows(test.y, predictions))
            outputs.write_json(paths.timing_file(name), timing)
            outputs.write_json(paths.details_file(name), details)
            outputs.write_json(paths.metrics_file(name), metrics)
    finally:
        if job:
            job.stop()  # on any failure the child must not outlive the stage
    print(evaluation.summary_line(name, metrics, details, summary, replicated, time.perf_counter() - started))


if __name__ == "__main__":
    runner.run(main)
