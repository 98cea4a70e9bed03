from pathlib import Path

import pytest

from common.errors import ConfigError
from common.mqtt import url
from common.options import build, read_yaml
from common.redact import redact
from edge.config import EdgeConfig


def test_yaml_deployment_file_with_flags_on_top(tmp_path: Path) -> None:
    path = tmp_path / "edge.yaml"
    path.write_text("source: csi://0\nmodel: /models/flowers\ndevice-id: jetson-7\npublish: change\npreview_port: 90\n")
    cfg = build(EdgeConfig, read_yaml(path), {"publish": "interval", "interval_ms": "250"})
    assert (cfg.source, cfg.device_id, cfg.publish, cfg.interval_ms, cfg.preview_port) == (
        ["csi://0"],
        "jetson-7",
        "interval",
        250,
        90,
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"sorce": "0"}, "sorce: Extra inputs are not permitted"),
        ({"device_id": "a/b"}, "invalid device id"),
        ({"publish": "sometimes"}, "publish"),
        ({"sample_threshold": 2}, "sample-threshold"),
    ],
)
def test_bad_configuration_is_rejected_with_the_reason(options: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build(EdgeConfig, {"source": "0", "model": "m", "device_id": "cam", **options})


def test_broker_urls(monkeypatch) -> None:
    monkeypatch.delenv(url.PASSWORD_ENV, raising=False)
    assert url.parse("mqtt://broker") == url.BrokerAddress("broker", 1883, False)
    assert url.parse("mqtts://u:p%40ss@broker:9999") == url.BrokerAddress("broker", 9999, True, "u", "p@ss")
    shown = f"{url.parse('mqtts://u:p%40ss@broker')!r} {url.parse('mqtts://u:p%40ss@broker')}"
    assert "p@ss" not in shown, "a repr (a traceback's, a logging error's) or a log line shows no password"
    monkeypatch.setenv(url.PASSWORD_ENV, "from-env")
    assert url.parse("mqtts://u@broker").password == "from-env"
    assert url.parse("mqtts://u@broker").port == 8883
    assert "secret" not in redact("mqtt://user:secret@broker:1883")
    assert "secret" not in str(url.parse("mqtt://user:secret@broker"))
    with pytest.raises(ConfigError, match="mqtt:// or mqtts://"):
        url.parse("http://broker")


def test_several_cameras_by_repeated_flag_or_a_yaml_list_named_or_by_index(tmp_path: Path) -> None:
    import argparse

    from common.options import add_config_flags, from_args

    parser = argparse.ArgumentParser()
    add_config_flags(parser, EdgeConfig)
    path = tmp_path / "edge.yaml"
    path.write_text("sources:\n- front=rtsp://cam/live?token=a=b\n- /dev/video0\nmodel: m\ndevice-id: d\n")
    from_yaml = from_args(EdgeConfig, parser.parse_args(["--config", str(path)]))
    assert from_yaml.cameras == [("front", "rtsp://cam/live?token=a=b"), ("1", "/dev/video0")]
    flags = parser.parse_args(["--config", str(path), "--source", "a=x.mp4", "--source", "csi://0"])
    assert from_args(EdgeConfig, flags).cameras == [("a", "x.mp4"), ("1", "csi://0")], "flags replace the file's"
    with pytest.raises(ConfigError, match="camera names must differ: 1 given twice"):
        from_args(EdgeConfig, parser.parse_args(["--config", str(path), "--source", "1=a", "--source", "b"]))
