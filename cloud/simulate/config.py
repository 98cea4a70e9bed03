"""The simulation's options: the retrainer's (same names, defaults and checks) for what it shares with
a training, the serve command's gate options, and a few that say how the loop is simulated."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field, create_model, field_validator, model_validator

from cloud.options import ServeConfig
from cloud.retrain.config import RetrainConfig
from cloud.selection.duplicates import DEFAULT_SIMILARITY
from cloud.selection.strategies import DEFAULT_STRATEGY, STRATEGIES
from common.options import Options

RETRAIN = (
    "architecture", "weights", "learning_rate", "how_many_training_steps", "train_batch_size",
    "validation_percentage", "testing_percentage", "field_testing_percentage", "field_weight",
    "bottleneck_dir", "seed", "bottleneck_batch_size", "workers",
)  # fmt: skip
GATE = ("gate_margin", "gate_field_images", "gate_seed_margin", "gate_alpha")


def _shared() -> dict[str, Any]:
    fields = RetrainConfig.model_fields | ServeConfig.model_fields
    return {name: (fields[name].annotation, fields[name]) for name in (*RETRAIN, *GATE)}


_Shared = create_model("_Shared", __base__=Options, **_shared())


def _comma_list(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value if isinstance(value, list | tuple) or value is None else [value]


class SimulateConfig(_Shared):
    if TYPE_CHECKING:  # fields made by create_model above, named here for the type checker
        architecture: str
        weights: str
        learning_rate: float
        how_many_training_steps: int
        train_batch_size: int
        validation_percentage: float
        testing_percentage: float
        field_testing_percentage: float
        field_weight: float
        bottleneck_dir: Path
        seed: int
        bottleneck_batch_size: int
        workers: int
        gate_margin: float
        gate_field_images: int
        gate_seed_margin: float
        gate_alpha: float

    seed_dir: Path = Field(description="the seed: one sub-folder of images per label, as a person collected them")
    pool_dir: Path | None = Field(
        None, description="what the cameras sent, one sub-folder per true label: the loop labels from it"
    )
    eval_dir: Path | None = Field(None, description="held-out field images, one sub-folder per label: never trained on")
    strategies: list[str] = Field(
        list(dict.fromkeys([*STRATEGIES, DEFAULT_STRATEGY])),
        min_length=1,
        description=f"selection strategies to compare, comma-separated: {', '.join(STRATEGIES)}",
    )
    round_size: int = Field(50, ge=1, description="labels per round: a person's batch between two trainings")
    budget: int = Field(250, ge=1, description="labels in all: rounds run until this many are labelled")
    similarity: float = Field(
        DEFAULT_SIMILARITY, gt=0, le=1, description="cosine similarity at which two pool images are near-duplicates"
    )
    repeats: int = Field(
        1, ge=1, description="runs of every strategy with seeds seed, seed+1, ...: the mean is reported"
    )
    full_pool: bool = Field(True, description="also train on the whole pool labelled: the reference line")
    max_images_per_label: list[int] | None = Field(
        None,
        description="instead of the loop, on the seed alone: test accuracy with at most this many training "
        "images per label, comma-separated",
    )
    output_dir: Path = Field(Path("simulation"), description="where the table, JSON and learning-curve chart go")

    @field_validator("strategies", "max_images_per_label", mode="before")
    @classmethod
    def _lists(cls, value: object) -> object:
        return _comma_list(value)

    @field_validator("strategies")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        if unknown := sorted(set(value) - set(STRATEGIES)):
            raise ValueError(f"unknown strategy {', '.join(unknown)}; known: {', '.join(STRATEGIES)}")
        return list(dict.fromkeys(value))

    @model_validator(mode="after")
    def _field_folders(self) -> SimulateConfig:
        if self.max_images_per_label is None and (self.pool_dir is None or self.eval_dir is None):
            raise ValueError("the loop needs --pool-dir and --eval-dir (or --max-images-per-label, on the seed alone)")
        return self
