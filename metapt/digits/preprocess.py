"""Stage preprocess_digits: split the digits into a PT pool and a test set (seeded, one split for every
task), and build each task's images on the canvas (``metapt.digits.data``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from metapt.config import Profile
from metapt.digits.data import task_images
from metapt.digits.domain import TASKS
from metapt.digits.processed import TaskData, write_task
from metapt.digits.raw import load_raw
from metapt.domain import processed_dir
from metapt.io import atomic_dir, write_json


def split(n: int, test_fraction: float, seed: int) -> np.ndarray:
    """A boolean mask of the test digits (the rest is the PT pool)."""
    test = np.zeros(n, bool)
    test[np.random.default_rng(seed).permutation(n)[: round(test_fraction * n)]] = True
    return test


def preprocess(profile: Profile) -> Path:
    cfg = profile.digits
    images, classes = load_raw()
    is_test = split(len(classes), cfg.data.test_fraction, cfg.data.seed)
    c = cfg.canvas
    manifest = {"n_digits": int(len(classes)), "n_test_digits": int(is_test.sum()), "canvas": c.model_dump(), "tasks": {}}
    with atomic_dir(processed_dir("digits")) as tmp:
        for task in TASKS:  # every task, whatever the grid runs: the data stage does not depend on the grid
            x, y, source = task_images(task, images, classes.astype(np.int64), c.size, c.digit, c.separation, cfg.data.seed)
            test = np.flatnonzero(is_test[source])
            pt = np.flatnonzero(~is_test[source])
            write_task(tmp, task, TaskData(x, y, pt, test))
            manifest["tasks"][task] = {"n": int(len(y)), "n_pt": int(len(pt)), "n_test": int(len(test)), "positive_rate": y.mean(0).round(4).tolist()}
        write_json(tmp / "manifest.json", manifest)
    return processed_dir("digits")
