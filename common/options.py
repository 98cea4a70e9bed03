"""Command-line flags generated from a pydantic model, so each option is defined (with its default
and description) once. Every field gets a dashed flag and, as retrain.py users type, its
underscore spelling, and is read from EDGELOOP_<NAME> too (k8s and compose set environment
variables, not flags); values are validated by the model, not by argparse. Precedence: flag >
environment > YAML (`--config`) > default."""

from __future__ import annotations

import argparse
import os
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo

from common.errors import ConfigError

# A list field whose json_schema_extra holds {REPEATABLE: True}: its flag may be given several times.
REPEATABLE = "repeatable"
ENV_PREFIX = "EDGELOOP_"


class Options(BaseModel):
    """Base of every options model: unknown keys are errors; `a-b` and `a_b` are the same key."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _either_spelling(cls, data: object) -> object:
        return normalise_keys(data) if isinstance(data, dict) else data

    @field_validator("*")
    @classmethod
    def _expand_home(cls, value: object) -> object:
        try:
            return value.expanduser() if isinstance(value, Path) else value
        except RuntimeError as exc:  # ~nobody/…: pydantic turns only ValueError into a validation error
            raise ValueError(f"{value}: {exc}") from exc


def _choices(annotation: Any) -> list[str] | None:
    if typing.get_origin(annotation) is typing.Literal:
        return [str(a) for a in typing.get_args(annotation)]
    return None


def env_name(dest: str) -> str:
    """The environment variable of an option: `http_port` -> EDGELOOP_HTTP_PORT."""
    return ENV_PREFIX + dest.upper().replace("-", "_")


def _repeatable(field: FieldInfo) -> bool:
    return isinstance(field.json_schema_extra, dict) and bool(field.json_schema_extra.get(REPEATABLE))


def shown_default(field: FieldInfo) -> str:
    """A default as help and docs show it: the home folder as `~`, so that it reads the same for everyone."""
    text = str(field.get_default(call_default_factory=True))
    home = str(Path.home())
    return "~" + text[len(home) :] if home != "/" and (text == home or text.startswith(home + "/")) else text


def help_text(field: FieldInfo) -> str:
    """The description, and the default once: not when it is None (unset), which the description explains."""
    description = field.description or ""
    if field.is_required():
        return f"{description} (required)".lstrip()
    if field.get_default(call_default_factory=True) is None:
        return description
    return f"{description} (default: {shown_default(field)})".lstrip()


def add_model_flags(parser: argparse.ArgumentParser, model: type[BaseModel]) -> None:
    for name, field in model.model_fields.items():
        flags = [f"--{name.replace('_', '-')}"]
        if "_" in name:
            flags.append(f"--{name}")
        text = help_text(field)
        if field.annotation is bool:
            parser.add_argument(
                *flags, dest=name, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS, help=text
            )
        elif _repeatable(field):
            parser.add_argument(
                *flags, dest=name, action="append", default=argparse.SUPPRESS, metavar=name.upper(), help=text
            )
        else:
            parser.add_argument(
                *flags,
                dest=name,
                default=argparse.SUPPRESS,
                choices=_choices(field.annotation),
                metavar=None if _choices(field.annotation) else name.upper(),
                help=text,
            )


def add_config_flags(parser: argparse.ArgumentParser, model: type[BaseModel]) -> None:
    """`--config FILE.yaml` plus one flag per option of `model`."""
    parser.add_argument(
        "--config",
        type=Path,
        help="YAML file of these options (either spelling); the environment and flags override it",
    )
    add_model_flags(parser, model)


def from_env(model: type[BaseModel], environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The options of `model` set in the environment (an empty variable is unset). A repeatable option
    takes one value, or a YAML list: EDGELOOP_SOURCE='[front=csi://0, back=csi://1]'."""
    environ = os.environ if environ is None else environ
    layer: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        value = environ.get(env_name(name))
        if not value:
            continue
        if _repeatable(field) and value.lstrip().startswith("["):
            try:
                parsed = yaml.safe_load(value)
            except yaml.YAMLError as exc:
                raise ConfigError(f"{env_name(name)} is not a YAML list: {exc}") from exc
            layer[name] = [str(item) for item in parsed] if isinstance(parsed, list) else [value]
        elif _repeatable(field):
            layer[name] = [value]
        else:
            layer[name] = value
    return layer


def without_option_env(model: type[BaseModel], environ: Mapping[str, str]) -> dict[str, str]:
    """`environ` less the variables that set options of `model`: for a child process whose options are
    all in its YAML file, which the environment would otherwise override."""
    names = {env_name(name) for name in model.model_fields}
    return {key: value for key, value in environ.items() if key not in names}


def from_args(model: type[BaseModel], args: argparse.Namespace) -> Any:
    """The options of `model` from `--config`, the environment and the flags given."""
    flags = {k: v for k, v in vars(args).items() if k in model.model_fields}
    return build(model, read_yaml(args.config) if args.config else {}, from_env(model), flags)


def normalise_keys(data: dict[str, Any]) -> dict[str, Any]:
    """Accept `learning-rate` and `learning_rate` alike, as YAML keys and as flags; both in one mapping
    is an error, not a silent choice of whichever came last."""
    normalised: dict[str, Any] = {}
    for key, value in data.items():
        name = str(key).replace("-", "_")
        if name in normalised:
            raise ConfigError(f"{name.replace('_', '-')} is given twice ({key!r} and another spelling)")
        normalised[name] = value
    return normalised


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    try:
        data = yaml.safe_load(text) or {}
    except Exception as exc:  # beside YAMLError, PyYAML lets ValueError (2024-13-01), RecursionError… through
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of option names to values")
    return normalise_keys(data)


def build(model: type[BaseModel], *layers: dict[str, Any]) -> Any:
    """Validate the merged layers (later ones win: defaults < YAML < environment < flags) into `model`."""
    merged: dict[str, Any] = {}
    for layer in layers:
        merged.update(normalise_keys(layer))
    try:
        return model.model_validate(merged)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])).replace('_', '-') or 'config'}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(problems) from exc
