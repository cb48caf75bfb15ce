"""Stage acquire_digits: the real handwritten digits, as uint8 images and classes in ``raw/digits.npz``.

Embedded: scikit-learn's ``load_digits`` (1,797 8×8 digits, grey levels 0–16, shipped inside the
package: nothing to download). Paper: MNIST's four IDX files, checksummed (``metapt.digits.idx``);
its train and test sets are pooled here and split by the preprocess stage like the embedded set.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from metapt.config import Profile
from metapt.digits.raw import write_raw
from metapt.domain import raw_dir
from metapt.io import write_json


def acquire(profile: Profile) -> Path:
    d, out = profile.digits.data, raw_dir("digits")
    out.mkdir(parents=True, exist_ok=True)
    if d.source == "mnist":
        from metapt.digits.idx import MNIST_URL, fetch_mnist

        got = fetch_mnist(out / "mnist", d.url or MNIST_URL, d.sha256, progress=True)
        images, classes = np.concatenate([got.train_x, got.test_x]), np.concatenate([got.train_y, got.test_y])
        source = {"source": "mnist", "url": d.url or MNIST_URL, "sha256": got.sha256}
    else:
        from sklearn.datasets import load_digits

        bunch = load_digits()
        images, classes = bunch.images.astype(np.uint8), bunch.target.astype(np.uint8)
        source = {"source": "sklearn", "loader": "sklearn.datasets.load_digits"}
    write_raw(out, images, classes)
    write_json(out / "source.json", {**source, "n_images": int(len(classes)), "shape": list(images.shape[1:])})
    return out

