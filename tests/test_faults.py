"""A real tiny train@ stage, stopped at every write it makes: its outputs are all the previous ones or all the
new ones, nothing stray is left, and `dvc status` agrees (the harness: tests/faults.py)."""
import json
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT, copy_pipeline
from tests.helpers import edit_params

# The cheapest tiny variant (one Dense layer, one epoch): each injected fault is one more run of the stage, and
# the transaction does the same for every variant (tests/test_transaction.py covers the mechanism alone).
VARIANT = "tiny_softmax"
MODES = ("fail", "sigint")


@pytest.fixture(scope="module")
def reports(tiny_pipelines, tmp_path_factory):
    """{mode: the harness's report}, both modes run at once, each in its own copy of the tiny pipeline with
    train@tiny_softmax up to date and then its params changed (one seed, another optimizer)."""
    processes = {}
    for mode in MODES:
        pipeline = copy_pipeline(tiny_pipelines("tensorflow"), tmp_path_factory.mktemp(f"faults-{mode}") / "repo")

        def change(document):
            document["train"]["replicates"] = 1  # no child process: every write of the stage is in one process
            document["variants"][VARIANT]["optimizer"] = {"name": "adam"}
            document["variants"][VARIANT].pop("augmentation", None)  # its random layer costs every run; no write
            # One batch an epoch: the harness runs steps eagerly (~60 ms each); the writes come per epoch and after.
            document["variants"][VARIANT]["batch_size"] = 512

        edit_params(pipeline.repo, change)
        env = dict(pipeline.env, PYTHONPATH=str(pipeline.repo))
        processes[mode] = subprocess.Popen([sys.executable, str(REPO_ROOT / "tests/faults.py"), VARIANT, mode],
                                           cwd=pipeline.repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                           text=True)
    found = {}
    for mode, process in processes.items():
        out, err = process.communicate(timeout=1200)
        assert process.returncode == 0, err[-3000:]
        found[mode] = json.loads(out.strip().splitlines()[-1])
    return found


@pytest.mark.longer(4, why="its set-up runs the stage once for each of its ~80 writes, in both modes")
@pytest.mark.parametrize("mode", MODES)
def test_a_fault_at_any_write_leaves_all_previous_or_all_new_outputs(reports, mode):
    writes, runs = reports[mode]["writes"], reports[mode]["runs"]
    assert len(writes) >= 40, writes  # the model files, dvclive's logs, the reports, the journal, the swaps
    assert any(w.startswith(f"os.rename models/.{VARIANT}.") for w in writes), writes  # the commit is among them
    assert len(runs) == len(writes)
    for entry in runs:
        where = f"{mode} at write {entry['k']} ({entry['write']}): {entry}"
        assert entry["left"] in ("old", "new"), where
        assert entry["left_after_repair"] == entry["left"], where
        assert entry["stray_after_repair"] == [], where
        if entry["stray"]:  # only what a crash would leave, repaired by the next run in one line
            assert entry["repaired"] and "\n" not in entry["repaired"], where
        assert entry["dvc_outs_changed"] == (entry["left"] == "new"), where
        assert (entry["ended"] == "ok") <= (entry["left"] == "new"), where
    # Both sides of the commit point were hit: faults before it keep the old outputs, after it the new ones.
    assert {entry["left"] for entry in runs} == {"old", "new"}
