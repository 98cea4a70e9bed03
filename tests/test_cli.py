"""The command line both sides share (common/command.py, common/options.py): logging options anywhere on
the line, JSON logs without credentials, every option from EDGELOOP_<OPTION>, help that says what is
required and each default once, --version and the console scripts, hints for retrain.py's and
label_image's flags. In-process where it can be: each `main` call is a few milliseconds."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

from cloud.cli import main as cloud_main
from cloud.options import ServeConfig
from common import __version__
from common.errors import ConfigError
from common.logs import JsonFormatter
from common.options import add_config_flags, from_args
from edge.cli import main as edge_main
from edge.config import EdgeConfig
from tests.support.paths import ROOT


@pytest.fixture(autouse=True)
def _restore_logging():
    """`main` installs its handler on the root logger: take it away again, with the level it set."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _models_list(tmp_path: Path, *flags: str) -> list[str]:
    return ["models", "list", "--db", f"sqlite:///{tmp_path / 'db'}", "--data-dir", str(tmp_path), *flags]


def test_log_options_work_before_and_after_the_subcommand(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cloud_main(["--log-format", "json", *_models_list(tmp_path, "--log-level", "warning")]) == 0
    assert logging.getLogger().level == logging.WARNING
    assert capsys.readouterr().err == "", "no INFO line at WARNING"

    assert cloud_main(["--log-level", "ERROR", *_models_list(tmp_path / "b", "-v", "--log-format", "json")]) == 0
    assert logging.getLogger().level == logging.DEBUG, "-v after the subcommand"
    lines = capsys.readouterr().err.splitlines()
    entries = [json.loads(line) for line in lines]
    assert entries
    assert all({"ts", "level", "logger", "message"} <= set(e) for e in entries)
    assert any(e["logger"] == "cloud.store.db" and "migrated" in e["message"] for e in entries)


def test_json_logs_carry_no_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGELOOP_MQTT_PASSWORD", "hunter2-secret")
    formatter = JsonFormatter()
    try:
        raise OSError("cannot log in with hunter2-secret")
    except OSError:
        record = logging.LogRecord(
            "edge.publisher", logging.ERROR, __file__, 1, "to %s", ("mqtts://cam:pa55word@broker:8883",), sys.exc_info()
        )
    line = formatter.format(record)
    entry = json.loads(line)
    assert "\n" not in line
    assert set(entry) == {"ts", "level", "logger", "message", "exc"}
    assert entry["message"] == "to mqtts://cam:***@broker:8883"
    assert entry["level"] == "ERROR"
    assert "OSError" in entry["exc"]
    assert "hunter2-secret" not in line
    assert "pa55word" not in line


def _serve_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    add_config_flags(parser, ServeConfig)
    return parser


def test_options_come_from_flag_then_environment_then_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "serve.yaml"
    config.write_text("http_port: 7000\nprefix: from-yaml\ngroup: from-yaml\n")
    monkeypatch.setenv("EDGELOOP_HTTP_PORT", "7001")
    monkeypatch.setenv("EDGELOOP_PREFIX", "from-env")
    monkeypatch.setenv("EDGELOOP_BROKER", "mqtt://env-broker:1884")
    cfg = from_args(ServeConfig, _serve_parser().parse_args(["--config", str(config), "--http-port", "7002"]))
    assert cfg.http_port == 7002, "a flag wins over the environment"
    assert (cfg.prefix, cfg.broker) == ("from-env", "mqtt://env-broker:1884"), "the environment over YAML"
    assert cfg.group == "from-yaml"
    assert cfg.retain_days == ServeConfig.model_fields["retain_days"].default


def test_a_repeatable_option_takes_a_yaml_list_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGELOOP_SOURCE", "[front=csi://0, back=rtsp://cam/1]")
    monkeypatch.setenv("EDGELOOP_MODEL", "bundle")
    monkeypatch.setenv("EDGELOOP_DEVICE_ID", "cam-7")
    parser = argparse.ArgumentParser()
    add_config_flags(parser, EdgeConfig)
    cfg = from_args(EdgeConfig, parser.parse_args([]))
    assert cfg.cameras == [("front", "csi://0"), ("back", "rtsp://cam/1")]
    assert from_args(EdgeConfig, parser.parse_args(["--source", "0"])).cameras == [("0", "0")], "a flag replaces it"
    monkeypatch.setenv("EDGELOOP_SOURCE", "[front=csi://0")
    with pytest.raises(ConfigError, match="EDGELOOP_SOURCE is not a YAML list"):
        from_args(EdgeConfig, parser.parse_args([]))


def test_the_environment_sets_plain_flags_too(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("EDGELOOP_JSON", "true")
    monkeypatch.setenv("EDGELOOP_CONFIG", str(tmp_path / "missing.yaml"))
    monkeypatch.setenv("EDGELOOP_LOG_FORMAT", "json")
    assert cloud_main(_models_list(tmp_path)) == 2, "EDGELOOP_CONFIG names the YAML file"
    error = json.loads(capsys.readouterr().err.splitlines()[-1])
    assert error["level"] == "ERROR", "a user error is a JSON line too"
    assert "missing.yaml" in error["message"]
    monkeypatch.delenv("EDGELOOP_CONFIG")
    monkeypatch.setenv("EDGELOOP_JSON", "maybe")
    with pytest.raises(SystemExit) as exit_:
        cloud_main(_models_list(tmp_path))
    assert exit_.value.code == 2
    assert "EDGELOOP_JSON='maybe'" in capsys.readouterr().err


def _help(main, *command: str, capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit):
        main([*command, "--help"])
    return capsys.readouterr().out


COMMANDS = [
    (edge_main, ["run"]), (edge_main, ["classify"]), (edge_main, ["bench"]), (cloud_main, ["serve"]),
    (cloud_main, ["retrain"]), (cloud_main, ["sweep"]), (cloud_main, ["simulate-loop"]),
    (cloud_main, ["models", "promote"]), (cloud_main, ["retrain-now"]), (cloud_main, ["keygen"]),
]  # fmt: skip


def test_help_names_the_environment_marks_required_and_says_each_default_once(capsys) -> None:
    home = str(Path.home())
    for main, command in COMMANDS:
        text = _help(main, *command, capsys=capsys)
        options = re.split(r"\n  (?=-)", text.split("options:", 1)[1])
        for option in options:
            flat = " ".join(option.split())
            assert flat.count("(default:") <= 1, (command, flat)
            assert "(default: None)" not in flat, (command, flat)
            if flat and not flat.startswith(("-h", "-v,", "--version")):
                assert re.search(r"\[env EDGELOOP_[A-Z0-9_]+\]", flat), (command, flat)
        assert home == "/" or home not in text, f"{command}: a default under this user's home"
    run = " ".join(_help(edge_main, "run", capsys=capsys).split())
    assert "--model MODEL model bundle directory (required) [env EDGELOOP_MODEL]" in run
    assert "(default: ~/.local/state/edgeloop) [env EDGELOOP_STATE_DIR]" in run
    assert "[env EDGELOOP_HTTP_PORT]" in " ".join(_help(cloud_main, "serve", capsys=capsys).split())
    assert "(required) [env EDGELOOP_MODEL]" in " ".join(_help(edge_main, "classify", capsys=capsys).split())


def test_version_and_console_scripts(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cloud_main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"python -m cloud {__version__}"
    result = subprocess.run([sys.executable, "-m", "edge", "--version"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0
    assert result.stdout.strip() == f"python -m edge {__version__}"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    scripts = project["project"]["scripts"]
    assert set(scripts) == {"edgeloop-edge", "edgeloop-cloud"}
    for target, main in ((scripts["edgeloop-edge"], edge_main), (scripts["edgeloop-cloud"], cloud_main)):
        module, name = target.split(":")
        assert getattr(importlib.import_module(module), name) is main
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "common.__version__"}


@pytest.mark.parametrize(
    ("main", "argv", "said"),
    [
        (cloud_main, ["retrain", "--image_dir", "x", "--output_graph", "g.pb"], "did you mean --output-dir?"),
        (cloud_main, ["retrain", "--tfhub_module", "https://tfhub.dev/x"], "did you mean --architecture?"),
        (cloud_main, ["sweep", "--saved_model_dir", "out"], "did you mean --output-dir?"),
        (edge_main, ["classify", "--graph", "g.pb", "--image", "a.jpg"], "did you mean --model?"),
        (edge_main, ["classify", "--model", "b", "--labels", "l.txt", "a.jpg"], "did you mean --model?"),
        (edge_main, ["classify", "--model", "b", "--input_mean=127", "a.jpg"], "model.json gives it"),
        (cloud_main, ["serve", "--brokr", "mqtt://x"], "did you mean --broker?"),
    ],
)
def test_flags_of_the_scripts_we_replace_get_a_hint(main, argv, said, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    error = capsys.readouterr().err.splitlines()[-1]
    assert exit_.value.code == 2
    assert "unrecognized argument" in error, error
    assert said in error, error
