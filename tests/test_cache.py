"""Tests of earlytrain.cache: stable keys, netCDF round trip, atomic writes, refresh, healing
(unreadable, foreign and incomplete entries; two processes on one point)."""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from earlytrain import cache
from earlytrain.models import ModelConfig
from earlytrain.sweep import SweepConfig
from earlytrain.train import TrainConfig


@pytest.fixture
def results(tmp_path, monkeypatch):
    monkeypatch.setenv("EARLYTRAIN_RESULTS", str(tmp_path))
    monkeypatch.delenv("EARLYTRAIN_REFRESH", raising=False)
    return tmp_path


def test_key_stable_under_dict_order_and_list_tuple():
    a = {"width": 16, "seeds": [1, 2], "nested": {"x": 1.5, "y": (3, 4)}}
    b = {"nested": {"y": [3, 4], "x": 1.5}, "seeds": (1, 2), "width": 16}
    assert cache.canonical_json(a) == cache.canonical_json(b)
    assert cache.cache_key("f", a) == cache.cache_key("f", b)
    # dataclass configs: list vs tuple spelling of the sweep axes
    c1 = SweepConfig(widths=[8, 16], seeds=[1, 2])
    c2 = SweepConfig(widths=(8, 16), seeds=(1, 2))
    assert cache.cache_key("f", c1) == cache.cache_key("f", c2)
    assert cache.cache_key("f", c1) == cache.cache_key("f", SweepConfig(widths=(8, 16), seeds=(1, 2)))
    assert len(cache.cache_key("f", a)) == 64


# an alternative valid value for every field of the configs
_ALT_SWEEP = dict(dataset="fashion_mnist", n_train=2048, n_measure=512, data_seed=1, depths=(3,),
                  widths=(32,), seeds=(1, 2), x_min=-1.0, x_max=5.0, x_step=0.2, T1=5, decimals=None,
                  sharp_eps=0.05, search="grid", stride=4, c_chunk=4, c_sharp_max_width=64)
_ALT_MODEL = dict(arch=None, depth=3, width=32, parameterization="ntp", bias=True, sigma_w2=1.5,
                  sigma_last2=2.0, n_out=5, last_layer="zero", centered=True, out_alpha=3.0, out_exp=0.5)
_ALT_TRAIN = dict(loss="xent", optimizer="gd", batch_size=256, num_steps=20, div_threshold=1e4,
                  measure_sharpness=False, sharpness_every=2, sharpness_method="power",
                  sharpness_iters=10, sharpness_tol=1e-2, lambda0_tol=1e-3, sharpness_gap_bound=True, sgd_seed=2,
                  sharpness_per_decade=10, sharpness_warm_mix=0.0, matmul_precision="default",
                  search_early_exit=False, hvp_chunk=128)


def test_key_changes_with_every_config_field():
    base = SweepConfig()
    k0 = cache.cache_key("f", base)
    keys = {k0}
    for f in dataclasses.fields(SweepConfig):
        if f.name in ("model", "train"):
            continue
        assert f.name in _ALT_SWEEP, f"no alternative value for SweepConfig.{f.name}"
        k = cache.cache_key("f", base.replace(**{f.name: _ALT_SWEEP[f.name]}))
        assert k not in keys, f.name
        keys.add(k)
    for f in dataclasses.fields(ModelConfig):
        assert f.name in _ALT_MODEL, f"no alternative value for ModelConfig.{f.name}"
        if f.name == "arch" or (f.name in ("centered", "out_alpha") and base.model.last_layer == "zero"):
            continue
        k = cache.cache_key("f", base.replace(model=base.model.replace(**{f.name: _ALT_MODEL[f.name]})))
        assert k not in keys, f.name
        keys.add(k)
    for f in dataclasses.fields(TrainConfig):
        assert f.name in _ALT_TRAIN, f"no alternative value for TrainConfig.{f.name}"
        k = cache.cache_key("f", base.replace(train=base.train.replace(**{f.name: _ALT_TRAIN[f.name]})))
        assert k not in keys, f.name
        keys.add(k)
    # ... and with the function name and the code hash
    assert cache.cache_key("g", base) not in keys
    assert cache.cache_key("f", base, code_hash="0" * 64) != cache.cache_key("f", base, code_hash="1" * 64)
    assert cache.cache_key("f", base, code_hash=cache.CODE_HASH) == k0
    assert cache.cache_key("f", base, code_hash="0" * 64) != k0


def _dataset():
    return xr.Dataset(
        {"flag": (("seed", "c"), np.array([[True, False, True], [False, False, True]])),
         "value": (("seed", "c"), np.array([[0.1, np.nan, 1e-300], [np.inf, -2.5, 3.0]])),
         "count": (("seed",), np.array([3, -7], np.int64)),
         "small": (("seed",), np.array([1.5, 2.25], np.float32))},
        coords={"seed": [1, 2], "c": [1.0, 2.0, 4.0]},
        attrs={"note": "round trip"})


def test_netcdf_round_trip(tmp_path):
    ds = _dataset()
    path = tmp_path / "sub" / "x.nc"
    cache.save(ds, path, {"config": {"a": 1}})
    back = cache.load(path)
    for v in ds.data_vars:
        assert back[v].dtype == ds[v].dtype, v
        np.testing.assert_array_equal(back[v].values, ds[v].values)
    np.testing.assert_array_equal(back["seed"].values, ds["seed"].values)
    np.testing.assert_array_equal(back["c"].values, ds["c"].values)
    assert back.attrs["note"] == "round trip"
    assert json.loads(back.attrs["config"]) == {"a": 1}
    assert json.loads(path.with_suffix(".json").read_text()) == {"config": {"a": 1}}


def test_atomic_write_failure_leaves_no_file(tmp_path, monkeypatch):
    path = tmp_path / "x.nc"
    real = xr.Dataset.to_netcdf

    def half_then_fail(self, target, *a, **k):
        Path(target).write_bytes(b"CDF partial")  # something reaches the temporary file ...
        raise OSError("disk full")                # ... then the write dies

    monkeypatch.setattr(xr.Dataset, "to_netcdf", half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        cache.save(_dataset(), path, {"config": {}})
    assert not path.exists()
    assert not path.with_suffix(".json").exists()
    assert list(tmp_path.iterdir()) == []  # no temporary file left behind either
    monkeypatch.setattr(xr.Dataset, "to_netcdf", real)
    # an existing good result is not replaced by a failed overwrite
    cache.save(_dataset(), path, {"config": {}})
    good = path.read_bytes()
    monkeypatch.setattr(xr.Dataset, "to_netcdf", half_then_fail)
    with pytest.raises(OSError):
        cache.save(_dataset().assign(value=lambda d: d["value"] * 2), path, {"config": {}})
    assert path.read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.json", "x.nc"]


def test_cached_computes_once_and_refresh_recomputes(results, monkeypatch):
    calls = []

    def compute(cfg):
        calls.append(cfg)
        return xr.Dataset({"y": ("i", np.arange(cfg["n"]) * cfg["scale"])}, coords={"i": np.arange(cfg["n"])})

    fn = cache.cached(compute, name="test.compute")
    a = fn({"n": 4, "scale": 0.5})
    b = fn({"scale": 0.5, "n": 4})  # same config, other spelling: loaded
    assert len(calls) == 1
    xr.testing.assert_identical(a, b)
    np.testing.assert_array_equal(a["y"].values, [0, 0.5, 1.0, 1.5])
    path = Path(a.attrs["cache_path"])
    assert path.parent == results / "test.compute" and path.exists()
    side = json.loads(path.with_suffix(".json").read_text())
    assert side["config"] == {"n": 4, "scale": 0.5}
    assert side["code_hash"] == cache.CODE_HASH
    assert side["key"] == cache.cache_key("test.compute", {"n": 4, "scale": 0.5})
    assert path.name == side["key"][:16] + ".nc"
    assert {"jax", "numpy", "xarray", "earlytrain"} <= set(side["versions"])
    assert "platform" in side["device"] and side["wall_time_s"] >= 0
    fn({"n": 5, "scale": 0.5})  # another config: computed
    assert len(calls) == 2
    monkeypatch.setenv("EARLYTRAIN_REFRESH", "1")
    c = fn({"n": 4, "scale": 0.5})
    assert len(calls) == 3
    xr.testing.assert_identical(a.drop_attrs(), c.drop_attrs())
    monkeypatch.setenv("EARLYTRAIN_REFRESH", "0")
    fn({"n": 4, "scale": 0.5})
    assert len(calls) == 3


def test_failed_compute_writes_nothing(results):
    def boom(cfg):
        raise RuntimeError("interrupted")

    fn = cache.cached(boom, name="test.boom")
    with pytest.raises(RuntimeError):
        fn({"a": 1})
    assert not (results / "test.boom").exists() or list((results / "test.boom").iterdir()) == []


def test_module_deps_follow_imports():
    """The code hash of a result covers its module and everything it imports, and nothing else."""
    sat = cache.module_deps("earlytrain.analyses.saturation")
    assert {"analyses.saturation", "sweep", "train", "models", "cnn", "hessian", "losses", "data", "cache"} <= set(sat)
    assert "uv.model" not in sat and not any(m.startswith("book.plotting") for m in sat)
    assert cache.module_deps("uv.phases") == ("errors", "grid", "uv.model", "uv.phases")  # grid: the c = 2^x grid
    assert cache.module_deps("book.plotting.variants") == ("book.plotting.diagram", "book.plotting.style", "book.plotting.variants")
    assert cache.module_deps("book.plotting.regimes") == ("analyses.regimes", "book.plotting.regimes", "book.plotting.style", "errors")


def test_code_hash_changes_only_with_a_dependency(tmp_path, monkeypatch):
    """Edit a copy of the package: train.py changes the sweep's code hash, not the uv model's;
    plotting changes neither."""
    import shutil
    pkg = tmp_path / "earlytrain"
    shutil.copytree(cache._PKG, pkg, ignore=shutil.ignore_patterns("__pycache__"))

    def hashes():
        cache._direct_deps.cache_clear()
        cache.code_hash_of.cache_clear()
        return {m: cache.code_hash_of(m) for m in ("sweep", "uv.phases", "analyses.saturation")}

    monkeypatch.setattr(cache, "_PKG", pkg)
    try:
        h0 = hashes()
        with open(pkg / "book" / "plotting" / "diagram.py", "a") as f:
            f.write("\n# a figure edit\n")
        assert hashes() == h0
        with open(pkg / "train.py", "a") as f:
            f.write("\n# a physics edit\n")
        h1 = hashes()
        assert h1["uv.phases"] == h0["uv.phases"]
        assert h1["sweep"] != h0["sweep"] and h1["analyses.saturation"] != h0["analyses.saturation"]
        with open(pkg / "uv" / "model.py", "a") as f:
            f.write("\n# a uv edit\n")
        assert hashes()["uv.phases"] != h0["uv.phases"]
    finally:
        monkeypatch.undo()
        cache._direct_deps.cache_clear()
        cache.code_hash_of.cache_clear()


def _counting(calls):
    def compute(cfg):
        calls.append(cfg)
        return xr.Dataset({"y": ("i", np.arange(cfg["n"]) * cfg["scale"])}, coords={"i": np.arange(cfg["n"])})
    return cache.cached(compute, name="test.heal")


def test_unreadable_result_is_moved_aside_and_recomputed(results):
    calls = []
    fn = _counting(calls)
    path = Path(fn({"n": 3, "scale": 2.0}).attrs["cache_path"])
    good = path.read_bytes()
    for damage in (good[: len(good) // 2], b"not a netCDF file at all"):
        path.write_bytes(damage)  # truncated, then overwritten
        with pytest.warns(cache.CacheWarning, match="could not be read") as rec:
            ds = fn({"n": 3, "scale": 2.0})
        assert str(path) in str(rec[0].message) and "moved it to" in str(rec[0].message)
        np.testing.assert_array_equal(ds["y"].values, [0, 2.0, 4.0])
    assert len(calls) == 3
    aside = sorted(p.name for p in path.parent.iterdir() if ".unreadable-" in p.name)
    assert len(aside) == 2 and all(a.startswith(path.name) for a in aside)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # healed: the next call is a clean hit
        fn({"n": 3, "scale": 2.0})
    assert len(calls) == 3


def test_result_under_another_key_is_a_miss(results):
    calls = []
    fn = _counting(calls)
    a = Path(fn({"n": 2, "scale": 1.0}).attrs["cache_path"])
    b = Path(fn({"n": 2, "scale": 5.0}).attrs["cache_path"])
    b.write_bytes(a.read_bytes())  # a valid result copied over another key's file
    with pytest.warns(cache.CacheWarning, match="is not this result"):
        ds = fn({"n": 2, "scale": 5.0})
    np.testing.assert_array_equal(ds["y"].values, [0, 5.0])
    assert len(calls) == 3
    # a result written before keys were stored: its configuration is compared
    cfg_a = {"n": 2, "scale": 1.0}
    cache.save(xr.Dataset({"y": ("i", [7.0, 7.0])}), b, {"config": cfg_a})
    with pytest.warns(cache.CacheWarning, match="stored configuration"):
        ds = fn({"n": 2, "scale": 5.0})
    np.testing.assert_array_equal(ds["y"].values, [0, 5.0])
    # ... and its code hash, from the sidecar
    cfg_b = {"n": 2, "scale": 5.0}
    cache.save(xr.Dataset({"y": ("i", [7.0, 7.0])}), b, {"config": cfg_b, "code_hash": "0" * 64})
    with pytest.warns(cache.CacheWarning, match="code hash"):
        ds = fn(cfg_b)
    np.testing.assert_array_equal(ds["y"].values, [0, 5.0])
    assert len(calls) == 5


def test_orphan_temporary_files_removed_and_missing_sidecar_written(results, monkeypatch):
    calls = []
    fn = _counting(calls)
    path = Path(fn({"n": 2, "scale": 1.0}).attrs["cache_path"])
    side = path.with_suffix(".json")
    full = json.loads(side.read_text())
    side.unlink()  # killed between the two renames
    orphan = path.parent / f".{side.name}.abc123.tmp"
    orphan.write_text("{half")
    old_other = path.parent / ".0123456789abcdef.nc.xyz.tmp"  # another key's, a day old
    old_other.write_bytes(b"CDF")
    os.utime(old_other, (time.time() - 2 * cache.STALE_TMP_S,) * 2)
    young_other = path.parent / ".fedcba9876543210.nc.xyz.tmp"  # maybe being written right now
    young_other.write_bytes(b"CDF")
    with pytest.warns(cache.CacheWarning) as rec:
        ds = fn({"n": 2, "scale": 1.0})
    msgs = " | ".join(str(w.message) for w in rec)
    assert "no sidecar" in msgs and msgs.count("removed the temporary file") == 2, msgs
    assert len(calls) == 1
    np.testing.assert_array_equal(ds["y"].values, [0, 1.0])
    rebuilt = json.loads(side.read_text())
    for k in ("function", "key", "config", "code_hash", "code_modules"):
        assert rebuilt[k] == full[k], k
    assert not orphan.exists() and not old_other.exists() and young_other.exists()
    # a temporary file of a missing result is cleaned when that result is computed
    orphan_nc = path.parent / f".{path.name}.def456.tmp"
    orphan_nc.write_bytes(b"CDF partial")
    path.unlink()
    with pytest.warns(cache.CacheWarning, match="temporary file"):
        fn({"n": 2, "scale": 1.0})
    assert not orphan_nc.exists() and len(calls) == 2


_WORKER = r"""
import sys, time
from pathlib import Path
import numpy as np, xarray as xr
from earlytrain import cache
root, me = Path(sys.argv[1]), sys.argv[2]
def slow(cfg):
    with open(root / "computed.log", "a") as f:
        f.write(me + "\n")
    time.sleep(1.0)
    return xr.Dataset({"y": ("i", np.arange(cfg["n"], dtype=float))})
fn = cache.cached(slow, name="test.concurrent")
(root / f"ready-{me}").touch()
while len(list(root.glob("ready-*"))) < 2:  # start together
    time.sleep(0.01)
ds = fn({"n": 4})
assert ds["y"].values.tolist() == [0.0, 1.0, 2.0, 3.0]
print("ok", me)
"""


def test_two_processes_on_one_point_compute_once(results):
    env = {**os.environ, "EARLYTRAIN_RESULTS": str(results)}
    procs = [subprocess.Popen([sys.executable, "-c", _WORKER, str(results), str(i)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in (1, 2)]
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err
        assert out.startswith("ok")
    assert len((results / "computed.log").read_text().split()) == 1  # the second waited and loaded
    files = sorted(p.name for p in (results / "test.concurrent").iterdir())
    nc = [f for f in files if f.endswith(".nc")]
    assert len(nc) == 1 and files == [nc[0][:-3] + ".json", nc[0]]  # no temporary or lock file
    assert cache.load(results / "test.concurrent" / nc[0])["y"].values.tolist() == [0.0, 1.0, 2.0, 3.0]
