"""Where each stage's outputs live: the interface between stages. dvc.yaml declares exactly these."""
from pathlib import Path

RAW_DIR = Path("data/raw")
PREPARED_DIR = Path("data/prepared")  # {train,val,test}.npz
PICTURES = Path("data/pictures.npz")  # the pictures stage: photo-like pictures of test images, for assess
MODELS_DIR = Path("models")  # <variant>/ holding the files below
HISTORY_DIR = Path("reports/train")  # <variant>/: dvclive's per-epoch logs
METRICS_DIR = Path("reports/metrics")  # <variant>.json, baseline.json: headline results (DVC metrics)
DETAILS_DIR = Path("reports/evaluation")  # <variant>.json, baseline.json: per-class, per-fold, restore checks
TIMING_DIR = Path("reports/timing")  # <variant>.json, baseline.json: wall-clock seconds
CONFUSION_DIR = Path("reports/confusion")  # <variant>.csv: actual,predicted per test image
FIGURES_DIR = Path("reports/figures")  # *.png from the plot stage
CURVES_DIR = Path("reports/curves")  # train_val/<variant>.csv, train/<variant>.csv: per-epoch data for `dvc plots`
SUMMARY_REPORT = Path("reports/summary.md")  # the report stage's one-page result
BEST_DIR = MODELS_DIR / "best"  # the select stage's choice: BEST_MODEL_FILE + SELECTION_FILE
MODEL_CARD = Path("reports/model_card.md")  # the select stage's description of models/best
# The select stage's too: models/best's class for every test image, in git, where the gate pairs it with a ref's.
BEST_PREDICTIONS = Path("reports/best_predictions.csv")
ASSESSMENT = Path("reports/assessment.json")  # the assess stage: calibration and robustness of the chosen model
# Written by `make tune` (python -m fmnist.tools.tune), outside the DAG; the report links them when present.
TUNING_DIR = Path("reports/tuning")
TUNING_BEST = TUNING_DIR / "best.json"  # the best trial: number, value, spread, params
TUNING_TRIALS = TUNING_DIR / "trials.csv"  # every trial: state, value, params, worker, seconds
TUNING_HISTORY = TUNING_DIR / "history.png"  # optuna.visualization.matplotlib.plot_optimization_history
TUNING_IMPORTANCES = TUNING_DIR / "importances.png"  # plot_param_importances (fANOVA)
TUNED = "tuned"  # the variant `make tune-promote` adds to params.yaml
SWEEPS_DIR = Path("reports/sweeps")  # <sweep>.md and <sweep>.json, written by `make sweep-collect`

# Inside reports/figures/
SAMPLES_FIGURE = "samples.png"  # the first training images with their class names
OPTIMIZERS_FIGURE = "optimizers.png"  # training loss per epoch of plot.optimizer_comparison
ACCURACY_FIGURE = "accuracy.png"  # validation and test accuracy of every variant and the baseline
CONFUSION_FIGURE = "confusion_best.png"  # test confusion matrix of the best variant by validation accuracy

# Inside models/<variant>/
MODEL_FILE = "model.keras"  # the whole model after fit (best weights restored by early stopping)
WEIGHTS_FILE = "model.weights.h5"  # the same model's weights only
CHECKPOINT_FILE = "best.keras"  # ModelCheckpoint(save_best_only) output, for variants that keep one
SUMMARY_FILE = "training.json"  # epochs run, stopped and best epoch, training seconds, backend
REPLICATES_FILE = "replicates.json"  # the other seeds' scores and epochs (train.replicates > 1)

# Inside models/best/
BEST_MODEL_FILE = "model.keras"  # a byte-for-byte copy of the chosen variant's scored file
SELECTION_FILE = "selection.json"  # which variant, why, its metrics, the data and library versions


BASELINE = "baseline"  # the name the baseline's result files (and its stage) go by, beside the variants'


def stage_for(name: str) -> str:
    """The DVC stage that writes `name`'s results: `baseline`, or `train@<variant>` (which also evaluates)."""
    return BASELINE if name == BASELINE else f"train@{name}"


def metrics_file(name: str) -> Path:
    return METRICS_DIR / f"{name}.json"


def details_file(name: str) -> Path:
    return DETAILS_DIR / f"{name}.json"


def timing_file(name: str) -> Path:
    return TIMING_DIR / f"{name}.json"


def curves_figure(name: str) -> str:
    """Loss and accuracy per epoch of a variant fitted with validation (inside reports/figures/)."""
    return f"curves_{name}.png"
