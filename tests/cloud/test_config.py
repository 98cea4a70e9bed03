import argparse
from pathlib import Path

import pytest

from cloud.retrain.config import RetrainConfig
from common.errors import ConfigError
from common.options import add_model_flags, build, read_yaml


def parse(*argv: str) -> RetrainConfig:
    parser = argparse.ArgumentParser()
    add_model_flags(parser, RetrainConfig)
    return build(RetrainConfig, vars(parser.parse_args(argv)))


def test_defaults_are_retrain_py_s() -> None:
    cfg = parse("--image-dir", "x")
    assert cfg.learning_rate == 0.01
    assert cfg.how_many_training_steps == 4000
    assert cfg.train_batch_size == 100
    assert (cfg.validation_percentage, cfg.testing_percentage) == (10, 10)
    assert cfg.eval_step_interval == 10
    assert not cfg.distortions


def test_dashed_and_underscored_flags_mean_the_same() -> None:
    dashed = parse("--image-dir", "x", "--learning-rate", "0.5", "--flip-left-right", "--random-crop", "10")
    underscored = parse("--image_dir", "x", "--learning_rate", "0.5", "--flip_left_right", "--random_crop", "10")
    assert dashed == underscored
    assert dashed.learning_rate == 0.5
    assert dashed.distortions


CAMERA = {"random_blur": 2.0, "random_noise": 8.0, "random_low_resolution": 3.0, "random_jpeg_quality": 30,
          "random_colour": 20, "camera_distortion_probability": 0.25}  # fmt: skip


def test_camera_distortion_flags_parse_from_the_cli_and_yaml(tmp_path: Path) -> None:
    cfg = parse("--image-dir", "x", *(f"--{k.replace('_', '-')}={v}" for k, v in CAMERA.items()))
    assert {k: getattr(cfg, k) for k in CAMERA} == CAMERA
    assert cfg.distortions
    path = tmp_path / "retrain.yaml"
    path.write_text("image_dir: x\n" + "".join(f"{k}: {v}\n" for k, v in CAMERA.items()))
    assert build(RetrainConfig, read_yaml(path)) == cfg


def test_yaml_takes_either_spelling_and_flags_override(tmp_path: Path) -> None:
    path = tmp_path / "retrain.yaml"
    path.write_text("image_dir: imgs\nlearning-rate: 0.1\nhow_many_training_steps: 50\narchitecture: inception_v3\n")
    cfg = build(RetrainConfig, read_yaml(path), {"how-many-training-steps": 70})
    assert (cfg.learning_rate, cfg.how_many_training_steps, cfg.architecture) == (0.1, 70, "inception_v3")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"image_dir": "x", "learning_rat": 0.1}, "learning-rat: Extra inputs are not permitted"),
        ({"image_dir": "x", "learning_rate": -1}, "learning-rate: Input should be greater than 0"),
        ({"image_dir": "x", "quantization": "int4"}, "quantization"),
        ({"image_dir": "x", "validation_percentage": 60, "testing_percentage": 40}, "leaves no training"),
        ({}, "image-dir: Field required"),
        ({"image_dir": "x", "random_low_resolution": 0.5}, "a factor above 1"),
        ({"image_dir": "x", "random_jpeg_quality": 101}, "random-jpeg-quality"),
        ({"image_dir": "x", "random_blur": -1}, "random-blur"),
        ({"image_dir": "x", "camera_distortion_probability": 0}, "camera-distortion-probability"),
    ],
)
def test_bad_options_are_rejected_with_the_reason(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build(RetrainConfig, options)


def test_yaml_that_is_not_a_mapping_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "retrain.yaml"
    path.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        read_yaml(path)


@pytest.mark.parametrize("value", ["../x", "a/b", "+", "v 2"])
def test_names_and_versions_that_would_break_paths_or_topics_are_rejected(value: str) -> None:
    with pytest.raises(ConfigError, match="name or version"):
        build(RetrainConfig, {"image_dir": "x", "version": value})


def test_a_flag_turns_off_what_yaml_turned_on_and_home_is_expanded(tmp_path: Path) -> None:
    path = tmp_path / "retrain.yaml"
    path.write_text("image_dir: ~/photos\nflip_left_right: true\n")
    parser = argparse.ArgumentParser()
    add_model_flags(parser, RetrainConfig)
    cfg = build(RetrainConfig, read_yaml(path), vars(parser.parse_args(["--no-flip-left-right"])))
    assert cfg.flip_left_right is False
    assert cfg.image_dir == Path.home() / "photos"
