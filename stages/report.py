"""Stage report: reports/summary.md, the results of every variant and the baseline beside the chapter's
numbers, with the figures of the plot stage. Generated from the metrics files; never edit it by hand.
"""
from fmnist import atomic, params, paths, report, results, stage


def main() -> None:
    chapter = params.load("chapter")
    variants = params.load("variants").root
    baseline = params.load("baseline")
    results.check_chapter(chapter, variants)
    loaded = {name: results.load_result(name) for name in [results.BASELINE, *variants]}
    table = results.comparison_table(loaded, variants, chapter, baseline)
    rule = params.load("select")
    best = results.best_variant(loaded, rule)
    markdown = report.render(table, loaded, variants, best, rule, params.load("download"), params.load("prepare"))
    atomic.write_text(paths.SUMMARY_REPORT, markdown)
    print(f"{paths.SUMMARY_REPORT}: {len(table)} rows; best variant ({rule.describe()}): {best}")


if __name__ == "__main__":
    stage.run(main)
