"""README.md and docs/ cannot go stale silently: their commands exist, their figures are today's
(tests/docs_check.py says what is checked, and how)."""
import os
import re
import shutil
import subprocess

import pytest

import json
import textwrap

import yaml

from tests import docs_check
from tests.conftest import REPO_ROOT, copy_pipeline
from tests.helpers import copy_project, edit_params, init_git_dvc_repo, run, run_stage


def test_every_command_in_the_docs_exists_with_the_options_it_is_given():
    assert docs_check.all_command_problems(REPO_ROOT) == []


def test_every_figure_in_the_docs_is_tied_to_the_value_it_states():
    assert docs_check.figure_problems(REPO_ROOT) == []
    assert docs_check.trials_table_problems(REPO_ROOT) == []


def test_the_readme_results_table_is_the_metrics_files():
    assert docs_check.results_table_problems(REPO_ROOT) == []


def test_the_gate_example_is_the_gate_run_on_the_committed_metrics(tmp_path):
    """docs/statistics.md shows `make gate GATE_ARGS="--ref HEAD"` on the committed results: run it for real (DVC,
    git) on a copy of the project with reports/metrics and models/best's predictions, and the page must show
    exactly what it prints."""
    repo = copy_project(tmp_path / "repo")
    shutil.copytree(REPO_ROOT / "reports/metrics", repo / "reports/metrics")
    shutil.copy2(REPO_ROOT / "reports/best_predictions.csv", repo / "reports/best_predictions.csv")
    init_git_dvc_repo(repo)
    result = run_stage("gate", repo, args=("--ref", "HEAD"))
    assert result.returncode == 0, result.stderr
    shown = docs_check.gate_example(REPO_ROOT)
    assert shown == result.stdout.rstrip("\n"), \
        f"docs/statistics.md's gate example is stale; the gate prints:\n{result.stdout}"


@pytest.fixture
def docs_copy(tmp_path):
    """The docs, the Makefile, params.yaml, reports/ and the code they name in a folder of their own, to break."""
    for name in ("README.md", "Makefile", "params.yaml"):
        shutil.copy2(REPO_ROOT / name, tmp_path / name)
    for name in ("docs", "reports", "fmnist", "stages", "benchmarks"):
        shutil.copytree(REPO_ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__", "*.png"))
    return tmp_path


def add(page, text):
    page.write_text(page.read_text() + "\n" + text + "\n")


def test_a_missing_make_target_module_or_flag_is_named(docs_copy):
    add(docs_copy / "docs/ci.md", "```bash\nmake tset\npython -m fmnist.tools.predict --no-such-flag x.png\n"
                                  "python -m fmnist.predict x.png\n```\n"
                                  "Time it: `python benchmarks/stage_turns.py --revs HEAD -- train tuned`, "
                                  "`python benchmarks/stage_turn.py -- train tuned`, and "
                                  "`python benchmarks/suite_cpu.py --top 5 -- --max-test-seconds 60` (pytest's).")
    problems = docs_check.all_command_problems(docs_copy)
    assert "docs/ci.md: `make tset`: make target 'tset' is not in the Makefile" in problems
    assert ("docs/ci.md: `python -m fmnist.tools.predict --no-such-flag x.png`: `python -m fmnist.tools.predict` "
            "has no option --no-such-flag") in problems
    assert "docs/ci.md: `python -m fmnist.predict x.png`: module 'fmnist.predict' does not exist" in problems
    assert ("docs/ci.md: `python benchmarks/stage_turns.py --revs HEAD -- train tuned`: "
            "`python benchmarks/stage_turns.py` has no option --revs") in problems
    assert ("docs/ci.md: `python benchmarks/stage_turn.py -- train tuned`: script 'benchmarks/stage_turn.py' does "
            "not exist") in problems
    assert len(problems) == 5  # suite_cpu.py's --top is its own, and what follows -- is pytest's


def test_a_stale_command_in_the_model_card_is_named(docs_copy):
    """The generated reports a user reads are held to the same check: the model card once told users to run a gate
    option that had gone."""
    add(docs_copy / "reports/model_card.md", "Check it with `make reproducee`.")
    assert docs_check.all_command_problems(docs_copy) == [
        "reports/model_card.md: `make reproducee`: make target 'reproducee' is not in the Makefile"]


def test_a_wrong_dvc_or_gto_subcommand_or_option_is_named(docs_copy):
    add(docs_copy / "docs/model.md", "Run `dvc exp run --sett-param x=1`, then `gto registerr fashion-classifier`"
                                     " and `dvc plots show --no-such-option`.")
    problems = docs_check.all_command_problems(docs_copy)
    assert any("`dvc exp run` has no option --sett-param" in line for line in problems), problems
    assert any("`gto registerr` does not exist" in line for line in problems), problems
    assert any("`dvc plots show` has no option --no-such-option" in line for line in problems), problems
    assert len(problems) == 3


def test_help_texts_are_shared_by_copies_with_the_same_code_and_params_only(docs_copy):
    """The command check keeps each --help by the code's digest: a copy whose docs alone differ shares the
    repository's; a changed option in the code or a changed params.yaml must not reuse them."""
    add(docs_copy / "docs/ci.md", "`make tset`")
    assert docs_check.code_digest(docs_copy) == docs_check.code_digest(REPO_ROOT)
    predict = docs_copy / "fmnist/tools/predict.py"
    text = predict.read_text()
    predict.write_text(text + "\n")
    assert docs_check.code_digest(docs_copy) != docs_check.code_digest(REPO_ROOT)
    predict.write_text(text)
    add(docs_copy / "params.yaml", "# a comment")
    assert docs_check.code_digest(docs_copy) != docs_check.code_digest(REPO_ROOT)


def test_a_figure_not_tied_to_what_it_states_is_named_in_prose_and_output_but_not_in_commands_or_measurements(
        docs_copy):
    """0.8922 is tuned's mean today and 0.8478 softmax's: a check that accepted any value in reports/ would pass
    both, and both would go stale unseen. Only the chapter's forms tie a figure to its key."""
    add(docs_copy / "docs/statistics.md", "The best mean is 0.8922.\n\n```\nsoftmax  0.8478 ± 0.0015\n```\n\n"
                                          "Tied: ours `softmax` 0.8478 ± 0.0015, book 0.8465 beside it.\n\n"
                                          "```bash\ndvc exp run -S train.lr=0.1234\n```\n\n"
                                          "<!-- measured: a benchmark -->\n0.4321 s per epoch\n<!-- /measured -->")
    assert docs_check.figure_problems(docs_copy) == [
        f"docs/statistics.md: {number} is not tied to what it states: quote a result as ours `variant` mean ± σ "
        "(reports/metrics), the book's beside it as book x (params.yaml chapter), or link the generated report"
        for number in ("0.8922", "0.8478", "0.0015")]


def bumped(number: str) -> str:
    """The number one unit up in its last decimal, as many decimals: 0.8478 -> 0.8479, 0.0099 -> 0.0100."""
    places = len(number.split(".")[1])
    return f"{float(number) + 10 ** -places:.{places}f}"


def test_every_figure_the_docs_quote_moved_by_one_in_its_last_decimal_is_named(docs_copy):
    """Every number the checks read (outside commands, measurements and the gate example), moved by one unit of its
    last decimal, all at once: each moved number is named by one of the checks, on its page."""
    moved = []
    for page in docs_check.pages(docs_copy):
        text = page.read_text(encoding="utf-8")
        skipped = [match.span() for pattern in (docs_check.MEASURED, docs_check.GATE_EXAMPLE) for match in
                   pattern.finditer(text)] + [match.span() for match in docs_check.FENCE.finditer(text)
                                              if match.group(1) == "bash"]

        def move(match):
            if any(start <= match.start() < end for start, end in skipped):
                return match.group(0)
            moved.append((str(page.relative_to(docs_copy)), bumped(match.group(0))))
            return moved[-1][1]

        page.write_text(docs_check.NUMBER.sub(move, text), encoding="utf-8")
    problems = (docs_check.figure_problems(docs_copy) + docs_check.trials_table_problems(docs_copy)
                + docs_check.chapter_number_problems(docs_copy) + docs_check.results_table_problems(docs_copy))
    assert len(moved) > 60
    unseen = [(page, number) for page, number in moved
              if not any(problem.startswith(page + ":") and number in problem for problem in problems)]
    assert unseen == []


def test_a_trials_table_cell_or_order_that_disagrees_with_trials_csv_is_named(docs_copy):
    page = docs_copy / "docs/experiments.md"
    text = page.read_text()
    first, second = re.findall(r"^\| (?:16|21) \|.*\n", text, re.M)
    page.write_text(text.replace(first + second, second + first.replace("| 449 |", "| 450 |")))
    assert docs_check.trials_table_problems(docs_copy) == [
        "docs/experiments.md: trials table: trials 21, 16, 15, 5, 11; the best 5 in reports/tuning/trials.csv are "
        "16, 21, 15, 5, 11",
        "docs/experiments.md: trials table: trial 16 units 450, reports/tuning/trials.csv says 449"]


def test_a_results_row_that_disagrees_with_the_metrics_is_named(docs_copy):
    readme = docs_copy / "README.md"
    readme.write_text(readme.read_text().replace("| 0.8465 | ", "| 0.8466 | "))
    assert docs_check.results_table_problems(docs_copy) == [
        "README.md: results row softmax: chapter '0.8466', params.yaml says 0.8465"]
    seeds = json.loads((docs_copy / "reports/metrics/checkpoint.json").read_text())["seeds"]
    row = re.search(r"^\| checkpoint \|.*\|$", readme.read_text(), re.M)[0]
    readme.write_text(readme.read_text().replace(row, row.replace(f" ({seeds}) |", f" ({seeds + 1}) |")))
    problems = docs_check.results_table_problems(docs_copy)  # the seeds in brackets are checked too
    assert problems[1].startswith("README.md: results row checkpoint: ") and problems[1].endswith(f" ({seeds})")


def phony_targets(makefile: str) -> list[str]:
    return [name for line in makefile.splitlines() if line.startswith(".PHONY:") for name in line.split()[1:]]


def targets_without_recipe(makefile: str) -> list[str]:
    """Declared targets whose rule has no recipe line (a tab-indented line right after it)."""
    lines = makefile.splitlines()
    missing = []
    for name in phony_targets(makefile):
        rule = next((i for i, line in enumerate(lines) if re.match(rf"^{re.escape(name)}:(?!=)", line)), None)
        if rule is None or rule + 1 >= len(lines) or not lines[rule + 1].startswith("\t"):
            if name != "venv":  # `venv: $(STAMP)`: the stamp's rule is its recipe
                missing.append(name)
    return missing


def test_make_help_lists_every_target_with_one_line_and_no_target_lacks_a_recipe():
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert targets_without_recipe(makefile) == []
    assert targets_without_recipe(makefile.replace(".PHONY: help", ".PHONY: bench help")) == ["bench"]
    env = {key: value for key, value in os.environ.items() if not key.startswith("MAKE")}
    shown = subprocess.run(["make", "--no-print-directory"], cwd=REPO_ROOT, capture_output=True, text=True,
                           env=env, check=True).stdout  # a bare `make` is `make help`
    listed = [line.split()[1] for line in shown.splitlines()]
    assert listed == [name for name in re.findall(r"^([a-z][a-z-]*):.*## ", makefile, re.M)]
    assert set(listed) == set(phony_targets(makefile))
    assert all(len(line.split(None, 2)) == 3 for line in shown.splitlines())  # make <target> <what it does>


def test_the_chapter_page_links_code_lines_and_quotes_numbers_that_are_todays():
    assert docs_check.source_link_problems(REPO_ROOT) == []
    assert docs_check.chapter_number_problems(REPO_ROOT) == []


def test_a_code_link_to_a_moved_line_and_a_stale_chapter_number_are_named(docs_copy):
    """The line a link names moves (a line inserted above it); on the page's own lines, a mean, the book's number,
    the σ, the range and the early stop each go stale, and each is named."""
    models = docs_copy / "fmnist/core/models.py"
    lines = models.read_text().splitlines(keepends=True)
    models.write_text("".join(lines[:20] + ["# a line added above\n"] + lines[20:]))
    page = docs_copy / "docs/chapter7.md"
    text = page.read_text()
    link = re.search(r"\[`(keras\.Input\(shape=IMAGE_SHAPE\))`\]\(\.\./fmnist/core/models\.py#L(\d+)\)", text)
    mean = re.search(r"ours `sigmoid100` (\d\.\d{4}) ± (\d\.\d{4})", text)
    book = re.search(r"book (\d\.\d{4}) · ours `softmax`", text)
    sigmas = re.search(r"`dropout30_saved` [^\n]*?([−+]\d\.\d) σ", text)
    inside = re.search(r"`checkpoint` [^·]*· the book's run: [−+]\d\.\d σ, (inside|outside)", text)
    stopped = re.search(r"ours \(seed 42\) stopped at epoch (\d+)", text)
    seeds = re.search(r"ours `relu100` \d\.\d{4} ± \d\.\d{4} \((\d+) seeds", text)
    stale_mean = f"{float(mean[1]) + 0.0001:.4f}"
    stale_book = f"{float(book[1]) + 0.0001:.4f}"
    stale_sigmas = f"{sigmas[1][0]}{float(sigmas[1][1:]) + 0.1:.1f}"
    flipped = {"inside": "outside", "outside": "inside"}[inside[1]]
    for match, group, new in ((mean, 1, stale_mean), (book, 1, stale_book), (sigmas, 1, stale_sigmas),
                              (inside, 1, flipped), (stopped, 1, str(int(stopped[1]) + 1)),
                              (seeds, 1, str(int(seeds[1]) + 1))):
        whole = match[0]
        text = text.replace(whole,
                            whole[:match.start(group) - match.start()] + new + whole[match.end(group) - match.start():])
    page.write_text(text + "\nSee [the model](../fmnist/core/models.py#L1).\n")
    links = docs_check.source_link_problems(docs_copy)
    assert (f"docs/chapter7.md: link to ../fmnist/core/models.py#L{link[2]}: `{link[1]}` is not on that "
            f"line (it is on line {int(link[2]) + 1})") in links
    assert "docs/chapter7.md: a link to a line whose text is not `code`: write the code that is on the line" in links
    numbers = docs_check.chapter_number_problems(docs_copy)
    assert len(numbers) == 6, numbers
    for expected in (f"ours sigmoid100 {stale_mean} ± {mean[2]}, reports/metrics/sigmoid100.json says {mean[1]} ± "
                     f"{mean[2]}",
                     f"book {stale_book}, params.yaml chapter says {book[1]}",
                     f"{stale_sigmas} σ, reports/summary.md's chapter table says {sigmas[1]}",
                     f"{flipped} our range, reports/summary.md's chapter table says inside: "
                     f"{'yes' if inside[1] == 'inside' else 'no'}",
                     f"stopped at epoch {int(stopped[1]) + 1}, reports/metrics/early_stopping.json says {stopped[1]}",
                     f"ours relu100 over {int(seeds[1]) + 1} seeds, reports/metrics/relu100.json has {seeds[1]}"):
        assert any(line.endswith(expected) for line in numbers), (expected, numbers)


def test_the_table_of_what_reruns_is_dvc_yamls():
    assert docs_check.reruns_problems(REPO_ROOT) == []


def test_a_table_of_what_reruns_that_dvc_yaml_no_longer_holds_is_named(docs_copy):
    """plot stops declaring `chapter`: the table still says a change to `chapter` reruns plot."""
    shutil.copy2(REPO_ROOT / "dvc.yaml", docs_copy / "dvc.yaml")
    dvc_yaml = docs_copy / "dvc.yaml"
    text = dvc_yaml.read_text()
    assert "      - chapter\n" in text
    dvc_yaml.write_text(text.replace("      - chapter\n", "", 1))
    problems = docs_check.reruns_problems(docs_copy)
    assert len(problems) == 1 and "| `chapter` | `report` | — |" in problems[0], problems


def test_every_pointer_to_the_docs_goes_to_a_page_and_heading_that_exist():
    assert docs_check.pointer_problems(REPO_ROOT) == []


def test_a_pointer_to_a_heading_or_page_that_moved_is_named(docs_copy):
    """A heading renamed under its links, a page that is gone, and params.yaml pointing to a heading not there."""
    model = docs_copy / "docs/model.md"
    model.write_text(model.read_text().replace("## The registry", "## Registered versions"))
    add(docs_copy / "docs/ci.md", "See [the speed page](speeds.md).")
    params = docs_copy / "params.yaml"
    params.write_text(params.read_text() + '# see docs/statistics.md, "How many seeds, by power"\n')
    assert docs_check.pointer_problems(docs_copy) == [
        "docs/ci.md: points to speeds.md, which does not exist",
        "docs/model.md: points to model.md#the-registry: no such heading there",
        "params.yaml: points to docs/statistics.md, \"How many seeds, by power\": no such heading there",
        "reports/model_card.md: points to docs/model.md#the-registry: no such heading there",
        "fmnist/core/templates/model_card.md: points to docs/model.md#the-registry: no such heading there",
    ]


def adding_a_variant() -> tuple[str, dict, str]:
    """docs/pipeline.md's "Adding a variant": (the name, the entry, the gate command) its steps show."""
    text = (REPO_ROOT / "docs/pipeline.md").read_text(encoding="utf-8")
    section = text.split("### Adding a variant", 1)[1].split("\n### ", 1)[0]
    entry = yaml.safe_load(textwrap.dedent(re.search(r"```yaml\n(.*?)```", section, re.S).group(1)))["variants"]
    (name, spec), = entry.items()
    committed = yaml.safe_load((REPO_ROOT / "params.yaml").read_text(encoding="utf-8"))["variants"]
    assert name not in committed, f"the example variant {name} is in params.yaml already: adding it would replace it"
    assert f"`dvc repro train@{name}`" in section
    gate = re.search(r"`make gate GATE_ARGS=\"([^\"]+)\"`", section).group(1)
    return name, spec, gate


@pytest.mark.longer(2, "a train stage, three gate runs and the stages after training, on the tiny pipeline")
def test_the_documented_steps_add_a_variant_that_is_trained_gated_and_may_be_chosen(tiny_pipelines, tmp_path):
    """docs/pipeline.md's steps on a copy of the tiny pipeline, whose gate passes to start with: its entry added,
    `dvc repro train@<name>` trains it with the pipeline's seeds; the gate fails, naming the missing minimum and
    the line to add; with that line it passes; `dvc repro` then puts it among select's candidates."""
    name, spec, gate_args = adding_a_variant()
    pipeline = copy_pipeline(tiny_pipelines("tensorflow"), tmp_path / "repo")
    repo, env = pipeline.repo, pipeline.env

    def gate():
        return run(["python", "-m", "stages.gate", *gate_args.split()], repo, env, check=False)

    def suggested(stderr: str) -> dict[str, float]:
        return {key: float(value) for key, value in re.findall(r"add `([\w.]+): ([\d.]+)`", stderr)}

    # The tiny pipeline's own minimums, as the gate suggests them: it passes before the variant is added.
    first = suggested(gate().stderr)

    def own_minimums(document):
        kept = {key: value for key, value in document["gates"]["minimum"].items()
                if key.partition(".")[0] in {"baseline", *document["variants"]}}
        document["gates"]["minimum"] = kept | first

    edit_params(repo, own_minimums)
    assert gate().returncode == 0
    edit_params(repo, lambda d: d["variants"].update({name: spec}))
    trained = run(["dvc", "repro", f"train@{name}"], repo, env)
    assert f"train@{name}" in trained.stdout
    metrics = json.loads((repo / f"reports/metrics/{name}.json").read_text())
    assert metrics["seeds"] == yaml.safe_load((repo / "params.yaml").read_text())["train"]["replicates"]
    failed = gate()
    assert failed.returncode == 1
    assert f"{name}.val_accuracy_mean: no minimum in params.yaml gates.minimum" in failed.stderr
    line = suggested(failed.stderr)
    assert list(line) == [f"{name}.val_accuracy_mean"]
    assert line[f"{name}.val_accuracy_mean"] < metrics["val_accuracy_mean"]
    edit_params(repo, lambda d: d["gates"]["minimum"].update(line))
    assert gate().returncode == 0
    run(["dvc", "repro"], repo, env)
    selection = json.loads((repo / "models/best/selection.json").read_text())
    assert name in selection["rule"]["candidates"]
