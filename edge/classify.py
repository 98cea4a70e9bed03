"""`python -m edge classify`: the label_image successor, with preprocessing taken from the bundle."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from common import bundle, images
from common.command import SubParsers, hint
from edge import backends
from edge.classifier import Classifier

log = logging.getLogger(__name__)

# label_image's flags: the bundle holds the graph, the labels and the preprocessing they described
FROM_BUNDLE = "the bundle's model.json gives it: no flag"
LABEL_IMAGE_FLAGS = {
    "--graph": "did you mean --model? (the bundle directory: model, labels and preprocessing)",
    "--labels": "did you mean --model? (the bundle directory holds labels.txt)",
    "--image": "give images or folders as arguments: python -m edge classify --model BUNDLE IMAGE...",
    **{f"--{name}": FROM_BUNDLE for name in ("input_height", "input_width", "input_mean", "input_std")},
    **{f"--{name}": FROM_BUNDLE for name in ("input_layer", "output_layer")},
}


def add_parser(subparsers: SubParsers) -> None:
    p = subparsers.add_parser("classify", help="classify images or folders with a model bundle")
    p.add_argument("--model", required=True, type=Path, help="model bundle directory")
    p.add_argument("--backend", default="auto", choices=["auto", *backends.REGISTRY], help="default: auto")
    p.add_argument("--top-k", "--top_k", type=_positive, default=5, dest="top_k", help="labels per image (default: 5)")
    p.add_argument("--json", action="store_true", help="one JSON object per image per line")
    p.add_argument("paths", nargs="+", type=Path, metavar="IMAGE_OR_DIR")
    hint(p, LABEL_IMAGE_FLAGS)
    p.set_defaults(func=main)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def main(args: argparse.Namespace) -> int:
    paths = images.expand_paths(args.paths)
    if not paths:
        print(f"error: no images in {' '.join(map(str, args.paths))}", file=sys.stderr)
        return 2
    classifier = Classifier(bundle.load(args.model), args.backend)
    failed = 0
    for path in paths:
        try:
            frame = images.read_rgb(path)
        except images.ImageError as exc:
            log.error("%s: %s", path, exc)
            failed += 1
            continue
        top = classifier.classify(frame, args.top_k)
        if args.json:
            record = {"image": str(path), "top_k": [{"label": p.label, "score": p.score} for p in top]}
            print(json.dumps(record), flush=True)
        else:
            print(path)
            for p in top:
                print(f"  {p.label:<24} {p.score:.5f}")
    if failed:
        print(f"{failed} image(s) could not be read", file=sys.stderr)
    return 1 if failed else 0
