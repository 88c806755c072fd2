"""Where each stage's outputs live: the interface between stages. dvc.yaml declares exactly these."""
from pathlib import Path

RAW_DIR = Path("data/raw")
PREPARED_DIR = Path("data/prepared")  # {train,val,test}.npz
MODELS_DIR = Path("models")  # <variant>/ holding the files below
HISTORY_DIR = Path("reports/train")  # <variant>/: dvclive's per-epoch logs
METRICS_DIR = Path("reports/metrics")  # <variant>.json, baseline.json: results, deterministic
TIMING_DIR = Path("reports/timing")  # <variant>.json, baseline.json: wall-clock seconds
CONFUSION_DIR = Path("reports/confusion")  # <variant>.csv: actual,predicted per test image

# Inside models/<variant>/
MODEL_FILE = "model.keras"  # the whole model after fit (best weights restored by early stopping)
WEIGHTS_FILE = "model.weights.h5"  # the same model's weights only
CHECKPOINT_FILE = "best.keras"  # ModelCheckpoint(save_best_only) output, for variants that keep one
SUMMARY_FILE = "training.json"  # epochs run, stopped and best epoch, training seconds, backend


def metrics_file(name: str) -> Path:
    return METRICS_DIR / f"{name}.json"


def timing_file(name: str) -> Path:
    return TIMING_DIR / f"{name}.json"
