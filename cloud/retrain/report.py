"""The summary table printed at the end of a training."""

from __future__ import annotations

from common.bundle import ModelMeta


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def summary(meta: ModelMeta, output_dir: str) -> str:
    m, t, img = meta.metrics, meta.timings, meta.images
    rows = [
        ("bundle", f"{meta.name} {meta.version} -> {output_dir}"),
        ("architecture", f"{meta.architecture} ({meta.input.height}x{meta.input.width})"),
        ("images", f"{img.train} train, {img.validation} validation, {img.test} test, {img.skipped} skipped"),
        ("bottlenecks", f"{meta.bottlenecks.computed} computed, {meta.bottlenecks.cached} cached"),
        ("time", f"bottlenecks {t.bottleneck_s:.1f}s, training {t.train_s:.1f}s, export {t.export_s:.1f}s"),
        ("train accuracy", _pct(m.train_accuracy)),
        ("validation accuracy", _pct(m.validation_accuracy)),
        ("test accuracy", _pct(m.test_accuracy)),
        *(
            (f"{name} test accuracy", f"{_pct(part.accuracy)} on {part.images} images")
            for name, part in m.slices.items()
        ),
        *((f"device {device}", f"{_pct(part.accuracy)} on {part.images} images") for device, part in m.devices.items()),
    ]
    if m.tflite:
        rows.append(
            (
                f"tflite {m.tflite.type}",
                f"{_pct(m.tflite.test_accuracy)} test, top-1 agreement {_pct(m.tflite.agreement)}, "
                f"{m.tflite.size_bytes / 1e6:.2f} MB",
            )
        )
    if m.onnx:
        rows.append(
            (
                f"onnx {m.onnx.type}",
                f"{_pct(m.onnx.test_accuracy)} test, top-1 agreement {_pct(m.onnx.agreement)}, "
                f"with tflite {_pct(m.onnx.tflite_agreement)}, {m.onnx.size_bytes / 1e6:.2f} MB",
            )
        )
    width = max(len(k) for k, _ in rows)
    lines = [f"{k:<{width}}  {v}" for k, v in rows]
    lines.append("")
    lines.append(f"{'label':<{width}}  precision  recall     f1  images")
    lines.extend(
        f"{label:<{width}}  {c.precision:9.3f}  {c.recall:6.3f}  {c.f1:5.3f}  {c.support:6d}"
        for label, c in m.per_class.items()
    )
    return "\n".join(lines)
