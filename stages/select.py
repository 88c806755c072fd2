"""Stage select: the variant params.yaml `select` picks (by validation, never test) becomes models/best.

Writes models/best/model.keras (a byte-for-byte copy of the file train@<variant> scored), models/best/
selection.json (which variant, why, its metrics, the data checksums and library versions),
reports/model_card.md and reports/best_predictions.csv (its class for every test image, kept in git: the gate
compares it image by image with the reference's). dvc.yaml registers models/best/model.keras as the artifact
`fashion-classifier`.
"""
from fmnist.core import comparison, dataset, results, selection
from fmnist.plumbing import atomic, params, paths, runner
from fmnist.plumbing.transaction import Transaction
from fmnist.schema.data import DownloadParams, PrepareParams
from fmnist.schema.gates import GatesParams
from fmnist.schema.reporting import SelectParams
from fmnist.schema.training import TrainParams, VariantsParams


def main() -> None:
    rule = params.load(SelectParams)
    variants = params.load(VariantsParams).root
    loaded = {name: results.load_result(name) for name in variants}
    best = results.best_variant(loaded, rule)
    candidates = {name: loaded[name] for name in results.candidates(loaded, rule)}
    source = results.scored_model(best, loaded[best])
    model_bytes = source.read_bytes()
    shared = params.load(TrainParams)
    assessment = selection.read_assessment(best, model_bytes)
    choice = selection.Choice(best, loaded[best], variants[best], rule, candidates)
    selected = selection.record(choice, source=source, model_bytes=model_bytes, shared=shared,
                                download=params.load(DownloadParams), prepare=params.load(PrepareParams),
                                calibrated=assessment["calibration"])
    gates = params.load(GatesParams)
    card = selection.model_card(choice, selected, confusion=results.confusion_counts(best),
                                tolerances=comparison.Tolerances(gates.k, gates.floor, false_alarm=gates.false_alarm),
                                image_counts=dataset.image_counts(), assessment=assessment)
    with Transaction("select") as outputs:
        folder = outputs.folder(paths.BEST_DIR)
        (folder / paths.BEST_MODEL_FILE).write_bytes(model_bytes)
        (folder / paths.SELECTION_FILE).write_text(atomic.json_text(selected))
        outputs.write_text(paths.MODEL_CARD, card)
        outputs.write_text(paths.BEST_PREDICTIONS, results.predictions_csv(*results.test_predictions(best)))
    metrics = loaded[best].metrics
    print(f"select: {best} ({rule.describe()}: {metrics[rule.metric]:.4f} of {len(candidates)} candidates); "
          f"wrote {paths.BEST_DIR}, {paths.MODEL_CARD} and {paths.BEST_PREDICTIONS}")


if __name__ == "__main__":
    runner.run(main)
