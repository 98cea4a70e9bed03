"""The data in ../shared (the flower photos, Keras weights), and the skip for tests that need it
when it is not beside the project."""

from pathlib import Path

import pytest

from tests.support.paths import ROOT

SHARED = ROOT.parent / "shared"
FLOWERS = SHARED / "data" / "flower_photos"
KERAS_WEIGHTS = SHARED / "weights" / "keras"
MOBILENET_025_224 = KERAS_WEIGHTS / "mobilenet_2_5_224_tf_no_top.h5"
MOBILENET_025_128_TOP = KERAS_WEIGHTS / "mobilenet_2_5_128_tf.h5"


def needs_shared(path: Path) -> pytest.MarkDecorator:
    return pytest.mark.skipif(not path.exists(), reason=f"{path} is absent (../shared is not beside the project)")
