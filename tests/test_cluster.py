"""Sweeps on a Dask cluster (earlytrain.cluster) against the same sweeps in this process, on a
2-process LocalCluster and REAL data (MNIST, tiny networks): the same numbers to the bit, a
cached point never submitted, a worker killed with SIGKILL mid-point, two workers on one key, a
point that raises, the scheduler values, and dask never imported when no cluster is configured."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from earlytrain import cache, cluster, data, sweep
from earlytrain.uv import phases as uv_phases
from earlytrain.errors import ConfigError

try:
    data.load("mnist", n=16)
    HAVE_MNIST = True
except data.DataNotFoundError:  # no local data (`make data`): skipped, except under CI
    if os.environ.get("CI", "").lower() == "true":
        raise
    HAVE_MNIST = False

pytestmark = pytest.mark.skipif(not HAVE_MNIST, reason="MNIST not fetched (make data)")

KW = dict(dataset="mnist", n_train=256, n_measure=64, depths=[2], widths=[8, 16], seeds=[1, 2],
          x_min=0.0, x_max=10.0, x_step=1.0, T1=6, search="bisect", stride=4, c_chunk=8,
          batch_size=128, num_steps=6, sharpness_iters=10)
CFG = sweep.from_params(**KW)
KILL_CFG = CFG.replace(seeds=(3, 4))   # same shapes, other keys
UV = uv_phases.EarlyConfig(widths=(2, 4, 8), n_init=8, x_step=0.05, refine=5)
POINT = cache.cached(sweep.critical_point, name="sweep.critical_point")
SCHED_ENV = {cluster.ENV: None, "EARLYTRAIN_REFRESH": None}


def _env(mp, results, **kw):
    mp.setenv("EARLYTRAIN_RESULTS", str(results))
    for k, v in {**SCHED_ENV, **kw}.items():
        mp.setenv(k, v) if v is not None else mp.delenv(k, raising=False)


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    return tmp_path_factory.mktemp("in_process"), tmp_path_factory.mktemp("on_cluster")


@pytest.fixture(scope="module")
def reference(roots):
    """The sweeps computed in this process, no scheduler configured."""
    with pytest.MonkeyPatch.context() as mp:
        _env(mp, roots[0])
        return {"phase": sweep.phase_sweep(CFG, progress=False),
                "kill": sweep.phase_sweep(KILL_CFG, progress=False),
                "uv": uv_phases.early_sweep(UV)}


@pytest.fixture(scope="module")
def client(roots):
    """EARLYTRAIN_SCHEDULER=local:2 with the cluster's own results directory, for the module."""
    with pytest.MonkeyPatch.context() as mp:
        _env(mp, roots[1], **{cluster.ENV: "local:2"})
        c = cluster.client_for()
        c.wait_for_workers(2, timeout=120)
        yield c
        cluster.close_all()


def _files(root: Path, name: str = "sweep.critical_point") -> list[str]:
    d = root / name
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


@pytest.mark.parametrize("bad", ["local:0", "local", "local:two", "tcp://host", "http://host:8786",
                                 "no-such-scheduler.json", "2"])
def test_bad_scheduler_is_a_config_error_before_any_compute(bad, tmp_path, monkeypatch):
    _env(monkeypatch, tmp_path, **{cluster.ENV: bad})
    with pytest.raises(ConfigError, match=r"^EARLYTRAIN_SCHEDULER: expected unset or empty .*'local:N'.*"
                                          r"'tcp://host:port'.*got '"):
        sweep.phase_sweep(CFG, progress=False)
    with pytest.raises(ConfigError, match="^EARLYTRAIN_SCHEDULER: expected"):
        uv_phases.early_sweep(UV)
    with pytest.raises(ConfigError, match=r"^scheduler: expected .* or a distributed.Client, got 2"):
        sweep.trajectory_sweep(CFG, [1.0, 4.0], scheduler=2)
    assert list(tmp_path.iterdir()) == []  # nothing computed, nothing cached


def test_dask_not_imported_when_no_scheduler(reference, roots):
    """Sweeps in a fresh process with EARLYTRAIN_SCHEDULER unset never import distributed, and
    no module of dask beyond those xarray itself imports once dask is installed (it imports
    dask.array to recognise dask arrays as soon as it builds a Variable)."""
    code = f"""
import sys
import xarray as xr
xr.Variable("x", [1])
dask = lambda: sorted(m for m in sys.modules if m.split(".")[0] in ("dask", "distributed"))
by_xarray = dask()
from earlytrain import cluster, sweep
from earlytrain.analyses import connectivity, saturation
from earlytrain.uv import phases as uv_phases
ds = sweep.phase_sweep(sweep.from_params(**{KW!r}), progress=False)
uv = uv_phases.early_sweep(uv_phases.EarlyConfig(widths=(2, 4), n_init=4, x_step=0.1, refine=2))
assert ds.c_loss.size == 4 and uv.c_loss.size == 8
print(dask() == by_xarray, "distributed" in sys.modules)
"""
    env = {k: v for k, v in os.environ.items() if k not in (cluster.ENV, "EARLYTRAIN_REFRESH")}
    env["EARLYTRAIN_RESULTS"] = str(roots[0])
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True False"


def test_workers_share_the_caches_and_the_cores(client, roots):
    """Each worker: this process's results and JAX compilation caches, one task thread, and the
    cores this process may use (XLA splits its work by them: they decide the last bits)."""
    info = client.run(lambda: (sorted(os.sched_getaffinity(0)), os.environ["EARLYTRAIN_RESULTS"],
                               os.environ.get("JAX_COMPILATION_CACHE_DIR")))
    assert len(info) == 2
    assert {r for _, r, _ in info.values()} == {str(roots[1].resolve())}
    assert {j for _, _, j in info.values()} == {os.environ["JAX_COMPILATION_CACHE_DIR"]}  # conftest's
    assert all(c == sorted(os.sched_getaffinity(0)) for c, _, _ in info.values())
    assert {w["nthreads"] for w in client.scheduler_info()["workers"].values()} == {1}


def test_cluster_sweep_is_bit_identical_and_skips_cached_points(client, reference, roots):
    from distributed import get_task_stream
    first = CFG.replace(widths=(8,))
    key16 = {w: POINT.cache_path(CFG.replace(widths=(w,))).stem for w in CFG.widths}
    src = roots[0] / "sweep.critical_point"
    (roots[1] / "sweep.critical_point").mkdir(exist_ok=True)
    for suffix in (".nc", ".json"):  # content-addressed: a copied entry is the same result
        shutil.copy(src / f"{key16[8]}{suffix}", roots[1] / "sweep.critical_point" / f"{key16[8]}{suffix}")
    assert POINT.lookup(first) is not None
    with get_task_stream(client) as ts:
        ds = sweep.phase_sweep(CFG, progress=False)
    keys = [t["key"] for t in ts.data]
    assert len(keys) == 1 and key16[16] in keys[0]  # only the uncached point was submitted
    xr.testing.assert_identical(ds, reference["phase"])
    assert _files(roots[1]) == sorted(f"{key16[w]}{s}" for w in CFG.widths for s in (".json", ".nc"))
    np.testing.assert_array_equal(ds.lambda0.values, reference["phase"].lambda0.values)
    xr.testing.assert_identical(uv_phases.early_sweep(UV), reference["uv"])


def test_worker_killed_mid_point_is_retried(client, reference, roots):
    """SIGKILL the worker holding a point's lock before its result exists: the scheduler gives
    the point to a worker again and the sweep ends with the in-process numbers, one clean entry
    per point. The Client is passed to the sweep (no environment variable)."""
    pids = client.run(os.getpid)
    killed = {}
    stop = threading.Event()

    def kill_first_computing_worker():
        d = roots[1] / "sweep.critical_point"
        while not stop.is_set() and not killed:
            for lock in d.glob(".*.lock") if d.exists() else []:
                for addr, pid in pids.items():
                    try:
                        held = any(os.readlink(f"/proc/{pid}/fd/{fd}") == os.path.realpath(lock)
                                   for fd in os.listdir(f"/proc/{pid}/fd"))
                    except OSError:
                        continue
                    if held:
                        killed.update(pid=pid, key16=lock.name[1:-len(".lock")],
                                      had_result=(d / (lock.name[1:-len(".lock")] + ".nc")).exists())
                        os.kill(pid, signal.SIGKILL)
                        return
            time.sleep(0.01)

    watcher = threading.Thread(target=kill_first_computing_worker, daemon=True)
    watcher.start()
    try:
        ds = sweep.phase_sweep(KILL_CFG, progress=False, scheduler=client)
    finally:
        stop.set()
        watcher.join()
    assert killed and not killed["had_result"]  # killed mid-point, before its result was written
    xr.testing.assert_identical(ds, reference["kill"])
    files = [f for f in _files(roots[1]) if killed["key16"] in f]
    assert files == [f"{killed['key16']}.json", f"{killed['key16']}.nc"]  # no lock or temporary left
    assert POINT.lookup(KILL_CFG.replace(widths=(8,))) is not None
    assert POINT.lookup(KILL_CFG.replace(widths=(16,))) is not None


def test_two_workers_on_one_key_leave_one_valid_entry(client, roots):
    from distributed import get_task_stream
    client.wait_for_workers(2, timeout=120)  # the killed worker's nanny restarts it
    cfg = CFG.replace(widths=(8,), seeds=(5,))
    code = cache.code_hash_for(sweep.critical_point)
    with get_task_stream(client) as ts:
        futs = [client.submit(cluster._compute, sweep.critical_point, "sweep.critical_point", code, (cfg,),
                              workers=[w], allow_other_workers=False, pure=False)
                for w in client.scheduler_info()["workers"]]
        out = client.gather(futs)
    assert [o[0] for o in out] == ["ok", "ok"], out
    assert out[0][2] != out[1][2]  # on two workers
    spans = [[s for s in t["startstops"] if s["action"] == "compute"][0] for t in ts.data]
    assert max(s["start"] for s in spans) < min(s["stop"] for s in spans)  # at the same time
    xr.testing.assert_identical(out[0][1], out[1][1])
    key16 = POINT.cache_path(cfg).stem
    assert [f for f in _files(roots[1]) if key16 in f] == [f"{key16}.json", f"{key16}.nc"]
    side = json.loads((roots[1] / "sweep.critical_point" / f"{key16}.json").read_text())
    assert side["key"].startswith(key16) and side["config"] == json.loads(cache.canonical_json(cfg))
    with pytest.MonkeyPatch.context() as mp:
        _env(mp, roots[1])
        xr.testing.assert_identical(POINT.lookup(cfg).drop_attrs(), out[0][1].drop_attrs())


def test_raising_point_is_reported_once_with_the_point(client, tmp_path):
    """A ConfigError inside one point: one ConfigError on the client naming the sweep, the point,
    the worker and the cause; the point ran once (not retried) and dask saw no failed task."""
    from distributed import get_task_stream
    log = tmp_path / "calls.log"

    def point(cfg):  # defined here, so it travels by value
        with open(log, "a") as f:
            f.write(f"{cfg['i']}\n")
        if cfg["i"] == 1:
            raise ConfigError("widths: expected a width this test accepts, got 99")
        return xr.Dataset({"y": ("j", np.arange(3) * cfg["i"])})

    fn = cache.cached(point, name="test.cluster_raises")
    with get_task_stream(client) as ts, pytest.raises(ConfigError) as info:
        cluster.run_points(fn, [({"i": i},) for i in range(3)], [f"i = {i}" for i in range(3)], "test sweep",
                           progress=False)
    msg = str(info.value)
    assert msg.startswith("test sweep: point i = 1 failed on worker tcp://127.0.0.1:")
    assert msg.endswith(": widths: expected a width this test accepts, got 99")
    assert any("worker traceback" in n and "ConfigError: widths" in n for n in info.value.__notes__), \
        info.value.__notes__
    assert log.read_text().split().count("1") == 1
    assert all(t["status"] == "OK" for t in ts.data)
