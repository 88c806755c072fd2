"""python -m fmnist.tools.crosscheck on the tiny pipeline: seed 42 of a variant trained alone in a scratch copy,
compared with the committed mean by the one rule; the workspace untouched."""
from __future__ import annotations

import json
import re

from tests.conftest import copy_pipeline
from tests.helpers import run


def crosscheck(pipeline, *args):
    return run(["python", "-m", "fmnist.tools.crosscheck", *args], pipeline.repo, pipeline.env, check=False)


def set_committed(repo, name, **values):
    path = repo / "reports/metrics" / f"{name}.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **values}))


def test_a_one_seed_run_is_within_or_outside_the_committed_spread_and_changes_nothing(tiny_pipelines, tmp_path):
    """tiny_relu's committed mean is set to its seed 42's accuracy (a σ of 0.01), tiny_softmax's far above its
    own (a σ of 0.001): the first is within the spread, the second told apart, and the exit code says so. Seed 42
    trained alone in the scratch copy scores what the pipeline's seed 42 scored; the row goes to --out; git sees
    no change in the workspace."""
    pipeline = copy_pipeline(tiny_pipelines("tensorflow"), tmp_path / "repo")
    repo = pipeline.repo
    seed_42 = {name: json.loads((repo / "reports/metrics" / f"{name}.json").read_text())["val_accuracy"]
               for name in ("tiny_relu", "tiny_softmax")}
    set_committed(repo, "tiny_relu", val_accuracy_mean=seed_42["tiny_relu"], val_accuracy_std=0.01)
    set_committed(repo, "tiny_softmax", val_accuracy_mean=min(1.0, seed_42["tiny_softmax"] + 0.3),
                  val_accuracy_std=0.001)
    before = run(["git", "status", "--porcelain"], repo, pipeline.env).stdout
    out = tmp_path / "rows.md"
    result = crosscheck(pipeline, "tiny_relu", "tiny_softmax", "--out", str(out))
    assert result.returncode == 1
    assert result.stderr.strip().endswith("error: told apart from the committed mean on this platform: tiny_softmax")
    rows = {line.split(" | ")[5]: line for line in result.stdout.splitlines() if "| tiny_" in line}
    assert f"| tiny_relu | {seed_42['tiny_relu']:.4f} | " in rows["tiny_relu"]
    assert re.search(r"\| yes \(\+0\.0000, allowed ±0\.\d{4}\) \|$", rows["tiny_relu"]), rows["tiny_relu"]
    assert re.search(r"\| no \(-0\.\d{4}, allowed ±0\.\d{4}\) \|$", rows["tiny_softmax"]), rows["tiny_softmax"]
    written = out.read_text().splitlines()
    assert written[0].startswith("| platform | Python | tensorflow | keras | numpy | variant |")
    assert written[2:] == [rows["tiny_relu"], rows["tiny_softmax"]]
    assert run(["git", "status", "--porcelain"], repo, pipeline.env).stdout == before  # nothing written here


def test_an_unknown_variant_or_one_without_a_committed_spread_gets_one_line(tiny_pipelines, tmp_path):
    pipeline = copy_pipeline(tiny_pipelines("tensorflow"), tmp_path / "repo")
    result = crosscheck(pipeline, "relu999")
    assert result.returncode == 1
    assert result.stderr.startswith("error: variant 'relu999' is not declared in params.yaml")
    set_committed(pipeline.repo, "tiny_relu", val_accuracy_std=None, seeds=1)
    result = crosscheck(pipeline, "tiny_relu")
    assert result.returncode == 1
    assert result.stderr == ("error: reports/metrics/tiny_relu.json: one seed only; a committed spread is needed to "
                             "compare with\n")
