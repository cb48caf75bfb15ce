"""The processed digits data on disk: one ``<task>.npz`` per task (images, labels, PT pool, test set).

One writer (``write_task``, called by the preprocess stage) and one reader (``load_task``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from metapt.domain import processed_dir
from metapt.io import atomic_path


@dataclass(frozen=True)
class TaskData:
    x: np.ndarray  # [m, 1, S, S] float32 in [0, 1]
    y: np.ndarray  # [m, k] float32 (one-hot for the class task)
    pt: np.ndarray  # rows of the PT pool (unlabelled for PT; MetaFT and FT labels are drawn from it)
    test: np.ndarray  # held-out rows


def write_task(folder: Path, task: str, data: TaskData) -> None:
    with atomic_path(folder / f"{task}.npz") as tmp, open(tmp, "wb") as fh:
        np.savez(fh, x=data.x.astype(np.float32), y=data.y.astype(np.float32), pt=data.pt.astype(np.int64), test=data.test.astype(np.int64))


def load_task(task: str, folder: Path | None = None) -> TaskData:
    path = (folder or processed_dir("digits")) / f"{task}.npz"
    if not path.exists():
        raise FileNotFoundError(f"{path} missing: the preprocess_digits stage writes it (is {task!r} in digits.grid.tasks?)")
    with np.load(path) as z:
        return TaskData(z["x"], z["y"], z["pt"], z["test"])
