"""The retrainer's options: one typed definition behind the CLI flags and `retrain.yaml`."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from cloud.retrain.dataset import Splits
from common.options import Options
from common.protocol import check_id


class RetrainConfig(Options):
    image_dir: Path = Field(description="folder with one sub-folder of images per label")
    output_dir: Path = Field(Path("bundle"), description="where the model bundle is written")
    architecture: str = Field(
        "mobilenet_0.50_224",
        description="mobilenet_<1.0|0.75|0.50|0.25>_<224|192|160|128>, mobilenet_v2_<alpha>_<size>, "
        "mobilenet_v3_small|large, inception_v3, efficientnet_b0",
    )
    weights: str = Field("imagenet", description="imagenet (Keras download, cached), none, or a Keras weights file")
    learning_rate: float = Field(0.01, gt=0, description="gradient descent step size")
    how_many_training_steps: int = Field(4000, ge=1, description="training steps of the new layer")
    train_batch_size: int = Field(100, ge=1, description="images per training step")
    validation_percentage: float = Field(10, ge=0, lt=100, description="share of images held out to validate")
    testing_percentage: float = Field(10, ge=0, lt=100, description="share of images held out to test")
    field_validation_percentage: float = Field(
        0, ge=0, lt=100, description="share of field images (labelled samples) held out to validate"
    )
    field_testing_percentage: float = Field(
        20, ge=0, lt=100, description="share of field images held out to test: what the gate judges the field on"
    )
    field_weight: float = Field(
        1.0,
        gt=0,
        description="how much more often a field image is drawn into a training batch than a seed image",
    )
    field_devices: Path | None = Field(
        None, description="JSON {sample id: device id} of the field images, for accuracy per device"
    )
    eval_step_interval: int = Field(10, ge=1, description="steps between accuracy evaluations")
    bottleneck_dir: Path = Field(
        Path("~/.cache/edgeloop/bottlenecks").expanduser(),
        description="bottleneck cache, keyed by image content and network; shared by every training",
    )
    summaries_dir: Path | None = Field(None, description="TensorBoard summaries (train/, validation/)")
    flip_left_right: bool = Field(False, description="randomly mirror training images (disables the cache)")
    random_crop: int = Field(0, ge=0, lt=100, description="percent margin to randomly crop (disables the cache)")
    random_scale: int = Field(0, ge=0, description="percent to randomly scale up (disables the cache)")
    random_brightness: int = Field(0, ge=0, lt=100, description="percent to randomly vary brightness")
    random_low_resolution: float = Field(
        0, ge=0, description="shrink images by a random factor up to this (e.g. 4), then back up: a poorer sensor"
    )
    random_blur: float = Field(0, ge=0, le=10, description="Gaussian blur of a random sigma up to this, in pixels")
    random_noise: float = Field(
        0, ge=0, le=255, description="Gaussian sensor noise of a random deviation up to this, in levels of 255"
    )
    random_jpeg_quality: int = Field(
        0, ge=0, le=100, description="re-compress images as JPEG at a random quality down to this (0: off)"
    )
    random_colour: int = Field(
        0,
        ge=0,
        lt=100,
        description="percent to randomly vary white balance (each channel's gain) and saturation; "
        "the hue turns by up to a tenth of it",
    )
    camera_distortion_probability: float = Field(
        0.5,
        gt=0,
        le=1,
        description="share of images each of low resolution, blur, noise, JPEG and colour is applied to",
    )
    fine_tune_layers: int = Field(0, ge=0, description="top layers of the base to fine-tune (0: head only)")
    fine_tune_steps: int = Field(200, ge=1, description="fine-tuning steps, after the head is trained")
    fine_tune_learning_rate: float = Field(0.001, gt=0, description="step size while fine-tuning")
    quantization: Literal["float32", "float16", "int8"] = Field(
        "float32", description="TFLite weights; int8 is calibrated on training images"
    )
    name: str | None = Field(None, description="model name (default: the image folder's name)")
    version: str | None = Field(None, description="bundle version (default: UTC time, sortable)")
    seed: int = Field(0, description="seed for initialisation, batch sampling and distortions")
    bottleneck_batch_size: int = Field(64, ge=1, description="images per forward pass of the base")
    workers: int = Field(4, ge=1, description="threads decoding images")
    print_misclassified_test_images: bool = Field(False, description="log every misclassified test image")

    @field_validator("name", "version")
    @classmethod
    def _safe_id(cls, value: str | None) -> str | None:
        return None if value is None else check_id(value, "name or version")

    @field_validator("random_low_resolution")
    @classmethod
    def _a_shrinking_factor(cls, value: float) -> float:
        if 0 < value <= 1:
            raise ValueError("a factor above 1 (or 0: off)")
        return value

    @model_validator(mode="after")
    def _split_fits(self) -> RetrainConfig:
        if self.validation_percentage + self.testing_percentage >= 100:
            raise ValueError("validation-percentage + testing-percentage leaves no training images")
        if self.field_validation_percentage + self.field_testing_percentage >= 100:
            raise ValueError("field-validation-percentage + field-testing-percentage leaves no field training images")
        return self

    @property
    def splits(self) -> Splits:
        return Splits(
            self.validation_percentage,
            self.testing_percentage,
            self.field_validation_percentage,
            self.field_testing_percentage,
        )

    @property
    def retrain_py_distortions(self) -> bool:
        return bool(self.flip_left_right or self.random_crop or self.random_scale or self.random_brightness)

    @property
    def camera_distortions(self) -> bool:
        return bool(
            self.random_low_resolution
            or self.random_blur
            or self.random_noise
            or self.random_jpeg_quality
            or self.random_colour
        )

    @property
    def distortions(self) -> bool:
        """Training images change every step: their bottlenecks are computed afresh, never cached."""
        return self.retrain_py_distortions or self.camera_distortions
