"""Image -> model input, exactly as training normalized it (numpy and Pillow only)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import images
from .bundle import BundleMeta


def load_image(path: str | Path, size: int) -> np.ndarray:
    """An image file as float32 HWC RGB in [0, 1], resized to ``size`` x ``size`` (see :mod:`.images`)."""
    return images.load_image(path, size)


def normalize_nchw(images_hwc: np.ndarray, meta: BundleMeta) -> np.ndarray:
    """``(N, H, W, 3)`` in [0, 1] -> ``(N, 3, H, W)`` float32, ``(x - mean) / std``."""
    mean = np.asarray(meta.mean, dtype=np.float32)
    std = np.asarray(meta.std, dtype=np.float32)
    return ((images_hwc - mean) / std).transpose(0, 3, 1, 2).astype(np.float32)
