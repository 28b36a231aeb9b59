"""Tests of earlytrain.data: the local raw-file path, validation, errors, caching, fetch script.

Facts asserted come from the data sets themselves (label counts, pixel means, class balance)
and from the definition of the API (per-sample standardization, one-hot, seeded nested subsets).
The raw files must have been fetched (`make data`); without them these tests skip, except under
CI=true, where a missing data set is a failure.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from earlytrain import data
from earlytrain.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


def _require(name: str, split: str = "train") -> None:
    """Skip (or fail under CI) when the raw files of a data set are not fetched."""
    missing = data._missing_local(name, split, data.data_dir())
    if missing:
        msg = f"{name} raw files missing in {data.data_dir()} (run `make data`): {missing}"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)


@pytest.fixture
def no_tfds(monkeypatch):
    """Behave as if tensorflow-datasets were not installed (no fallback, no network check)."""
    monkeypatch.setattr(data, "_import_tfds", lambda: None)


@pytest.fixture
def empty_data_dir(tmp_path, monkeypatch):
    d = tmp_path / "nodata"
    d.mkdir()
    monkeypatch.setenv("EARLYTRAIN_DATA", str(d))
    monkeypatch.delenv("EARLYTRAIN_TFDS_DIR", raising=False)
    return d


def _link_dataset(dst_root: Path, rels) -> None:
    """Make dst_root/rel symlinks to the fetched raw files (a data dir without copying)."""
    for rel in rels:
        (dst_root / rel).parent.mkdir(parents=True, exist_ok=True)
        (dst_root / rel).symlink_to(data.data_dir() / rel)


# ----------------------------------------------------------------------------- facts


def test_mnist_raw_facts():
    _require("mnist")
    r = data.load_raw("mnist", "train", source="local")
    assert r.images.shape == (60000, 28, 28, 1) and r.images.dtype == np.uint8
    assert r.labels.dtype == np.int32
    assert np.bincount(r.labels, minlength=10).tolist() == MNIST_TRAIN_COUNTS
    px = r.images.astype(np.float64) / 255.0
    assert round(px.mean(), 4) == 0.1307
    assert round(px.std(), 4) == 0.3081
    t = data.load_raw("mnist", "test", source="local")
    assert t.images.shape == (10000, 28, 28, 1)
    assert np.bincount(t.labels, minlength=10).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_fashion_mnist_raw_facts():
    _require("fashion_mnist")
    r = data.load_raw("fashion_mnist", "train", source="local")
    assert r.images.shape == (60000, 28, 28, 1) and r.images.dtype == np.uint8
    assert np.bincount(r.labels, minlength=10).tolist() == [6000] * 10
    assert round(r.images.mean() / 255.0, 3) == 0.286
    t = data.load_raw("fashion_mnist", "test", source="local")
    assert np.bincount(t.labels, minlength=10).tolist() == [1000] * 10


def test_cifar10_raw_facts():
    _require("cifar10")
    _require("cifar10", "test")
    r = data.load_raw("cifar10", "train", source="local")
    assert r.images.shape == (50000, 32, 32, 3) and r.images.dtype == np.uint8
    assert np.bincount(r.labels, minlength=10).tolist() == [5000] * 10
    # examples are ordered by (class, file name): labels are sorted
    assert np.all(np.diff(r.labels) >= 0)
    # CIFAR-10's per-channel means are about (0.491, 0.482, 0.447); JPEG moves them a little
    np.testing.assert_allclose(r.images.reshape(-1, 3).mean(0) / 255.0, [0.491, 0.482, 0.447], atol=0.005)
    t = data.load_raw("cifar10", "test", source="local")
    assert t.images.shape == (10000, 32, 32, 3)
    assert np.bincount(t.labels, minlength=10).tolist() == [1000] * 10


@pytest.mark.parametrize("name", data.DATASETS)
def test_load_standardized_one_hot(name):
    _require(name)
    d = data.load(name, n=500, seed=1)
    assert isinstance(d, data.Data) and d._fields == ("x", "y", "labels")
    assert d.x.shape == (500,) + data.SHAPES[name] and d.x.dtype == np.float32
    assert d.y.shape == (500, 10) and d.y.dtype == np.float32
    assert d.labels.shape == (500,) and d.labels.dtype == np.int32
    axes = tuple(range(1, d.x.ndim))
    x64 = d.x.astype(np.float64)
    np.testing.assert_allclose(x64.mean(axis=axes), 0.0, atol=1e-6)
    np.testing.assert_allclose(x64.std(axis=axes), 1.0, atol=1e-6)
    np.testing.assert_array_equal(d.y.sum(1), 1.0)
    assert set(np.unique(d.y).tolist()) == {0.0, 1.0}
    np.testing.assert_array_equal(d.y.argmax(1), d.labels)

    # the same images, standardized independently in float64 from the raw uint8 subset
    raw = data.load_raw(name)
    idx = np.random.default_rng(1).permutation(data.SPLIT_SIZES[name]["train"])[:500]
    img = raw.images[idx].astype(np.float64)
    mu = img.mean(axis=axes, keepdims=True)
    sd = img.std(axis=axes, keepdims=True)
    np.testing.assert_allclose(d.x, (img - mu) / sd, rtol=0, atol=2e-6)
    np.testing.assert_array_equal(d.labels, raw.labels[idx])


def test_full_split_in_stored_order():
    _require("mnist", "test")
    d = data.load("mnist", split="test")
    raw = data.load_raw("mnist", "test")
    assert d.x.shape == (10000, 28, 28, 1)
    np.testing.assert_array_equal(d.labels, raw.labels)
    np.testing.assert_array_equal(d.x, data.standardize(raw.images))


def test_subset_deterministic_and_nested():
    _require("mnist")
    a = data.load("mnist", n=300, seed=7)
    b = data.load("mnist", n=300, seed=7)
    small = data.load("mnist", n=120, seed=7)
    other = data.load("mnist", n=300, seed=8)
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(small.x, a.x[:120])
    np.testing.assert_array_equal(small.y, a.y[:120])
    assert not np.array_equal(a.x, other.x)
    # numpy integers are accepted like ints
    c = data.load("mnist", n=np.int64(120), seed=np.int32(7))
    np.testing.assert_array_equal(c.x, small.x)


def test_subset_indices():
    idx = data.subset_indices(1000, 10, 3)
    np.testing.assert_array_equal(idx, np.random.default_rng(3).permutation(1000)[:10])
    np.testing.assert_array_equal(data.subset_indices(1000, 4, 3), idx[:4])
    assert len(set(data.subset_indices(50, 50, 0).tolist())) == 50


def test_standardize_and_one_hot_units():
    x = np.arange(2 * 2 * 2 * 3, dtype=np.uint8).reshape(2, 2, 2, 3)
    z = data.standardize(x)
    assert z.dtype == np.float32
    for i in range(2):
        v = x[i].astype(np.float64).ravel()
        np.testing.assert_allclose(z[i].ravel(), (v - v.mean()) / v.std(), atol=1e-6)
    const = np.full((1, 4, 4, 1), 9, np.uint8)
    np.testing.assert_array_equal(data.standardize(const), 0.0)
    np.testing.assert_array_equal(data.one_hot(np.array([2, 0])), [[0, 0, 1] + [0] * 7, [1] + [0] * 9])
    with pytest.raises(ConfigError, match="labels"):
        data.one_hot(np.array([10]))


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "kwargs, param, extra",
    [
        (dict(name="cifar100"), "name", "'mnist'"),
        (dict(name="mnist", split="valid"), "split", "'test'"),
        (dict(name="mnist", source="web"), "source", "'tfds'"),
        (dict(name="mnist", n=0), "n", "60000"),
        (dict(name="mnist", n=60001), "n", "60000"),
        (dict(name="cifar10", n=50001), "n", "50000"),
        (dict(name="mnist", split="test", n=10001), "n", "10000"),
        (dict(name="mnist", n=2.5), "n", "integer"),
        (dict(name="mnist", n=True), "n", "integer"),
        (dict(name="mnist", seed=-1), "seed", ">= 0"),
        (dict(name="mnist", seed="0"), "seed", "integer"),
        (dict(name="mnist", data_dir=3), "data_dir", "path"),
    ],
)
def test_bad_parameters_rejected_before_io(kwargs, param, extra, empty_data_dir, no_tfds):
    # the data dir is empty: a ConfigError (not DataNotFoundError) proves validation comes first
    with pytest.raises(ConfigError) as e:
        data.load(**kwargs)
    msg = str(e.value)
    assert msg.startswith(param + ":") and extra in msg


def test_data_dir_resolution(monkeypatch, tmp_path):
    monkeypatch.delenv("EARLYTRAIN_DATA", raising=False)
    monkeypatch.delenv("EARLYTRAIN_TFDS_DIR", raising=False)
    assert data.data_dir() == REPO / "data"
    assert data.tfds_dir() == REPO / "data" / "tfds"
    monkeypatch.setenv("EARLYTRAIN_DATA", str(tmp_path))
    assert data.data_dir() == tmp_path
    assert data.tfds_dir() == tmp_path / "tfds"
    assert data.tfds_dir(tmp_path / "x") == tmp_path / "x" / "tfds"
    monkeypatch.setenv("EARLYTRAIN_TFDS_DIR", str(tmp_path / "t"))
    assert data.tfds_dir() == tmp_path / "t"


# ----------------------------------------------------------------------------- missing / corrupt


@pytest.mark.parametrize("source", ["local", "auto"])
@pytest.mark.parametrize("name", data.DATASETS)
def test_missing_data_is_one_clear_error(name, source, empty_data_dir, no_tfds):
    with pytest.raises(data.DataNotFoundError) as e:
        data.load(name, n=10, source=source)
    assert isinstance(e.value, FileNotFoundError)
    msg = str(e.value)
    assert repr(name) in msg
    assert str(empty_data_dir) in msg
    assert "make data" in msg and "bash scripts/fetch_data.sh" in msg
    if name == "cifar10":
        assert "shared/data/cifar10" in msg and "source='tfds'" in msg


def test_explicit_data_dir_argument(tmp_path, no_tfds):
    with pytest.raises(data.DataNotFoundError, match=re.escape(str(tmp_path))):
        data.load("mnist", data_dir=tmp_path)
    _require("mnist", "test")
    d = tmp_path / "d"
    _link_dataset(d, data._IDX_FILES["mnist"]["test"])
    got = data.load("mnist", split="test", n=5, data_dir=d, source="local")
    want = data.load("mnist", split="test", n=5, source="local")
    np.testing.assert_array_equal(got.x, want.x)


def test_tfds_source_without_tfds_is_clear(empty_data_dir, no_tfds):
    with pytest.raises(data.DataNotFoundError) as e:
        data.load("mnist", source="tfds")
    msg = str(e.value)
    assert "tensorflow-datasets is not installed" in msg and "scripts/setup_tfds_venv.sh" in msg
    assert "make data" in msg


def test_checksum_mismatch_and_memo(tmp_path, monkeypatch):
    _require("mnist", "test")
    root = tmp_path / "d"
    img_rel, lab_rel = data._IDX_FILES["mnist"]["test"]
    _link_dataset(root, [img_rel])
    (root / lab_rel).write_bytes(bytearray((data.data_dir() / lab_rel).read_bytes()))
    data.load_raw("mnist", "test", data_dir=root, source="local")  # verifies and memoizes

    # verified once per file per process: a second load does not hash again
    def no_hash(*a, **k):
        raise AssertionError("sha256 recomputed for an already verified file")

    monkeypatch.setattr(data.hashlib, "sha256", no_hash)
    data.load_raw("mnist", "test", data_dir=root, source="local")
    monkeypatch.undo()

    # a changed file (new size / mtime) is verified again and rejected
    raw = bytearray((root / lab_rel).read_bytes())
    raw[100] = (raw[100] + 1) % 10
    (root / lab_rel).write_bytes(bytes(raw))
    os.utime(root / lab_rel, ns=(1, 1))
    with pytest.raises(data.ChecksumError) as e:
        data.load("mnist", split="test", data_dir=root)
    msg = str(e.value)
    assert str(root / lab_rel) in msg and data._SHA256[lab_rel] in msg and "make data" in msg


def test_read_idx(tmp_path):
    arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    blob = bytes([0, 0, 8, 3]) + np.array(arr.shape, ">u4").tobytes() + arr.tobytes()
    (tmp_path / "a-idx3-ubyte").write_bytes(blob)
    (tmp_path / "a-idx3-ubyte.gz").write_bytes(gzip.compress(blob))
    np.testing.assert_array_equal(data.read_idx(tmp_path / "a-idx3-ubyte"), arr)
    np.testing.assert_array_equal(data.read_idx(tmp_path / "a-idx3-ubyte.gz"), arr)
    (tmp_path / "bad").write_bytes(bytes([0, 0, 9, 3]) + blob[4:])  # 0x09: int8, not uint8
    with pytest.raises(data.ChecksumError, match="magic"):
        data.read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes(blob[:-1])
    with pytest.raises(data.ChecksumError, match="shape"):
        data.read_idx(tmp_path / "short")


def test_cifar_cache(tmp_path, monkeypatch):
    _require("cifar10", "test")
    root = tmp_path / "d"
    rel = data._CIFAR_ZIPS["test"]
    _link_dataset(root, [rel])
    first = data.load_raw("cifar10", "test", data_dir=root, source="local")
    caches = list((root / "cifar10").glob("*.npz"))
    assert len(caches) == 1
    assert data._SHA256[rel][:16] in caches[0].name  # keyed by the raw file's checksum
    assert not list((root / "cifar10").glob("*.tmp"))  # atomic write left no temp file

    # the second load reads the cache, not the JPEGs
    def no_decode(path):
        raise AssertionError("decoded again although the cache is valid")

    monkeypatch.setattr(data, "_decode_cifar_zip", no_decode)
    second = data.load_raw("cifar10", "test", data_dir=root, source="local")
    np.testing.assert_array_equal(first.images, second.images)
    np.testing.assert_array_equal(first.labels, second.labels)
    monkeypatch.undo()

    # a corrupt cache is decoded again and replaced
    caches[0].write_bytes(b"not an npz")
    third = data.load_raw("cifar10", "test", data_dir=root, source="local")
    np.testing.assert_array_equal(first.images, third.images)
    with np.load(caches[0]) as z:
        np.testing.assert_array_equal(z["images"], first.images)


# ----------------------------------------------------------------------------- network check


def test_network_reachable_loopback_only():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    try:
        assert data.network_reachable(f"http://127.0.0.1:{port}/x", timeout=2.0)
    finally:
        srv.close()
    # nothing listens there any more: refused at once
    t = time.monotonic()
    assert not data.network_reachable(f"http://127.0.0.1:{port}/x", timeout=2.0)
    assert time.monotonic() - t < 2.0


def test_network_check_cannot_hang(monkeypatch):
    """A black-holed network (connect or DNS that never answers) costs at most the timeout."""
    release = threading.Event()

    def hang(*a, **k):
        release.wait(30)
        raise OSError("gave up")

    monkeypatch.setattr(data.socket, "create_connection", hang)
    t = time.monotonic()
    try:
        assert not data.network_reachable("https://example.invalid/", timeout=0.5)
        assert time.monotonic() - t < 1.5
    finally:
        release.set()


# ----------------------------------------------------------------------------- fetch script


def test_fetch_script_checksums_match_loader():
    text = (REPO / "scripts" / "fetch_data.sh").read_text()
    pairs = dict(re.findall(r"\[([a-z_0-9]+/[\w.-]+)\]=([0-9a-f]{64})", text))
    assert pairs == data._SHA256


def test_fetch_script_skips_verified_files(tmp_path):
    """With every file present and verified, the script does nothing (no network) and exits 0."""
    for name in data.DATASETS:
        _require(name, "train")
        _require(name, "test")
    root = tmp_path / "d"
    for rel in data._SHA256:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(data.data_dir() / rel, root / rel)
    p = subprocess.run(["bash", str(REPO / "scripts" / "fetch_data.sh"), str(root)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.count("present and verified, skipped") == 3
    for rel, sha in data._SHA256.items():
        assert hashlib.sha256((root / rel).read_bytes()).hexdigest() == sha
