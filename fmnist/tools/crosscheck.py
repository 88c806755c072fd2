"""This machine against the committed results: a one-seed run of a few variants (seed 42, Keras fit, as the
chapter does), each compared with the committed mean across seeds by the one rule (fmnist.core.comparison, the
committed σ standing for both sides, the variants one family). The platform matrix workflow
(.github/workflows/platforms.yml) runs it on each platform and uploads the row it writes.

    python -m fmnist.tools.crosscheck softmax sigmoid100 relu100 [--out FILE.md]

Needs data/prepared (`dvc repro prepare`). The variants train in a scratch copy of the project (the stages' code,
params.yaml with `replicates: 1` for them, data/prepared linked), so the workspace and its results are left as they
are. Prints a Markdown table, one row per variant, and with --out appends it to FILE (a header first if FILE is new);
exit 1 when a variant's accuracy is told apart from its committed mean.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

import yaml

from fmnist.core import comparison
from fmnist.core.results import val_accuracy_spread
from fmnist.core.spread import Spread
from fmnist.plumbing import atomic, paths
from fmnist.plumbing.errors import StageError

CODE = ("stages", "fmnist")  # copied into the scratch project, with params.yaml (its variants at one seed)
LIBRARIES = ("tensorflow", "keras", "numpy")
HEADER = ("| platform | Python | " + " | ".join(LIBRARIES) + " | variant | validation accuracy (seed 42) | "
          "committed mean ± σ (n) | within spread |\n|" + "---|" * (6 + len(LIBRARIES)) + "\n")


def committed(names: list[str], root: Path) -> dict[str, Spread]:
    """Each variant's committed mean validation accuracy across seeds, with its σ and n (reports/metrics)."""
    declared = yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8"))["variants"]
    found = {}
    for name in names:
        if name not in declared:
            raise StageError(f"variant '{name}' is not declared in params.yaml (declared: {', '.join(declared)})")
        path = root / paths.metrics_file(name)
        if not path.is_file():
            raise StageError(f"{paths.metrics_file(name)}: not found; the committed results are what this run is "
                             f"compared with (`git checkout` them, or `dvc repro train@{name}`)")
        spread = val_accuracy_spread(json.loads(path.read_text(encoding="utf-8")))
        if not spread.estimable:
            raise StageError(f"{paths.metrics_file(name)}: one seed only; a committed spread is needed to compare with")
        found[name] = spread
    return found


def train_one_seed(names: list[str], root: Path) -> dict[str, float]:
    """Seed 42's validation accuracy of each variant, trained by its train stage in a scratch copy of the project."""
    prepared = root / paths.PREPARED_DIR
    if not prepared.is_dir():
        raise StageError(f"{paths.PREPARED_DIR}: not found; run `dvc repro prepare` first")
    with tempfile.TemporaryDirectory(prefix="crosscheck-") as scratch:
        copy = Path(scratch)
        for name in CODE:
            shutil.copytree(root / name, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
        document = yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8"))
        for name in names:
            document["variants"][name]["replicates"] = 1
        (copy / "params.yaml").write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
        (copy / paths.PREPARED_DIR).parent.mkdir(parents=True)
        (copy / paths.PREPARED_DIR).symlink_to(prepared.resolve())
        accuracies = {}
        for name in names:
            print(f"crosscheck: training {name}, seed 42 only", file=sys.stderr)
            # --alone: this variant's own trajectory, whatever family it belongs to; nothing kept for later runs
            subprocess.run([sys.executable, "-m", "stages.train", name, "--alone"], cwd=copy, check=True,
                           env=dict(os.environ, PYTHONPATH=str(copy)), stdout=subprocess.DEVNULL)
            accuracies[name] = json.loads((copy / paths.metrics_file(name)).read_text())["val_accuracy"]
    return accuracies


def rows(accuracies: dict[str, float], reference: dict[str, Spread],
         tolerances: comparison.Tolerances) -> list[tuple[str, bool]]:
    """(a Markdown row, told apart) per variant: this platform, its library versions, the accuracy, the committed
    spread and whether the one rule tells the two apart (the variants as one family)."""
    names = list(accuracies)
    verdicts = comparison.told_apart([(Spread(accuracies[n], None, 1), reference[n]) for n in names], tolerances)
    where = f"{platform.system()} {platform.machine()}"
    versions = " | ".join(metadata.version(library) for library in LIBRARIES)
    return [(f"| {where} | {platform.python_version()} | {versions} | {name} | {accuracies[name]:.4f} | "
             f"{reference[name].mean:.4f} ± {reference[name].std:.4f} ({reference[name].n}) | "
             f"{'no' if verdict.apart else 'yes'} ({verdict.difference:+.4f}, allowed ±{verdict.allowed:.4f}) |",
             bool(verdict.apart)) for name, verdict in zip(names, verdicts)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m fmnist.tools.crosscheck", description=__doc__.split("\n\n")[0])
    parser.add_argument("variants", nargs="+", help="variants of params.yaml to train with seed 42 alone")
    parser.add_argument("--out", type=Path, help="append the rows to this Markdown file (a header first if new)")
    args = parser.parse_args(argv)
    root = Path.cwd()
    from fmnist.plumbing import params
    from fmnist.schema.gates import GatesParams

    gates = params.load(GatesParams)
    reference = committed(args.variants, root)
    table = rows(train_one_seed(args.variants, root), reference,
                 comparison.Tolerances(gates.k, gates.floor, false_alarm=gates.false_alarm))
    lines = "\n".join(row for row, _ in table) + "\n"
    print(HEADER + lines, end="")
    if args.out:
        atomic.write_text(args.out, (args.out.read_text(encoding="utf-8") if args.out.is_file() else HEADER) + lines)
    apart = [name for name, (_, told) in zip(args.variants, table) if told]
    if apart:
        raise StageError(f"told apart from the committed mean on this platform: {', '.join(apart)}")


if __name__ == "__main__":
    from fmnist.plumbing.runner import run

    run(main, stopped="nothing in the workspace was changed")
