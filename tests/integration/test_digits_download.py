"""The MNIST path: the IDX writer and reader against the spec, and ``fetch_mnist`` end to end against a local
HTTP server serving files made by the real writer.

Every refusal must name the file and the problem, and a failed download must leave nothing in the folder.
"""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np
import pytest

from metapt.digits.idx import MNIST_FILES, IDXFormatError, fetch_mnist, read_idx, write_idx
from metapt.download import ChecksumError

TRAIN_IMG, TRAIN_LAB, TEST_IMG, TEST_LAB = MNIST_FILES


@pytest.fixture(scope="module")
def arrays() -> dict[str, np.ndarray]:
    """30 train and 10 test 28x28 uint8 digits with labels 0-9, keyed by MNIST file name."""
    rng = np.random.default_rng(0)
    return {
        TRAIN_IMG: rng.integers(0, 256, (30, 28, 28), dtype=np.uint8),
        TRAIN_LAB: rng.integers(0, 10, 30, dtype=np.uint8),
        TEST_IMG: rng.integers(0, 256, (10, 28, 28), dtype=np.uint8),
        TEST_LAB: rng.integers(0, 10, 10, dtype=np.uint8),
    }


@pytest.fixture(scope="module")
def files(arrays, tmp_path_factory) -> dict[str, bytes]:
    """The gzip IDX bytes of each fixture array, written by ``write_idx``."""
    folder = tmp_path_factory.mktemp("idx")
    out = {}
    for name, arr in arrays.items():
        write_idx(folder / name, arr)
        out[name] = (folder / name).read_bytes()
    return out


def _serve(server, prefix: str, files: dict[str, bytes]) -> str:
    """Serve ``files`` under ``/<prefix>/`` (one prefix per test, the server is shared) and return the base URL."""
    for name, body in files.items():
        url = server.serve(f"{prefix}/{name}", body)
    return url.rsplit("/", 1)[0] + "/"


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def _pins(files: dict[str, bytes]) -> dict[str, str]:
    return {name: hashlib.sha256(body).hexdigest() for name, body in files.items()}


# ---------------------------------------------------------------------------------------------- IDX format


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int32, np.float32])
def test_round_trip(tmp_path, dtype, suffix):
    rng = np.random.default_rng(1)
    if np.issubdtype(dtype, np.integer):  # the full range, extremes included, to catch sign and byte-order slips
        arr = rng.integers(np.iinfo(dtype).min, np.iinfo(dtype).max, (4, 5, 3), dtype=dtype, endpoint=True)
    else:
        arr = rng.standard_normal((4, 5, 3)).astype(dtype)
    path = tmp_path / f"a.idx{suffix}"
    write_idx(path, arr)
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype) and back.dtype.isnative
    np.testing.assert_array_equal(back, arr)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == (suffix == ".gz")
    assert _leftovers(tmp_path) == [path.name]  # the atomic temp file is gone


SPEC_CASES = [  # (array, the exact IDX bytes written by hand from the spec)
    (np.arange(6, dtype=np.uint8).reshape(2, 3),
     b"\x00\x00\x08\x02" b"\x00\x00\x00\x02" b"\x00\x00\x00\x03" b"\x00\x01\x02\x03\x04\x05"),
    (np.array([1, -2], dtype=np.int32),
     b"\x00\x00\x0c\x01" b"\x00\x00\x00\x02" b"\x00\x00\x00\x01" b"\xff\xff\xff\xfe"),
    (np.array([[1.0], [-2.5]], dtype=np.float32),
     b"\x00\x00\x0d\x02" b"\x00\x00\x00\x02" b"\x00\x00\x00\x01" b"\x3f\x80\x00\x00" b"\xc0\x20\x00\x00"),
    (np.array([-1], dtype=np.int8), b"\x00\x00\x09\x01" b"\x00\x00\x00\x01" b"\xff"),
    (np.array([258], dtype=np.int16), b"\x00\x00\x0b\x01" b"\x00\x00\x00\x01" b"\x01\x02"),
    (np.array([1.0]), b"\x00\x00\x0e\x01" b"\x00\x00\x00\x01" b"\x3f\xf0\x00\x00\x00\x00\x00\x00"),
]


@pytest.mark.parametrize("arr,expected", SPEC_CASES, ids=[str(a.dtype) for a, _ in SPEC_CASES])
def test_bytes_match_the_spec(tmp_path, arr, expected):
    """The writer against hand-written spec bytes (plain and inside the gzip), the reader against them too."""
    write_idx(tmp_path / "a.idx", arr)
    assert (tmp_path / "a.idx").read_bytes() == expected
    write_idx(tmp_path / "a.idx.gz", arr)
    assert gzip.decompress((tmp_path / "a.idx.gz").read_bytes()) == expected
    (tmp_path / "hand.idx").write_bytes(expected)
    back = read_idx(tmp_path / "hand.idx")
    assert back.dtype == arr.dtype and back.shape == arr.shape
    np.testing.assert_array_equal(back, arr)


def test_gzip_is_detected_by_content_and_deterministic(tmp_path, arrays):
    arr = arrays[TEST_IMG]
    write_idx(tmp_path / "a.gz", arr)
    first = (tmp_path / "a.gz").read_bytes()
    write_idx(tmp_path / "b.gz", arr)
    assert (tmp_path / "b.gz").read_bytes() == first  # no name or time stamp in the header: pinnable
    (tmp_path / "a.gz").rename(tmp_path / "gzipped-but-no-suffix")
    np.testing.assert_array_equal(read_idx(tmp_path / "gzipped-but-no-suffix"), arr)
    write_idx(tmp_path / "plain", arr)
    (tmp_path / "plain").rename(tmp_path / "plain-but-named.gz")
    np.testing.assert_array_equal(read_idx(tmp_path / "plain-but-named.gz"), arr)


def test_writer_refuses_types_idx_cannot_hold(tmp_path):
    with pytest.raises(ValueError, match="IDX has no type for dtype int64"):
        write_idx(tmp_path / "a.idx", np.zeros(3, dtype=np.int64))
    assert _leftovers(tmp_path) == []


HEADER_2x3 = b"\x00\x00\x08\x02\x00\x00\x00\x02\x00\x00\x00\x03"
BAD_FILES = {
    "wrong-magic": (b"\x01\x00\x08\x02" + HEADER_2x3[4:] + bytes(6), "bad magic 01000802"),
    "unknown-type": (b"\x00\x00\x07\x02" + HEADER_2x3[4:] + bytes(6), "unknown IDX type code 0x07"),
    "truncated": (HEADER_2x3 + bytes(5), "truncated: expected 6 data bytes for shape (2, 3), found 5"),
    "trailing": (HEADER_2x3 + bytes(7), "trailing bytes: expected 6 data bytes for shape (2, 3), found 7"),
    "short-header": (b"\x00\x00\x08\x03\x00\x00\x00\x02", "truncated header: 3 dims need 16 bytes, found 8"),
    "int32-truncated": (b"\x00\x00\x0c\x01\x00\x00\x00\x02" + bytes(7), "truncated: expected 8 data bytes for shape (2,), found 7"),
}


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
@pytest.mark.parametrize("case", BAD_FILES)
def test_reader_refuses_with_file_and_cause(tmp_path, case, gz):
    body, problem = BAD_FILES[case]
    path = tmp_path / f"{case}.idx"
    path.write_bytes(gzip.compress(body, mtime=0) if gz else body)
    with pytest.raises(IDXFormatError) as info:
        read_idx(path)
    msg = str(info.value)
    assert str(path) in msg and problem in msg, msg


def test_reader_refuses_a_truncated_gzip_stream(tmp_path):
    path = tmp_path / "cut.gz"
    path.write_bytes(gzip.compress(HEADER_2x3 + bytes(6), mtime=0)[:-5])
    with pytest.raises(IDXFormatError, match="corrupt or truncated gzip") as info:
        read_idx(path)
    assert str(path) in str(info.value)


# ---------------------------------------------------------------------------------------------- fetch_mnist


def test_fetch_pinned_end_to_end(tmp_path, server, arrays, files):
    base = _serve(server, "pinned", files)
    pins = _pins(files)
    out = tmp_path / "mnist"
    got = fetch_mnist(out, base_url=base, sha256=pins)
    for have, name in [(got.train_x, TRAIN_IMG), (got.train_y, TRAIN_LAB), (got.test_x, TEST_IMG), (got.test_y, TEST_LAB)]:
        assert have.dtype == np.uint8
        np.testing.assert_array_equal(have, arrays[name])
    assert got.sha256 == pins
    assert _leftovers(out) == sorted(MNIST_FILES)
    n_requests = len(server.log)
    again = fetch_mnist(out, base_url=base.rstrip("/"), sha256=pins)  # verified copies: no network
    assert len(server.log) == n_requests
    np.testing.assert_array_equal(again.test_x, arrays[TEST_IMG])


def test_fetch_unpinned_returns_the_digests_to_pin(tmp_path, server, files):
    got = fetch_mnist(tmp_path, base_url=_serve(server, "unpinned", files), sha256=None)
    assert got.sha256 == _pins(files)


def test_wrong_sha256_raises_and_leaves_nothing(tmp_path, server, files):
    pins = _pins(files) | {TRAIN_IMG: "0" * 64}
    out = tmp_path / "mnist"
    with pytest.raises(ChecksumError) as info:
        fetch_mnist(out, base_url=_serve(server, "badsha", files), sha256=pins)
    assert info.value.path == out / TRAIN_IMG and info.value.expected == "0" * 64
    assert _leftovers(out) == []  # neither the file nor its .part


def test_wrong_sha256_on_a_later_file_deletes_only_that_file(tmp_path, server, files):
    pins = _pins(files) | {TEST_LAB: "f" * 64}
    with pytest.raises(ChecksumError, match=TEST_LAB):
        fetch_mnist(tmp_path, base_url=_serve(server, "badsha-late", files), sha256=pins)
    assert _leftovers(tmp_path) == sorted([TRAIN_IMG, TRAIN_LAB, TEST_IMG])  # verified ones are kept for reuse


def test_incomplete_pins_are_refused_before_any_download(tmp_path, server, files):
    base = _serve(server, "partial-pins", files)
    n_requests = len(server.log)
    pins = _pins(files)
    del pins[TEST_IMG]
    with pytest.raises(ValueError, match=TEST_IMG):
        fetch_mnist(tmp_path, base_url=base, sha256=pins)
    assert len(server.log) == n_requests and _leftovers(tmp_path) == []


def _idx_gz(tmp_path: Path, arr: np.ndarray) -> bytes:
    write_idx(tmp_path / "x.gz", arr)
    return (tmp_path / "x.gz").read_bytes()


def test_label_count_mismatch_is_refused(tmp_path, server, arrays, files):
    bad = files | {TRAIN_LAB: _idx_gz(tmp_path, arrays[TRAIN_LAB][:29])}
    out = tmp_path / "mnist"
    with pytest.raises(IDXFormatError, match="train split: 30 images in .* but 29 labels in") as info:
        fetch_mnist(out, base_url=_serve(server, "count", bad))
    assert str(out / TRAIN_IMG) in str(info.value) and str(out / TRAIN_LAB) in str(info.value)


@pytest.mark.parametrize("name,arr,problem", [
    (TEST_LAB, np.full(10, 10, dtype=np.uint8), "test labels must be digits 0-9, found 10"),
    (TEST_LAB, np.zeros(10, dtype=np.int32), "test labels must be uint8 [n], found int32 [10]"),
    (TRAIN_IMG, np.zeros((30, 784), dtype=np.uint8), "train images must be uint8 [n, h, w], found uint8 [30, 784]"),
    (TEST_IMG, np.zeros((10, 28, 28), dtype=np.float32), "test images must be uint8 [n, h, w], found float32 [10, 28, 28]"),
], ids=["label-range", "label-dtype", "image-rank", "image-dtype"])
def test_inconsistent_arrays_are_refused(tmp_path, server, files, name, arr, problem):
    bad = files | {name: _idx_gz(tmp_path, arr)}
    out = tmp_path / "mnist"
    with pytest.raises(IDXFormatError) as info:
        fetch_mnist(out, base_url=_serve(server, f"bad-{name}-{arr.dtype}-{arr.ndim}-{arr.max()}", bad))
    assert str(out / name) in str(info.value) and problem in str(info.value), str(info.value)


def test_corrupt_served_file_is_refused_with_its_name(tmp_path, server, files):
    bad = files | {TEST_IMG: gzip.compress(HEADER_2x3 + bytes(5), mtime=0)}
    out = tmp_path / "mnist"
    with pytest.raises(IDXFormatError, match="truncated: expected 6 data bytes") as info:
        fetch_mnist(out, base_url=_serve(server, "corrupt", bad))
    assert str(out / TEST_IMG) in str(info.value)
