"""`python -m cloud retrain`: retrain.py's flags (dashed or underscored), or a YAML file of them."""

from __future__ import annotations

import argparse
import logging

from cloud.retrain.config import RetrainConfig
from common.command import SubParsers, hint
from common.options import add_config_flags, from_args

log = logging.getLogger(__name__)

# retrain.py's flags (TensorFlow Hub's and TF for Poets') whose names are not ours; the others are the same
BUNDLE = "--output-dir? (the bundle: SavedModel, TFLite, labels and preprocessing in one folder)"
RETRAIN_PY_FLAGS = {
    "--output_graph": f"did you mean {BUNDLE}",
    "--output_labels": f"did you mean {BUNDLE}",
    "--saved_model_dir": f"did you mean {BUNDLE}",
    "--intermediate_output_graphs_dir": f"did you mean {BUNDLE}; no intermediate graphs are written",
    "--intermediate_store_frequency": "no intermediate graphs are written; --summaries-dir follows the training",
    "--checkpoint_path": f"no checkpoints: did you mean {BUNDLE}",
    "--tfhub_module": "did you mean --architecture? (a Keras base such as mobilenet_v2_1.0_224; --weights: imagenet)",
    "--model_dir": "did you mean --weights? (imagenet: Keras downloads and caches them; or a weights file)",
    "--final_tensor_name": "the bundle's model.json names the output; no flag",
    "--test_batch_size": "every test image is evaluated; no flag",
    "--validation_batch_size": "every validation image is evaluated; no flag",
    "--logging_verbosity": "did you mean --log-level? (DEBUG, INFO, WARNING, ERROR)",
}


def add_parser(subparsers: SubParsers) -> None:
    p = subparsers.add_parser(
        "retrain",
        help="train a new last layer on a folder of labelled images and write a model bundle",
        description="TF for Poets retraining: frozen ImageNet base, cached bottlenecks, new softmax layer.",
    )
    add_config_flags(p, RetrainConfig)
    hint(p, RETRAIN_PY_FLAGS)
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from cloud.retrain import report
    from cloud.retrain.train import retrain

    cfg = from_args(RetrainConfig, args)
    meta = retrain(cfg)
    print(report.summary(meta, str(cfg.output_dir)))
    return 0
