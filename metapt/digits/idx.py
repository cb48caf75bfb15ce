"""The MNIST IDX file format (one writer, one reader) and a checksummed fetch of the four MNIST files.

IDX is tiny enough to implement here rather than pull in torchvision/idx2numpy: a 4-byte magic (two zero
bytes, a type code, the number of dimensions), each dimension as a big-endian uint32, then the data
big-endian. The reader checks every part of that, so a truncated or wrong file fails with the file's
name and what is wrong instead of a reshape error further down the pipeline.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from metapt.io import atomic_path


class IDXFormatError(ValueError):
    """A file is not valid IDX (bad magic, unknown type, wrong payload length), or MNIST arrays disagree."""


# IDX type code -> big-endian dtype, as in the spec (http://yann.lecun.com/exdb/mnist/).
_CODE_TO_DTYPE: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_KIND_TO_CODE: dict[tuple[str, int], int] = {(dt.kind, dt.itemsize): code for code, dt in _CODE_TO_DTYPE.items()}
_GZIP_MAGIC = b"\x1f\x8b"

MNIST_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
"""The four standard MNIST file names, in download order."""
_SPLITS = {"train": MNIST_FILES[0:2], "test": MNIST_FILES[2:4]}  # split -> (images file, labels file)

# The mirror torchvision.datasets.MNIST uses (yann.lecun.com itself often refuses downloads).
MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"


# ---------------------------------------------------------------------------------------------- IDX


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write ``array`` as IDX to ``path`` (gzip-compressed when the name ends with ``.gz``), atomically.

    The gzip header carries no file name or time stamp, so the same array always gives the same bytes
    (and the same SHA-256). Raises ``ValueError`` for a dtype or shape IDX cannot hold.
    """
    path = Path(path)
    array = np.asarray(array)
    code = _KIND_TO_CODE.get((array.dtype.kind, array.dtype.itemsize))
    if code is None:
        raise ValueError(f"IDX has no type for dtype {array.dtype}; use one of uint8, int8, int16, int32, float32, float64")
    if array.ndim > 255 or any(d >= 1 << 32 for d in array.shape):
        raise ValueError(f"IDX cannot hold an array of shape {array.shape} (at most 255 dims, each < 2**32)")
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data = np.ascontiguousarray(array, dtype=_CODE_TO_DTYPE[code]).tobytes()
    with atomic_path(path) as tmp, open(tmp, "wb") as raw:
        if path.name.endswith(".gz"):
            # filename="" and mtime=0: otherwise the temp name and the clock end up in the header.
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
                gz.write(header)
                gz.write(data)
        else:
            raw.write(header)
            raw.write(data)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (plain or gzip, told apart by the gzip magic bytes, not the name) as a native-endian array.

    Raises :class:`IDXFormatError` naming the file and the problem: not gzip-readable, bad magic, unknown
    type code, header or payload too short (truncated), or bytes after the payload (trailing).
    """
    path = Path(path)
    blob = path.read_bytes()
    if blob[:2] == _GZIP_MAGIC:
        try:
            blob = gzip.decompress(blob)
        except (OSError, EOFError, zlib.error) as e:
            raise IDXFormatError(f"{path}: corrupt or truncated gzip stream ({e})") from None
    if len(blob) < 4:
        raise IDXFormatError(f"{path}: truncated: {len(blob)} bytes, shorter than the 4-byte IDX magic")
    if blob[:2] != b"\x00\x00":
        raise IDXFormatError(f"{path}: bad magic {blob[:4].hex()}: an IDX file starts with two zero bytes")
    code, ndim = blob[2], blob[3]
    dtype = _CODE_TO_DTYPE.get(code)
    if dtype is None:
        known = ", ".join(f"0x{c:02X}" for c in _CODE_TO_DTYPE)
        raise IDXFormatError(f"{path}: unknown IDX type code 0x{code:02X} (known: {known})")
    start = 4 + 4 * ndim
    if len(blob) < start:
        raise IDXFormatError(f"{path}: truncated header: {ndim} dims need {start} bytes, found {len(blob)}")
    dims = struct.unpack(f">{ndim}I", blob[4:start])
    expected, found = math.prod(dims) * dtype.itemsize, len(blob) - start
    if found < expected:
        raise IDXFormatError(f"{path}: truncated: expected {expected} data bytes for shape {dims}, found {found}")
    if found > expected:
        raise IDXFormatError(f"{path}: trailing bytes: expected {expected} data bytes for shape {dims}, found {found}")
    return np.frombuffer(blob, dtype=dtype, offset=start).reshape(dims).astype(dtype.newbyteorder("="))


# ---------------------------------------------------------------------------------------------- MNIST


@dataclass(frozen=True)
class MNIST:
    """The verified MNIST arrays and the SHA-256 of each downloaded file (to pin in config)."""

    train_x: np.ndarray  # uint8 [n_train, h, w]
    train_y: np.ndarray  # uint8 [n_train], 0-9
    test_x: np.ndarray  # uint8 [n_test, h, w]
    test_y: np.ndarray  # uint8 [n_test], 0-9
    sha256: dict[str, str] = field(default_factory=dict)  # file name -> hex digest


def fetch_mnist(out_dir: str | os.PathLike, base_url: str = MNIST_URL, sha256: Mapping[str, str] | None = None,
                progress: bool = False) -> MNIST:
    """Download the four MNIST files into ``out_dir``, verify them, read them and check they agree.

    ``sha256`` maps each of the four file names to its hex digest; a mismatch deletes that file and raises
    :class:`metapt.download.ChecksumError` (files already verified stay: they are reused without network
    next time). With ``sha256=None`` the files are unpinned and their digests, returned in
    ``MNIST.sha256``, are what to pin. A mapping that misses one of the names raises ``ValueError`` before
    any download, so a typo cannot silently leave a file unpinned.

    Raises :class:`IDXFormatError` when a file is not valid IDX, images are not uint8 ``[n, h, w]``,
    labels are not uint8 ``[n]`` in 0-9, or a split's image and label counts differ.
    """
    from metapt.download import download  # only the acquire path needs the HTTP code

    if sha256 is not None and (missing := [n for n in MNIST_FILES if n not in sha256]):
        raise ValueError(f"sha256 pins given but missing for {', '.join(missing)}; pin all four or pass sha256=None")
    out_dir = Path(out_dir)
    base = base_url if base_url.endswith("/") else base_url + "/"
    digests, arrays = {}, {}
    for name in MNIST_FILES:
        got = download(base + name, out_dir / name, None if sha256 is None else sha256[name], progress=progress)
        digests[name] = got.sha256
        arrays[name] = read_idx(got.path)
    split_arrays = {split: _check_split(out_dir, split, arrays[img], arrays[lab], img, lab)
                    for split, (img, lab) in _SPLITS.items()}
    (train_x, train_y), (test_x, test_y) = split_arrays["train"], split_arrays["test"]
    return MNIST(train_x, train_y, test_x, test_y, digests)


def _check_split(out_dir: Path, split: str, images: np.ndarray, labels: np.ndarray, img_name: str,
                 lab_name: str) -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 [n, h, w], labels uint8 [n] in 0-9, the same n: what every consumer assumes."""
    img_path, lab_path = out_dir / img_name, out_dir / lab_name
    if images.dtype != np.uint8 or images.ndim != 3:
        raise IDXFormatError(f"{img_path}: {split} images must be uint8 [n, h, w], found {images.dtype} {list(images.shape)}")
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise IDXFormatError(f"{lab_path}: {split} labels must be uint8 [n], found {labels.dtype} {list(labels.shape)}")
    if labels.size and labels.max() > 9:
        raise IDXFormatError(f"{lab_path}: {split} labels must be digits 0-9, found {int(labels.max())}")
    if len(images) != len(labels):
        raise IDXFormatError(f"{split} split: {len(images)} images in {img_path} but {len(labels)} labels in {lab_path}")
    return images, labels
