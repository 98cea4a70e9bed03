"""The frozen ImageNet bases the retrainer can use, by retrain.py's names, each with its input size
and the preprocessing it was trained with. The feature extractor built here takes raw RGB uint8
images and does that preprocessing itself, so the exported models need nothing from callers."""

from __future__ import annotations

import hashlib
import logging
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import keras

from cloud.retrain.errors import RetrainError
from common import images

log = logging.getLogger(__name__)

MOBILENET_V1_ALPHAS = ("1.0", "0.75", "0.50", "0.25")
MOBILENET_V1_SIZES = (224, 192, 160, 128)
MOBILENET_V2_ALPHAS = ("0.35", "0.50", "0.75", "1.0", "1.3", "1.4")
MOBILENET_V2_SIZES = (224, 192, 160, 128, 96)
HELP = (
    "mobilenet_<1.0|0.75|0.50|0.25>_<224|192|160|128>, mobilenet_v2_<0.35|0.50|0.75|1.0|1.3|1.4>_"
    "<224|192|160|128|96>, mobilenet_v3_small, mobilenet_v3_large, inception_v3, efficientnet_b0"
)


@dataclass(frozen=True)
class Architecture:
    name: str
    size: int
    mean: float
    std: float
    constructor: Callable[..., keras.Model]
    options: tuple[tuple[str, object], ...] = ()

    def base(self, weights: str | None, include_top: bool = False) -> keras.Model:
        kwargs = dict(self.options)
        return self.constructor(
            input_shape=(self.size, self.size, 3),
            include_top=include_top,
            weights=weights,
            pooling=None if include_top else "avg",
            **kwargs,
        )


def _mobilenet_tf_mode(name: str, size: int, constructor: Callable[..., keras.Model], **options: object):
    return Architecture(name, size, 127.5, 127.5, constructor, tuple(options.items()))


def parse(name: str) -> Architecture:
    """Resolve a retrain.py-style architecture name; an unknown one is a clear error listing the known."""
    name = name.strip().lower()
    apps = keras.applications
    if m := re.fullmatch(r"mobilenet_(1\.0|0\.75|0\.50?|0\.25)_(\d+)", name):
        alpha, size = m.group(1), int(m.group(2))
        if size in MOBILENET_V1_SIZES:
            canonical = f"mobilenet_{'0.50' if alpha.startswith('0.5') else alpha}_{size}"
            return _mobilenet_tf_mode(canonical, size, apps.MobileNet, alpha=float(alpha))
    if m := re.fullmatch(r"mobilenet_v2(?:_(\d\.\d+)_(\d+))?", name):
        alpha, size = float(m.group(1) or 1.0), int(m.group(2) or 224)
        if size in MOBILENET_V2_SIZES and alpha in map(float, MOBILENET_V2_ALPHAS):
            canonical = f"mobilenet_v2_{'0.50' if alpha == 0.5 else alpha}_{size}"
            return _mobilenet_tf_mode(canonical, size, apps.MobileNetV2, alpha=alpha)
    if name in ("mobilenet_v3_small", "mobilenet_v3_large"):
        constructor = apps.MobileNetV3Small if name.endswith("small") else apps.MobileNetV3Large
        return _mobilenet_tf_mode(name, 224, constructor, include_preprocessing=False)
    if name == "inception_v3":
        return _mobilenet_tf_mode(name, 299, apps.InceptionV3)
    if name == "efficientnet_b0":
        # EfficientNet normalises inside the network itself: it takes 0..255.
        return Architecture(name, 224, 0.0, 1.0, apps.EfficientNetB0)
    raise RetrainError(f"unknown architecture {name!r}; known: {HELP}")


def _pooled_from_full(model: keras.Model) -> keras.Model:
    """Cut a with-top classifier at its global pooling, for weight files saved with the ImageNet top."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.GlobalAveragePooling2D):
            return keras.Model(model.input, keras.layers.Flatten()(layer.output))
    raise ValueError("no global average pooling layer to cut at")


def load_base(arch: Architecture, weights: str, seed: int) -> keras.Model:
    """The frozen base: ImageNet weights from Keras, none (random, seeded) or a local weights file."""
    keras.utils.set_random_seed(seed)
    if weights == "imagenet":
        try:
            return arch.base("imagenet")
        except Exception as exc:  # Keras raises a bare Exception when the download fails
            raise RetrainError(
                f"cannot get the ImageNet weights of {arch.name} ({exc}); offline, pass a local file: --weights PATH"
            ) from exc
    if weights == "none":
        return arch.base(None)
    path = Path(weights).expanduser()
    if not path.is_file():
        raise RetrainError(f"weights file {path} not found (use imagenet, none or a Keras weights file)")
    with warnings.catch_warnings():
        # Keras only warns when it leaves layers at their random initialisation: that is a misfit.
        warnings.filterwarnings("error", message=".*freshly-initialized weights.*")
        try:
            return arch.base(str(path))
        except (ValueError, OSError, UserWarning) as no_top_error:
            try:
                return _pooled_from_full(arch.base(str(path), include_top=True))
            except (ValueError, OSError, UserWarning):
                raise RetrainError(
                    f"weights file {path} does not fit architecture {arch.name}: {no_top_error}"
                ) from no_top_error


def feature_extractor(arch: Architecture, base: keras.Model) -> keras.Model:
    """uint8 RGB [N, size, size, 3] -> the base's pooled features, preprocessing included."""
    base.trainable = False
    image = keras.Input((arch.size, arch.size, 3), dtype="uint8", name="image")
    x = keras.layers.Rescaling(1.0 / arch.std, offset=-arch.mean / arch.std, name="preprocess")(image)
    return keras.Model(image, base(x, training=False), name=f"{arch.name}_features")


def fingerprint(arch: Architecture, base: keras.Model) -> str:
    """Identify the exact network (architecture and every weight), so cached bottlenecks are reused
    only for the same features, whatever the weights file was called or where it came from."""
    digest = hashlib.sha256(f"{arch.name}|{arch.size}|{arch.mean}|{arch.std}|{images.RESIZE}".encode())
    for weight in base.weights:
        digest.update(keras.ops.convert_to_numpy(weight).tobytes())
    return digest.hexdigest()[:20]
