"""One training, start to finish: images -> bottlenecks -> new layer -> metrics -> bundle."""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from cloud.retrain import architectures, export, finetune, metrics
from cloud.retrain.bottlenecks import BottleneckCache, Bottlenecks, compute, forward_fn
from cloud.retrain.config import RetrainConfig
from cloud.retrain.dataset import SPLITS, Dataset, check_trainable, scan
from cloud.retrain.distortions import make_distorter
from cloud.retrain.errors import RetrainError
from cloud.retrain.head import Summaries, new_head, train_head
from edge import bundle, images
from edge.classifier import Classifier

log = logging.getLogger(__name__)

PREDICT_BATCH = 64


def _staging_dir(output_dir: Path) -> Path:
    if output_dir.exists() and any(output_dir.iterdir()) and not (output_dir / bundle.MODEL_JSON).exists():
        raise RetrainError(f"{output_dir} exists and is not a model bundle; refusing to overwrite it")
    staging = output_dir.with_name(f".{output_dir.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    return staging


def _publish(staging: Path, output_dir: Path) -> None:
    """Replace the old bundle in one rename, so a reader never sees half of one."""
    old = output_dir.with_name(f".{output_dir.name}.old-{os.getpid()}")
    if output_dir.exists():
        output_dir.rename(old)
    staging.rename(output_dir)
    shutil.rmtree(old, ignore_errors=True)


def _pixels(dataset: Dataset, bn: Bottlenecks, indices: np.ndarray, size: int) -> np.ndarray:
    """Decoded images of the given records: kept from the bottleneck pass, or read again."""
    if bn.pixels is not None:
        return bn.pixels[indices]
    frames = [images.fit(images.read_rgb(dataset.records[i].path), size, size) for i in indices]
    return np.stack(frames) if frames else np.zeros((0, size, size, 3), np.uint8)


def _in_batches(fn, x: np.ndarray) -> np.ndarray:
    return np.concatenate([np.asarray(fn(x[i : i + PREDICT_BATCH])) for i in range(0, len(x), PREDICT_BATCH)])


def retrain(cfg: RetrainConfig) -> bundle.ModelMeta:
    started = datetime.now(timezone.utc)
    arch = architectures.parse(cfg.architecture)
    dataset = scan(cfg.image_dir, cfg.validation_percentage, cfg.testing_percentage)
    staging = _staging_dir(cfg.output_dir)
    base = architectures.load_base(arch, cfg.weights, cfg.seed)
    extractor = architectures.feature_extractor(arch, base)
    dim = int(extractor.output_shape[-1])
    network = architectures.fingerprint(arch, base)
    cache = BottleneckCache(
        cfg.bottleneck_dir, network, dim, {"architecture": arch.name, "weights": cfg.weights}
    )

    clock = time.perf_counter()
    needs_pixels = cfg.distortions or cfg.fine_tune_layers > 0
    bn = compute(
        [r.path for r in dataset.records],
        extractor,
        arch.size,
        cache,
        cfg.bottleneck_batch_size,
        cfg.workers,
        needs_pixels,
    )
    dataset.drop({path for path, _ in bn.skipped})
    check_trainable(dataset)
    bottleneck_s = time.perf_counter() - clock
    log.info("bottlenecks: %d computed, %d cached in %.1fs", bn.computed, bn.cached, bottleneck_s)

    clock = time.perf_counter()
    y = np.array([r.label for r in dataset.records], np.int32)
    split = {s: np.array(dataset.indices(s), np.int64) for s in SPLITS}
    head = new_head(dim, len(dataset.labels), cfg.seed)
    train_idx = split["train"]
    if cfg.distortions:
        distort = make_distorter(cfg, arch.size, cfg.seed)
        forward = forward_fn(extractor, arch.size)

        def next_batch(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
            chosen = rng.choice(train_idx, cfg.train_batch_size)
            return forward(distort(bn.pixels[chosen])).numpy(), y[chosen]
    else:

        def next_batch(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
            chosen = rng.choice(train_idx, cfg.train_batch_size)
            return bn.features[chosen], y[chosen]

    summaries = Summaries(cfg.summaries_dir)
    try:
        train_head(
            head,
            next_batch,
            (bn.features[split["validation"]], y[split["validation"]]),
            cfg.how_many_training_steps,
            cfg.learning_rate,
            cfg.eval_step_interval,
            summaries,
            cfg.seed,
        )
    finally:
        summaries.close()
    model = export.full_model(extractor, head)
    if cfg.fine_tune_layers:
        unfrozen = finetune.unfreeze_top(base, cfg.fine_tune_layers)
        log.info("fine-tuning %s of %s", ", ".join(unfrozen), arch.name)
        finetune.fine_tune(
            model,
            bn.pixels[train_idx],
            y[train_idx],
            cfg.fine_tune_steps,
            min(cfg.train_batch_size, 32),
            cfg.fine_tune_learning_rate,
            cfg.seed,
            make_distorter(cfg, arch.size, cfg.seed) if cfg.distortions else None,
        )
        probabilities = _in_batches(forward_fn(model, arch.size), bn.pixels)
    else:
        probabilities = _in_batches(head, bn.features)
    predicted = probabilities.argmax(1)
    train_s = time.perf_counter() - clock

    test = split["test"]
    matrix = metrics.confusion_matrix(y[test], predicted[test], len(dataset.labels))
    if cfg.print_misclassified_test_images:
        for i in test[predicted[test] != y[test]]:
            log.info("misclassified: %s as %s", dataset.records[i].path, dataset.labels[predicted[i]])

    clock = time.perf_counter()
    export.save_model(model, staging / bundle.SAVED_MODEL, "image", "final_result")
    calibration = _pixels(
        dataset, bn, np.random.default_rng(cfg.seed).permutation(train_idx)[:200], arch.size
    )
    tflite = export.to_tflite(staging / bundle.SAVED_MODEL, cfg.quantization, calibration)
    (staging / bundle.TFLITE).write_bytes(tflite)
    evaluation = [
        {
            "file": dataset.records[i].path.relative_to(dataset.root).as_posix(),
            "sha256": bn.shas[i],
            "label": dataset.labels[y[i]],
            "predicted": dataset.labels[predicted[i]],
            "score": round(float(probabilities[i, predicted[i]]), 6),
        }
        for i in test
    ]
    (staging / bundle.EVALUATION_JSON).write_text(json.dumps(evaluation, indent=1))

    meta = bundle.ModelMeta(
        name=cfg.name or cfg.image_dir.resolve().name,
        version=cfg.version or started.strftime("%Y%m%d.%H%M%S"),
        created=started.isoformat(timespec="seconds"),
        architecture=arch.name,
        input=bundle.InputSpec(height=arch.size, width=arch.size, mean=arch.mean, std=arch.std),
        labels=dataset.labels,
        metrics=bundle.Metrics(
            test_accuracy=metrics.accuracy(y[test], predicted[test]),
            validation_accuracy=metrics.accuracy(y[split["validation"]], predicted[split["validation"]]),
            train_accuracy=metrics.accuracy(y[train_idx], predicted[train_idx]),
            confusion_matrix=matrix.tolist(),
            per_class=metrics.per_class(matrix, dataset.labels),
        ),
        timings=bundle.Timings(bottleneck_s=round(bottleneck_s, 3), train_s=round(train_s, 3)),
        bottlenecks=bundle.BottleneckStats(computed=bn.computed, cached=bn.cached),
        images=bundle.ImageStats(
            train=len(train_idx),
            validation=len(split["validation"]),
            test=len(test),
            skipped=len(bn.skipped),
            skipped_files=[f"{p.relative_to(dataset.root).as_posix()}: {why}" for p, why in bn.skipped],
        ),
        training=cfg.model_dump(mode="json"),
    )
    bundle.write_meta(staging, meta)
    exported = _check_tflite(
        bundle.load(staging), _pixels(dataset, bn, test, arch.size), y[test], predicted[test]
    )
    meta.metrics.tflite = exported.model_copy(update={"type": cfg.quantization, "size_bytes": len(tflite)})
    meta.timings.export_s = round(time.perf_counter() - clock, 3)
    meta = bundle.write_meta(staging, meta)
    _publish(staging, cfg.output_dir)
    return meta


def _check_tflite(staged: bundle.Bundle, pixels: np.ndarray, y: np.ndarray, trained: np.ndarray):
    """Run the exported TFLite model through the edge's own backend on the test images."""
    classifier = Classifier(staged, "tflite")
    predicted = _in_batches(classifier.backend.predict, pixels).argmax(1) if len(pixels) else np.zeros(0, int)
    result = bundle.ExportMetrics(
        type="float32",
        test_accuracy=metrics.accuracy(y, predicted),
        agreement=metrics.accuracy(trained, predicted),
        size_bytes=0,
    )
    log.info(
        "tflite on %d test images: accuracy %s, agreement %s", len(y), result.test_accuracy, result.agreement
    )
    return result
