"""The sweep's options, derived from the retrainer's: every retrain option keeps its name, default and
check, the swept ones take comma-separated lists, and a few say how the sweep itself runs."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field, create_model, field_validator
from pydantic.fields import FieldInfo

from cloud.retrain.config import RetrainConfig
from common.options import Options
from edge import backends

SWEPT = ("architecture", "learning_rate", "how_many_training_steps", "train_batch_size", "fine_tune_layers")
PER_RUN = ("output_dir", "summaries_dir")  # the sweep gives every run its own
Device = Literal["auto", "cpu", "gpu"]


def _as_list(field: FieldInfo) -> tuple[Any, Any]:
    """`T` with its checks -> a non-empty list of `T`, each item checked, defaulting to [T's default]."""
    args = (field.annotation, *field.metadata)
    item: Any = Annotated[args] if field.metadata else field.annotation
    description = f"{field.description}; a comma-separated list sweeps it"
    return list[item], Field([field.default], min_length=1, description=description)


def _retrain_fields() -> dict[str, Any]:
    return {
        name: _as_list(field) if name in SWEPT else (field.annotation, field)
        for name, field in RetrainConfig.model_fields.items()
        if name not in PER_RUN
    }


_RetrainOptions = create_model("_RetrainOptions", __base__=Options, **_retrain_fields())


class SweepConfig(_RetrainOptions):
    if TYPE_CHECKING:  # fields made by create_model above, named here for the type checker
        seed: int
        bottleneck_dir: Path

    output_dir: Path = Field(
        Path("sweep"), description="the sweep's folder: runs/<run>/ bundles, logs/ TensorBoard, table and chart"
    )
    device: list[Device] = Field(
        ["auto"], min_length=1, description="auto|cpu|gpu where training runs; a comma-separated list sweeps it"
    )
    max_runs: int | None = Field(None, ge=1, description="run this many of the combinations, sampled (seeded)")
    jobs: int = Field(1, ge=1, description="runs at once, each in its own process (1: one after another, in-process)")
    edge_backends: list[str] = Field(
        ["tflite", "tf"],
        min_length=1,
        description=f"edge backends timed on each bundle: {', '.join(backends.REGISTRY)}",
    )
    edge_frames: int = Field(200, ge=1, description="frames per edge latency measurement")

    @field_validator(*SWEPT, "device", "edge_backends", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        """`0.005,0.01,1.0` on the command line, a YAML list or a single value in a config file."""
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value if isinstance(value, list | tuple) else [value]

    @field_validator("edge_backends")
    @classmethod
    def _known_backends(cls, value: list[str]) -> list[str]:
        if unknown := sorted(set(value) - set(backends.REGISTRY)):
            raise ValueError(f"unknown backend(s) {', '.join(unknown)}; known: {', '.join(backends.REGISTRY)}")
        return value

    @property
    def retrain_options(self) -> dict[str, Any]:
        """The options every run shares, as RetrainConfig keys."""
        return self.model_dump(include=set(RetrainConfig.model_fields) - set(SWEPT) - set(PER_RUN))

    @property
    def axes(self) -> dict[str, list[Any]]:
        """Each swept option and its values, in a fixed order."""
        return {name: list(getattr(self, name)) for name in (*SWEPT, "device")}

    @property
    def varying(self) -> list[str]:
        """The swept options given more than one value: what tells the runs apart."""
        return [name for name, values in self.axes.items() if len(values) > 1]
