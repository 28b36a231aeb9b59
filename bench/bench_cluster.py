"""Benchmark: a phase sweep in this process vs on a 2-process LocalCluster, and the scheduler's
overhead per point.

Part 1. ``sweep.phase_sweep`` over depths x widths (6 points by default: depths 2, 3 x widths
16, 32, 64; MNIST subset, bisection on the c grid), computed twice from empty results caches:
in this process, then with ``scheduler="local:2"``. Printed: the wall time of each, the time to
start the cluster (worker processes, then JAX imported on each), the ratio in-process /
cluster with and without that start-up, and whether the two results are identical (they must
be: the check fails the bench otherwise). JAX's persistent compilation cache is OFF for both
(``JAX_COMPILATION_CACHE_DIR=``, unless you set it): each point compiles its own shapes, and a
cache warmed by the first run would hand the second its programs.

Part 2. The scheduler's cost per point: ``cluster.run_points`` over ``--overhead-points`` points
whose function does nothing, on the same cluster (all submitted at once, results gathered in
order), minus the same loop in this process: the wall time per point that submitting,
scheduling, running a task and sending back its result costs.

Run:  .venv/bin/python bench/bench_cluster.py [--depths 2 3] [--widths 16 32 64] [--workers 2]
      [--overhead-points 200]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", "")  # cold compiles for both runs (see above)

from timing import jaxcache  # noqa: E402,F401  (the project's cache settings, unless set above)


def _noop(i: int) -> int:
    return i


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--depths", type=int, nargs="+", default=[2, 3])
    ap.add_argument("--widths", type=int, nargs="+", default=[16, 32, 64])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--overhead-points", type=int, default=200)
    args = ap.parse_args()

    import xarray as xr
    from earlytrain import cluster, sweep

    cfg = sweep.from_params(dataset="mnist", n_train=512, n_measure=128, depths=args.depths, widths=args.widths,
                            seeds=[1, 2], x_min=0.0, x_max=8.0, x_step=1.0, T1=8, search="bisect",
                            batch_size=128, num_steps=8, sharpness_iters=10)
    n = len(args.depths) * len(args.widths)
    spec = f"local:{args.workers}"
    print(f"phase sweep: {n} points (depths {args.depths} x widths {args.widths}), MNIST n_train=512, "
          f"c grid 2^0..2^8, bisect, 8 steps, 2 seeds; cores: {len(os.sched_getaffinity(0))}; "
          f"JAX compilation cache: {os.environ['JAX_COMPILATION_CACHE_DIR'] or 'off'}")

    os.environ["EARLYTRAIN_RESULTS"] = tempfile.mkdtemp(prefix="bench_cluster_in_")
    t0 = time.perf_counter()
    ref = sweep.phase_sweep(cfg, progress=False, scheduler=None)
    t_in = time.perf_counter() - t0
    print(f"  in this process:          {t_in:7.1f} s  ({t_in / n:.1f} s per point)")

    os.environ["EARLYTRAIN_RESULTS"] = tempfile.mkdtemp(prefix="bench_cluster_on_")
    t0 = time.perf_counter()
    client = cluster.client_for(spec)
    client.wait_for_workers(args.workers)
    client.run(lambda: __import__("earlytrain.sweep"))  # each worker imports JAX and the library
    t_start = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = sweep.phase_sweep(cfg, progress=False, scheduler=spec)
    t_cl = time.perf_counter() - t0
    xr.testing.assert_identical(out, ref)
    print(f"  cluster start ({spec}):    {t_start:7.1f} s  (worker processes, JAX and earlytrain imported)")
    print(f"  on the cluster:           {t_cl:7.1f} s  ({t_cl / n:.1f} s per point); results identical: True")
    print(f"  ratio in-process / cluster: {t_in / t_cl:.2f}x without the start, "
          f"{t_in / (t_start + t_cl):.2f}x with it")

    m = args.overhead_points
    pts = [(i,) for i in range(m)]
    labels = [str(i) for i in range(m)]
    t0 = time.perf_counter()
    cluster.run_points(_noop, pts, labels, "no-op", progress=False, scheduler=None)
    t_loop = time.perf_counter() - t0
    cluster.run_points(_noop, pts[:10], labels[:10], "warm-up", progress=False, scheduler=spec)
    t0 = time.perf_counter()
    got = cluster.run_points(_noop, pts, labels, "no-op", progress=False, scheduler=spec)
    t_sched = time.perf_counter() - t0
    assert got == list(range(m))
    print(f"scheduler overhead: {m} no-op points on {spec}: {t_sched:.2f} s -> "
          f"{(t_sched - t_loop) / m * 1e3:.1f} ms per point (in-process loop: {t_loop * 1e3:.2f} ms in all)")
    cluster.close_all()


if __name__ == "__main__":  # the cluster's worker processes import this file: no work at import
    sys.exit(main())
