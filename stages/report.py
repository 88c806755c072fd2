"""Stage report: reports/summary.md, the results of every variant and the baseline beside the chapter's
numbers, with the figures of the plot stage. Generated from the metrics files; never edit it by hand.
"""
from fmnist import params, paths, report, results, stage
from fmnist.transaction import Transaction
from fmnist.schema.baseline import BaselineParams
from fmnist.schema.data import DownloadParams, PrepareParams
from fmnist.schema.reporting import ChapterParams, SelectParams
from fmnist.schema.training import VariantsParams


def main() -> None:
    chapter = params.load(ChapterParams)
    variants = params.load(VariantsParams).root
    baseline = params.load(BaselineParams)
    results.check_chapter(chapter, variants)
    loaded = {name: results.load_result(name) for name in [results.BASELINE, *variants]}
    table = results.comparison_table(loaded, variants, chapter, baseline)
    rule = params.load(SelectParams)
    best = results.best_variant(loaded, rule)
    markdown = report.render(table, loaded, variants, best, rule, params.load(DownloadParams), params.load(PrepareParams))
    with Transaction("report") as outputs:
        outputs.write_text(paths.SUMMARY_REPORT, markdown)
    print(f"{paths.SUMMARY_REPORT}: {len(table)} rows; best variant ({rule.describe()}): {best}")


if __name__ == "__main__":
    stage.run(main)
