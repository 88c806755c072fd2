"""Stage assess: how sure, and how robust on photos, the variant `select` chooses is, before it becomes models/best.

Calibration on the validation split (the confidence below which `predict` calls an answer unsure), and the
robustness measurement: pictures made from test images, each kind of change alone and all together, classified
through predict's own preprocessing. Writes reports/assessment.json; the select stage puts both in the model card.
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
    loaded = {name: results.load_result(name) for name in variants}
    best = results.best_variant(loaded, rule)  # the select stage's own rule: the same variant
    source = results.scored_model(best, loaded[best])
    validation, test = dataset.load_prepared("val"), dataset.load_prepared("test")
    quiet.filter_stderr()  # TensorFlow's start-up notices
    backend.use(shared.backend)
    import keras

    try:
        model = keras.models.load_model(source, safe_mode=True)
    except Exception as error:  # keras raises many kinds (zip, h5, json, value) for a file that is not a model
        raise errors.StageError(f"{source}: not a Keras model file ({type(error).__name__}); run "
                                f"`dvc repro train@{best}`") from None
    calibrated, measured = robustness.assess(model, validation, test, assess.images, assess.seed, rule.sure_accuracy)
    assessment = {"variant": best, "model_file": source.as_posix(),
                  "model_sha256": hashlib.sha256(source.read_bytes()).hexdigest(), "calibration": calibrated,
                  "robustness": {"images": int(min(assess.images, len(test.y))), "seed": assess.seed, **measured}}
    with Transaction("assess") as outputs:
        outputs.write_text(paths.ASSESSMENT, atomic.json_text(assessment))
    combined = robustness.family(measured, "combined")
    print(f"assess: {best}: unsure below {calibrated['threshold']:.3f} ({calibrated['coverage']:.1%} of validation "
          f"answers above it); combined photo-like pictures: accuracy {combined['accuracy']:.3f}, agreement "
          f"{combined['agreement']:.3f}; wrote {paths.ASSESSMENT}")


if __name__ == "__main__":
    runner.run(main)
