"""Stage assess: how sure, and how robust on photos, the variant `select` chooses is, before it becomes models/best.

Calibration on the validation split (the confidence below which `predict` calls an answer unsure), and the
robustness measurement: pictures made from test images, each kind of change alone and all together, classified
through predict's own preprocessing. The variants params.yaml `assess.alongside` names are measured the same way,
for comparison. Writes reports/assessment.json; the select stage puts it in the model card.
"""
import hashlib

from fmnist.core import backend, dataset, results, robustness
from fmnist.plumbing import atomic, errors, params, paths, quiet, runner
from fmnist.plumbing.transaction import Transaction
from fmnist.schema.reporting import AssessParams, SelectParams
from fmnist.schema.training import TrainParams, VariantsParams


def main() -> None:
    rule, assess = params.load(SelectParams), params.load(AssessParams)
    shared, variants = params.load(TrainParams), params.load(VariantsParams).root
    undeclared = [name for name in assess.alongside if name not in variants]
    if undeclared:
        raise errors.StageError(f"params.yaml assess.alongside: {', '.join(undeclared)} not declared in `variants` "
                                f"(declared: {', '.join(variants)})")
    loaded = {name: results.load_result(name) for name in variants}
    best = results.best_variant(loaded, rule)  # the select stage's own rule: the same variant
    validation = dataset.load_prepared("val")
    quiet.filter_stderr()  # TensorFlow's start-up notices
    backend.use(shared.backend)
    from fmnist.core import models  # keras: only once the backend is chosen

    pictures = robustness.load_pictures(paths.PICTURES)  # the same pictures for every variant

    def measure(name: str) -> dict:
        source = results.scored_model(name, loaded[name])
        model = models.load(source, f"run `dvc repro train@{name}`")
        calibrated, measured = robustness.assess(model, validation, pictures, rule.sure_accuracy)
        return {"variant": name, "model_file": source.as_posix(),
                "model_sha256": hashlib.sha256(source.read_bytes()).hexdigest(),
                "test_accuracy": loaded[name].metrics["test_accuracy"], "calibration": calibrated,
                "robustness": {"images": len(pictures.labels), "seed": assess.seed, **measured}}

    assessment = measure(best)
    assessment["alongside"] = [measure(name) for name in assess.alongside if name != best]
    with Transaction("assess") as outputs:
        outputs.write_text(paths.ASSESSMENT, atomic.json_text(assessment))
    said = []
    for entry in [assessment, *assessment["alongside"]]:
        combined = robustness.family(entry["robustness"], "combined")
        said.append(f"{entry['variant']}: unsure below {entry['calibration']['threshold']:.3f} "
                    f"({entry['calibration']['coverage']:.1%} of validation answers above it); combined photo-like "
                    f"pictures: accuracy {combined['accuracy']:.3f}, agreement {combined['agreement']:.3f}")
    print(f"assess: {'; '.join(said)}; wrote {paths.ASSESSMENT}")

if __name__ == "__main__":
    runner.run(main)
