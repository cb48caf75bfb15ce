"""The tasks' images, built from real digits: one square canvas, the digit resized and placed by the task.

- ``class``: the digit centred; label = its class (10-way).
- ``orientation``: digits 2, 3, 4, 5 and 7 only (0, 1 and 8 look alike turned by 180°, and 6 and 9 turn
  into each other), centred, turned by 180° for half of them (seeded); label = turned.
- ``position``: the digit centred in the left or the right half (centres ``separation`` px apart, seeded);
  label = right.

Images are float32 in [0, 1] with a zero background, [n, 1, size, size]; labels are float32 one-hot
[n, 10] (class) or [n, 1] (binary), so every task fine-tunes with the same BCE head and macro AUROC.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

ORIENTATION_DIGITS = (2, 3, 4, 5, 7)


def resize(digits: np.ndarray, side: int) -> np.ndarray:
    """[n, h, w] grey levels (any range) → [n, side, side] float32 in [0, 1] (bilinear, antialiased)."""
    x = torch.from_numpy(np.asarray(digits, dtype=np.float32))[:, None]
    x = x / x.amax(dim=(1, 2, 3), keepdim=True).clamp_min(1e-6)
    return F.interpolate(x, size=(side, side), mode="bilinear", antialias=True, align_corners=False)[:, 0].clamp(0, 1).numpy()


def place(digits: np.ndarray, size: int, centre_x: np.ndarray) -> np.ndarray:
    """Paste [n, d, d] digits on a zero [n, size, size] canvas, vertically centred, at column centres ``centre_x``."""
    n, d, _ = digits.shape
    canvas = np.zeros((n, size, size), np.float32)
    top = (size - d) // 2
    for i in range(n):
        left = int(round(centre_x[i] - d / 2))
        canvas[i, top:top + d, left:left + d] = digits[i]
    return canvas


def task_images(task: str, digits: np.ndarray, classes: np.ndarray, size: int, digit: int, separation: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(images [m, 1, size, size], labels [m, k], source index [m]) of one task, from [n, h, w] digits."""
    rng = np.random.default_rng([seed, sum(map(ord, task))])
    keep = np.flatnonzero(np.isin(classes, ORIENTATION_DIGITS)) if task == "orientation" else np.arange(len(classes))
    small = resize(digits[keep], digit)
    centre = np.full(len(keep), size / 2)
    if task == "class":
        y = np.eye(10, dtype=np.float32)[classes[keep]]
    elif task == "orientation":
        turned = rng.random(len(keep)) < 0.5
        small[turned] = small[turned, ::-1, ::-1]
        y = turned[:, None].astype(np.float32)
    elif task == "position":
        right = rng.random(len(keep)) < 0.5
        centre = size / 2 + np.where(right, separation / 2, -separation / 2)
        y = right[:, None].astype(np.float32)
    else:
        raise ValueError(f"unknown digits task {task!r}")
    return place(small, size, centre)[:, None], y, keep
