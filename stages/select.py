"""Stage select: the variant params.yaml `select` picks (by validation, never test) becomes models/best.

Writes models/best/model.keras (a byte-for-byte copy of the file train@<variant> scored), models/best/
selection.json (which variant, why, its metrics, the data checksums and library versions) and
reports/model_card.md. dvc.yaml registers models/best/model.keras as the artifact `fashion-classifier`.
"""
from fmnist import atomic, params, paths, results, selection, stage


def main() -> None:
    rule = params.load("select")
    variants = params.load("variants").root
    loaded = {name: results.load_result(name) for name in variants}
    best = results.best_variant(loaded, rule)
    candidates = {name: loaded[name] for name in results.candidates(loaded, rule)}
    source = selection.scored_model(best, loaded[best])
    model_bytes = source.read_bytes()
    selected = selection.record(best, loaded[best], variants[best], rule, candidates, source, model_bytes,
                                params.load("train"),
                                params.load("download"), params.load("prepare"))
    card = selection.model_card(selected, loaded[best], variants[best], rule, candidates,
                                results.confusion_counts(best))
    with atomic.atomic_dir(paths.BEST_DIR) as folder:
        atomic.write_bytes(folder / paths.BEST_MODEL_FILE, model_bytes)
        atomic.write_json(folder / paths.SELECTION_FILE, selected)
    atomic.write_text(paths.MODEL_CARD, card)
    metrics = loaded[best].metrics
    print(f"select: {best} ({rule.describe()}: {metrics[rule.metric]:.4f} of {len(candidates)} candidates); "
          f"wrote {paths.BEST_DIR} and {paths.MODEL_CARD}")


if __name__ == "__main__":
    stage.run(main)
