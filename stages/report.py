"""Stage report: reports/summary.md, the results of every variant and the baseline beside the chapter's
numbers, with the figures of the plot stage. Generated from the metrics files; never edit it by hand.
"""
from fmnist.core import comparison, dataset, report, results
from fmnist.plumbing import params, paths, runner
from fmnist.plumbing.transaction import Transaction
from fmnist.schema.baseline import BaselineParams
from fmnist.schema.data import DownloadParams, PrepareParams
from fmnist.schema.gates import GatesParams
from fmnist.schema.reporting import ChapterParams, SelectParams
from fmnist.schema.training import TrainParams, VariantsParams


def main() -> None:
    chapter = params.load(ChapterParams)
    variants = params.load(VariantsParams).root
    baseline = params.load(BaselineParams)
    results.check_chapter(chapter, variants)
    loaded = {name: results.load_result(name) for name in [results.BASELINE, *variants]}
    table = results.comparison_table(loaded, variants, chapter, baseline)
    rule = params.load(SelectParams)
    best = results.best_variant(loaded, rule)
    gates = params.load(GatesParams)
    tolerances = comparison.Tolerances(gates.k, gates.floor, false_alarm=gates.false_alarm)
    markdown = report.render(table, loaded, variants, best=best, rule=rule, download=params.load(DownloadParams),
                             prepare=params.load(PrepareParams), seed=params.load(TrainParams).seed,
                             tolerances=tolerances, image_counts=dataset.image_counts())
    with Transaction("report") as outputs:
        outputs.write_text(paths.SUMMARY_REPORT, markdown)
    print(f"{paths.SUMMARY_REPORT}: {len(table)} rows; best variant ({rule.describe()}): {best}")


if __name__ == "__main__":
    runner.run(main)
