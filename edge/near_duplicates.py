"""Near-copies of recent samples: a camera pointed at one scene must not send a person thirty
pictures of it. A frame's signature is its 16x16 colour thumbnail (768 bytes); two frames whose
thumbnails differ by under `distance` on average (of the 0-255 range) are one picture. Sensor
noise, JPEG and a few percent of light stay under 0.03; distinct flower photos are 0.1 or more
apart. Colour and brightness count: a red and a green wall are different scenes."""

from __future__ import annotations

from collections import deque

import cv2
import numpy as np

THUMBNAIL = 16


def signature(image: np.ndarray) -> np.ndarray:
    """The frame's thumbnail as int16 (differences need the sign)."""
    return cv2.resize(image, (THUMBNAIL, THUMBNAIL), interpolation=cv2.INTER_AREA).astype(np.int16)


class NearDuplicates:
    """The signatures of the last `memory` samples sent, and whether a frame is close to one of them."""

    def __init__(self, distance: float, memory: int) -> None:
        self.distance = distance
        self._recent: deque[np.ndarray] = deque(maxlen=memory)

    def nearest(self, sig: np.ndarray) -> float:
        """The mean absolute difference (0-1) to the closest recent sample; 1 when there is none."""
        if not self._recent:
            return 1.0
        recent = np.stack(self._recent).reshape(len(self._recent), -1)
        return float(np.abs(recent - sig.reshape(1, -1)).mean(axis=1).min() / 255)

    def seen(self, sig: np.ndarray) -> bool:
        return self.nearest(sig) < self.distance

    def remember(self, sig: np.ndarray) -> None:
        self._recent.append(sig)
