"""End to end on both backends: `dvc repro` of download -> train (and evaluate) -> plot/report with tiny variants on
generated data."""
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, TINY_VARIANTS, copy_pipeline
from tests.helpers import edit_params, process_ended, run, run_stage

# Checks that do not depend on the backend run once, on the TensorFlow pipeline.
TENSORFLOW_ONLY = pytest.mark.parametrize("pipeline", ["tensorflow"], indirect=True)


def ran_stages(output: str) -> set[str]:
    return {line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage '")}


@pytest.fixture(scope="module", params=["tensorflow", "jax"])
def pipeline(request, tiny_pipelines):
    """The shared tiny pipeline of the given backend (conftest.py): read it, do not change it."""
    return tiny_pipelines(request.param)


# Seed 42's accuracy on the tiny data is above chance (0.1) by what one or two epochs of each variant learn, on
# either backend (seen here: softmax 0.95 TensorFlow / 0.75 JAX, stopping 0.70 / 0.90); one SGD epoch of
# tiny_relu barely moves (0.21 / 0.41; its five TensorFlow seeds' mean is 0.56).
LEARNS_AT_LEAST = {"tiny_softmax": 0.6, "tiny_relu": 0.15, "tiny_stopping": 0.5}


def test_every_variant_is_trained_evaluated_and_recorded(pipeline):
    backend, repo, env, first, _ = pipeline
    assert {f"train@{name}" for name in TINY_VARIANTS} <= ran_stages(first.stdout)
    for name in TINY_VARIANTS:
        summary = json.loads((repo / "models" / name / "training.json").read_text())
        assert summary["backend"] == backend
        metrics = json.loads((repo / "reports/metrics" / f"{name}.json").read_text())
        details = json.loads((repo / "reports/evaluation" / f"{name}.json").read_text())
        assert details["restore"]["agree"] is True and details["backend"] == backend
        assert len(details["test_accuracy_per_class"]) == 10
        rows = (repo / "reports/confusion" / f"{name}.csv").read_text().splitlines()
        assert rows[0] == "actual,predicted" and len(rows) == 101
        # The test accuracy is the share of the confusion rows on the diagonal.
        pairs = [row.split(",") for row in rows[1:]]
        assert metrics["test_accuracy"] == pytest.approx(sum(a == p for a, p in pairs) / len(pairs), abs=1e-6)
        assert min(metrics["val_accuracy"], metrics["test_accuracy"]) > LEARNS_AT_LEAST[name], (name, metrics)
        assert (repo / "reports/train" / name / "plots/metrics/train/loss.tsv").is_file()
    assert json.loads((repo / "reports/evaluation/tiny_softmax.json").read_text())["parameters"] == 7850
    # Every variant carries its seed spread: train.replicates seeds, the chapter's first.
    for name in TINY_VARIANTS:
        metrics = json.loads((repo / "reports/metrics" / f"{name}.json").read_text())
        spread = json.loads((repo / "reports/evaluation" / f"{name}.json").read_text())["spread"]
        assert metrics["seeds"] == 5 and spread["seeds"] == [42, 43, 44, 45, 46]
        assert spread["per_seed"][0]["val_accuracy"] == metrics["val_accuracy"]
        assert metrics["val_accuracy_std"] > 0 and spread["val_accuracy"]["min"] <= metrics["val_accuracy_mean"]
    stopping = json.loads((repo / "reports/metrics/tiny_stopping.json").read_text())
    assert 1 <= stopping["best_epoch"] <= 2
    assert json.loads((repo / "reports/evaluation/tiny_stopping.json").read_text())["evaluated_file"] == "best.keras"
    assert (repo / "reports/train/tiny_stopping/plots/metrics/eval/accuracy.tsv").is_file()
    # The last stages ran on the real outputs: a curve figure for the validated variant, a report row each.
    assert {"assess", "select", "plot", "report"} <= ran_stages(first.stdout)
    assert (repo / "reports/figures/curves_tiny_stopping.png").is_file()
    summary = (repo / "reports/summary.md").read_text()
    for name in TINY_VARIANTS:
        assert f"\n| {name} " in summary
    # `dvc plots show` reads every declared plot of a real run, and nothing else (no stray files).
    shown = json.loads(run(["dvc", "plots", "show", "--json"], repo, env).stdout)
    assert not shown.get("errors"), shown["errors"]
    assert {f"reports/confusion/{name}.csv" for name in TINY_VARIANTS} | {
        "reports/curves/train_val/tiny_stopping.csv", "reports/figures/curves_tiny_stopping.png"} <= set(shown["data"])
    # Nothing changed: nothing reruns.
    assert ran_stages(run(["dvc", "repro"], repo, env).stdout) == set()


def result_files(repo, names=("tiny_relu", "tiny_stopping")) -> dict[str, bytes]:
    """Metrics and details (every seed's results) of the given variants, as bytes."""
    return {f"{folder}/{name}": (repo / "reports" / folder / f"{name}.json").read_bytes()
            for folder in ("metrics", "evaluation") for name in names}


def test_training_twice_gives_identical_per_seed_results(pipeline, tmp_path):
    """Same params, same machine, same backend: every seed's result is identical, byte for byte."""
    backend, repo, env, _, _ = copy_pipeline(pipeline, tmp_path / "repo")
    # tiny_stopping draws the most random numbers: initial weights, batch order, dropout masks, per seed.
    before = result_files(repo, ("tiny_stopping",))
    run(["dvc", "repro", "--force", "--single-item", "train@tiny_stopping"], repo, env)
    assert result_files(repo, ("tiny_stopping",)) == before, f"results differ between two trainings on {backend}"


@pytest.mark.longer(2, why="every stage the reproduction check compares, run again")
@TENSORFLOW_ONLY
def test_another_float_rounding_path_moves_seeds_but_reproduces_the_means(pipeline, tmp_path):
    """What another CPU does, on one machine: TensorFlow without oneDNN and on one intra-op thread rounds
    differently (on a CPU without AVX-512 oneDNN alone changes nothing; the thread count splits reductions
    otherwise). Single seeds' results move; the gate's reproduction check, which compares means within the seed
    spread, passes."""
    # results with oneDNN (the default), committed
    backend, repo, env, _, _ = copy_pipeline(pipeline, tmp_path / "repo")
    retrained = tuple(TINY_VARIANTS)  # a reproduction runs every stage whose metrics it compares
    before = result_files(repo, retrained)
    stages = ["baseline", *(f"train@{name}" for name in retrained)]
    log = tmp_path / "ran.log"
    run(["dvc", "repro", "--force", "--single-item", *stages], repo,
        {**env, "TF_ENABLE_ONEDNN_OPTS": "0", "TF_NUM_INTRAOP_THREADS": "1", "FMNIST_RUN_LOG": str(log)})
    logged = [line.split() for line in log.read_text().splitlines()]
    assert [name for name, _ in logged] == stages  # each stage, as it completed, with its seconds
    assert all(float(seconds) > 0 for _, seconds in logged)
    after = result_files(repo, retrained)
    losses = {when: [seed["val_loss"] for name in retrained
                     for seed in json.loads(files[f"evaluation/{name}"])["spread"]["per_seed"]]
              for when, files in (("before", before), ("after", after))}
    assert losses["before"] != losses["after"]  # a different rounding path really was taken
    result = run(["python", "-m", "stages.gate", "--reproduces", "HEAD", "--ran", str(log)], repo, env, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    # Every mean: validation and test of each variant, and the baseline's CV.
    assert "reproduction of HEAD: all 7 checks pass" in result.stdout


@TENSORFLOW_ONLY
def test_unknown_variant_and_bad_variant_params_stop_before_training(pipeline, tmp_path):
    backend, repo, env, _, _ = copy_pipeline(pipeline, tmp_path / "repo")
    result = run_stage("train", repo, FASHION_MNIST_MIRROR="")
    assert result.returncode == 1 and "usage: python -m stages.train <variant>" in result.stderr
    result = run(["python", "-m", "stages.train", "nosuch"], repo, env, check=False)
    assert result.returncode == 1
    assert ("error: variant 'nosuch' is not declared in params.yaml (declared: tiny_softmax, tiny_relu, "
            "tiny_stopping)") in result.stderr
    edit_params(repo, lambda d: d["variants"]["tiny_stopping"]["callbacks"]["early_stopping"].update(patience=-1))
    result = run(["python", "-m", "stages.train", "tiny_relu"], repo, env, check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "'variants.tiny_stopping.callbacks.early_stopping.patience' = -1 is not allowed" in result.stderr
    assert "Epoch 1/" not in result.stdout  # no training started


# --- calm output: one line per stage, no library chatter ------------------------------------------------
# absl's C++ log lines (I/W/E/F + date), its pre-initialisation notice, Python logging's default format and
# Python warnings: what TensorFlow, JAX and Keras print when left alone.
LIBRARY_CHATTER = re.compile(r"^([IWEF]\d{4} |(WARNING|ERROR|CRITICAL)\b|\w*Warning: )|\w+Warning: ")
DVC_LINES = re.compile(r"^(> |Running stage |(Updating|Generating) lock file|Use `dvc push`|To track the changes|"
                       r"\s+git add|To enable auto staging|\s+dvc config|$)")
KERAS_EPOCH_LINES = re.compile(r"^(Epoch \d+/\d+|\d+/\d+ - )")


def stage_lines(output: str) -> dict[str, list[str]]:
    """Each stage's own lines in `dvc repro` output: without DVC's lines and Keras's per-epoch lines."""
    lines: dict[str, list[str]] = {}
    current = None
    for line in output.splitlines():
        if line.startswith("Running stage '"):
            current = line.split("'")[1]
            lines[current] = []
        elif current and not DVC_LINES.match(line) and not KERAS_EPOCH_LINES.match(line):
            lines[current].append(line)
    return lines


def test_repro_output_is_one_line_per_stage_without_library_chatter(pipeline):
    backend, repo, env, first, _ = pipeline
    chatter = [line for line in (first.stdout + first.stderr).splitlines() if LIBRARY_CHATTER.search(line)]
    assert chatter == [], f"library lines in `dvc repro` output on {backend}"
    said = stage_lines(first.stdout + first.stderr)
    assert set(said) == ({"download", "prepare", "baseline", "pictures", "assess", "select", "plot", "report"}
                         | {f"train@{n}" for n in TINY_VARIANTS})
    for stage, lines in said.items():
        assert len(lines) == 1, f"{stage} printed {lines}"
    for name in TINY_VARIANTS:
        line = said[f"train@{name}"][0]
        assert line.startswith(f"train@{name}: seed 42, ") and " validation 0." in line and " test 0." in line
        assert "5 seeds: validation 0." in line and f" on {backend}" in line
    assert said["download"][0].startswith("data/raw: 4 files verified")
    assert said["prepare"][0] == "data/prepared: 400 train, 100 validation, 100 test images"
    assert said["pictures"][0].startswith("data/pictures.npz: 10 families of ")
    assert said["select"][0].startswith("select: tiny_")
    assert "wrote models/best, reports/model_card.md and reports/best_predictions.csv" in said["select"][0]
    assert said["assess"][0].startswith("assess: tiny_") and ": unsure below 0." in said["assess"][0]
    assert said["assess"][0].split(":")[1].strip() == said["select"][0].split()[1]  # the variant select then chose


THREADS_BESIDE = """
import tensorflow as tf
from fmnist.core import other_seeds
from fmnist.plumbing import params
from fmnist.schema.training import TrainParams, VariantsParams, family
shared, variants = params.load(TrainParams), params.load(VariantsParams).root
with other_seeds.beside("tiny_relu", family("tiny_relu", variants, shared), shared) as job:
    print(job is not None, tf.config.threading.get_intra_op_parallelism_threads())
"""


@TENSORFLOW_ONLY
def test_seed_42_keeps_to_one_thread_only_while_the_stack_trains_beside_it(pipeline, tmp_path):
    """The train stage's process, once its child trains the other seeds: TensorFlow's ops on one intra-op thread, the
    child's on every core. Alone (one seed), the default pool (0: a thread a core)."""
    backend, repo, env, _, _ = copy_pipeline(pipeline, tmp_path / "repo")
    assert run(["python", "-c", THREADS_BESIDE], repo, env).stdout.split() == ["True", "1"]
    edit_params(repo, lambda d: d["train"].update(replicates=1))
    assert run(["python", "-c", THREADS_BESIDE], repo, env).stdout.split() == ["False", "0"]


ORDER_BESIDE = """
import sys
from fmnist.plumbing import processes
events, start, wait = [], processes.Child.__init__, processes.Child.result


def started(self, *args, **kwargs):
    events.append(f"child started, keras imported: {'keras' in sys.modules}")
    start(self, *args, **kwargs)
    from fmnist.core import evaluation  # the backend is chosen (KERAS_BACKEND) by now
    score = evaluation.score
    evaluation.score = lambda *a, **k: events.append("seed 42 scored") or score(*a, **k)


def waited(self):
    events.append("waited for the child")
    return wait(self)


processes.Child.__init__, processes.Child.result = started, waited
sys.argv = ["stages.train", "tiny_relu"]
from stages import train
train.main()
print(events)
"""


@TENSORFLOW_ONLY
def test_the_other_seeds_start_first_and_seed_42_is_scored_before_the_stage_waits_for_them(pipeline, tmp_path):
    """The child is the longer of the stage's two processes: it starts before the stage imports keras (seconds), and
    the stage scores seed 42's files before it waits for the child, not after."""
    backend, repo, env, _, _ = copy_pipeline(pipeline, tmp_path / "repo")
    printed = run(["python", "-c", ORDER_BESIDE], repo, env).stdout.splitlines()[-1]
    assert printed == str(["child started, keras imported: False", "seed 42 scored", "waited for the child"])


@TENSORFLOW_ONLY
def test_a_stage_run_alone_writes_nothing_to_stderr(pipeline, tmp_path):
    backend, repo, env, _, _ = copy_pipeline(pipeline, tmp_path / "repo")
    edit_params(repo, lambda d: d["train"].update(replicates=1))  # the stage alone (its child's stderr is its own)
    result = run(["python", "-m", "stages.train", "tiny_softmax"], repo, env)
    assert result.stderr == ""
    assert result.stdout.splitlines()[-1].startswith("train@tiny_softmax: seed 42, 1 epochs in ")


# XLA reloading an executable from the tests' compile cache (features shortened; the real line lists ~100): on AMD
# Zen the compiled side has LLVM tuning hints no CPU reports. From another CPU, a missing instruction set.
AOT_LOAD = ("E0000 00:00:1796491744.433522   15656 cpu_aot_loader.cc:220] Loading XLA:CPU AOT result. Target "
            "machine feature +prefer-no-gather is not  supported on the host machine. Machine type used for XLA:CPU "
            "compilation doesn't match the machine type for execution. Compile machine features: [+64bit,+avx,+avx2,"
            "+avx512f,+fma,+prefer-no-scatter,+prefer-no-gather,-amx-bf16,-avx512fp16] vs host machine features: "
            "[avx,64bit,avx512f,avx2,fma]. This could lead to execution errors such as SIGILL.")
OTHER_CPU_LOAD = AOT_LOAD.replace("+avx512f,", "+avx512f,+avx512fp16,")
NOTICES = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1795954118.708390   10335 port.cc:153] oneDNN custom operations are on. You may see slightly "
    "different numerical results due to floating-point round-off errors from different computation orders.",
    "I0000 00:00:1795954118.708902   10335 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will "
    "not be used.",
    "E0000 00:00:1795957655.056998    2118 node_def_util.cc:682] NodeDef mentions attribute use_unbounded_threadpool "
    "which is not in the op definition: Op<name=MapDataset; ...>",
    AOT_LOAD,
    "E0000 00:00:1796591815.586439   19968 text_format.cc:378] Error parsing text-format "
    "tensorflow.XlaSerializedCacheEntry: 2:1: Expected identifier, got: 5",
]
CU_INIT = ("E0000 00:00:1795954549.996073   11955 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: "
           "Failed call to cuInit: UNKNOWN ERROR (303)")
REAL_PROBLEMS = ["E0000 00:00:1795954549.996073   11955 some_kernel.cc:7] a real problem", OTHER_CPU_LOAD,
                 "E0000 00:00:1796591815.586439   19968 text_format.cc:378] Error parsing text-format "
                 "tensorflow.GraphDef: 2:1: Expected identifier, got: 5",
                 "F0000 00:00:1795954549.996073   11955 check.cc:1] Check failed: x", "python's own error line"]


@pytest.mark.parametrize("ending", ["finish", "crash"])
def test_the_stderr_filter_drops_only_known_notices_and_passes_the_rest_in_full(ending):
    """Native writes to fd 2 and Python's own go through the filter; a crash loses nothing."""
    lines = [*NOTICES, CU_INIT, *REAL_PROBLEMS[:-1]]
    script = (
        "import os, sys\n"
        "from fmnist.plumbing import quiet\n"
        "quiet.filter_stderr()\n"
        f"os.write(2, {chr(10).join(lines)!r}.encode() + b'\\n')\n"
        f"print({REAL_PROBLEMS[-1]!r}, file=sys.stderr)\n"
        + ("quiet.finish()\n" if ending == "finish" else "sys.stderr.flush(); os.abort()\n")
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=str(REPO_ROOT))
    assert result.returncode == (0 if ending == "finish" else -signal.SIGABRT)
    from fmnist.plumbing import quiet

    expected = REAL_PROBLEMS + ([] if quiet.has_nvidia_driver() is False else [CU_INIT])
    assert sorted(result.stderr.splitlines()) == sorted(expected)
    assert quiet.is_notice(CU_INIT, nvidia_driver=False)
    assert not quiet.is_notice(CU_INIT, nvidia_driver=True)  # with a driver, cuInit failing is a real problem


# --- a failed run keeps the last good results ------------------------------------------------------------

def outputs_of(repo, name) -> dict[str, bytes]:
    """Every file train@<name> wrote, by path, as bytes."""
    files = [*(repo / "models" / name).rglob("*"), *(repo / "reports/train" / name).rglob("*"),
             *(repo / "reports").glob(f"*/{name}.*")]
    return {str(path.relative_to(repo)): path.read_bytes() for path in files if path.is_file()}


@TENSORFLOW_ONLY
def test_a_rejected_value_or_ctrl_c_leaves_the_previous_results_in_place(pipeline, tmp_path):
    backend, repo, env, _, _ = copy_pipeline(pipeline, tmp_path / "repo")
    before = outputs_of(repo, "tiny_stopping")
    assert len(before) > 10
    # The README's pipeline command checks params.yaml whole before DVC starts anything.
    edit_params(repo, lambda d: d["variants"]["tiny_stopping"]["hidden"][0].update(dropout=1.0))
    checked = run(["python", "-m", "fmnist.schema"], repo, env, check=False)
    assert checked.returncode == 1 and len(checked.stderr.splitlines()) == 1
    assert "'variants.tiny_stopping.hidden.0.dropout' = 1.0" in checked.stderr
    # A direct `dvc repro` starts the stage, which rejects the value; DVC no longer deletes the outputs first.
    failed = run(["dvc", "repro"], repo, env, check=False)
    assert failed.returncode != 0 and "'variants.tiny_stopping.hidden.0.dropout' = 1.0" in failed.stderr
    assert outputs_of(repo, "tiny_stopping") == before
    # Ctrl-C while it trains (a valid change this time): the new results never replace the old ones.
    edit_params(repo, lambda d: d["variants"]["tiny_stopping"]["hidden"][0].update(dropout=0.2))
    process = subprocess.Popen(["dvc", "repro", "train@tiny_stopping"], cwd=repo, env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 120
    while not list((repo / "models").glob(".tiny_stopping.*.tmp")):  # training has begun
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()[0]
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGINT)  # what a terminal sends the whole foreground group
    output = process.communicate(timeout=120)[0]
    assert process.returncode != 0, output
    assert "interrupted: the stage's outputs are all as they were, or all new" in output
    assert outputs_of(repo, "tiny_stopping") == before
    assert not list(repo.glob("**/.tiny_stopping.*.tmp")) and not list(repo.glob("reports/*/.tiny_stopping.*"))
    # What is on disk still matches dvc.lock: only the params changed.
    status = run(["dvc", "status", "train@tiny_stopping"], repo, env).stdout
    assert "changed deps" in status and "changed outs" not in status, status


def children_of(pid: int) -> list[tuple[int, str]]:
    """The processes `pid` started, with their command lines (Linux's /proc)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                found.append((int(child), Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode()))
            except FileNotFoundError:
                pass
    return found


@TENSORFLOW_ONLY
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the stage's child in /proc")
@pytest.mark.longer(2, why="starts the real stage three times: stopped alone, stopped under DVC, then to the end")
def test_sigterm_stops_a_stage_like_ctrl_c_and_its_seeds_child_with_it(pipeline, tmp_path):
    """What `kill`, `docker stop` or a cancelled CI job sends: the stage rolls back, its child training the other
    seeds ends, it exits 143; under `dvc repro` (the whole group stopped) the outputs and git status are as before,
    and the next run is clean."""
    backend, repo, env, _, _ = copy_pipeline(pipeline, tmp_path / "repo")
    before = outputs_of(repo, "tiny_stopping")
    status_before = run(["git", "status", "--porcelain"], repo, env).stdout
    edit_params(repo, lambda d: d["variants"]["tiny_stopping"]["hidden"][0].update(dropout=0.2))

    def training_started(process):
        deadline = time.monotonic() + 120
        while not list((repo / "models").glob(".tiny_stopping.*.tmp")):
            assert process.poll() is None and time.monotonic() < deadline, process.communicate()
            time.sleep(0.02)

    stage = subprocess.Popen([sys.executable, "-m", "stages.train", "tiny_stopping"], cwd=repo, env=env, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    training_started(stage)
    seeds = [pid for pid, line in children_of(stage.pid) if "fmnist.core.other_seeds" in line]
    assert len(seeds) == 1, children_of(stage.pid)
    stage.send_signal(signal.SIGTERM)  # the stage alone, not its group: it must stop its child itself
    _, err = stage.communicate(timeout=120)
    assert stage.returncode == 143, err
    assert "interrupted by SIGTERM: the stage's outputs are all as they were" in err
    assert process_ended(seeds[0], 10), "the child training the other seeds outlived the stage"
    assert outputs_of(repo, "tiny_stopping") == before
    assert not list(repo.glob("**/.tiny_stopping.*")) and not (repo / ".transactions").exists()

    dvc = subprocess.Popen(["dvc", "repro", "train@tiny_stopping"], cwd=repo, env=env, text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    training_started(dvc)
    os.killpg(dvc.pid, signal.SIGTERM)  # what a CI runner sends the job's processes
    dvc.communicate(timeout=120)
    assert outputs_of(repo, "tiny_stopping") == before
    assert not list(repo.glob("**/.tiny_stopping.*")) and not (repo / ".transactions").exists()
    assert run(["git", "status", "--porcelain"], repo, env).stdout == status_before + " M params.yaml\n"
    rerun = run(["dvc", "repro", "train@tiny_stopping"], repo, env)
    assert "repaired" not in rerun.stderr + rerun.stdout  # nothing was left to repair
    assert outputs_of(repo, "tiny_stopping") != before


# The real stage, run as `python -m stages.train <variant>` runs it, SIGKILLed by an audit hook at a chosen point of its
# commit: the AT-th rename of an output aside (mid-swap), or the first removal of a previous output (swap done).
KILLED_STAGE = """
import os, runpy, signal, sys
variant, point, at = sys.argv[1], sys.argv[2], int(sys.argv[3])
seen = 0
def hook(event, args):
    global seen
    if event == "os.rename" and point == "swapping" and os.fsdecode(args[1]).endswith(".old"):  # os.replace's event
        seen += 1
    elif event in ("os.remove", "shutil.rmtree") and point == "done" and os.fsdecode(args[0]).endswith(".old"):
        seen += 1
    else:
        return
    if seen == at:
        os.kill(os.getpid(), signal.SIGKILL)
sys.addaudithook(hook)
sys.argv = ["stages.train", variant]
sys.path.insert(0, os.getcwd())  # the repository, as `python -m` would have it
runpy.run_module("stages.train", run_name="__main__", alter_sys=True)
"""


@TENSORFLOW_ONLY
@pytest.mark.parametrize("point, left", [("swapping", "old"), ("done", "new")])
@pytest.mark.longer(2, why="the real stage twice: SIGKILLed in its commit, then rerun by dvc repro")
def test_a_stage_killed_in_its_commit_is_repaired_before_dvc_starts(pipeline, tmp_path, point, left):
    """SIGKILL (nothing runs after it) in the middle of the swap, or after the commit point: git sees nothing stray,
    the repair that `make repro` runs first says what it did in one line and leaves exactly the previous outputs or
    exactly the new ones, and the next `dvc repro` is an ordinary run."""
    backend, repo, env, _, _ = copy_pipeline(pipeline, tmp_path / "repo")
    variant = "tiny_relu"
    before = outputs_of(repo, variant)
    edit_params(repo, lambda d: d["variants"][variant]["optimizer"].update(momentum=0.5))
    (tmp_path / "killed.py").write_text(KILLED_STAGE)
    killed = run([sys.executable, str(tmp_path / "killed.py"), variant, point, "3" if point == "swapping" else "1"],
                 repo, env, check=False)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert (repo / ".transactions").is_dir()  # the journal of the interrupted commit
    status = run(["git", "status", "--porcelain", "--untracked-files=all"], repo, env).stdout
    assert "??" not in status, status  # the temporaries and backups beside the outputs are ignored
    repaired = run([sys.executable, "-m", "fmnist.plumbing.transaction"], repo, env)
    lines = repaired.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"repaired: the last run of train@{variant} was stopped"), lines
    assert not list(repo.glob(f"**/.{variant}.*")) and not (repo / ".transactions").exists()
    after = outputs_of(repo, variant)
    if left == "old":
        assert after == before
        assert run(["git", "status", "--porcelain"], repo, env).stdout == " M params.yaml\n"
    else:
        assert set(after) == set(before) and all(after[path] != before[path] for path in after
                                                 if path.startswith("reports/metrics/"))
    rerun = run(["dvc", "repro", f"train@{variant}"], repo, env)
    assert "repaired" not in rerun.stdout + rerun.stderr


@TENSORFLOW_ONLY
def test_a_variant_sets_its_own_seeds_and_only_its_stage_reruns(pipeline, tmp_path):
    """variants.<name>.replicates (what `make power` suggests) overrides train.replicates for that variant alone:
    its stage reruns and trains that many seeds; no other stage's results change."""
    backend, repo, env, _, _ = copy_pipeline(pipeline, tmp_path / "repo")
    before = json.loads((repo / "reports/metrics/tiny_relu.json").read_text())
    edit_params(repo, lambda d: d["variants"]["tiny_softmax"].update(replicates=3))
    changed = json.loads(run(["dvc", "status", "--json"], repo, env).stdout)
    assert [stage for stage in changed if stage.startswith("train@")] == ["train@tiny_softmax"]
    run(["dvc", "repro", "train@tiny_softmax"], repo, env)
    metrics = json.loads((repo / "reports/metrics/tiny_softmax.json").read_text())
    assert metrics["seeds"] == 3 and before["seeds"] != 3
    evaluation = json.loads((repo / "reports/evaluation/tiny_softmax.json").read_text())
    assert [entry["seed"] for entry in evaluation["spread"]["per_seed"]] == [42, 43, 44]
    assert json.loads((repo / "reports/metrics/tiny_relu.json").read_text()) == before
