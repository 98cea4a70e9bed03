"""The shell both `python -m edge` and `python -m cloud` share: sub-commands, logging options that
work before or after the sub-command, every option also from the environment (EDGELOOP_<OPTION>),
hints for the flags of the scripts ours replace, and user errors printed as one line with exit
status 2 instead of a traceback."""

from __future__ import annotations

import argparse
import difflib
import logging
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from common import __version__, logs
from common.options import env_name

if TYPE_CHECKING:
    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]
else:
    SubParsers = argparse._SubParsersAction

log = logging.getLogger(__name__)

LOGGING_DESTS = ("verbose", "log_level", "log_format")
LOG_DEFAULTS = ("INFO", "text")
TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


class Parser(argparse.ArgumentParser):
    """argparse that answers an unknown flag with what to type instead: ours for a flag of retrain.py or
    label_image (`hints`), else the nearest flag it knows."""

    hints: Mapping[str, str] = {}

    def parse_known_args(  # type: ignore[override]  # typeshed's overloads; this one returns argparse's tuple
        self, args: Any = None, namespace: Any = None
    ) -> tuple[argparse.Namespace, list[str]]:
        for arg in sys.argv[1:] if args is None else args:  # before argparse's "--model is required"
            if (flag := str(arg).split("=", 1)[0]) in self.hints:
                self.error(f"unrecognized argument {flag}: {self.hints[flag]}")
        parsed, extras = super().parse_known_args(args, namespace)
        for extra in extras:
            flag = extra.split("=", 1)[0]
            near = difflib.get_close_matches(flag, list(self._option_string_actions), n=1, cutoff=0.75)
            if extra.startswith("-") and near:
                self.error(f"unrecognized argument {flag}: did you mean {near[0]}?")
        return parsed, extras


def hint(parser: argparse.ArgumentParser, hints: Mapping[str, str]) -> None:
    """Answer these flags (of the tools this command replaces) with what to type here instead."""
    if isinstance(parser, Parser):
        parser.hints = hints


def _parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):  # aliases map to the same parser
                yield from _parsers(sub)


def _add_logging_flags(parser: argparse.ArgumentParser) -> None:
    """On every (sub-)parser, so they go anywhere on the line; SUPPRESS keeps a sub-command's parse from
    overwriting what was given before it."""
    known = parser._option_string_actions
    flags: list[tuple[list[str], dict[str, Any]]] = [
        (["-v", "--verbose"], {"action": "store_true", "help": "debug logging: --log-level DEBUG"}),
        (["--log-level"], {"type": str.upper, "choices": logs.LEVELS, "help": "the least severe level logged"}),
        (["--log-format"], {"choices": logs.FORMATS, "help": "text, or json: one object per line"}),
    ]
    defaults = dict(zip(LOGGING_DESTS[1:], LOG_DEFAULTS, strict=True))
    for names, kwargs in flags:
        if not any(name in known for name in names):
            action = parser.add_argument(*names, default=argparse.SUPPRESS, **kwargs)
            if action.dest in defaults:
                action.help = f"{action.help} (default: {defaults[action.dest]}) [env {env_name(action.dest)}]"


def _env_value(action: argparse.Action, name: str, value: str) -> object:
    if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
        if value.lower() not in TRUE + FALSE:
            raise ValueError(f"{name}={value!r}: expected one of {', '.join(TRUE + FALSE)}")
        return value.lower() in TRUE
    if action.choices is not None and action.type is None and value not in action.choices:
        raise ValueError(f"{name}={value!r}: expected one of {', '.join(map(str, action.choices))}")
    return value  # a string default goes through the action's type, as a flag's value does


def _add_environment(parser: argparse.ArgumentParser, environ: Mapping[str, str]) -> None:
    """Name each option's variable in the help, and take the variable's value as the option's default. Options
    of an options model (their default is SUPPRESS) are read by common.options, between YAML and flags."""
    for action in parser._actions:
        if not action.option_strings or action.dest in LOGGING_DESTS or action.help == argparse.SUPPRESS:
            continue
        if isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            continue
        name = env_name(action.dest)
        required = " (required)" if action.required else ""
        action.help = f"{action.help or ''}{required} [env {name}]".lstrip()
        if action.default is not argparse.SUPPRESS and environ.get(name):
            try:
                action.default = _env_value(action, name, environ[name])
            except ValueError as exc:
                parser.error(str(exc))
            action.required = False


def _logging(args: argparse.Namespace, environ: Mapping[str, str]) -> tuple[str, str]:
    level = getattr(args, "log_level", None) or environ.get(env_name("log_level"), "").upper() or LOG_DEFAULTS[0]
    fmt = getattr(args, "log_format", None) or environ.get(env_name("log_format")) or LOG_DEFAULTS[1]
    if getattr(args, "verbose", False):
        level = "DEBUG"
    if level not in logs.LEVELS or fmt not in logs.FORMATS:
        raise ValueError(f"log level {level!r}, format {fmt!r}: expected one of {logs.LEVELS}, {logs.FORMATS}")
    return level, fmt


def main(
    prog: str,
    description: str | None,
    commands: Sequence[Callable[[SubParsers], None]],
    user_errors: tuple[type[Exception], ...],
    argv: list[str] | None = None,
) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = Parser(prog=prog, description=description)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = cast("SubParsers", parser.add_subparsers(dest="command", required=True))
    for add_parser in commands:
        add_parser(sub)
    for each in _parsers(parser):
        _add_logging_flags(each)
        _add_environment(each, os.environ)
    args = parser.parse_args(argv)
    try:
        level, fmt = _logging(args, os.environ)
    except ValueError as exc:
        parser.error(str(exc))
    logs.setup(level, fmt)
    try:
        status: int = args.func(args)
        return status
    except user_errors as exc:
        if fmt == "json":  # every line of the log stays one JSON object
            log.error("%s", exc)
        else:
            print(f"error: {exc}", file=sys.stderr)
        return 2
