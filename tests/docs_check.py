"""What tests/test_docs.py checks in README.md and docs/*.md: the commands they show exist, and the results they
quote are today's.

Commands: every shell line in a ```bash block, every `$ ` line of an output block, and every inline `make ...`,
`python -m ...`, `python benchmarks/...`, `dvc ...` or `gto ...`, in the pages and in the reports users read
(summary, model card). Each `make` target must be in the Makefile, each `python -m` module and benchmark script
must exist, and each `--flag` must appear in that command's `--help` (a benchmark's, up to a bare `--`: what
follows is for the program it runs); each `dvc`/`gto` subcommand must exist in the pinned version and take the
options given.

Figures: every number with four or more decimals outside bash blocks, `<!-- measured ... -->` sections and the gate
example must be tied to the one value it states, in a form this module checks: the README's results table (row by
row against reports/metrics and params.yaml `chapter`), a table marked `<!-- trials: ... -->` (row by row against
reports/tuning/trials.csv), or the chapter's forms below. Any other such number is refused, whatever its value: a
figure that only matches some value somewhere would pass stale (link the generated report instead).

Links to source lines, [`code`](../path.py#L12) (docs/chapter7.md): the code must be on that line, so a link goes
stale loudly when the file moves under it. The chapter's numbers, `ours `variant` 0.8478 ± 0.0015`, are the
variant's mean ± σ in reports/metrics (and `(8 seeds)` right after it, its seeds); on the same line, `book 0.8465`
is params.yaml `chapter`, and `−0.9 σ` and `inside/outside our range` are reports/summary.md's chapter table; `ours
(seed 42) stopped at epoch 12` is the metrics file's stopped_epoch.
"""
from __future__ import annotations

import csv
import functools
import hashlib
import json
import re
import shlex
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

TOOLS = ("make", "python", "dvc", "gto")
INLINE = re.compile(r"`((?:make |python -m |python benchmarks/|dvc |gto )[^`]+)`")
NUMBER = re.compile(r"(?<![\d.])\d\.\d{4,}(?!\d|\.\d)")  # a full stop after it ends a sentence
MEASURED = re.compile(r"<!-- measured.*?-->.*?<!-- /measured -->", re.S)
GATE_EXAMPLE = re.compile(r"<!-- gate example.*?-->.*?<!-- /gate example -->", re.S)  # checked whole: gate_example
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


def pages(root: Path) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def _joined(block: str) -> list[str]:
    """A block's lines, with backslash continuations joined."""
    return block.replace("\\\n", " ").splitlines()


def commands(text: str) -> list[str]:
    """Every command line the page shows: bash blocks, `$ ` lines of other blocks, inline code."""
    found = []
    for language, block in FENCE.findall(text):
        for line in _joined(block):
            line = line.strip()
            if line.startswith("$ "):
                found.append(line[2:])
            elif language == "bash" and line and not line.startswith("#"):
                found.append(line)
    prose = FENCE.sub("", text)
    found += INLINE.findall(prose.replace("\n", " "))
    return found


def _words(line: str) -> list[list[str]]:
    """The simple commands of one line (split at && ; | ||), comments and VAR=value prefixes removed."""
    try:
        tokens = shlex.split(line, comments=True)
    except ValueError:
        tokens = line.split()
    pieces, current = [], []
    for token in tokens:
        if token in ("&&", "||", ";", "|"):
            pieces.append(current)
            current = []
        elif token.endswith(";"):
            current.append(token[:-1])
            pieces.append(current)
            current = []
        else:
            current.append(token)
    pieces.append(current)
    simple = []
    for words in pieces:
        while words and re.match(r"^[A-Z_][A-Z0-9_]*=", words[0]):
            words = words[1:]
        if words and words[0] in TOOLS:
            simple.append(words)
    return simple


def _long_flags(words: list[str]) -> list[str]:
    return [word.split("=", 1)[0] for word in words if word.startswith("--") and len(word) > 2]


@functools.lru_cache(maxsize=None)
def make_targets(root: Path) -> frozenset[str]:
    text = (root / "Makefile").read_text(encoding="utf-8")
    return frozenset(re.findall(r"^([a-z][a-z0-9-]*):(?!=)", text, re.M))


def code_digest(root: Path) -> str:
    """What a command's --help can depend on in the project: its code and params.yaml. Two folders with the same
    digest (the repository and a test's copy of it, with only its docs changed) give the same help texts."""
    digest = hashlib.sha256()
    for path in sorted(path for folder in ("fmnist", "stages", "benchmarks") for path in (root / folder).rglob("*.py")):
        digest.update(f"{path.relative_to(root)}\0".encode() + path.read_bytes())
    if (root / "params.yaml").is_file():
        digest.update((root / "params.yaml").read_bytes())
    return digest.hexdigest()


_HELP_TEXTS: dict[tuple[str, tuple[str, ...]], tuple[int, str]] = {}  # {(code_digest, command): help_text}


def help_text(root: Path, code: str, command: tuple[str, ...]) -> tuple[int, str]:
    """(exit status, output) of `<command> --help`, run in the project's environment; kept by the code's digest,
    so the test module's several checks (the repository's, copies with broken docs) start each command once."""
    if (code, command) in _HELP_TEXTS:
        return _HELP_TEXTS[code, command]
    if command[0] == "python":
        args = [sys.executable, *command[1:], "--help"]
    else:
        args = [sys.executable, "-m", command[0], *command[1:], "--help"] if command[0] == "dvc" else \
            [str(Path(sys.executable).parent / command[0]), *command[1:], "--help"]
    result = subprocess.run(args, cwd=root, capture_output=True, text=True, timeout=120)
    _HELP_TEXTS[code, command] = result.returncode, result.stdout + result.stderr
    return _HELP_TEXTS[code, command]


def _subcommand(root: Path, code: str, words: list[str]) -> tuple[str, ...]:
    """`dvc exp run ...` is the subcommand ('dvc', 'exp', 'run') when its help's usage line says `exp run`;
    otherwise the first word is (`dvc repro select` is `dvc repro` with a target)."""
    if len(words) > 2 and re.fullmatch(r"[a-z][a-z-]*", words[2]):
        status, said = help_text(root, code, tuple(words[:3]))
        usage = next((line.split() for line in said.splitlines() if line.lower().startswith("usage:")), [])
        if status == 0 and words[2] in usage[3:4]:  # usage: dvc experiments run (exp is an alias of experiments)
            return tuple(words[:3])
    return tuple(words[:2])


def command_problems(root: Path, code: str, page: Path, line: str) -> list[str]:
    where = f"{page.relative_to(root)}: `{line}`"
    found = []
    for words in _words(line):
        tool = words[0]
        if tool == "make":
            for target in (word for word in words[1:] if "=" not in word and not word.startswith("-")):
                if target not in make_targets(root):
                    found.append(f"{where}: make target '{target}' is not in the Makefile")
            continue
        if tool == "python" and len(words) > 1 and words[1].startswith("benchmarks/"):
            if not (root / words[1]).is_file():
                found.append(f"{where}: script '{words[1]}' does not exist")
                continue
            command = ("python", words[1])
            words = words[:words.index("--")] if "--" in words else words  # after --: options of what it runs
        elif tool == "python":
            if len(words) < 3 or words[1] != "-m":
                continue
            module = words[2]
            if not (root / Path(*module.split("."))).with_suffix(".py").is_file() and not (
                    root / Path(*module.split(".")) / "__main__.py").is_file():
                if module not in ("pytest", "pip", "venv", "dvc"):
                    found.append(f"{where}: module '{module}' does not exist")
                continue
            command = ("python", "-m", module)
            rest = words[3:]
            if rest and re.fullmatch(r"[a-z][a-z-]*", rest[0]):  # a subcommand (sweep run, tune promote)
                status, _ = help_text(root, code, (*command, rest[0]))
                if status == 0:
                    command = (*command, rest[0])
        else:
            command = _subcommand(root, code, words)
        status, said = help_text(root, code, command)
        if status != 0:
            found.append(f"{where}: `{' '.join(command)}` does not exist (its --help fails)")
            continue
        for flag in _long_flags(words):
            if not re.search(re.escape(flag) + r"(?![\w-])", said):
                found.append(f"{where}: `{' '.join(command)}` has no option {flag}")
    return found


def all_command_problems(root: Path) -> list[str]:
    """Every command of the docs pages and of the generated reports a user reads (the summary, the model card)."""
    generated = [path for path in (root / "reports/summary.md", root / "reports/model_card.md") if path.is_file()]
    jobs = [(page, line) for page in [*pages(root), *generated] for line in commands(page.read_text(encoding="utf-8"))]
    code = code_digest(root)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = pool.map(lambda job: command_problems(root, code, *job), jobs)
    return [problem for problems in results for problem in problems]


# --- figures ----------------------------------------------------------------------------------------------------

RESULTS = re.compile(r"<!-- results.*?-->\n(.*?)<!-- /results -->", re.S)  # checked: results_table_problems
TRIALS = re.compile(r"<!-- trials:.*?-->\n((?:\|.*\n)+)")  # checked: trials_table_problems


def _prose(text: str) -> str:
    """A page's text whose figures figure_problems ties here: without commands (bash blocks: their numbers are
    inputs), measurements, the gate example and the tables checked whole elsewhere."""
    text = MEASURED.sub("", GATE_EXAMPLE.sub("", RESULTS.sub("", TRIALS.sub("", text))))
    return FENCE.sub(lambda block: "" if block.group(1) == "bash" else block.group(0), text)


def figure_problems(root: Path) -> list[str]:
    """Every figure outside the checked tables must be one of the chapter forms on its line, `ours `v` m ± s` and
    `book x` beside exactly one of them (chapter_number_problems checks their values): anything else is untied."""
    chapter = yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8"))["chapter"]
    found = []
    for page in pages(root):
        for line in _prose(page.read_text(encoding="utf-8")).replace("\n  ", " ").splitlines():
            quoted = OURS.findall(line)
            tied = OURS.sub("", line)
            if len(quoted) == 1 and quoted[0][0] in chapter:
                tied = BOOK.sub("", tied)
            for number in NUMBER.findall(tied):
                found.append(f"{page.relative_to(root)}: {number} is not tied to what it states: quote a result as "
                             "ours `variant` mean ± σ (reports/metrics), the book's beside it as book x (params.yaml "
                             "chapter), or link the generated report")
    return found


TRIALS_COLUMNS = {  # a trials table's header: the trials.csv column it shows, and how
    "trial": lambda row: row["number"],
    "value": lambda row: f"{float(row['value']):.4f}",
    "units": lambda row: row["units"],
    "dropout": lambda row: f"{float(row['dropout']):.3f}",
    "learning rate": lambda row: f"{float(row['learning_rate']):.5f}",
    "batch": lambda row: row["batch_size"],
    "epochs (max / run, mean)": lambda row: f"{row['epochs']} / {float(row['epochs_run_mean']):.1f}",
}


def trials_table_problems(root: Path) -> list[str]:
    """A table marked `<!-- trials: ... -->` shows the study's best finished trials, best first, each cell the
    trials.csv value of its trial and column (σ: val_accuracy_std)."""
    with open(root / "reports/tuning/trials.csv", encoding="utf-8", newline="") as file:
        trials = [row for row in csv.DictReader(file) if row["state"] == "COMPLETE"]
    by_number = {row["number"]: row for row in trials}
    best_first = [row["number"] for row in sorted(trials, key=lambda row: -float(row["value"]))]
    found = []
    for page in pages(root):
        for table in TRIALS.findall(page.read_text(encoding="utf-8")):
            rows = [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in table.splitlines()]
            shown = [dict(zip(rows[0], row)) for row in rows[2:]]
            where = f"{page.relative_to(root)}: trials table"
            if [row.get("trial") for row in shown] != best_first[:len(shown)]:
                found.append(f"{where}: trials {', '.join(row.get('trial', '?') for row in shown)}; the best "
                             f"{len(shown)} in reports/tuning/trials.csv are {', '.join(best_first[:len(shown)])}")
            for row in shown:
                trial = by_number.get(row.get("trial"))
                for column, cell in row.items():
                    if trial is None:
                        break
                    expected = (f"{float(trial['val_accuracy_std']):.4f}" if column.startswith("σ")
                                else TRIALS_COLUMNS[column](trial) if column in TRIALS_COLUMNS else None)
                    if expected is None:
                        found.append(f"{where}: column '{column}' is not one this check knows")
                    elif cell != expected:
                        found.append(f"{where}: trial {row['trial']} {column} {cell}, reports/tuning/trials.csv "
                                     f"says {expected}")
    return found


def gate_example(root: Path) -> str:
    """The output in docs/statistics.md's gate example: the block's lines after its `$ make gate` line."""
    text = (root / "docs/statistics.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- gate example:.*?-->\n```\n\$ [^\n]*\n(.*?)\n```\n<!-- /gate example -->", text, re.S)
    return block.group(1) if block else ""


def quoted_spread(metrics: dict) -> str:
    """How the docs quote a result: its mean validation accuracy ± σ across seeds ('0.8478 ± 0.0015'), the
    baseline's CV accuracy ± σ across folds."""
    key = "cv_accuracy" if "cv_accuracy" in metrics else "val_accuracy_mean"
    return f"{metrics[key]:.4f} ± {metrics[key.removesuffix('_mean') + '_std']:.4f}"


def results_table_problems(root: Path) -> list[str]:
    """The README's results rows: 'ours' is the variant's mean ± std in reports/metrics and its seeds in brackets
    (the baseline's CV, '(folds)'), and 'chapter' the value in params.yaml `chapter`."""
    text = (root / "README.md").read_text(encoding="utf-8")
    block = RESULTS.search(text)
    if not block:
        return ["README.md: no <!-- results --> block"]
    chapter = yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8"))["chapter"]
    found = []
    for row in block.group(1).splitlines()[2:]:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        name, quoted_chapter, ours = cells[0], cells[2], cells[3]
        metrics = json.loads((root / "reports/metrics" / f"{name}.json").read_text(encoding="utf-8"))
        expected = quoted_spread(metrics) + (f" ({metrics['seeds']})" if "seeds" in metrics else " (folds)")
        if ours != expected:
            found.append(f"README.md: results row {name}: '{ours}', reports/metrics/{name}.json says {expected}")
        expected_chapter = f"{chapter[name]['value']:.4f}" if name in chapter else "—"
        if quoted_chapter != expected_chapter:
            found.append(f"README.md: results row {name}: chapter '{quoted_chapter}', params.yaml says "
                         f"{expected_chapter}")
    return found


# --- links to source lines, and the chapter's numbers ------------------------------------------------------------

SOURCE_LINK = re.compile(r"\[`([^`]+)`\]\(([^)#\s]+)#L(\d+)\)")
ANY_LINE_LINK = re.compile(r"\]\(([^)#\s]+)#L\d+[^)]*\)")
OURS = re.compile(r"ours `(\w+)` (\d\.\d{4}) ± (\d\.\d{4})(?: \((\d+) seeds)?")  # (n seeds): checked too
BOOK = re.compile(r"book (\d\.\d{4})")
SIGMAS = re.compile(r"([−+]\d+\.\d) σ")
RANGE = re.compile(r"\b(inside|outside) our range")
STOPPED = re.compile(r"ours \(seed 42\) stopped at epoch (\d+)")


def source_link_problems(root: Path) -> list[str]:
    """Every [`code`](file#L<n>) link: the file exists and its line n holds the code; a line link whose text is not
    code cannot be checked, so it is named too."""
    found = []
    for page in pages(root):
        text = page.read_text(encoding="utf-8")
        where = page.relative_to(root)
        checked = 0
        for code, target, number in SOURCE_LINK.findall(text):
            checked += 1
            path = (page.parent / target).resolve()
            if not path.is_file() or root.resolve() not in path.parents:
                found.append(f"{where}: link to {target}#L{number}: no such file in the project")
                continue
            lines = path.read_text(encoding="utf-8").splitlines()
            if 1 <= int(number) <= len(lines) and code in lines[int(number) - 1]:
                continue
            now = [str(i) for i, line in enumerate(lines, 1) if code in line]
            found.append(f"{where}: link to {target}#L{number}: `{code}` is not on that line"
                         + (f" (it is on line {', '.join(now)})" if now else " (nor anywhere in the file)"))
        if len(ANY_LINE_LINK.findall(text)) != checked:
            found.append(f"{where}: a link to a line whose text is not `code`: write the code that is on the line")
    return found


def chapter_rows(root: Path) -> dict[str, dict[str, str]]:
    """reports/summary.md's table of the chapter's numbers, by variant: its cells as written, by column header."""
    text = (root / "reports/summary.md").read_text(encoding="utf-8")
    section = text.split("## The chapter's numbers", 1)[-1]
    rows = [[cell.strip() for cell in line.strip().strip("|").split("|")]
            for line in section.splitlines() if line.startswith("|")]
    header = rows[0]
    return {row[0]: dict(zip(header, row)) for row in rows[2:]}


def chapter_number_problems(root: Path) -> list[str]:
    chapter = yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8"))["chapter"]
    table = chapter_rows(root)
    metrics_of = {path.stem: json.loads(path.read_text(encoding="utf-8"))
                  for path in (root / "reports/metrics").glob("*.json")}
    found = []
    for page in pages(root):
        for line in page.read_text(encoding="utf-8").replace("\n  ", " ").splitlines():
            quoted = OURS.findall(line)
            where = f"{page.relative_to(root)}: '{line.strip()[:60]}...'"
            for name, mean, std, seeds in quoted:
                if name not in metrics_of:
                    found.append(f"{where}: no reports/metrics/{name}.json")
                elif f"{mean} ± {std}" != (expected := quoted_spread(metrics_of[name])):
                    found.append(f"{where}: ours {name} {mean} ± {std}, reports/metrics/{name}.json says {expected}")
                elif seeds and int(seeds) != metrics_of[name].get("seeds"):
                    found.append(f"{where}: ours {name} over {seeds} seeds, reports/metrics/{name}.json has "
                                 f"{metrics_of[name].get('seeds')}")
            if len(quoted) != 1 or quoted[0][0] not in metrics_of:
                continue
            name = quoted[0][0]
            row = table.get(name, {})
            for value in BOOK.findall(line):
                if name not in chapter:
                    found.append(f"{where}: book {value}, but params.yaml chapter has no {name}")
                elif value != f"{chapter[name]['value']:.4f}":
                    found.append(f"{where}: book {value}, params.yaml chapter says {chapter[name]['value']:.4f}")
            for sigmas in SIGMAS.findall(line):
                shown = next((cell for header, cell in row.items() if header.endswith("in σ")), None)
                if sigmas != shown:
                    found.append(f"{where}: {sigmas} σ, reports/summary.md's chapter table says {shown}")
            for side in RANGE.findall(line):
                inside = next((cell for header, cell in row.items() if header.endswith("inside our range")), None)
                if (side == "inside") != (inside == "yes"):
                    found.append(f"{where}: {side} our range, reports/summary.md's chapter table says "
                                 f"inside: {inside}")
            for epoch in STOPPED.findall(line):
                if int(epoch) != metrics_of[name].get("stopped_epoch"):
                    found.append(f"{where}: stopped at epoch {epoch}, reports/metrics/{name}.json says "
                                 f"{metrics_of[name].get('stopped_epoch')}")
    return found


# --- what reruns --------------------------------------------------------------------------------------------------

RERUNS = re.compile(r"<!-- reruns:.*?-->\n(.*?)<!-- /reruns -->", re.S)


def reruns_problems(root: Path) -> list[str]:
    """docs/pipeline.md's table of what reruns after a change is what `python -m fmnist.tools.reruns` makes of
    dvc.yaml now; no other page keeps a list of its own (they link the table)."""
    block = RERUNS.search((root / "docs/pipeline.md").read_text(encoding="utf-8"))
    result = subprocess.run([sys.executable, "-m", "fmnist.tools.reruns"], cwd=root, capture_output=True, text=True)
    if result.returncode != 0:
        return [f"python -m fmnist.tools.reruns failed: {result.stderr.strip()}"]
    if not block:
        return ["docs/pipeline.md: no <!-- reruns --> block"]
    if block.group(1) != result.stdout:
        return ["docs/pipeline.md: the table of what reruns is not dvc.yaml's; python -m fmnist.tools.reruns "
                f"makes:\n{result.stdout}"]
    return []


# --- pointers to the docs -----------------------------------------------------------------------------------------

PAGE_LINK = re.compile(r"\]\(([^)\s#]*?\.md)?(#[^)\s]+)?\)")
POINTER = re.compile(r"((?:docs/)?[\w-]+\.md)(?:#([\w-]+)|, \"([^\"]+)\"|: ([A-Z][^)`\"]+?)\))?")
HEADING = re.compile(r"^#{1,6} +(.+?) *$", re.M)


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: link text kept, code marks and punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def headings(path: Path) -> list[str]:
    return HEADING.findall(FENCE.sub("", path.read_text(encoding="utf-8")))


def pointer_problems(root: Path) -> list[str]:
    """Every link between the docs pages (README.md, docs/*.md) goes to a page and heading that exist; so does every
    pointer to a page in params.yaml, dvc.yaml, the generated reports, the code and its report templates
    (`docs/model.md#the-registry`, `docs/model.md, "The registry"`, `docs/model.md: A model without training)`)."""
    found = []
    for page in pages(root):
        for target, anchor in PAGE_LINK.findall(page.read_text(encoding="utf-8")):
            if target.startswith(("http", "../reports/")) or (not anchor and not target):
                continue
            path = (page.parent / target).resolve() if target else page
            found += _pointer(root, page, path, target or page.name, anchor[1:] if anchor else None, None)
    sources = [root / "params.yaml", root / "dvc.yaml", *sorted((root / "reports").glob("*.md")),
               *sorted((root / "fmnist").rglob("*.py")), *sorted((root / "fmnist").rglob("*.md")),
               *sorted((root / "stages").glob("*.py"))]
    for source in filter(Path.is_file, sources):
        for target, anchor, quoted, named in POINTER.findall(source.read_text(encoding="utf-8")):
            if target.startswith("docs/") or target == "README.md":
                found += _pointer(root, source, root / target, target, anchor or None, quoted or named or None)
    return found


def _pointer(root: Path, source: Path, path: Path, target: str, anchor: str | None, title: str | None) -> list[str]:
    where = source.relative_to(root)
    if not path.is_file():
        return [f"{where}: points to {target}, which does not exist"]
    titles = headings(path)
    if anchor and anchor not in {slug(title) for title in titles}:
        return [f"{where}: points to {target}#{anchor}: no such heading there"]
    if title and not any(title.strip().lower() in heading.lower() for heading in titles):
        return [f"{where}: points to {target}, \"{title}\": no such heading there"]
    return []
