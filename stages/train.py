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
    train, val = dataset.load_prepared("train"), dataset.load_prepared("val")
    backend.use(shared.backend)
    from fmnist import training  # imports keras: only after the backend is chosen

    summary = training.run(name, spec, shared, train, val)
    print(f"{paths.MODELS_DIR / name}: {summary['epochs_run']} epochs in {summary['train_seconds']:.1f}s "
          f"on {shared.backend}")


if __name__ == "__main__":
    stage.run(main)
