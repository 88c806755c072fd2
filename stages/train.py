"""Stage train@<variant>: train one variant of params.yaml `variants`, save it to models/<variant>/, then
reload it from disk (both of the chapter's ways) and score it on validation and test.

Writes models/<variant>/ (the model files), reports/train/<variant>/ (per-epoch history),
reports/metrics/<variant>.json (headline results), reports/evaluation/<variant>.json (per-class accuracy,
restore checks, every seed's results), reports/timing/<variant>.json (wall-clock times) and
reports/confusion/<variant>.csv (DVC confusion plot data). Training and evaluating share one process:
TensorFlow's start-up is paid once per variant, not twice. A variant that shares its trajectory with others
(fmnist/core/trajectories.py) is made from it: trained once, by the first of their stages; --alone trains it on its
own instead (the same files, in more time).
Usage: python -m stages.train <variant> [--alone]
"""
import sys
import time

from fmnist.core import dataset, other_seeds
from fmnist.plumbing import errors, params, paths, runner
from fmnist.plumbing.transaction import Transaction
from fmnist.schema.training import TrainParams, VariantsParams, family


def variant_spec(argv: list[str]):
    """(name, the variants that share its trajectory, shared params) for the variant named on the command line,
    all validated. --alone: train it alone, sharing nothing (the same files, in more time: for checking that)."""
    shared = params.load(TrainParams)
    variants = params.load(VariantsParams).root  # every variant: a typo anywhere stops before any training
    alone = "--alone" in argv[2:]
    if len(argv) - alone != 2 or argv[1].startswith("-"):
        raise errors.StageError(f"usage: python -m {argv[0]} <variant> [--alone]  (variants: {', '.join(variants)})")
    name = argv[1]
    if name not in variants:
        raise errors.StageError(f"variant '{name}' is not declared in params.yaml (declared: {', '.join(variants)})")
    return name, {name: variants[name]} if alone else family(name, variants, shared), shared


def main() -> None:
    started = time.perf_counter()
    if {"-h", "--help"} & set(sys.argv[1:]):
        print(__doc__)
        return
    name, members, shared = variant_spec(["stages.train", *sys.argv[1:]])
    spec = members[name]
    with other_seeds.beside(name, members, shared) as job:  # the other seeds train meanwhile, in a child process
        from fmnist.core import evaluation, training  # import keras: only after the backend is chosen

        train, val, test = (dataset.load_prepared(split) for split in dataset.SPLITS)

        # Every output below is written under a temporary name and swapped in together, or not at all.
        with Transaction(paths.stage_for(name)) as outputs:
            summary = training.chapter_seed(name, spec, shared, train=train, val=val, outputs=outputs, members=members)
            model_dir = outputs.folder_of(paths.MODELS_DIR / name)
            # Its files scored while the other seeds still train (the child is the longer one).
            scored = evaluation.score(name, spec, model_dir, val, test)
            replicated = training.other_seeds_scores(name, spec, shared, train=train, val=val, test=test,
                                                     outputs=outputs, job=job, members=members)
            metrics, details, timing, predictions = evaluation.evaluate(name, spec, model_dir, val, test,
                                                                        chapter_seed=scored)
            outputs.write_text(paths.CONFUSION_DIR / f"{name}.csv", evaluation.confusion_rows(test.y, predictions))
            outputs.write_json(paths.timing_file(name), timing)
            outputs.write_json(paths.details_file(name), details)
            outputs.write_json(paths.metrics_file(name), metrics)
    line = evaluation.summary_line(name, metrics=metrics, details=details, summary=summary, replicated=replicated,
                                   seconds=time.perf_counter() - started)
    others = [other for other in members if other != name]
    print(line + (f"; its trajectory is shared with {', '.join(others)} (trained once)" if others else ""))


if __name__ == "__main__":
    runner.run(main)
