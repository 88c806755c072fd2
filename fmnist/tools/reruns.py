"""What `dvc repro` reruns after a change to each section of params.yaml, worked out from dvc.yaml by DVC itself:
the stages that declare the section (or a key in it) as a param, then every stage that reads their outputs, from
DVC's own stage graph. Printed as the Markdown table docs/pipeline.md shows (tests/test_docs.py holds the two
together), so the docs have one list, and it is dvc.yaml's.

Usage: python -m fmnist.tools.reruns
"""
from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from fmnist.plumbing.errors import StageError

TRAIN = "train@"


def declared_params(stage) -> list[str]:
    """The params.yaml keys a DVC stage declares, dotted (`variants.relu100`, `gates.k`)."""
    return [key for dep in stage.deps if type(dep).__name__ == "ParamsDependency" for key in dep.params]


def affected(key: str, declared: list[str]) -> list[str] | None:
    """Which of a stage's declared params a change to `key` touches: None when none, [] when the stage reads the
    whole of `key` (or more), else the keys inside `key` it reads."""
    inside = [name for name in declared if name.startswith(key + ".")]
    if any(name == key or key.startswith(name + ".") for name in declared):
        return []
    return inside or None


def stage_list(names: list[str], every_train: set[str]) -> str:
    """Stage names in dvc.yaml's order, `every train@` for all the variants' stages together."""
    shown, trains = [], [name for name in names if name.startswith(TRAIN)]
    for name in names:
        if name.startswith(TRAIN) and set(trains) == every_train and len(trains) > 1:
            if "every `train@`" not in shown:
                shown.append("every `train@`")
        else:
            shown.append(f"`{name}`")
    return ", ".join(shown) or "—"


def table(root: Path) -> str:
    import networkx as nx
    from dvc.repo import Repo

    if not (root / "dvc.yaml").is_file() or not (root / "params.yaml").is_file():
        raise StageError(f"{root}: no dvc.yaml and params.yaml here; run it from the project's root")
    # uninitialized: the stage graph is dvc.yaml's alone, and needs no .dvc folder (a copy of the project's files)
    graph = Repo(str(root), uninitialized=True).index.graph
    order = [stage.addressing for stage in graph.nodes]
    by_name = {stage.addressing: stage for stage in graph.nodes}
    every_train = {name for name in order if name.startswith(TRAIN)}
    params = yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8"))
    example = next(iter(params.get("variants", {})), None)
    keys = [f"variants.{example}" if key == "variants" and example else key for key in params]
    rows = ["| change in `params.yaml` | reruns (reads it) | then, where what those write changed |", "|---|---|---|"]
    for key in keys:
        direct, partial = [], {}
        for name in order:
            touched = affected(key, declared_params(by_name[name]))
            if touched is None:
                continue
            direct.append(name)
            if touched:
                partial.setdefault(tuple(touched), []).append(name)
        parts = [f"{stage_list(names, every_train)} {'reads' if len(names) == 1 else 'read'} only "
                 f"{', '.join(f'`{part}`' for part in touched)}" for touched, names in partial.items()]
        after = {upstream.addressing for name in direct for upstream in nx.ancestors(graph, by_name[name])}
        then = [name for name in order if name in after and name not in direct]
        shown_key = f"`{key}` (one variant; `{example}` here)" if key.startswith("variants.") else f"`{key}`"
        reads = stage_list(direct, every_train) + (f" ({'; '.join(parts)})" if parts else "")
        if not direct:
            reads = "no stage (read outside `dvc repro`)"
        rows.append(f"| {shown_key} | {reads} | {stage_list(then, every_train)} |")
    return "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(prog="python -m fmnist.tools.reruns", description=__doc__.split("\n\n")[0]).parse_args(argv)
    print(table(Path.cwd()), end="")


if __name__ == "__main__":
    from fmnist.plumbing.runner import run

    run(main)
