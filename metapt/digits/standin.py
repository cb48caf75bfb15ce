"""A full-size, format-exact stand-in of the four MNIST files (IDX, gzipped): 60,000 + 10,000 digits.

The images are scikit-learn's 1,797 real 8×8 digits (the embedded profile's data), each drawn at random,
scaled to 20×20 and placed on the 28×28 canvas with a random shift of up to ±2 px, as MNIST centres its
digits; intensities 0–255 (uint8), labels 0–9, written by the one IDX writer (``metapt.digits.idx``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from metapt.digits.idx import MNIST_FILES, write_idx

N_TRAIN, N_TEST = 60_000, 10_000
SUBDIR = "mnist"  # served as <mirror>/mnist/<file>: the profile's digits.data.url


def mnist_like(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` uint8 [28, 28] digits and their labels from the sklearn set, upscaled and jittered."""
    from sklearn.datasets import load_digits

    d = load_digits()
    pick = rng.integers(len(d.target), size=n)
    small = torch.from_numpy(d.images[pick].astype(np.float32) / 16.0)[:, None]
    big = F.interpolate(small, size=(20, 20), mode="bilinear", align_corners=False)[:, 0].clamp(0, 1).numpy()
    canvas = np.zeros((n, 28, 28), np.uint8)
    shift = rng.integers(-2, 3, size=(n, 2))
    for i in range(n):
        r, c = 4 + shift[i, 0], 4 + shift[i, 1]
        canvas[i, r:r + 20, c:c + 20] = np.round(255 * big[i]).astype(np.uint8)
    return canvas, d.target[pick].astype(np.uint8)


def build(out_dir: str | Path, scale: float = 1.0) -> list[Path]:
    """Write ``out_dir/mnist/`` with the four files, ``round(60,000 · scale)`` + ``round(10,000 · scale)`` digits."""
    out = Path(out_dir) / SUBDIR
    rng = np.random.default_rng(0)
    arrays = [*mnist_like(max(10, round(N_TRAIN * scale)), rng), *mnist_like(max(10, round(N_TEST * scale)), rng)]
    paths = [out / name for name in MNIST_FILES]
    for path, array in zip(paths, arrays):
        write_idx(path, array)
    return paths
