"""reports/summary.md: the whole result on one page, generated from the metrics files with pandas."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from fmnist.core import comparison
from fmnist.core.dataset import CLASS_NAMES
from fmnist.core.formatting import describe_params, library_versions, mean_std, minus
from fmnist.core.results import BASELINE, Result, val_accuracy_spread
from fmnist.plumbing import paths
from fmnist.plumbing.errors import StageError
from fmnist.schema.data import DownloadParams, PrepareParams
from fmnist.schema.reporting import SelectParams
from fmnist.schema.training import Variant

SUMMARY = Path(__file__).with_name("templates") / "summary.md"  # the page's text, with {named} placeholders


def table_headers(seed: int) -> dict[str, str]:
    return {
        "variant": "variant",
        "what": "what it is (after Flatten; optimizer; callbacks)",
        "epochs": f"epochs (seed {seed})",
        "val_accuracy_mean": "validation accuracy, mean ± σ",
        "val_accuracy": f"seed {seed}",
        "test_accuracy_mean": "test accuracy, mean ± σ",
        "test_accuracy": f"seed {seed} ",  # a trailing space: pandas needs distinct column names
        "train_seconds": f"training time (seed {seed} + the others)",
    }


CHAPTER_HEADERS = {
    "variant": "variant",
    "chapter_metric": "metric",
    "chapter": "chapter",
    "ours": "ours, seed {seed}",
    "ours_mean": "ours, mean ± σ (n)",
    "ours_range": "ours, min–max",
    "inside": "chapter inside our range",
    "sigmas": "chapter − mean, in σ",
}


def _epochs(row: pd.Series) -> str:
    if pd.isna(row["epochs"]):  # the baseline: its max_iter is in "what it is"
        return ""
    text = f"{int(row['epochs'])}"
    notes = []
    if pd.notna(row["stopped_epoch"]):
        notes.append(f"stopped at {int(row['stopped_epoch'])}")
    if pd.notna(row["best_epoch"]):
        notes.append(f"best {int(row['best_epoch'])}")
    return f"{text} ({', '.join(notes)})" if notes else text


def _seconds(row: pd.Series) -> str:
    if not row["replicates_seconds"]:
        return f"{row['train_seconds']:.1f} s"
    return f"{row['train_seconds']:.1f} s + {row['replicates_seconds']:.1f} s"


def _spread_cell(name: str, mean: float, std) -> str:
    """'0.8478 ± 0.0015'; the baseline's single fit (no seeds to spread over) says so: '0.8340 (one fit)'."""
    return f"{mean:.4f} (one fit)" if name == BASELINE else mean_std(mean, std)


def results_markdown(table: pd.DataFrame, seed: int) -> str:
    shown = pd.DataFrame({
        "variant": table["variant"].map(lambda name: f"**{name}**" if name == BASELINE else name),
        "what": table["what"],
        "epochs": table.apply(_epochs, axis=1),
        "val_accuracy_mean": [_spread_cell(n, m, s) for n, m, s in
                              zip(table["variant"], table["val_accuracy_mean"], table["val_accuracy_std"])],
        "val_accuracy": table["val_accuracy"].map("{:.4f}".format),
        "test_accuracy_mean": [_spread_cell(n, m, s) for n, m, s in
                               zip(table["variant"], table["test_accuracy_mean"], table["test_accuracy_std"])],
        "test_accuracy": table["test_accuracy"].map("{:.4f}".format),
        "train_seconds": table.apply(_seconds, axis=1),
    }).rename(columns=table_headers(seed))
    # disable_numparse: keep "0.8340" as written (tabulate would print it as 0.834)
    return shown.to_markdown(index=False, disable_numparse=True, colalign=("left",) * 3 + ("right",) * 5)


def chapter_markdown(table: pd.DataFrame, seed: int, folds: int) -> str:
    """Each number the book reports against our spread: inside our seed range or not, and how far from our
    mean in units of our σ (the baseline: across its CV folds, its only replicates)."""
    rows = table[table["chapter"].notna()]
    labels = {"val_accuracy": "validation", "test_accuracy": "test",
              "cv_accuracy": f"{folds}-fold CV (σ, range: folds)"}

    def sigmas(row) -> str:
        if row["ours_std"] is None or pd.isna(row["ours_std"]) or row["ours_std"] == 0:
            return "no spread (1 seed)"
        return minus(f"{(row['chapter'] - row['ours_mean']) / row['ours_std']:+.1f}")

    shown = pd.DataFrame({
        "variant": rows["variant"],
        "chapter_metric": rows["chapter_metric"].map(labels),
        "chapter": rows["chapter"].map("{:.4f}".format),
        "ours": rows["ours"].map("{:.4f}".format),
        "ours_mean": [f"{mean_std(m, s)} ({int(n)})"
                      for m, s, n in zip(rows["ours_mean"], rows["ours_std"], rows["ours_n"])],
        "ours_range": [f"{lo:.4f}–{hi:.4f}" for lo, hi in zip(rows["ours_min"], rows["ours_max"])],
        "inside": [("yes" if lo <= c <= hi else "no")
                   for c, lo, hi in zip(rows["chapter"], rows["ours_min"], rows["ours_max"])],
        "sigmas": rows.apply(sigmas, axis=1),
    }).rename(columns={key: label.format(seed=seed) for key, label in CHAPTER_HEADERS.items()})
    return shown.to_markdown(index=False, disable_numparse=True, colalign=("left", "left") + ("right",) * 6)


def _within_noise(best: str, table: pd.DataFrame, tolerances: comparison.Tolerances) -> str:
    """Which other variants the seed spread cannot tell apart from the best (comparison.told_apart, the gate's rule,
    the best against each other variant as one family)."""
    rows = table.set_index("variant")

    def as_spread(name):
        return val_accuracy_spread(rows.loc[name])

    if not as_spread(best).estimable:
        return "With one seed there is no spread to tell it from the others by."
    others = [name for name in rows.index if name not in (best, BASELINE)]
    verdicts = comparison.told_apart([(as_spread(best), as_spread(name)) for name in others], tolerances)
    close = [name for name, verdict in zip(others, verdicts) if verdict.apart is False]
    if not close:
        return (f"The seed spread tells every other variant apart from it: each is below {best}'s mean validation "
                f"accuracy by more than the spread allows ({tolerances.describe()}).")
    return (f"Not told apart from it by the seed spread ({tolerances.describe()}): {', '.join(close)}. It is the "
            "best by a margin that seed noise could make.")


def per_class_markdown(result: Result) -> str:
    accuracy = result.details["test_accuracy_per_class"]
    frame = pd.DataFrame({"class": list(CLASS_NAMES), "test accuracy": [f"{accuracy[c]:.3f}" for c in CLASS_NAMES]})
    return frame.sort_values("test accuracy", kind="stable").to_markdown(
        index=False, disable_numparse=True, colalign=("left", "right"))


def tuned_verdict(table: pd.DataFrame, tolerances: comparison.Tolerances) -> str:
    """Whether the variant `tuned` beats the best other variant by more than the seed spread (comparison.told_apart,
    the gate's rule), or that it does not."""
    rows = table.set_index("variant")
    others = [name for name in rows.index if name not in (paths.TUNED, BASELINE)]
    rival = max(others, key=lambda name: rows.loc[name, "val_accuracy_mean"])
    tuned, best = val_accuracy_spread(rows.loc[paths.TUNED]), val_accuracy_spread(rows.loc[rival])
    difference = tuned.mean - best.mean
    said = (f"`{paths.TUNED}`: mean validation accuracy {mean_std(tuned.mean, tuned.std)} ({tuned.n} seeds) against "
            f"{rival}, the best of the others, {mean_std(best.mean, best.std)} ({best.n} seeds): "
            f"{minus(f'{difference:+.4f}')}")
    verdict = comparison.told_apart([(tuned, best)], tolerances)[0]
    within = f"the tolerance of {verdict.allowed:.4f}, {tolerances.describe()}" if verdict.allowed is not None else ""
    if verdict.apart is None:
        return said + ". With one seed each there is no spread to judge the difference by."
    if verdict.a_higher:
        return said + f", more than {within}: it beats {rival} beyond the seed spread."
    if verdict.a_lower:
        return said + f", below {rival} by more than {within}: it is worse."
    return (said + f", within {within}: it does not beat {rival} by more than the seed "
            "spread; the search found nothing the seeds can tell apart from the best hand-made variant.")


def tuning_markdown(table: pd.DataFrame, variants: dict[str, Variant], tolerances: comparison.Tolerances) -> list[str]:
    """The tuning section: the study's outcome and Optuna's figures (when `make tune` has run), and how the
    promoted variant `tuned` compares (when it is declared)."""
    if not paths.TUNING_BEST.is_file() and paths.TUNED not in variants:
        return []
    lines = ["## Tuning (Optuna)", ""]
    if paths.TUNING_BEST.is_file():
        best = json.loads(paths.TUNING_BEST.read_text())
        counts = ", ".join(f"{n} {state}" for state, n in best["trials"].items() if n)
        base = paths.TUNING_DIR.relative_to(paths.SUMMARY_REPORT.parent)
        params = describe_params(best["params"])
        lines += [
            f"`make tune` searched around `{best['base']}` (study `{best['study']}`: {counts}; every trial in "
            f"[trials.csv]({base / paths.TUNING_TRIALS.name}); the study itself is tuning/study.db, tracked by DVC: "
            f"`make dashboard` opens it). Best: trial {best['trial']}, "
            f"mean validation accuracy {mean_std(best['value'], best['val_accuracy_std'])} over its seeds, "
            f"with {params}.",
            "",
        ]
        lines += [f"![{title}]({base / path.name})" for title, path in (
            ("Optimization history", paths.TUNING_HISTORY), ("Hyper-parameter importances", paths.TUNING_IMPORTANCES))
            if path.is_file()] + [""]
    if paths.TUNED in variants:
        lines += [tuned_verdict(table, tolerances), ""]
    return lines


def _check_figures(names: list[str]) -> None:
    missing = [name for name in names if not (paths.FIGURES_DIR / name).is_file()]
    if missing:
        raise StageError(f"{paths.FIGURES_DIR}: missing {', '.join(missing)}; run `dvc repro plot`")


def render(table: pd.DataFrame, loaded: dict[str, Result], variants: dict[str, Variant], *, best: str,
           rule: SelectParams, download: DownloadParams, prepare: PrepareParams, seed: int,
           tolerances: comparison.Tolerances, image_counts: dict[str, int]) -> str:
    """The markdown of reports/summary.md: SUMMARY's text with its named placeholders filled in. Figure and card
    links are relative to reports/."""
    if not paths.MODEL_CARD.is_file():
        raise StageError(f"{paths.MODEL_CARD}: not found; run `dvc repro select`")
    curves = [name for name, spec in variants.items() if spec.validation]
    figures_dir = paths.FIGURES_DIR.relative_to(paths.SUMMARY_REPORT.parent)
    _check_figures([paths.SAMPLES_FIGURE, paths.ACCURACY_FIGURE, paths.OPTIMIZERS_FIGURE, paths.CONFUSION_FIGURE,
                    *map(paths.curves_figure, curves)])
    counts = sorted({loaded[name].metrics["seeds"] for name in variants})
    folds = loaded[BASELINE].metrics["cv_folds"]
    best_metrics = loaded[best].metrics
    curve_lines = []
    for name in curves:
        curve_lines += [f"### {name}", "", variants[name].description, "",
                        f"![{name}: loss and accuracy per epoch]({figures_dir / paths.curves_figure(name)})", ""]
    tuning = tuning_markdown(table, variants, tolerances)
    values = {
        "backends": ", ".join(sorted({loaded[name].details["backend"] for name in variants})),
        "libraries": library_versions(),
        "test_size": prepare.test_size,
        "random_state": prepare.random_state,
        "train_images": f"{image_counts['train']:,}",
        "test_images": f"{image_counts['test']:,}",
        "checksums": "\n".join(f"  - `{file}` sha256 `{digest}`"
                               for file, digest in download.sha256.by_file_name().items()),
        "seeds": (f"{counts[0]} seed{'s' if counts[0] > 1 else ''}" if len(counts) == 1 else
                  f"{', '.join(map(str, counts[:-1]))} or {counts[-1]} seeds (each as many as its gate needs: "
                  "`make power`)"),
        "seed": seed,
        "folds": folds,
        "k": f"{tolerances.k:g}",
        "floor": f"{tolerances.floor:g}",
        "false_alarm": f"{tolerances.false_alarm:.0%}",
        "results": results_markdown(table, seed),
        "chapter": chapter_markdown(table, seed, folds),
        "agree": sum(bool(loaded[name].details["restore"]["agree"]) for name in variants),
        "variants": len(variants),
        "accuracy_figure": figures_dir / paths.ACCURACY_FIGURE,
        "samples_figure": figures_dir / paths.SAMPLES_FIGURE,
        "optimizers_figure": figures_dir / paths.OPTIMIZERS_FIGURE,
        "confusion_figure": figures_dir / paths.CONFUSION_FIGURE,
        "curves": "\n".join(curve_lines) + "\n" if curve_lines else "",
        "best": best,
        "rule": rule.describe(),
        "card_link": os.path.relpath(paths.MODEL_CARD, paths.SUMMARY_REPORT.parent),
        "best_val_accuracy": mean_std(best_metrics["val_accuracy_mean"], best_metrics["val_accuracy_std"]),
        "best_seeds": best_metrics["seeds"],
        "best_verdict": _within_noise(best, table, tolerances),
        "best_seed_val_accuracy": f"{best_metrics['val_accuracy']:.4f}",
        "best_seed_test_accuracy": f"{best_metrics['test_accuracy']:.4f}",
        "per_class": per_class_markdown(loaded[best]),
        "tuning": "\n" + "\n".join(tuning) if tuning else "",
    }
    # The template ends in a line break after the last section, which the sections' own blank line already gives.
    return SUMMARY.read_text(encoding="utf-8").format_map(values).removesuffix("\n\n") + "\n"
