"""`python -m edge backends`: which inference backends can run here, in the order `auto` tries them, and
for each one that cannot (or each execution provider ONNX Runtime lacks) why."""

from __future__ import annotations

import argparse
import json
from typing import Any

from common.command import SubParsers
from edge import backends


def add_parser(subparsers: SubParsers) -> None:
    p = subparsers.add_parser("backends", help="list the inference backends and why any cannot run here")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=main)


def report() -> dict[str, Any]:
    """{"auto": the order `auto` tries, "backends": {name: {"available", "reason", "notes"}}}."""
    listed: dict[str, Any] = {}
    for name, reason in backends.availability().items():
        notes = backends.notes(name) if reason is None else []
        listed[name] = {"available": reason is None, "reason": reason, "notes": notes}
    return {"auto": list(backends.auto_order()), "backends": listed}


def main(args: argparse.Namespace) -> int:
    result = report()
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"auto tries: {', '.join(result['auto'])}")
    for name, entry in result["backends"].items():
        print(f"{name:<10} {'available' if entry['available'] else 'unavailable: ' + entry['reason']}")
        for note in entry["notes"]:
            print(f"{'':<10} {note}")
    return 0
