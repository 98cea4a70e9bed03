"""One training, start to finish: images -> bottlenecks -> new layer -> metrics -> bundle."""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import keras
import numpy as np

from cloud.datasets import FIELD
from cloud.retrain import architectures, export, finetune, metrics, slices
from cloud.retrain.bottlenecks import BottleneckCache, Bottlenecks, compute, forward_fn
from cloud.retrain.config import RetrainConfig
from cloud.retrain.dataset import SPLITS, Dataset, check_trainable, draw_probabilities, scan
from cloud.retrain.distortions import make_distorter
from cloud.retrain.errors import RetrainError
from cloud.retrain.head import BatchSource, Summaries, bottleneck_batches, new_head, train_head
from common import bundle, images
from edge import backends
from edge.backends.onnx import CPU, OnnxBackend

log = logging.getLogger(__name__)

PREDICT_BATCH = 64


@dataclass
class _Data:
    """The images that decoded, their bottlenecks, labels and split indices."""

    dataset: Dataset
    bn: Bottlenecks
    y: np.ndarray
    split: dict[str, np.ndarray]

    @property
    def kept(self) -> np.ndarray:
        """The decoded images the bottleneck pass kept: distortions and fine-tuning train on them."""
        if self.bn.pixels is None:
            raise RetrainError("the bottleneck pass kept no decoded images")
        return self.bn.pixels

    def pixels(self, indices: np.ndarray, size: int) -> np.ndarray:
        """Decoded images of these records: kept from the bottleneck pass, or read again."""
        if self.bn.pixels is not None:
            return self.bn.pixels[indices]
        try:
            frames = [images.fit(images.read_rgb(self.dataset.records[i].path), size, size) for i in indices]
        except images.ImageError as exc:
            raise RetrainError(f"an image changed or vanished during training: {exc}") from exc
        return np.stack(frames) if frames else np.zeros((0, size, size, 3), np.uint8)


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


def _in_batches(fn: Callable, x: np.ndarray) -> np.ndarray:
    return np.concatenate([np.asarray(fn(x[i : i + PREDICT_BATCH])) for i in range(0, len(x), PREDICT_BATCH)])


def _bottlenecks(
    cfg: RetrainConfig,
    dataset: Dataset,
    arch: architectures.Architecture,
    base: keras.Model,
    extractor: keras.Model,
) -> _Data:
    network = architectures.fingerprint(arch, base)
    dim = int(extractor.output_shape[-1])
    cache = BottleneckCache(cfg.bottleneck_dir, network, dim, {"architecture": arch.name, "weights": cfg.weights})
    keep_pixels = cfg.distortions or cfg.fine_tune_layers > 0
    paths = [r.path for r in dataset.records]
    bn = compute(paths, extractor, arch.size, cache, cfg.bottleneck_batch_size, cfg.workers, keep_pixels)
    dataset.drop({path for path, _ in bn.skipped})
    check_trainable(dataset)
    y = np.array([r.label for r in dataset.records], np.int32)
    return _Data(dataset, bn, y, {s: np.array(dataset.indices(s), np.int64) for s in SPLITS})


def _batches(cfg: RetrainConfig, data: _Data, extractor: keras.Model, size: int) -> BatchSource:
    """Random training batches, as retrain.py drew them: cached bottlenecks, or distorted images
    run through the base afresh every step."""
    train = data.split["train"]
    p = draw_probabilities(data.dataset.records, train, cfg.field_weight)
    if not cfg.distortions:
        return bottleneck_batches(data.bn.features, data.y, train, cfg.train_batch_size, p)
    distort, forward = make_distorter(cfg, size, cfg.seed), forward_fn(extractor, size)
    return lambda rng: (
        forward(distort(data.kept[chosen := rng.choice(train, cfg.train_batch_size, p=p)])).numpy(),
        data.y[chosen],
    )


def _train(
    cfg: RetrainConfig,
    arch: architectures.Architecture,
    base: keras.Model,
    extractor: keras.Model,
    data: _Data,
):
    """Train the new layer (then fine-tune, if asked); returns the whole model and its predictions."""
    head = new_head(int(extractor.output_shape[-1]), len(data.dataset.labels), cfg.seed)
    validation = data.split["validation"]
    summaries = Summaries(cfg.summaries_dir)
    try:
        train_head(
            head,
            _batches(cfg, data, extractor, arch.size),
            (data.bn.features[validation], data.y[validation]),
            cfg.how_many_training_steps,
            cfg.learning_rate,
            cfg.eval_step_interval,
            summaries,
            cfg.seed,
        )
    finally:
        summaries.close()
    model = export.full_model(extractor, head)
    if not cfg.fine_tune_layers:
        return model, _in_batches(head, data.bn.features)
    log.info("fine-tuning %s of %s", ", ".join(finetune.unfreeze_top(base, cfg.fine_tune_layers)), arch.name)
    train = data.split["train"]
    finetune.fine_tune(
        model,
        data.kept[train],
        data.y[train],
        cfg.fine_tune_steps,
        min(cfg.train_batch_size, 32),
        cfg.fine_tune_learning_rate,
        cfg.seed,
        make_distorter(cfg, arch.size, cfg.seed) if cfg.distortions else None,
    )
    return model, _in_batches(forward_fn(model, arch.size), data.kept)


def retrain(cfg: RetrainConfig) -> bundle.ModelMeta:
    started = datetime.now(timezone.utc)
    arch = architectures.parse(cfg.architecture)
    dataset = scan(cfg.image_dir, cfg.splits)
    devices = slices.load_devices(cfg.field_devices)
    output_dir = cfg.output_dir.resolve()
    staging = _staging_dir(output_dir)
    try:
        meta = _retrain_into(cfg, dataset, devices, arch, staging, started)
        _publish(staging, output_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return meta


def _retrain_into(
    cfg: RetrainConfig,
    dataset: Dataset,
    devices: dict[str, str],
    arch: architectures.Architecture,
    staging: Path,
    started: datetime,
) -> bundle.ModelMeta:
    base = architectures.load_base(arch, cfg.weights, cfg.seed)
    extractor = architectures.feature_extractor(arch, base)

    clock = time.perf_counter()
    data = _bottlenecks(cfg, dataset, arch, base, extractor)
    bottleneck_s = time.perf_counter() - clock
    log.info("bottlenecks: %d computed, %d cached in %.1fs", data.bn.computed, data.bn.cached, bottleneck_s)

    clock = time.perf_counter()
    model, probabilities = _train(cfg, arch, base, extractor, data)
    train_s = time.perf_counter() - clock

    clock = time.perf_counter()
    timings = bundle.Timings(bottleneck_s=round(bottleneck_s, 3), train_s=round(train_s, 3))
    meta = _export(cfg, arch, data, devices, model, probabilities, staging, started, timings)
    meta.timings.export_s = round(time.perf_counter() - clock, 3)
    meta = bundle.write_meta(staging, meta)
    return meta


def _export(
    cfg: RetrainConfig,
    arch: architectures.Architecture,
    data: _Data,
    devices: dict[str, str],
    model: keras.Model,
    probabilities: np.ndarray,
    staging: Path,
    started: datetime,
    timings: bundle.Timings,
) -> bundle.ModelMeta:
    """Write the models, the test-set evaluation and model.json; measure the exported TFLite model."""
    dataset, labels, y, split = data.dataset, data.dataset.labels, data.y, data.split
    predicted = probabilities.argmax(1)
    test, validation, train = split["test"], split["validation"], split["train"]
    if cfg.print_misclassified_test_images:
        for i in test[predicted[test] != y[test]]:
            log.info("misclassified: %s as %s", dataset.records[i].path, labels[predicted[i]])
    export.save_model(model, staging / bundle.SAVED_MODEL, "image", "final_result")
    calibration = (
        data.pixels(np.random.default_rng(cfg.seed).permutation(train)[: export.CALIBRATION_IMAGES], arch.size)
        if cfg.quantization == "int8"
        else None
    )
    tflite = export.to_tflite(staging / bundle.SAVED_MODEL, cfg.quantization, calibration)
    (staging / bundle.TFLITE).write_bytes(tflite)
    clock = time.perf_counter()
    onnx = export.to_onnx(staging / bundle.TFLITE, "image", "final_result")
    (staging / bundle.ONNX).write_bytes(onnx)
    onnx_s = time.perf_counter() - clock

    def image(i: int) -> dict:
        return {
            "file": dataset.records[i].path.relative_to(dataset.root).as_posix(),
            "sha256": data.bn.shas[i],
            "label": labels[y[i]],
        }

    evaluation = [
        image(i) | {"predicted": labels[predicted[i]], "score": round(float(probabilities[i, predicted[i]]), 6)}
        for i in test
    ]
    (staging / bundle.EVALUATION_JSON).write_text(json.dumps(evaluation, indent=1))
    used = [image(i) | {"split": dataset.records[i].split} for i in range(len(dataset.records))]
    (staging / bundle.DATASET_JSON).write_text(json.dumps(used, indent=0))
    matrix = metrics.confusion_matrix(y[test], predicted[test], len(labels))
    meta = bundle.ModelMeta(
        name=cfg.name or dataset.root.resolve().name,
        version=cfg.version or started.strftime("%Y%m%d.%H%M%S"),
        created=started.isoformat(timespec="seconds"),
        architecture=arch.name,
        input=bundle.InputSpec(height=arch.size, width=arch.size, mean=arch.mean, std=arch.std),
        labels=labels,
        metrics=bundle.Metrics(
            test_accuracy=metrics.accuracy(y[test], predicted[test]),
            validation_accuracy=metrics.accuracy(y[validation], predicted[validation]),
            train_accuracy=metrics.accuracy(y[train], predicted[train]),
            confusion_matrix=matrix.tolist(),
            per_class=metrics.per_class(matrix, labels),
            slices=slices.by_slice(dataset.records, test, y, predicted),
            devices=slices.by_device(dataset.records, test, y, predicted, devices),
        ),
        timings=timings,
        bottlenecks=bundle.BottleneckStats(computed=data.bn.computed, cached=data.bn.cached),
        images=bundle.ImageStats(
            train=len(train),
            validation=len(validation),
            test=len(test),
            skipped=len(data.bn.skipped),
            skipped_files=[f"{p.relative_to(dataset.root).as_posix()}: {why}" for p, why in data.bn.skipped],
            per_label={
                label: int(n) for label, n in zip(labels, np.bincount(y[train], minlength=len(labels)), strict=True)
            },
            field=sum(dataset.records[i].slice == FIELD for i in train),
        ),
        training=cfg.model_dump(mode="json"),
    )
    bundle.write_meta(staging, meta)
    staged, pixels = bundle.load(staging), data.pixels(test, arch.size)
    tflite_backend = backends.create("tflite", staged, warm_up=False)
    accuracy, agreement, by_tflite = _check_export(tflite_backend, pixels, y[test], predicted[test])
    meta.metrics.tflite = bundle.ExportMetrics(
        type=cfg.quantization, test_accuracy=accuracy, agreement=agreement, size_bytes=len(tflite)
    )
    clock = time.perf_counter()
    onnx_backend = OnnxBackend(staged, providers=[CPU])  # the file as it is: no GPU's engines, no FP16
    accuracy, agreement, by_onnx = _check_export(onnx_backend, pixels, y[test], predicted[test])
    meta.metrics.onnx = bundle.OnnxMetrics(
        type="int8" if cfg.quantization == "int8" else "float32",  # float16 weights come back as float32
        test_accuracy=accuracy,
        agreement=agreement,
        tflite_agreement=metrics.accuracy(by_tflite, by_onnx),
        size_bytes=len(onnx),
    )
    meta.timings.onnx_s = round(onnx_s + time.perf_counter() - clock, 3)
    return meta


def _check_export(backend: backends.Backend, pixels: np.ndarray, y: np.ndarray, trained: np.ndarray):
    """Run an exported model through the edge's own backend on the test images: its accuracy, the share
    of images where its top-1 matches the training-time one, and its top-1s."""
    if not len(pixels):
        return None, None, np.zeros(0, np.int64)
    predicted = _in_batches(backend.predict, pixels).argmax(1)
    accuracy, agreement = metrics.accuracy(y, predicted), metrics.accuracy(trained, predicted)
    log.info("%s on %d test images: accuracy %.4f, top-1 agreement %.4f", backend.name, len(y), accuracy, agreement)
    return accuracy, agreement, predicted
