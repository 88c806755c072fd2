"""Hyper-parameter search with Optuna, where the chapter's notes point (AutoML): `make tune`.

    python -m fmnist.tools.tune [--storage URL] [--trials N]   # run the study of params.yaml `tune` (or join it)
    python -m fmnist.tools.tune promote                        # its best trial -> params.yaml variant `tuned`
    python -m fmnist.tools.tune dashboard [--port P]           # the study in optuna-dashboard, on 127.0.0.1

- A trial is the base variant with the hyper-parameters of `tune.space` drawn by TPE, trained as `tune.seeds`
  seeds at once (fmnist.core.replicates' stacked model) with EarlyStopping on validation loss. Its value is their
  mean validation accuracy: the search compares means, not one seed's luck, and never looks at the test set.
  Every trial trains the same seeds, so two trials differ by their hyper-parameters, not their draws.
- Pruning: after each epoch the seeds' mean validation loss is reported (as its negative, since the study
  maximises); the median pruner stops a trial that is worse than earlier trials were at that epoch.
- Each finished trial is saved as a DVC experiment (dvclive, `dvc exp save`): `dvc exp show` lists them with
  their params and metrics.
- The study lives in an Optuna RDB storage: a SQLite file by default; a PostgreSQL URL lets workers on any
  number of machines join it. Workers send heartbeats: a worker that dies mid-trial has that trial marked
  failed by the others, and the study goes on until `tune.trials` trials have finished. Running the command
  again resumes an interrupted study.
- The SQLite file is a DVC-tracked artifact (tuning/study.db.dvc): after a run it is added to the DVC cache,
  to be committed and pushed with the reports; a clone that lacks it gets it from the cache or the default
  remote before the study opens, and resumes it.
- The reports are the study's: a run whose study does not hold every trial of reports/tuning/trials.csv (a
  clone without the study file, another storage) stops before training, unless --new-study says that a
  new study is to replace those reports.
- Outputs in reports/tuning/: best.json, trials.csv, history.png, importances.png (Optuna's own matplotlib
  figures).
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import shutil
import socket
import sys
import time
import warnings
from pathlib import Path
from urllib.parse import urlsplit

from fmnist.compat import experiments as compat
from fmnist.core import backend, dataset
from fmnist.core.gate import derived_minimum
from fmnist.core.spread import Spread
from fmnist.plumbing import atomic, params, quiet
from fmnist.plumbing.errors import StageError, redacted
from fmnist.plumbing.interrupts import interrupts_allowed, interrupts_deferred
from fmnist.plumbing.paths import TUNED, TUNING_BEST, TUNING_DIR, TUNING_HISTORY, TUNING_IMPORTANCES, TUNING_TRIALS
from fmnist.plumbing.runner import run
from fmnist.schema.gates import GatesParams
from fmnist.schema.tools import TuneParams
from fmnist.schema.training import TrainParams, Variant, VariantsParams

LIVE_DIR = Path("tuning/trial")  # dvclive's files of the trial being saved as an experiment (then removed)
STORAGE_ENV = "FMNIST_TUNE_STORAGE"


def trial_variant(base: Variant, draw: dict, patience: int) -> Variant:
    """The base variant with a trial's drawn values, validated like any variant of params.yaml."""
    spec = base.model_dump(mode="json")
    for layer in spec["hidden"]:
        layer.update({key: draw[key] for key in ("units", "dropout") if key in draw})
    if "optimizer" in draw or "learning_rate" in draw:
        spec["optimizer"] = {"name": draw.get("optimizer", base.optimizer.name)}
        if "learning_rate" in draw:
            spec["optimizer"]["learning_rate"] = draw["learning_rate"]
    for key in ("batch_size", "epochs"):
        if key in draw:
            spec[key] = draw[key]
    spec["validation"] = True
    spec["callbacks"] = {"early_stopping": {"monitor": "val_loss", "patience": patience, "restore_best_weights": True}}
    return Variant.model_validate(spec)


def suggest(trial, tune: TuneParams) -> dict:
    """Draw this trial's values of every hyper-parameter in tune.space."""
    space, draw = tune.space, {}
    if space.units:
        draw["units"] = trial.suggest_int("units", space.units.low, space.units.high, log=space.units.log)
    if space.dropout:
        draw["dropout"] = trial.suggest_float("dropout", space.dropout.low, space.dropout.high, log=space.dropout.log)
    if space.optimizer:
        draw["optimizer"] = trial.suggest_categorical("optimizer", space.optimizer.choices)
    if space.learning_rate:
        lr = space.learning_rate
        draw["learning_rate"] = trial.suggest_float("learning_rate", lr.low, lr.high, log=lr.log)
    if space.batch_size:
        draw["batch_size"] = trial.suggest_categorical("batch_size", space.batch_size.choices)
    if space.epochs:
        draw["epochs"] = trial.suggest_int("epochs", space.epochs.low, space.epochs.high, log=space.epochs.log)
    return draw


def check(tune: TuneParams, variants: dict[str, Variant]) -> Variant:
    """The base variant, after the checks that span sections of params.yaml."""
    if tune.base not in variants:
        raise StageError(f"params.yaml: tune.base names '{tune.base}', which is not declared (declared: "
                         f"{', '.join(variants)})")
    base = variants[tune.base]
    if not base.hidden and (tune.space.units or tune.space.dropout):
        raise StageError(f"params.yaml: tune.space draws units/dropout, but tune.base '{tune.base}' "
                         "has no hidden layer")
    return base


SCHEMA_RACE_RETRIES = 5


def storage_url(cli: str | None, tune: TuneParams) -> str:
    return cli or os.environ.get(STORAGE_ENV) or tune.storage


def open_storage(url: str, heartbeat: int):
    """Optuna's RDB storage at url, or a StageError naming the host it could not reach (no traceback)."""
    import optuna
    import sqlalchemy.exc

    if sqlite_file(url) is not None:
        sqlite_file(url).parent.mkdir(parents=True, exist_ok=True)
    try:
        # On a fresh database, workers started together race to create Optuna's tables: the loser's CREATE TABLE
        # fails with a duplicate key. The tables are there a moment later; open again.
        for attempt in range(SCHEMA_RACE_RETRIES):
            try:
                return optuna.storages.RDBStorage(url, heartbeat_interval=heartbeat, grace_period=2 * heartbeat,
                                                  engine_kwargs=_engine_kwargs(url))
            except sqlalchemy.exc.IntegrityError:
                if attempt == SCHEMA_RACE_RETRIES - 1:
                    raise
                time.sleep(0.5)
    except sqlalchemy.exc.ArgumentError as error:
        said = str(error).replace(url, redacted(url))
        raise StageError(f"tune storage '{redacted(url)}': not a database URL ({said})") from None
    except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError) as error:
        parts = urlsplit(url)
        where = f"{parts.hostname}:{parts.port or 5432}" if parts.hostname else redacted(url)
        reason = str(getattr(error, "orig", error)).strip().splitlines()[0]
        raise StageError(f"tune storage: cannot reach the database at {where} ({reason})") from None
    except ModuleNotFoundError as error:
        raise StageError(f"tune storage '{redacted(url)}': its driver is not installed ({error.name})") from None


def _engine_kwargs(url: str) -> dict:
    if url.startswith("postgresql"):
        return {"connect_args": {"connect_timeout": 10}, "pool_pre_ping": True}
    return {}


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


# --- the study as an artifact: its SQLite file tracked by DVC, and the reports it may replace ------------------

def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite storage URL (sqlite:///relative or sqlite:////absolute), else None."""
    return Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite:///") else None


def study_file(url: str) -> Path | None:
    """The SQLite file of a storage URL when it lies in this repository (a relative path), else None."""
    path = sqlite_file(url)
    return None if path is None or path.is_absolute() or ".." in path.parts else path


def bring_study(url: str) -> None:
    """The study file of url, where DVC tracks it and it is not here (a fresh clone): from the local DVC cache,
    else the default remote, so that the run resumes the study the reports come from. Left missing where neither
    has it: the check against the reports, or the dashboard, then says what to do."""
    path = study_file(url)
    if path is None or path.exists() or not Path(f"{path}.dvc").is_file():
        return
    from fmnist.tools import pull

    if pull.dvc("checkout", "--quiet", str(path)).returncode == 0 and path.exists():
        print(f"{path}: the study, from the DVC cache ({path}.dvc)", flush=True)
        return
    try:
        name, _ = pull.default_remote()
    except StageError:
        return  # no remote to ask
    if pull.dvc("pull", "--quiet", str(path)).returncode == 0 and path.exists():
        print(f"{path}: the study, from DVC remote '{name}' ({path}.dvc)", flush=True)


def reported_trials() -> list[dict[str, str]]:
    """The rows of reports/tuning/trials.csv, or [] where there is none."""
    try:
        with open(TUNING_TRIALS, newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))
    except FileNotFoundError:
        return []


def _cell_holds(cell: str, value) -> bool:
    """Whether a trials.csv cell is the value a trial holds (numbers written by pandas read back exactly)."""
    if cell == "" or value is None:
        return cell == "" and value is None
    try:
        return math.isclose(float(cell), float(value), rel_tol=1e-12, abs_tol=0.0)
    except (TypeError, ValueError):
        return cell == str(value)


def unmatched_rows(rows: list[dict[str, str]], trials: list) -> list[str]:
    """The trial numbers of report rows the study does not hold as reported: the same number with the same
    params and, where the row's trial had finished, the same state and value. A resumed study only adds
    trials (and turns running ones into finished), so it matches the reports it wrote before."""
    by_number = {trial.number: trial for trial in trials}
    unmatched = []
    for row in rows:
        trial = by_number.get(int(row["number"]))
        same = trial is not None and all(name in row and _cell_holds(row[name], value)
                                         for name, value in trial.params.items())
        if same and row["state"] in ("COMPLETE", "PRUNED", "FAIL"):
            same = row["state"] == trial.state.name and _cell_holds(row.get("value", ""), trial.value)
        if not same:
            unmatched.append(row["number"])
    return unmatched


def check_reports_are_this_study(study_name: str, trials: list, url: str, new_study: bool) -> None:
    """Stop before training where this run would replace reports/tuning with those of another study, unless
    --new-study asks for exactly that (and then, refuse where the storage holds the reported study after all)."""
    rows = reported_trials()
    if not rows:
        return
    unmatched = unmatched_rows(rows, trials)
    where = redacted(url)
    if not unmatched and new_study:
        raise StageError(f"--new-study: {where} holds study '{study_name}', the one {TUNING_TRIALS} reports; name "
                         "another study in params.yaml tune.study, or pass --storage URL for another database")
    if not unmatched or new_study:
        return
    file = study_file(url)
    if not trials:
        holds = f"{where} has no study '{study_name}'"
    else:
        holds = (f"the study '{study_name}' in {where} ({len(trials)} trials) is another one: it lacks trial "
                 f"{unmatched[0]} as reported")
    if file is not None and Path(f"{file}.dvc").is_file() and not file.exists():
        resume = f"bring the study with `python -m fmnist.tools.pull {file}` (a default DVC remote must have it)"
    else:
        resume = "run with the storage that holds it (--storage URL)"
    raise StageError(f"{TUNING_TRIALS} reports {len(rows)} trials of another study than this run would continue: "
                     f"{holds}. To resume the reported study, {resume}; to start a new study whose reports replace "
                     "these, pass --new-study")


def track_study(url: str) -> None:
    """After a run: the SQLite study, where it lies in this DVC repository, into the DVC cache (`dvc add`), so
    that its .dvc file is committed and the file pushed with the reports. Elsewhere (PostgreSQL, a file outside
    the repository, no DVC here) there is nothing to track."""
    file = study_file(url)
    if file is None or not file.exists() or not Path(".dvc").is_dir():
        return
    try:
        compat.track(compat.open_repo(), str(file))
    except Exception as error:  # DvcException, SCMError: report it, the study and its reports stand
        raise StageError(f"{file}: the study is written, but `dvc add {file}` failed: {error}") from None
    print(f"{file}: the study in the DVC cache; commit {file}.dvc with {TUNING_DIR} and `dvc push` to share it",
          flush=True)


class SaveAsExperiment:
    """After each trial: its params, state and metrics logged by dvclive and saved as a DVC experiment
    (`dvc exp save`, named <study>-trial-<number>). One worker per clone of the repository: DVC saves the
    experiments of one repository one at a time."""

    def __init__(self, study_name: str):
        self.study_name = study_name
        try:
            self.repo = compat.open_repo()
        except Exception as error:  # NotDvcRepoError, SCMError: not a git + DVC repository
            raise StageError(f"trials are saved as DVC experiments, which needs a git + DVC repository here "
                             f"({error}); or pass --no-experiments") from None
        missing = compat.missing_outputs(self.repo)
        if missing:
            raise StageError(f"trials are saved as DVC experiments, which needs every pipeline output in place; "
                             f"missing: {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}: run `dvc repro` "
                             "(or `dvc pull`) first, or pass --no-experiments")

    def __call__(self, study, trial) -> None:
        from dvc.exceptions import DvcException
        from dvclive import Live

        with Live(str(LIVE_DIR), dvcyaml=str(LIVE_DIR / "dvc.yaml"), save_dvc_exp=False) as live:
            live.log_params({**trial.params, "trial": trial.number, "state": trial.state.name.lower()})
            for key in ("val_accuracy_mean", "val_accuracy_std", "epochs_run_mean"):
                if trial.user_attrs.get(key) is not None:
                    live.summary[key] = trial.user_attrs[key]
        try:
            compat.save_experiment(self.repo, f"{self.study_name}-trial-{trial.number:03d}", [str(LIVE_DIR)],
                                   f"Optuna study {self.study_name}, trial {trial.number}: {trial.state.name}")
        except DvcException as error:
            raise StageError(f"trial {trial.number} (kept in the study) could not be saved as a DVC experiment: "
                             f"{error}") from None
        finally:
            shutil.rmtree(LIVE_DIR, ignore_errors=True)  # in the experiment now; the workspace stays as it was


def optimize(tune: TuneParams, shared: TrainParams, variants: dict[str, Variant], *, url: str, trials: int,
             heartbeat: int, save_experiments: bool, worker_index: int = 0, new_study: bool = False) -> object:
    """Run trials in this process until the study holds `trials` finished ones; returns the study."""
    base = check(tune, variants)
    import numpy as np
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # Heartbeats are marked experimental; they are what lets a worker that died mid-trial be noticed.
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    bring_study(url)
    if sqlite_file(url) is not None and not sqlite_file(url).exists():  # before opening it creates the file
        check_reports_are_this_study(tune.study, [], url, new_study)
    storage = open_storage(url, heartbeat)  # first: a wrong URL fails in a second, not after loading everything
    known = tune.study in optuna.get_all_study_names(storage)
    previous = optuna.load_study(study_name=tune.study, storage=storage).get_trials(deepcopy=False) if known else []
    check_reports_are_this_study(tune.study, previous, url, new_study)
    train, val = dataset.load_prepared("train"), dataset.load_prepared("val")  # never test
    backend.use(shared.backend)
    from fmnist.core import replicates

    pruner = (optuna.pruners.MedianPruner(n_startup_trials=tune.pruner.startup_trials,
                                          n_warmup_steps=tune.pruner.warmup_epochs)
              if tune.pruner.name == "median" else optuna.pruners.NopPruner())
    # The sampler's seed: tune.sampler_seed for the first worker of a new study (a rerun draws the same trials);
    # a resumed study or another worker (--worker N) must not draw the same trials again.
    already = len(previous)
    sampler_seed = int(np.random.SeedSequence([tune.sampler_seed, already, worker_index]).generate_state(1)[0]) \
        if already or worker_index else tune.sampler_seed
    study = optuna.create_study(storage=storage, study_name=tune.study, direction="maximize", load_if_exists=True,
                                sampler=optuna.samplers.TPESampler(seed=sampler_seed), pruner=pruner)
    seeds = [shared.seed + i for i in range(tune.seeds)]
    worker = worker_name()

    def objective(trial) -> float:
        with interrupts_allowed():  # Ctrl-C while training: Optuna marks the trial failed and re-raises
            return train_trial(trial)

    # The trial's calls to the study hold a Ctrl-C until they are done, then raise it: one raised inside a read kept
    # the read's lock on a SQLite file (its cursor lives on in the traceback), and Optuna could not record the
    # trial's end ("database is locked").
    def train_trial(trial) -> float:
        with interrupts_deferred():
            trial.set_user_attr("worker", worker)
            drawn = suggest(trial, tune)
        spec = trial_variant(base, drawn, tune.patience)

        def prune(epoch: int, val_loss, val_accuracy) -> None:
            with interrupts_deferred():
                trial.report(-float(np.mean(val_loss)), epoch)
                pruned = trial.should_prune()
            if pruned:
                raise optuna.TrialPruned(f"pruned after epoch {epoch}")

        result = replicates.fit(spec, shared, seeds, train=train, val=val, test=None, on_epoch=prune)
        accuracies = [entry["val_accuracy"] for entry in result["per_seed"]]
        mean = math.fsum(accuracies) / len(accuracies)
        std = float(np.std(accuracies, ddof=1)) if len(accuracies) > 1 else None
        with interrupts_deferred():
            trial.set_user_attr("val_accuracy_mean", mean)
            trial.set_user_attr("val_accuracy_std", std)
            trial.set_user_attr("epochs_run_mean", float(np.mean([e["epochs_run"] for e in result["per_seed"]])))
        print(f"trial {trial.number}: {mean:.4f} ± {std or 0:.4f} with {trial.params}", flush=True)
        return mean

    def on_pruned(study, trial) -> None:
        if trial.state == optuna.trial.TrialState.PRUNED:
            print(f"trial {trial.number}: pruned after epoch {trial.last_step} with {trial.params}", flush=True)

    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    done = len(study.get_trials(deepcopy=False, states=finished))
    print(f"study '{tune.study}' in {redacted(url)}: {done} of {trials} trials finished; worker {worker} joins",
          flush=True)
    if done < trials:
        callbacks = [optuna.study.MaxTrialsCallback(trials, states=finished), on_pruned]
        if save_experiments:
            callbacks.append(SaveAsExperiment(tune.study))
        # Ctrl-C is held outside the training: Optuna's bookkeeping of a trial's end and the experiment save
        # must not stop halfway (a KeyboardInterrupt there was swallowed or turned into another error).
        with interrupts_deferred():
            study.optimize(objective, callbacks=callbacks, catch=(), gc_after_trial=True)
    return study


def write_reports(study, base_name: str) -> dict | None:
    """reports/tuning/: trials.csv, best.json and Optuna's figures, from every trial the study holds."""
    import optuna

    frame = study.trials_dataframe(attrs=("number", "state", "value", "duration", "params", "user_attrs"))
    frame = frame.rename(columns=lambda c: c.removeprefix("params_").removeprefix("user_attrs_"))
    if "duration" in frame:
        frame["seconds"] = frame.pop("duration").dt.total_seconds().round(1)
    atomic.write_text(TUNING_TRIALS, frame.to_csv(index=False))
    trials = study.get_trials(deepcopy=False)
    counts = {state.name.lower(): sum(t.state == state for t in trials) for state in optuna.trial.TrialState}
    if not counts["complete"]:
        return None
    best = study.best_trial
    record = {"study": study.study_name, "base": base_name, "trial": best.number, "value": best.value,
              "val_accuracy_std": best.user_attrs.get("val_accuracy_std"), "params": best.params, "trials": counts}
    atomic.write_json(TUNING_BEST, record)
    _figures(study, counts["complete"])
    return record


def importances_evaluator():
    """fANOVA with a fixed seed for its random forest: the same study gives the same importances (the figure here
    and the site's chart)."""
    from optuna.importance import FanovaImportanceEvaluator

    return FanovaImportanceEvaluator(seed=0)


def _figures(study, complete: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna.visualization.matplotlib as views

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "... is experimental": Optuna's notice on its matplotlib views
        figures = [(views.plot_optimization_history, TUNING_HISTORY)]
        if complete >= 2:
            figures.append((lambda s: views.plot_param_importances(s, evaluator=importances_evaluator()),
                            TUNING_IMPORTANCES))
        for draw, path in figures:
            axes = draw(study)
            figure = axes.figure
            figure.set_size_inches(8, 4.5)
            figure.tight_layout()
            with atomic.atomic_path(path) as tmp:
                figure.savefig(tmp, format="png", dpi=100, metadata={"Software": None})
            plt.close(figure)


def promote(variants: dict[str, Variant], tune: TuneParams) -> tuple[Variant, float]:
    """Write the best trial into params.yaml as the variant `tuned` (comments and layout kept), with its gate
    minimum; returns both."""
    try:
        best = json.loads(TUNING_BEST.read_text())
    except FileNotFoundError:
        raise StageError(f"{TUNING_BEST}: not found; run `make tune` first") from None
    base = check(tune, variants)
    spec = trial_variant(base, best["params"], tune.patience)
    from fmnist.core.formatting import describe_params

    entry = {"description": f"Optuna's best of study {best['study']} (trial {best['trial']}): "
                            f"{describe_params(best['params'])}",
             **spec.model_dump(mode="json", exclude_defaults=True, exclude={"description"}),
             "callbacks": spec.callbacks.model_dump(mode="json", exclude_none=True)}  # spelled out in full
    from ruamel.yaml import YAML

    yaml = YAML()  # round trip, as `dvc exp run -S` writes the file: comments and layout stay
    document = yaml.load(params.PARAMS_FILE.read_text(encoding="utf-8"))
    # ruamel keeps the comment above the next section on the last value of `variants`: move it to the new last.
    following = compat.take_comment_after(*_last_holder(document["variants"]))
    as_yaml = io.StringIO()
    yaml.dump(entry, as_yaml)
    document["variants"][TUNED] = yaml.load(as_yaml.getvalue())  # ruamel's own nodes, which can hold comments
    compat.put_comment_after(*_last_holder(document["variants"]), following)
    # Gated like every variant (the gate fails on one without a minimum): from the trial's seeds, by the rule.
    gates = params.parse(GatesParams, {**document["gates"]})
    trial_spread = Spread(best["value"], best.get("val_accuracy_std"), tune.seeds)
    metric = f"{TUNED}.val_accuracy_mean"
    minimum = derived_minimum(trial_spread, gates.k, gates.minimum_margin)
    document["gates"]["minimum"][metric] = minimum
    document["gates"]["minimum"].yaml_add_eol_comment(
        f"trial {best['trial']}: {best['value']:.4f} ± {best.get('val_accuracy_std') or 0:.4f} ({tune.seeds} seeds)",
        metric)
    text = io.StringIO()
    yaml.dump(document, text)
    params.parse(VariantsParams, {**document["variants"]})  # the new entry is valid before the file changes
    atomic.write_text(params.PARAMS_FILE, text.getvalue())
    return Variant.model_validate(entry), minimum


def dashboard(url: str, port: int) -> None:
    """Serve the study with optuna-dashboard (its own web server, in this process's place) on 127.0.0.1:port;
    a DVC-tracked study file that is not here is fetched first."""
    bring_study(url)
    if sqlite_file(url) is not None and not sqlite_file(url).exists():
        raise StageError(f"no study at {sqlite_file(url)}: `python -m fmnist.tools.pull {sqlite_file(url)}` fetches "
                         "the project's (from its DVC remote), `make tune` starts one")
    program = Path(sys.executable).with_name("optuna-dashboard")  # installed beside this interpreter (the lock)
    print(f"optuna-dashboard: {redacted(url)} at http://127.0.0.1:{port}/ (Ctrl-C stops it)", flush=True)
    os.execv(program, [str(program), "--host", "127.0.0.1", "--port", str(port), url])


def _last_holder(node):
    """(the collection holding the last scalar under node, its key or index): where ruamel keeps the comment
    and blank lines that follow a block."""
    while True:
        key = list(node)[-1] if isinstance(node, dict) else len(node) - 1
        if isinstance(node[key], (dict, list)) and len(node[key]):
            node = node[key]
            continue
        return node, key


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m fmnist.tools.tune", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", nargs="?", choices=("run", "promote", "dashboard"), default="run")
    parser.add_argument("--storage", metavar="URL", help=f"Optuna storage (default: ${STORAGE_ENV}, else tune.storage)")
    parser.add_argument("--trials", type=int, metavar="N", help="finished trials to reach (default: tune.trials)")
    parser.add_argument("--heartbeat", type=int, default=10, metavar="S",
                        help="seconds between a worker's heartbeats; a trial silent for twice that is marked failed")
    parser.add_argument("--no-experiments", action="store_true", help="do not save trials as DVC experiments")
    parser.add_argument("--new-study", action="store_true",
                        help=f"let a study other than the one {TUNING_TRIALS} reports (a new one) replace them")
    parser.add_argument("--port", type=int, default=8080, metavar="P", help="dashboard: the port on 127.0.0.1")
    parser.add_argument("--worker", type=int, default=0, metavar="N",
                        help="this worker's number (0, 1, ...): workers of one study must draw different trials")
    args = parser.parse_args(argv)
    if args.trials is not None and args.trials < 1:
        parser.error("--trials must be at least 1")
    if args.heartbeat < 1:
        parser.error("--heartbeat must be at least 1")
    if args.worker < 0:
        parser.error("--worker must be 0 or more")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    tune = params.load(TuneParams)
    variants = params.load(VariantsParams).root
    if args.command == "promote":
        spec, minimum = promote(variants, tune)
        print(f"params.yaml: variant '{TUNED}' = {spec.describe_layers()}; {spec.optimizer.describe()}; "
              f"batch {spec.batch_size}, up to {spec.epochs} epochs, gated at validation accuracy >= "
              f"{minimum}; run `dvc repro` to train it "
              "with every seed")
        return
    url = storage_url(args.storage, tune)
    if args.command == "dashboard":
        dashboard(url, args.port)
        return
    quiet.filter_stderr()  # TensorFlow's start-up notices
    study = optimize(tune, params.load(TrainParams), variants, url=url, trials=args.trials or tune.trials,
                     heartbeat=args.heartbeat, save_experiments=not args.no_experiments, worker_index=args.worker,
                     new_study=args.new_study)
    record = write_reports(study, tune.base)
    if record is None:
        print(f"{TUNING_DIR}: no trial has completed yet")
    else:
        print(f"{TUNING_DIR}: best trial {record['trial']}: validation accuracy {record['value']:.4f} "
              f"± {record['val_accuracy_std'] or 0:.4f} with {record['params']}; "
              f"{', '.join(f'{n} {s}' for s, n in record['trials'].items() if n)}")
    track_study(url)


if __name__ == "__main__":
    run(main)
