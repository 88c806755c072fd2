"""Stage plot: the chapter's figures (reports/figures/*.png) and per-epoch curve data for `dvc plots`
(reports/curves/train_val/<variant>.csv for variants fitted with validation, reports/curves/train/ for the rest).

Reads only what earlier stages wrote; a declared variant without its files stops the stage with the
name of the stage to run.
"""
from fmnist.core import choice, dataset, figures, results
from fmnist.plumbing import params, paths, runner
from fmnist.plumbing.transaction import Transaction
from fmnist.schema.baseline import BaselineParams
from fmnist.schema.reporting import ChapterParams, PlotParams, SelectParams
from fmnist.schema.training import TrainParams, VariantsParams


def main() -> None:
    plot = params.load(PlotParams)
    chapter = params.load(ChapterParams)
    variants = params.load(VariantsParams).root
    baseline = params.load(BaselineParams)
    seed = params.load(TrainParams).seed
    choice.check_declared(plot.optimizer_comparison, variants, "plot.optimizer_comparison")
    results.check_chapter(chapter, variants)

    loaded = {name: results.load_result(name) for name in [results.BASELINE, *variants]}
    histories = {name: results.load_history(name, spec) for name, spec in variants.items()}
    rule = params.load(SelectParams)
    best = results.best_variant(loaded, rule)
    confusion = results.confusion_counts(best)
    images, labels = dataset.load_raw("train")

    with Transaction("plot") as outputs:
        figures_dir, curves_dir = outputs.folder(paths.FIGURES_DIR), outputs.folder(paths.CURVES_DIR)
        def save(figure, file_name):
            figures.save(figure, figures_dir / file_name, plot.dpi)

        save(figures.sample_images(images[:plot.sample_images], labels[:plot.sample_images]), paths.SAMPLES_FIGURE)
        for name, spec in variants.items():
            folder = curves_dir / ("train_val" if spec.validation else "train")
            folder.mkdir(exist_ok=True)
            histories[name].to_csv(folder / f"{name}.csv", index=False)
            if spec.validation:
                metrics = loaded[name].metrics
                save(figures.training_curves(name, spec.description, histories[name],
                                             best_epoch=metrics["best_epoch"], stopped_epoch=metrics["stopped_epoch"],
                                             monitor=spec.monitor()), paths.curves_figure(name))
        # The curves are the chapter seed's; the accuracy beside them is that seed's too (means: accuracy.png).
        labels_by_name = {name: f"{variants[name].optimizer.describe()}: {name}, validation accuracy "
                                f"{loaded[name].metrics['val_accuracy']:.4f} (seed {seed})"
                          for name in plot.optimizer_comparison}
        save(figures.optimizer_comparison({n: histories[n] for n in plot.optimizer_comparison}, labels_by_name),
             paths.OPTIMIZERS_FIGURE)
        table = results.comparison_table(loaded, variants, chapter, baseline)
        folds = loaded[results.BASELINE].metrics["cv_folds"]
        save(figures.accuracy_comparison(table, seed, folds), paths.ACCURACY_FIGURE)
        best_metrics = loaded[best].metrics
        title = (f"Test-set confusion matrix of {best}, seed {seed}\n({rule.describe()}; this model: "
                 f"validation {best_metrics['val_accuracy']:.4f}, test {best_metrics['test_accuracy']:.4f})")
        save(figures.confusion_heatmap(confusion, title), paths.CONFUSION_FIGURE)
    print(f"{paths.FIGURES_DIR}: {len(list(paths.FIGURES_DIR.glob('*.png')))} figures; "
          f"best variant ({rule.describe()}): {best}")


if __name__ == "__main__":
    runner.run(main)
