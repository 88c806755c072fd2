"""Schemas of the data sections: download (the pinned checksums) and prepare (the validation split)."""
from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import Field

from fmnist.plumbing.params import Section

Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class Sha256Pins(Section):
    """The published sha256 of each of the four files; a file must match to land in data/raw."""

    train_images: Sha256 = Field(alias="train-images-idx3-ubyte.gz")
    train_labels: Sha256 = Field(alias="train-labels-idx1-ubyte.gz")
    test_images: Sha256 = Field(alias="t10k-images-idx3-ubyte.gz")
    test_labels: Sha256 = Field(alias="t10k-labels-idx1-ubyte.gz")

    def by_file_name(self) -> dict[str, str]:
        return self.model_dump(by_alias=True)


class DownloadParams(Section):
    SECTION: ClassVar[str] = "download"
    retries: int = Field(3, ge=0, le=10)
    backoff_seconds: float = Field(1.0, ge=0, le=60)
    timeout_seconds: float = Field(30.0, gt=0, le=600)
    sha256: Sha256Pins


class PrepareParams(Section):
    SECTION: ClassVar[str] = "prepare"
    test_size: float = Field(0.2, gt=0, lt=1)
    random_state: int = Field(42, ge=0, lt=2**32)

