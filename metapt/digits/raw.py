"""The acquired digits on disk, ``raw/digits.npz``: uint8 images [n, h, w] and their classes [n].

One writer (the acquire stage) and one reader (the preprocess stage); no download code, so the
preprocess stage's code does not include it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from metapt.domain import raw_dir
from metapt.io import atomic_path

RAW_FILE = "digits.npz"


def write_raw(folder: Path, images: np.ndarray, classes: np.ndarray) -> None:
    with atomic_path(folder / RAW_FILE) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, images=np.asarray(images, np.uint8), classes=np.asarray(classes, np.uint8))


def load_raw(folder: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 [n, h, w], classes uint8 [n]) as the acquire stage wrote them."""
    with np.load((folder or raw_dir("digits")) / RAW_FILE) as z:
        return z["images"], z["classes"]
