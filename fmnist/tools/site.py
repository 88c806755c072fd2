"""The report site: `make site` builds site/ from the committed reports, a static site that works from file://
with no network. Generated, never edited; GitHub Pages publishes it (.github/workflows/site.yml).

    python -m fmnist.tools.site [--out site]

--out is replaced whole, so it must be absent or a site this command built (it holds MARKER); anything else is
refused. The pages carry a Content-Security-Policy that allows nothing from elsewhere, every interpolated string is
escaped, and a remote image in a report (a variant's description can hold Markdown) is shown as its text.

Pages: the chapter, section by section (docs/chapter7.md, where the project has it: its figures shown from the
site's copies, its links to code and to other docs as plain text), the summary (reports/summary.md, every table),
the training curves of every variant overlaid (each one toggled from the legend, the seed spread of its final
validation accuracy drawn at its last epoch), the accuracy comparison with error bars, the model card, the tuning
study (history with pruned and failed trials, importances, parallel coordinates, slices) and the sweep reports; the
last two when their reports exist.
The charts are plotly's; its JavaScript comes from the plotly package in the lock and is copied into the site,
never loaded from a CDN. The study's views are drawn from reports/tuning/trials.csv (committed), rebuilt as an
in-memory Optuna study with params.yaml's search space, so a clone without the study database shows them too.
"""
from __future__ import annotations

import argparse
import csv
import html
import json
import re
import shutil
from pathlib import Path

from fmnist.plumbing import atomic, paths
from fmnist.plumbing.errors import StageError
from fmnist.plumbing.runner import run

REPORTS = Path("reports")
PLOTLY_JS = "plotly.min.js"
MARKER = ".fmnist-site"  # written into every site built: the one kind of folder --out may replace
# Nothing from elsewhere: the site's own files; plotly's charts are inline scripts, the style an inline element;
# figures and plotly's own images are files or data: URIs.
CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data:; connect-src 'none'; object-src 'none'; base-uri 'none'; form-action 'none'")
REMOTE_IMAGE = re.compile(r'<img src="(?:[a-zA-Z][a-zA-Z0-9+.-]*:|//)[^"]*" alt="([^"]*)"[^>]*>')
# Each Markdown report and the page it becomes; links between reports follow.
MARKDOWN_PAGES = {paths.SUMMARY_REPORT.name: "index.html", paths.MODEL_CARD.name: "model_card.html"}
CHAPTER_PAGE = Path("docs/chapter7.md")
NAVIGATION = [("chapter7.html", "Chapter 7 · 7장"), ("index.html", "Summary"), ("curves.html", "Training curves"),
              ("accuracy.html", "Accuracy"), ("model_card.html", "Model card"), ("tuning.html", "Tuning study"),
              ("sweeps.html", "Sweeps")]
STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:0 auto;padding:0 1em 3em;color:#222}
nav{position:sticky;top:0;background:#fff;border-bottom:1px solid #ddd;padding:.6em 0;margin-bottom:1em}
nav a{margin-right:1.2em;text-decoration:none}nav a.here{font-weight:bold}
table{border-collapse:collapse;margin:1em 0;font-size:.9em;display:block;overflow-x:auto}
th,td{border:1px solid #ccc;padding:.25em .5em}
th{background:#f3f3f3}img{max-width:100%}code{background:#f3f3f3;padding:0 .2em}
pre{background:#f3f3f3;padding:.6em;overflow-x:auto}"""


def markdown_html(text: str) -> str:
    """Markdown (CommonMark and tables) as HTML; links to another report point at its page."""
    from markdown_it import MarkdownIt

    rendered = MarkdownIt("commonmark", {"html": False}).enable("table").render(text)
    rendered = REMOTE_IMAGE.sub(r"[image not shown: \1]", rendered)  # the site fetches nothing from elsewhere
    for source, page in MARKDOWN_PAGES.items():
        rendered = rendered.replace(f'href="{source}', f'href="{page}')
    return re.sub(r'href="sweeps/([\w.-]+)\.md', r'href="sweeps.html#\1', rendered)


def chapter_html(text: str) -> str:
    """docs/chapter7.md for the site, which holds the reports' figures and pages but not the code or the docs: its
    figures and the summary from the site's copies, every other link (code lines, docs, anchors) as its text."""
    text = text.replace("](../reports/figures/", "](figures/").replace("](../reports/summary.md)", "](index.html)")
    text = re.sub(r"(?<!!)\[([^\]]+)\]\((?!figures/|index\.html\))[^)]*\)", r"\1", text)
    return markdown_html(text)


def page(title: str, here: str, body: str, charts: bool = False, present: set[str] | None = None) -> str:
    links = "".join(f'<a href="{href}"{" class=here" if href == here else ""}>{html.escape(name)}</a>'
                    for href, name in NAVIGATION if present is None or href in present)
    script = f'<script src="{PLOTLY_JS}"></script>' if charts else ""
    return (f"<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8><title>{html.escape(title)}</title>"
            f"<meta http-equiv=Content-Security-Policy content=\"{CSP}\">"
            f"<meta name=viewport content='width=device-width,initial-scale=1'><style>{STYLE}</style>{script}</head>"
            f"<body><nav>{links}</nav>\n{body}\n</body></html>\n")


def chart(figure, element_id: str) -> str:
    """A plotly figure as a div and its script, using the site's own copy of plotly.js."""
    return figure.to_html(full_html=False, include_plotlyjs=False, div_id=element_id,
                          default_height="560px", config={"displaylogo": False})


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def variant_results() -> dict[str, dict]:
    """{variant: its metrics} for every variant params.yaml declares that has reports/metrics/<variant>.json."""
    from fmnist.plumbing import params
    from fmnist.schema.training import VariantsParams

    return {name: json.loads(paths.metrics_file(name).read_text()) for name in params.load(VariantsParams).root
            if paths.metrics_file(name).is_file()}


def curves_figure(results: dict[str, dict], metric: str):
    """Every variant's per-epoch `metric` (accuracy or loss), training dashed and validation solid, one legend
    entry per variant (a click hides or shows it); accuracy also gets the seeds' mean ± std of the final
    validation accuracy at the last epoch."""
    import plotly.graph_objects as go

    figure = go.Figure()
    for name, metrics in results.items():
        source = next((folder / f"{name}.csv" for folder in (paths.CURVES_DIR / "train_val", paths.CURVES_DIR / "train")
                       if (folder / f"{name}.csv").is_file()), None)
        if source is None:
            continue
        rows = read_csv(source)
        epochs = [int(row["epoch"]) for row in rows]
        shown = False
        for key, dash in ((f"val_{metric}", "solid"), (metric, "dot")):
            if key in rows[0]:
                figure.add_scatter(x=epochs, y=[float(row[key]) for row in rows], mode="lines", name=name,
                                   legendgroup=name, showlegend=not shown, line={"dash": dash},
                                   hovertemplate=f"{name} {key}: %{{y:.4f}} (epoch %{{x}})<extra></extra>")
                shown = True
        if metric == "accuracy" and metrics.get("val_accuracy_std") is not None:
            figure.add_scatter(x=[epochs[-1]], y=[metrics["val_accuracy_mean"]], mode="markers", name=name,
                               legendgroup=name, showlegend=False, marker={"symbol": "diamond", "size": 9},
                               error_y={"type": "data", "array": [metrics["val_accuracy_std"]]},
                               hovertemplate=(f"{name}: validation accuracy {metrics['val_accuracy_mean']:.4f} ± "
                                              f"{metrics['val_accuracy_std']:.4f} over {metrics.get('seeds')} seeds"
                                              "<extra></extra>"))
    figure.update_layout(title=f"{metric} per epoch: validation solid, training dotted (click a variant to hide it)",
                         xaxis_title="epoch", yaxis_title=metric, legend_title="variant", hovermode="closest")
    return figure


def accuracy_figure(results: dict[str, dict]):
    import plotly.graph_objects as go

    ranked = sorted(results, key=lambda name: results[name].get("val_accuracy_mean") or 0)
    figure = go.Figure()
    for split in ("val", "test"):
        spread = [results[n].get(f"{split}_accuracy_std") or 0 for n in ranked]
        figure.add_bar(y=ranked, x=[results[n].get(f"{split}_accuracy_mean") for n in ranked], orientation="h",
                       name={"val": "validation", "test": "test"}[split], error_x={"type": "data", "array": spread})
    low = min((results[n].get("test_accuracy_mean") or 1) for n in ranked) if ranked else 0
    figure.update_layout(title="Mean accuracy over seeds, ± one standard deviation", barmode="group",
                         xaxis={"title": "accuracy", "range": [max(0.0, low - 0.05), 1.0]},
                         height=max(400, 40 * len(ranked) + 150))
    return figure


def study_from_trials(rows: list[dict[str, str]]):
    """The committed trials as an in-memory Optuna study, their distributions from params.yaml `tune.space`
    (tune's own suggest(), on fixed values); None when the space no longer holds them."""
    import optuna

    from fmnist.plumbing import params
    from fmnist.schema.tools import TuneParams
    from fmnist.tools.tune import suggest

    tune = params.load(TuneParams)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize")
    for row in rows:
        if row["state"] != "COMPLETE":
            continue
        fixed = optuna.trial.FixedTrial({key: csv_value(text) for key, text in row.items()})
        try:
            suggest(fixed, tune)  # asks for exactly the space's hyper-parameters: their distributions
        except ValueError:
            return None
        study.add_trial(optuna.trial.create_trial(params=fixed.params, distributions=fixed.distributions,
                                                  value=float(row["value"])))
    return study


def csv_value(text: str):
    """A CSV cell as the number it holds (int before float), else the text."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def history_figure(rows: list[dict[str, str]]):
    """Every trial by number: a complete one at its value (the mean validation accuracy of its seeds), with the best
    so far; a pruned or failed one, which has no such value (a pruned trial's last report is a negative validation
    loss), on the lower edge. The y-axis spans the bulk of the complete trials; a value far below them is drawn on
    the lower edge too, its real value on hover."""
    import plotly.graph_objects as go

    complete = sorted((int(row["number"]), float(row["value"])) for row in rows if row["state"] == "COMPLETE")
    values = sorted(value for _, value in complete) or [0.0]
    quartile = values[len(values) // 4]
    bottom = max(values[0], quartile - 3 * (values[-1] - quartile)) - 0.01
    figure = go.Figure()
    figure.add_scatter(x=[n for n, _ in complete], y=[max(v, bottom) for _, v in complete], mode="markers",
                       name=f"complete ({len(complete)})", marker={"size": 9, "color": "#1f77b4"},
                       text=[f"trial {n}: {v:.4f}" + (" (below the axis)" if v < bottom else "") for n, v in complete],
                       hovertemplate="%{text}<extra></extra>")
    for state, colour, symbol in (("PRUNED", "#ff7f0e", "triangle-down"), ("FAIL", "#d62728", "x")):
        chosen = [row for row in rows if row["state"] == state]
        if chosen:
            figure.add_scatter(x=[int(row["number"]) for row in chosen], y=[bottom] * len(chosen), mode="markers",
                               name=f"{state.lower()} ({len(chosen)})",
                               marker={"size": 10, "color": colour, "symbol": symbol},
                               text=[f"trial {row['number']}: {state.lower()}" + (
                                   f", last reported {row['value']}" if row["value"] else "") for row in chosen],
                               hovertemplate="%{text}<extra></extra>")
    best, running = [], float("-inf")
    for number, value in complete:
        running = max(running, value)
        best.append((number, running))
    figure.add_scatter(x=[n for n, _ in best], y=[max(v, bottom) for _, v in best], mode="lines", name="best so far",
                       line={"shape": "hv", "color": "#2ca02c"})
    figure.update_layout(title="Optimization history: complete trials at their value; pruned and failed on the "
                               "lower edge", xaxis_title="trial",
                         yaxis={"title": "mean validation accuracy", "range": [bottom - 0.005, values[-1] + 0.005]})
    return figure


def tuning_body(rows: list[dict[str, str]]) -> str:
    import optuna.visualization as views

    from fmnist.plumbing.paths import TUNING_BEST

    parts = ["<h1>Tuning study</h1>"]
    if TUNING_BEST.is_file():
        best = json.loads(TUNING_BEST.read_text())
        parts.append(f"<p>Study <code>{html.escape(str(best.get('study')))}</code> around "
                     f"<code>{html.escape(str(best.get('base')))}</code>: best trial "
                     f"{html.escape(str(best.get('trial')))}, mean validation accuracy "
                     f"{float(best.get('value')):.4f}; params "
                     f"<code>{html.escape(json.dumps(best.get('params')))}</code>. "
                     f"{len(rows)} trials in reports/tuning/trials.csv (below).</p>")
    parts.append("<p>The study itself, every trial's per-epoch values included, is <code>tuning/study.db</code>, "
                 "tracked by DVC: <code>make dashboard</code> fetches it and opens it in optuna-dashboard; "
                 "<code>make tune</code> resumes it.</p>")
    parts.append(chart(history_figure(rows), "history"))
    study = study_from_trials(rows)
    complete = [row for row in rows if row["state"] == "COMPLETE"]
    if study is not None and len(complete) >= 2:
        from fmnist.tools.tune import importances_evaluator

        for element_id, figure in (
                ("importances", views.plot_param_importances(study, evaluator=importances_evaluator())),
                ("parallel", views.plot_parallel_coordinate(study)), ("slices", views.plot_slice(study))):
            parts.append(chart(figure, element_id))
    else:
        parts.append("<p>Importances, parallel coordinates and slices need two complete trials drawn from "
                     "params.yaml's tune.space.</p>")
    parts.append(markdown_html(table_markdown(rows)))
    return "\n".join(parts)


def table_markdown(rows: list[dict[str, str]]) -> str:
    keys = list(rows[0])
    return "\n".join(["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys),
                      *("| " + " | ".join(row[k] for k in keys) + " |" for row in rows)]) + "\n"


def copy_assets(out: Path) -> None:
    """The figures the Markdown shows, with the reports' own relative paths, and plotly.js."""
    import plotly

    for folder in (paths.FIGURES_DIR, paths.TUNING_DIR):
        if folder.is_dir():
            for file in folder.iterdir():
                if file.suffix in (".png", ".csv", ".json") and file.is_file() and not file.is_symlink():
                    target = out / file.relative_to(REPORTS)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(file, target)
    shutil.copy2(Path(plotly.__file__).parent / "package_data" / PLOTLY_JS, out / PLOTLY_JS)


def build(out: Path) -> list[str]:
    """Write the site into `out` (replaced whole); the pages written."""
    staging = out.with_name(f".{out.name}.new")
    for folder in (out, staging):
        ours(folder)
    for required in (paths.SUMMARY_REPORT, paths.METRICS_DIR):
        if not required.exists():
            raise StageError(f"{required}: not found; run `make repro` (or `dvc pull`) first: the site shows the "
                             "pipeline's reports")
    pages: dict[str, str] = {}
    results = variant_results()
    if CHAPTER_PAGE.is_file():
        pages["chapter7.html"] = ("Chapter 7, section by section",
                                  chapter_html(CHAPTER_PAGE.read_text(encoding="utf-8")), False)
    pages["index.html"] = ("Summary", markdown_html(paths.SUMMARY_REPORT.read_text(encoding="utf-8")), False)
    pages["curves.html"] = ("Training curves", "<h1>Training curves</h1>" + chart(curves_figure(results, "accuracy"),
                            "curves") + chart(curves_figure(results, "loss"), "losses"), True)
    pages["accuracy.html"] = ("Accuracy", "<h1>Accuracy of every variant</h1>" + chart(accuracy_figure(results),
                              "accuracy"), True)
    if paths.MODEL_CARD.is_file():
        pages["model_card.html"] = ("Model card", markdown_html(paths.MODEL_CARD.read_text(encoding="utf-8")), False)
    from fmnist.tools.tune import reported_trials

    rows = reported_trials()
    if rows:
        pages["tuning.html"] = ("Tuning study", tuning_body(rows), True)
    sweeps = sorted(paths.SWEEPS_DIR.glob("*.md"))
    if sweeps:
        body = "".join(f'<section id="{html.escape(s.stem)}">{markdown_html(s.read_text(encoding="utf-8"))}</section>'
                       for s in sweeps)
        pages["sweeps.html"] = ("Sweeps", body, False)

    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    (staging / MARKER).write_text("built by python -m fmnist.tools.site; --out replaces it whole\n")
    copy_assets(staging)
    for name, (title, body, charts) in pages.items():
        atomic.write_text(staging / name, page(title, name, body, charts, set(pages)))
    shutil.rmtree(out, ignore_errors=True)  # the old site out, the new one in: never half of each
    staging.rename(out)
    return list(pages)


def ours(folder: Path) -> None:
    """A folder the build may replace: absent, or a site it built (MARKER in it); a StageError for anything else,
    which `--out docs` or `--out .` would otherwise delete."""
    if folder.is_symlink() or (folder.exists() and not (folder / MARKER).is_file() and not _built_before(folder)):
        raise StageError(f"{folder}: exists and is not a site this command built (no {MARKER} in it); --out must "
                         "name a new folder or a site made before, which it replaces whole")


def _built_before(folder: Path) -> bool:
    """A site built before builds wrote MARKER: its pages, plotly.js and the reports' figures, nothing else."""
    entries = list(folder.iterdir()) if folder.is_dir() else []
    return (folder / "index.html").is_file() and all(
        entry.suffix == ".html" or entry.name == PLOTLY_JS or (entry.is_dir() and entry.name in ("figures", "tuning"))
        for entry in entries)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m fmnist.tools.site", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("site"), help="the folder to write (default: site)")
    out = parser.parse_args(argv).out
    written = build(out)
    print(f"site: {len(written)} pages in {out}/ ({', '.join(written)}); open {out}/index.html")


if __name__ == "__main__":
    run(main)
