"""Schemas of the reporting sections: chapter (the book's numbers), plot and select."""
from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import ConfigDict, Field, RootModel

from fmnist.plumbing.params import VARIANT_NAME, Section


class ChapterResult(Section):
    """A number the book reports, and which of our metrics it is comparable with."""

    metric: Literal["val_accuracy", "test_accuracy", "cv_accuracy"]
    value: float = Field(gt=0, le=1)


class ChapterParams(RootModel[dict[Annotated[str, Field(pattern=VARIANT_NAME)], ChapterResult]]):
    """variant name (or 'baseline') -> the chapter's result; variants the book has no number for are left out."""
    SECTION: ClassVar[str] = "chapter"

    model_config = ConfigDict(strict=True, frozen=True)


class PlotParams(Section):
    SECTION: ClassVar[str] = "plot"
    sample_images: int = Field(10, ge=1, le=30)  # the first N training images, in one row
    # Variants drawn together in the optimizer comparison (training loss per epoch).
    optimizer_comparison: list[Annotated[str, Field(pattern=VARIANT_NAME)]] = Field(min_length=1)
    dpi: int = Field(100, ge=50, le=300)


# Validation metrics only: the test set stays unseen until the chosen model is scored on it.
SELECTION_METRICS = {  # metric -> (higher is better, in words)
    "val_accuracy_mean": (True, "mean validation accuracy across seeds"),  # not one seed's luck
    "val_accuracy": (True, "validation accuracy of seed 42"),  # the saved model's own
    "val_loss": (False, "validation loss of seed 42"),
}


class SelectParams(Section):
    """Which variant becomes models/best: the best by `metric` among `candidates` (all variants when empty)."""
    SECTION: ClassVar[str] = "select"

    metric: Literal["val_accuracy_mean", "val_accuracy", "val_loss"] = "val_accuracy_mean"
    candidates: list[Annotated[str, Field(pattern=VARIANT_NAME)]] = []
    # `predict` calls an answer unsure below the confidence at which the chosen model's validation answers that
    # confident or more are right this share of the time (fmnist/core/calibration.py).
    sure_accuracy: float = Field(0.95, gt=0, lt=1)

    def higher_is_better(self) -> bool:
        return SELECTION_METRICS[self.metric][0]

    def describe(self) -> str:
        """'highest mean validation accuracy across seeds', 'lowest validation loss of seed 42'."""
        return f"{'highest' if self.higher_is_better() else 'lowest'} {SELECTION_METRICS[self.metric][1]}"


class AssessParams(Section):
    """The assess stage: the chosen model's robustness on pictures made from test images (fmnist/core/robustness.py)."""
    SECTION: ClassVar[str] = "assess"

    images: int = Field(1000, ge=1, le=10000)  # test images a family (the first n): n >= 1,000 for a ±2% interval
    seed: int = Field(0, ge=0, lt=2**32)  # the pictures' random changes
    # Variants measured the same way beside the chosen one, shown side by side in the model card (for example one
    # trained with augmentation for photos, which `predict --variant` uses).
    alongside: list[Annotated[str, Field(pattern=VARIANT_NAME)]] = []
