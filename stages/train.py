"""Stage train@<variant>: train one variant of params.yaml `variants` and save it to models/<variant>/.

Usage: python -m stages.train <variant>
"""
import sys

from fmnist import backend, dataset, params, paths, stage


def variant_spec(argv: list[str]):
    """(name, spec, shared params) for the variant named on the command line, all validated."""
    shared = params.load("train")
    variants = params.load("variants").root  # every variant: a typo anywhere stops before any training
    if len(argv) != 2:
        raise stage.StageError(f"usage: python -m {argv[0]} <variant>  (variants: {', '.join(variants)})")
    name = argv[1]
    if name not in variants:
        raise stage.StageError(f"variant '{name}' is not declared in params.yaml (declared: {', '.join(variants)})")
    return name, variants[name], shared


def main() -> None:
    name, spec, shared = variant_spec(["stages.train", *sys.argv[1:]])
    train, val, test = (dataset.load_prepared(split) for split in dataset.SPLITS)
    backend.use(shared.backend)
    # The other seeds train in a child process meanwhile (on a second core), the chapter's seed here.
    job = stage.Child(f"training the other seeds of {name}", "fmnist.replicates", name) if shared.replicates > 1 else None
    try:
        from fmnist import training  # imports keras: only after the backend is chosen

        summary, replicated = training.run(name, spec, shared, train, val, test, job)
    finally:
        if job:
            job.stop()  # on any failure the child must not outlive the stage
    line = f"{paths.MODELS_DIR / name}: seed {shared.seed}, {summary['epochs_run']} epochs in {summary['train_seconds']:.1f}s"
    if replicated:
        seeds = [entry["seed"] for entry in replicated["per_seed"]]
        line += f"; {len(seeds)} replicates (seeds {seeds[0]}-{seeds[-1]}) in {replicated['train_seconds']:.1f}s"
    print(f"{line} on {shared.backend}")


if __name__ == "__main__":
    stage.run(main)
