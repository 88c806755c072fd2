"""Each library internal fmnist/compat/ relies on still behaves as assumed. A failure names the library, the
version it was written for, and what a user would see break. `.github/workflows/latest.yml` runs these against
the newest releases."""
import io
import subprocess
import sys
from importlib import metadata

import pytest

from fmnist.compat import experiments, pipeline
from tests.conftest import REPO_ROOT
from tests.helpers import GIT_USER, run


def broke(library: str, assumed: str, symptom: str) -> str:
    return f"{library} {metadata.version(library)} (written for {assumed}): {symptom}"


def test_pydantic_validator_messages_carry_the_value_error_prefix_we_strip():
    from pydantic import BaseModel, ValidationError, field_validator

    class Model(BaseModel):
        x: int

        @field_validator("x")
        @classmethod
        def _odd(cls, value):
            raise ValueError("must be odd")

    with pytest.raises(ValidationError) as raised:
        Model(x=2)
    error = raised.value.errors()[0]
    assert pipeline.pydantic_error_message(error) == "must be odd", broke(
        "pydantic", "2.14, messages 'Value error, <text>'",
        f"params.yaml errors would read {error['msg']!r} instead of the validator's own text")


def test_tensorflow_op_determinism_can_be_switched_off_again():
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()
    try:
        pipeline.disable_tf_op_determinism()
    except ImportError as error:
        pytest.fail(broke("tensorflow", "2.21, tensorflow.python.framework.config.disable_op_determinism",
                          f"the train stage cannot evaluate as a fresh process does ({error})"))
    from tensorflow.python.framework.config import is_op_determinism_enabled  # its internal sibling, to check

    assert not is_op_determinism_enabled(), broke(
        "tensorflow", "2.21", "op determinism stays on while scoring: losses may move by a float32 ulp")


def test_a_none_in_sys_modules_makes_an_import_fail_and_is_undone():
    name = "tabnanny"  # a standard-library module nothing here imports
    assert name not in sys.modules
    with pipeline.modules_hidden((name,)):
        with pytest.raises(ImportError):
            __import__(name)
    assert __import__(name).__name__ == name, broke(
        "tensorflow", "CPython 3.11's import system", "a package hidden while keras starts stays unimportable")
    del sys.modules[name]


@pytest.fixture
def dvc_repo(tmp_path):
    """A git + DVC repository with one stage, committed, its output not produced yet."""
    run(["git", "init", "-q", "-b", "main"], tmp_path)
    run([sys.executable, "-m", "dvc", "init", "-q"], tmp_path)
    run([sys.executable, "-m", "dvc", "stage", "add", "-q", "-n", "make", "-o", "out.txt", "echo hi > out.txt"],
        tmp_path)
    run(["git", *GIT_USER, "add", "-A"], tmp_path)
    run(["git", *GIT_USER, "commit", "-qm", "pipeline"], tmp_path)
    return tmp_path


def test_dvc_lists_missing_outputs_and_saves_experiments_under_refs_exps(dvc_repo, monkeypatch):
    monkeypatch.chdir(dvc_repo)
    repo = experiments.open_repo(str(dvc_repo))
    assert experiments.missing_outputs(repo) == ["out.txt"], broke(
        "dvc", "3.67, Repo.index.outs and Output.exists", "make tune would not say which outputs are missing")
    run([sys.executable, "-m", "dvc", "repro", "-q"], dvc_repo)
    repo = experiments.open_repo(str(dvc_repo))
    assert experiments.missing_outputs(repo) == []
    (dvc_repo / "live.txt").write_text("a trial's log\n")  # untracked, like tuning/live
    monkeypatch.setenv("GIT_AUTHOR_NAME", "t")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "t@example.com")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "t")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "t@example.com")
    experiments.save_experiment(repo, "study-trial-000", ["live.txt"], "a trial")
    refs = run(["git", "for-each-ref", "--format=%(refname)", experiments.EXP_REFS], dvc_repo).stdout.split()
    names = [experiments.experiment_name_of_ref(ref) for ref in refs]  # None: DVC's bookkeeping refs (exec/EXEC_HEAD)
    assert [name for name in names if name] == ["study-trial-000"], broke(
        "dvc", "3.67, refs/exps/<commit[:2]>/<commit[2:]>/<name>",
        f"make sweep would not find its experiments (refs: {refs})")
    saved = run(["git", "show", f"{refs[names.index('study-trial-000')]}:live.txt"], dvc_repo).stdout
    assert saved == "a trial's log\n", broke("dvc", "3.67, experiments.save(include_untracked=...)",
                                              "a tuning trial's log would be missing from its experiment")


def test_dvc_tracks_a_file_in_its_cache_by_a_dvc_file(dvc_repo, monkeypatch, capsys):
    import hashlib

    monkeypatch.chdir(dvc_repo)
    (dvc_repo / "tuning").mkdir()
    (dvc_repo / "tuning/study.db").write_bytes(b"a study\n")
    experiments.track(experiments.open_repo(str(dvc_repo)), "tuning/study.db")
    digest = hashlib.md5(b"a study\n").hexdigest()
    tracked = (dvc_repo / "tuning/study.db.dvc").read_text()
    assert f"md5: {digest}" in tracked and "path: study.db" in tracked, broke(
        "dvc", "3.67, Repo.add writes PATH.dvc", "make tune would not leave its study to commit and push")
    assert (dvc_repo / ".dvc/cache/files/md5" / digest[:2] / digest[2:]).read_bytes() == b"a study\n", broke(
        "dvc", "3.67, Repo.add fills the cache", "dvc push would have no study to send")
    printed = capsys.readouterr()
    assert "To track the changes with git" not in printed.out + printed.err, broke(
        "dvc", "3.67, Repo.scm_context.quiet", "make tune would print DVC's git hint beside its own")


def test_dvc_posts_no_usage_report_from_a_repository_a_test_made(dvc_repo, monkeypatch):
    from dvc import analytics

    monkeypatch.chdir(dvc_repo)  # `dvc init`'s config: analytics on unless the environment says otherwise
    assert analytics.is_enabled() is False, broke(
        "dvc", "3.67, off while DVC_NO_ANALYTICS is set (tests/conftest.py sets it)",
        "every DVC command of the tests would start a process that posts a usage report to analytics.dvc.org")


def test_dvc_queue_status_names_a_queued_experiment(dvc_repo):
    status = run([sys.executable, "-m", "dvc", "queue", "status"], dvc_repo).stdout
    assert not experiments.queue_has_queued(status)
    run([sys.executable, "-m", "dvc", "exp", "run", "-q", "--queue", "--name", "waiting"], dvc_repo)
    status = run([sys.executable, "-m", "dvc", "queue", "status"], dvc_repo).stdout
    try:
        assert experiments.queue_has_queued(status), broke(
            "dvc", "3.67, a 'Queued' status column in `dvc queue status`",
            f"make sweep would run someone else's queued experiments; it printed:\n{status}")
    finally:
        subprocess.run([sys.executable, "-m", "dvc", "queue", "remove", "--all"], cwd=dvc_repo, capture_output=True)


def test_ruamel_keeps_the_comment_after_a_block_where_we_move_it():
    from ruamel.yaml import YAML

    yaml = YAML()
    document = yaml.load("variants:\n  a:\n    epochs: 5\n\n# the next section\ngates: {}\n")
    token = experiments.take_comment_after(document["variants"]["a"], "epochs")
    assert token is not None, broke("ruamel.yaml", "0.19, comments in .ca.items[key][2]",
                                    "make tune-promote would leave params.yaml's section comment in the wrong place")
    document["variants"]["b"] = yaml.load("epochs: 7\n")
    experiments.put_comment_after(document["variants"]["b"], "epochs", token)
    text = io.StringIO()
    yaml.dump(document, text)
    expected = "variants:\n  a:\n    epochs: 5\n  b:\n    epochs: 7\n\n# the next section\ngates: {}\n"
    assert text.getvalue() == expected, \
        broke("ruamel.yaml", "0.19", f"the comment moved wrongly:\n{text.getvalue()}")


def test_dvc_reads_its_files_with_ruamels_c_parser_into_the_same_objects():
    """requirements.in pins ruamel.yaml.clib for DVC's speed (each DVC command loads dvc.yaml, dvc.lock and
    params.yaml; the C parser is 4-5x faster). It must be the one DVC's loads use, and give what the pure-Python
    parser gives for the project's own files."""
    from dvc.utils.serialize import parse_yaml
    from ruamel.yaml import YAML, main

    assert main.CParser is not None, broke("ruamel.yaml", "0.19.1", "its C parser is not found, so every DVC "
                                                                     "command parses YAML in Python, 4-5x slower")
    assert YAML(typ="safe").Parser is main.CParser, broke("ruamel.yaml", "0.19.1", "YAML(typ='safe'), DVC's "
                                                                               "loader, does not take the C parser")
    for name in ("dvc.yaml", "dvc.lock", "params.yaml"):
        text = (REPO_ROOT / name).read_text()
        assert repr(parse_yaml(text, name)) == repr(YAML(typ="safe", pure=True).load(text)), name


def test_dvclive_names_keras_metrics_as_its_own_callback_does():
    """fmnist/core/training.py's LiveHistory (dvclive's Keras callback without its `import tensorflow`) names metrics
    with dvclive.utils.standardize_metric_name, a helper outside dvclive's documented API."""
    from dvclive.utils import standardize_metric_name

    names = {name: standardize_metric_name(name, "dvclive.keras") for name in ("loss", "accuracy", "val_loss",
                                                                                 "val_accuracy")}
    assert names == {"loss": "train/loss", "accuracy": "train/accuracy", "val_loss": "eval/loss",
                     "val_accuracy": "eval/accuracy"}, broke(
        "dvclive", "3.49, train/<name> and eval/<name>",
        f"reports/train/<variant>/ would change its file names, and `dvc plots` lose the curves: {names}")
