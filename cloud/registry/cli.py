"""`python -m cloud models list|add|promote|rollback|widen`: the registry from a shell, against the
same store and broker as the service."""

from __future__ import annotations

import argparse
import json
import logging
import shutil
from datetime import datetime, timezone
from pathlib import Path

from cloud.datasets import dataset_dir
from cloud.options import CloudOptions
from cloud.registry.figures import slice_figures
from cloud.registry.gate import GatePolicy
from cloud.registry.rollout import Rollout
from cloud.registry.versions import Registry, RegistryError, Version
from cloud.store import connect
from common import bundle, protocol
from common.command import SubParsers
from common.options import add_config_flags, from_args

log = logging.getLogger(__name__)


def add_parser(subparsers: SubParsers) -> None:
    models = subparsers.add_parser("models", help="list, promote, roll back or widen model versions")
    actions = models.add_subparsers(dest="action", required=True)
    listing = actions.add_parser(
        "list", help="every version, newest first: its state, test accuracy overall and per slice (seed, field), gate"
    )
    listing.add_argument("name", nargs="?", help="one model (default: all)")
    listing.add_argument("--json", action="store_true", help="one JSON object per version")
    promote = actions.add_parser("promote", help="promote a version and announce it")
    promote.add_argument("name")
    promote.add_argument("version")
    promote.add_argument("--groups", help="comma-separated device groups: a canary (default: the whole fleet)")
    add = actions.add_parser("add", help="register a bundle trained elsewhere (a candidate; --promote to announce it)")
    add.add_argument("bundle", type=Path)
    add.add_argument("--promote", action="store_true", help="promote and announce it if the gate passes")
    for action, text in (("rollback", "re-announce the version promoted before"), ("widen", "canary -> fleet")):
        actions.add_parser(action, help=text).add_argument("name")
    for p in actions.choices.values():
        add_config_flags(p, CloudOptions)
    models.set_defaults(func=main)


def _figure(value: float | int | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def _gate(gate: dict | None) -> str:
    """The verdict's rule and the field test's p-value where the gate recorded them (older verdicts
    have neither), then its reason."""
    if not gate:
        return ""
    field = (gate.get("slices") or {}).get("field") or {}
    rule = [f"rule={gate['rule']}"] if gate.get("rule") else []
    p_value = [f"field p={field['p_value']:.3g}"] if field.get("p_value") is not None else []
    recorded, why = ", ".join(rule + p_value), gate.get("why", "")
    return f"  [{recorded}: {why}]" if recorded else f"  [{why}]"


def describe(v: Version) -> str:
    figures = slice_figures(v.metrics)
    when = datetime.fromtimestamp(v.created, timezone.utc).strftime("%Y-%m-%d %H:%M")
    groups = f" groups={','.join(v.rollout_groups)}" if v.rollout_groups else ""
    columns = [
        f"{v.name:<16} {v.version:<18} {v.state:<10}{groups}",
        f"test={_figure(v.metrics.get('test_accuracy'), '.3f'):<5}",
        f"seed={_figure(figures.seed_accuracy, '.3f'):<5}",
        f"field={_figure(figures.field_accuracy, '.3f'):<5}",
        f"field_images={_figure(figures.field_test_images, 'd'):<4}",
        f"{when} parent={v.parent}",
    ]
    return " ".join(columns) + _gate(v.gate)


def main(args: argparse.Namespace) -> int:
    cfg = from_args(CloudOptions, args)
    registry = Registry(connect(cfg.db), cfg.data_dir)
    if args.action == "list":
        for v in registry.list(args.name):
            print(json.dumps(vars(v) | vars(slice_figures(v.metrics))) if args.json else describe(v))
        return 0
    if args.action == "add":
        return add_bundle(registry, args, cfg)
    rollout = _rollout(cfg, registry)
    if args.action == "promote":
        groups = [protocol.check_id(g.strip(), "group") for g in args.groups.split(",")] if args.groups else None
        print(describe(rollout.promote(args.name, args.version, groups)))
    elif args.action == "rollback":
        print(describe(rollout.rollback(args.name)))
    else:
        print(describe(rollout.widen(args.name)))
    return 0


def _rollout(cfg: CloudOptions, registry: Registry) -> Rollout:
    address, topics = cfg.broker_address(), protocol.Topics(cfg.prefix)
    return Rollout(registry, address, topics, cfg.download_url, cfg.signer(), lifetime_s=cfg.announcement_lifetime_s)


def add_bundle(registry: Registry, args: argparse.Namespace, cfg: CloudOptions) -> int:
    """Copy the bundle into the registry as a candidate; with --promote, through the same gate as a
    training of the service's own (on the model's dataset, if the cloud has one)."""
    meta = bundle.load(args.bundle).meta
    target = registry.bundle_dir(meta.name, meta.version)
    if target.exists():
        raise RegistryError(f"{meta.name} {meta.version} is already in the registry")
    shutil.copytree(args.bundle, target)
    try:
        version = registry.add(target, trigger="added by hand")
    except Exception:
        shutil.rmtree(target)  # nothing of a refused bundle stays: once fixed, it can be added again
        raise
    if args.promote:
        rollout = _rollout(cfg, registry)
        print(rollout.gate_and_promote(version, dataset_dir(cfg.data_dir, meta.name), GatePolicy()))
        version = registry.get(meta.name, meta.version)
    print(describe(version))
    return 0
