"""Benchmark: one vmapped sweep call vs the same runs one by one, and bisection vs full grid.

Part 1. ``train.run_grid`` over S seeds x C learning-rate constants (one compiled call) against
a Python loop calling one jitted single run per (seed, c). Both are compiled once, compile time
is excluded from the run times and printed separately. The two must give the same numbers:
the max abs difference of the losses (and of the sharpness) is printed and checked, so the
speed-up cannot come from doing different work.

Part 2. ``sweep.critical_point`` for one (depth, width) with ``search="bisect"`` vs
``search="grid"`` on a small c grid (uncached, results dir pointed at a temp dir): wall time,
number of runs (Dataset attrs ``n_loss_runs`` / ``n_sharpness_runs``) and whether the critical
constants agree.

Run:  .venv/bin/python bench/bench_sweep.py [--width 128] [--depth 4] [--seeds 2] [--n-c 8]
      [--sharpness/--no-sharpness] [--repeats 3] [--no-search]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

os.environ.setdefault("EARLYTRAIN_RESULTS", tempfile.mkdtemp(prefix="earlytrain_bench_"))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from earlytrain import data as et_data  # noqa: E402
from timing import block, timed  # noqa: E402
from earlytrain import models, sweep, train  # noqa: E402
from earlytrain.models import ModelConfig  # noqa: E402
from earlytrain.train import TrainConfig  # noqa: E402

N_TRAIN = 4096


def _single_run(model, p, a, lam, c, data, batches, cfg):
    # exactly what run_grid does per (seed, c), without the vmaps
    return train.run(model, p, a, c / lam.value, data, batches, cfg, lam)


single_run = jax.jit(_single_run, static_argnames=("model", "cfg"))


def nan_aware_diff(a, b, keep=None):
    """(max abs diff, max relative diff) over entries finite in both (and in ``keep``), and
    whether the NaN patterns agree."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    same_nan = bool(np.array_equal(np.isnan(a), np.isnan(b)))
    ok = np.isfinite(a) & np.isfinite(b)
    if keep is not None:
        ok &= np.broadcast_to(keep, ok.shape)
    if not ok.any():
        return 0.0, 0.0, same_nan
    d = np.abs(a[ok] - b[ok])
    return float(d.max()), float(np.max(d / np.maximum(np.abs(a[ok]), 1e-30))), same_nan


def bench_vmap(args):
    d = et_data.load("mnist", n=N_TRAIN, seed=0)
    x, y = jnp.asarray(d.x), jnp.asarray(d.y)
    tdata = train.TrainData(x, y, x[:args.n_measure], y[:args.n_measure])
    model = models.build(ModelConfig(depth=args.depth, width=args.width))
    tcfg = TrainConfig(num_steps=args.steps, measure_sharpness=args.sharpness)
    seeds = list(range(1, args.seeds + 1))
    params, aux = models.init_many(model, models.seed_keys(seeds), tdata.x_meas)
    lam0 = block(train.initial_sharpness(model, params, aux, tdata, tcfg.replace(measure_sharpness=True)))
    batches = jnp.asarray(train.batch_schedule(N_TRAIN, tcfg.batch_size, tcfg.num_steps, tcfg.sgd_seed))
    # c from 1 (sharpness reduction) to past c_max (divergent runs included: their cost is the same)
    c_row = 2.0 ** np.linspace(0.0, 4.0, args.n_c)
    c = jnp.asarray(np.broadcast_to(c_row, (args.seeds, args.n_c)).copy())
    S, C = args.seeds, args.n_c
    n_runs = S * C

    # --- vmapped: AOT compile, then time the compiled call
    t0 = time.perf_counter()
    grid_exe = train.run_grid.lower(model, params, aux, lam0, c, tdata, batches, tcfg).compile()
    compile_grid = time.perf_counter() - t0
    grid_fn = lambda: grid_exe(params, aux, lam0, c, tdata, batches)  # noqa: E731

    # --- loop: one compiled single run, called S x C times (per-seed slices prepared up front)
    per_seed = [jax.tree.map(lambda v: v[s], (params, aux, lam0)) for s in range(S)]
    cs = [[c[s, k] for k in range(C)] for s in range(S)]
    p0, a0, l0 = per_seed[0]
    t0 = time.perf_counter()
    one_exe = single_run.lower(model, p0, a0, l0, cs[0][0], tdata, batches, tcfg).compile()
    compile_loop = time.perf_counter() - t0

    def loop_fn():
        outs = [[one_exe(*per_seed[s], cs[s][k], tdata, batches) for k in range(C)] for s in range(S)]
        # stack to [S, C, T+1] like run_grid
        return jax.tree.map(lambda *v: jnp.stack(v).reshape((S, C) + v[0].shape),
                            *[o for row in outs for o in row])

    block(grid_fn()), block(loop_fn())  # warm-up (allocations, thread pools)
    t_grid, all_grid, tr_grid = timed(grid_fn, args.repeats)
    t_loop, all_loop, tr_loop = timed(loop_fn, args.repeats)

    # float32: batched and unbatched matmuls round differently (~1e-7 relative); a run that
    # catapults or diverges amplifies that (to ~1e-4 relative), so the check is relative
    div_run = np.asarray(tr_grid.diverged)[..., -1:]
    dl, rl, nan_l = nan_aware_diff(tr_grid.loss, tr_loop.loss)
    dl_ok, _, _ = nan_aware_diff(tr_grid.loss, tr_loop.loss, keep=~div_run)
    ds, rs, nan_s = (nan_aware_diff(tr_grid.sharpness, tr_loop.sharpness) if args.sharpness
                     else (0.0, 0.0, True))
    same_div = bool(np.array_equal(np.asarray(tr_grid.diverged), np.asarray(tr_loop.diverged)))
    n_div = int(div_run.sum())

    npar = models.num_params(per_seed[0][0])
    print(f"\n== vmapped sweep vs Python loop: MNIST n={N_TRAIN} (measure {args.n_measure}), FCN depth "
          f"{args.depth} width {args.width} ({npar:,} params), T={tcfg.num_steps}, batch "
          f"{tcfg.batch_size}, sharpness={'on (' + tcfg.sharpness_method + ' ' + str(tcfg.sharpness_iters) + ')' if args.sharpness else 'off'}")
    print(f"   {S} seeds x {C} c in [1, 16] = {n_runs} runs ({n_div} diverged), median of {args.repeats}")
    print(f"   {'':22s}{'compile s':>10s}{'total s':>10s}{'per run ms':>12s}")
    print(f"   {'vmapped run_grid':22s}{compile_grid:10.2f}{t_grid:10.3f}{1e3 * t_grid / n_runs:12.1f}")
    print(f"   {'loop of single runs':22s}{compile_loop:10.2f}{t_loop:10.3f}{1e3 * t_loop / n_runs:12.1f}")
    print(f"   speed-up (loop / vmapped, per run): {t_loop / t_grid:.2f}x"
          f"   [all times grid {', '.join(f'{t:.2f}' for t in all_grid)}; loop {', '.join(f'{t:.2f}' for t in all_loop)}]")
    agree = rl < 1e-3 and rs < 1e-3 and nan_l and nan_s and same_div
    print(f"   same numbers: max|dloss| = {dl:.1e} (max rel {rl:.1e}); over never-diverging runs "
          f"{dl_ok:.1e}" + (f"; max|dsharpness| = {ds:.1e} (max rel {rs:.1e})" if args.sharpness else "")
          + f"; NaN/diverged patterns {'same' if nan_l and nan_s and same_div else 'DIFFERENT'}"
          + f"  -> {'OK' if agree else 'MISMATCH'}")
    return agree


def bench_search(args):
    cfg = sweep.SweepConfig(
        dataset="mnist", n_train=N_TRAIN, n_measure=args.search_n_measure, depths=(args.depth,),
        widths=(args.width,), seeds=tuple(range(1, args.seeds + 1)), x_min=0.0, x_max=5.0,
        x_step=args.x_step, train=TrainConfig(num_steps=args.steps))
    res = {}
    for strategy in ("bisect", "grid"):
        t0 = time.perf_counter()
        ds = sweep.critical_point(cfg.replace(search=strategy))  # direct call: not cached
        res[strategy] = (time.perf_counter() - t0, ds)
    (tb, db), (tg, dg) = res["bisect"], res["grid"]
    names = ["c_loss", "c_sharp", "c_max"]
    agree = {k: bool(np.array_equal(db[k].values, dg[k].values, equal_nan=True)) for k in names}
    print(f"\n== critical_point: bisect vs full grid, depth {args.depth} width {args.width}, "
          f"{len(cfg.seeds)} seeds, c = 2^x, x in [0, 5] step {args.x_step} ({len(cfg.c_grid)} points), "
          f"measure {args.search_n_measure}")
    print("   (wall times include the compiles of each search's batch shapes and lambda_0)")
    print(f"   {'':10s}{'wall s':>9s}{'loss runs':>11s}{'sharp runs':>12s}   c_loss / c_sharp / c_max per seed")
    for name, (t, ds) in res.items():
        cc = " | ".join("/".join(f"{v:.3g}" for v in ds[k].values) for k in names)
        print(f"   {name:10s}{t:9.1f}{ds.attrs['n_loss_runs']:11d}{ds.attrs['n_sharpness_runs']:12d}   {cc}")
    runs_b = db.attrs["n_loss_runs"] + db.attrs["n_sharpness_runs"]
    runs_g = dg.attrs["n_loss_runs"] + dg.attrs["n_sharpness_runs"]
    print(f"   grid / bisect: wall {tg / tb:.2f}x, loss runs {dg.attrs['n_loss_runs'] / max(db.attrs['n_loss_runs'], 1):.2f}x, "
          f"sharpness runs {dg.attrs['n_sharpness_runs'] / max(db.attrs['n_sharpness_runs'], 1):.2f}x "
          f"(all runs {runs_g} vs {runs_b})")
    print("   constants agree: " + ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in agree.items()))
    return all(agree.values())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--n-c", type=int, default=8)
    ap.add_argument("--sharpness", action=argparse.BooleanOptionalAction, default=False,
                    help="measure the sharpness after every step (Lanczos 20) in the vmap-vs-loop runs")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--steps", type=int, default=10, help="SGD steps per run (T)")
    ap.add_argument("--n-measure", type=int, default=1024, help="measurement subset (vmap vs loop)")
    ap.add_argument("--search", action=argparse.BooleanOptionalAction, default=True,
                    help="also run the bisect-vs-grid part")
    ap.add_argument("--search-n-measure", type=int, default=128, help="measurement subset (search part)")
    ap.add_argument("--x-step", type=float, default=0.5, help="c grid step in log2 (search part)")
    args = ap.parse_args(argv)
    print(f"jax {jax.__version__}, devices {jax.devices()}, EARLYTRAIN_RESULTS={os.environ['EARLYTRAIN_RESULTS']}")
    ok = bench_vmap(args)
    if args.search:
        ok = bench_search(args) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
