"""Hostile configuration against the options every command reads (edge run, retrain, serve): YAML
text or a mapping of any keys and values gives a valid config or ConfigError, never a traceback;
an unknown key is always an error."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import example, given
from hypothesis import strategies as st

from cloud.options import ServeConfig
from cloud.retrain.config import RetrainConfig
from common import options
from edge.config import EdgeConfig
from tests.support.fuzz import FUZZ, JSON_VALUES

REQUIRED = {
    EdgeConfig: {"source": "0", "model": "bundle", "device_id": "cam-1"},
    RetrainConfig: {"image_dir": "images"},
    ServeConfig: {},
}
MODELS = pytest.mark.parametrize("model", REQUIRED, ids=lambda model: model.__name__)
VALUES = (
    JSON_VALUES
    | st.dates()
    | st.sampled_from(["~nosuchuser/x", "~", "a\x00b", "0", "yes", "-1", "1e999", "nan", "canary, ,beta", ""])
)
YAML_TOKENS = [*"ab1-_:.~!&*|>'\"\n #%@`?,[]{}\t", "!!int ", "!!binary ", "2024-13-01", "device_id: ", "\n- "]
YAML_TEXT = st.lists(st.sampled_from(YAML_TOKENS), max_size=30).map("".join)


def _keys(model: type[options.Options]) -> st.SearchStrategy[str]:
    names = list(model.model_fields)
    return st.sampled_from(names + [name.replace("_", "-") for name in names]) | st.text(max_size=12)


def _built_or_refused(model: type[options.Options], *layers: dict) -> None:
    try:
        config = options.build(model, REQUIRED[model], *layers)
    except options.ConfigError:
        return
    assert isinstance(config, model)
    assert set(options.normalise_keys({k: v for layer in layers for k, v in layer.items()})) <= set(model.model_fields)


@MODELS
@FUZZ
@given(data=st.data())
def test_any_mapping_builds_or_raises_config_error(model: type[options.Options], data: st.DataObject) -> None:
    _built_or_refused(model, data.draw(st.dictionaries(_keys(model), VALUES, max_size=6)))


@MODELS
@FUZZ
@given(unknown=st.text(min_size=1, max_size=12), value=VALUES)
@example(unknown="learning rate", value=0.1)
def test_unknown_keys_are_always_refused(model: type[options.Options], unknown: str, value: object) -> None:
    if options.normalise_keys({unknown: value}).keys() & model.model_fields.keys():
        return
    with pytest.raises(options.ConfigError, match="Extra inputs are not permitted"):
        options.build(model, REQUIRED[model], {unknown: value})


@pytest.mark.parametrize("key", ["model", "state_dir", "ca_file"])
def test_a_home_that_does_not_exist_is_a_config_error(key: str) -> None:
    with pytest.raises(options.ConfigError, match="home directory"):
        options.build(EdgeConfig, REQUIRED[EdgeConfig], {key: "~nosuchuser-edgeloop/x"})


@MODELS
@FUZZ
@given(text=YAML_TEXT | st.binary(max_size=100).map(lambda raw: raw.decode("latin-1")))
@example(text="device-id: cam-1\nversion: 2024-13-01\n")
@example(text="source: !!timestamp x\n")
@example(text="source: " + "[" * 5000)
def test_any_yaml_text_reads_or_raises_config_error(model: type[options.Options], text: str, tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        layer = options.read_yaml(path)
    except options.ConfigError:
        return
    assert isinstance(layer, dict)
    _built_or_refused(model, layer)


@pytest.mark.parametrize("raw", [b"source: \xff\xfe\n", b"\x80\x81", b"\xef\xbb\xbfsource: 0\n\x80"])
def test_a_file_that_is_not_utf8_is_a_config_error(raw: bytes, tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_bytes(raw)
    with pytest.raises(options.ConfigError, match="cannot read"):
        options.read_yaml(tmp_path / "config.yaml")


@MODELS
@FUZZ
@given(data=st.data())
def test_yaml_files_of_any_mapping_give_what_build_gives(
    model: type[options.Options], data: st.DataObject, tmp_path: Path
) -> None:
    mapping = data.draw(st.dictionaries(_keys(model), VALUES, max_size=6))
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(mapping))
    assert _dumped(options.read_yaml, tmp_path / "config.yaml") == _dumped(options.normalise_keys, mapping)


def _dumped(read, source) -> str:
    """What `read` makes of `source`, as YAML (NaN equals NaN there), or the error it raised."""
    try:
        return yaml.safe_dump(read(source))
    except options.ConfigError:
        return "ConfigError"


def test_both_spellings_of_one_option_in_a_file_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "retrain.yaml").write_text("learning-rate: 0.1\nimage_dir: a\nlearning_rate: 0.5\n")
    with pytest.raises(options.ConfigError, match="learning-rate is given twice"):
        options.read_yaml(tmp_path / "retrain.yaml")
