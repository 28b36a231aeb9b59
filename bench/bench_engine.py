"""Benchmark: the adaptive sharpness engine (issue "only the Hessian-vector products the answer needs").

Part 1, cold top eigenvalue to 1e-3. An FCN of depth 4 and width 512 (~930k parameters) at
initialisation, MSE on 2048 MNIST examples, float32. Reference: a fixed-order 80 Lanczos. Three
ways to the top eigenvalue, timed (median of --repeats, compile excluded):
  * adaptive: ``hessian.lanczos(linearized_hvp, v0, cap, tol=1e-3)``: stops by its residual
    bound (the default), or with ``gap_bound=True`` by the Kato-Temple gap estimate too;
  * floor: one primal + gradient (``jax.linearize`` of the gradient) and then exactly the tangent
    products that a Lanczos needs to be within 1e-3 of the reference (the smallest prefix of the
    reference run that is): time = t(primal) + k * t(tangent), each measured;
  * before: the library before this change: a fixed order-20 Lanczos on ``jvp(grad)`` products
    (each re-running the primal) plus one product for the residual: 21 products.

Part 2, tracked sharpness along the book's trajectories: an SGD run of 10 steps (d=4, w=256 at
c = 2.5 and 8; d=8, w=32 at c = 8; MNIST, n_train 4096, n_measure 512, batch 512, the book's
settings) through ``train.run_grid``: the products each warm-started measurement spent
(``Trajectory.sharpness_matvecs``), and its error against a cold order-80 Lanczos at the same
parameters (recovered by re-running the steps without sharpness).

Part 3, one ``sweep.critical_point`` at the book's settings (d=4, w=256, MNIST, seeds 1-3,
bisection on the 0.1 grid) in a fresh process each, with a warm persistent compilation cache
(filled by one run of each first: what every later process of the book, the tests and the benches
sees): the library at --baseline-rev (a git worktree of that revision; default: before the search
runs' early exit) and this tree in turn, --crit-repeats rounds: median wall and CPU times,
products, and the constants per initialisation, which must be identical, also to those of this
tree with ``search_early_exit=False`` (the old code path, run once).

Run:  .venv/bin/python bench/bench_engine.py [--parts 1 2 3] [--repeats 3] [--baseline-rev bb60475]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import timing  # noqa: F401  (persistent compilation cache for this process)
from timing import block, jaxcache
from krylov import ritz_top as ritz_prefix, tridiag as reference_tridiag
from earlytrain import data as et_data
from earlytrain import hessian, losses, models, sweep, train
from earlytrain.models import ModelConfig

ROOT = Path(__file__).resolve().parent.parent
TOL = 1e-3


def rel(a, b):
    return abs(float(a) - float(b)) / abs(float(b))


def part_cold(args):
    d = et_data.load("mnist", n=args.n, seed=0)
    x, y = jnp.asarray(d.x), jnp.asarray(d.y)
    model = models.build(ModelConfig(depth=args.depth, width=args.width))
    params, aux = model.init(jax.random.PRNGKey(1), x)
    flat, f = hessian.flat_loss(lambda p: losses.mse(model.apply(p, aux, x), y), params)
    n = flat.shape[0]
    v0 = hessian.start_vector(n, flat.dtype)
    print(f"\n== 1. cold top eigenvalue to {TOL:g}: FCN d={args.depth} w={args.width}, {args.n} MNIST "
          f"examples, float32, n = {n:,} parameters")

    lin = jax.jit(lambda p: hessian.linearized_hvp(f, p))
    alphas, betas = reference_tridiag(hessian.linearized_hvp(f, flat), v0, args.ref_order)
    ref = ritz_prefix(alphas, betas, args.ref_order)
    half = ritz_prefix(alphas, betas, args.ref_order // 2)
    k_need = next(k for k in range(1, args.ref_order + 1) if rel(ritz_prefix(alphas, betas, k), ref) <= TOL)
    print(f"   reference: order {args.ref_order} lambda_1 = {ref:.6g} (order {args.ref_order // 2}: "
          f"{rel(half, ref):.1e} rel.); the smallest order within {TOL:g} of it: {k_need}")

    grad = jax.jit(jax.grad(f))
    tangents = jax.jit(lambda p, v, m: jax.lax.fori_loop(
        0, m, lambda _, u: hessian.normalize(hessian.linearized_hvp(f, p)(u), u), v), static_argnums=2)
    adaptive = jax.jit(lambda p, v: hessian.lanczos(hessian.linearized_hvp(f, p), v, args.cap, TOL))
    gap = jax.jit(lambda p, v: hessian.lanczos(hessian.linearized_hvp(f, p), v, args.cap, TOL, True))

    def before(p, v):  # the library before: order-20 Lanczos on jvp(grad), + 1 residual product
        mv = hessian.hvp(f, p)
        eig = hessian.lanczos(mv, v, 20, 0.0)
        resid = jnp.linalg.norm(mv(eig.vector) - eig.value * eig.vector) / jnp.abs(eig.value)
        return eig.value, resid
    before = jax.jit(before)
    for fn in (lambda: grad(flat), lambda: tangents(flat, v0, 10), lambda: tangents(flat, v0, 1),
               lambda: adaptive(flat, v0), lambda: gap(flat, v0), lambda: before(flat, v0)):
        block(fn())  # compile
    t_grad, _, _ = timing.timed(lambda: grad(flat), args.repeats)
    t1, _, _ = timing.timed(lambda: tangents(flat, v0, 1), args.repeats)
    t10, _, _ = timing.timed(lambda: tangents(flat, v0, 10), args.repeats)
    t_tan = (t10 - t1) / 9
    t_floor = t_grad + k_need * t_tan
    t_ad, _, eig = timing.timed(lambda: adaptive(flat, v0), args.repeats)
    t_gap, _, eig_gap = timing.timed(lambda: gap(flat, v0), args.repeats)
    t_bf, _, (v_bf, _) = timing.timed(lambda: before(flat, v0), args.repeats)
    ok = all(rel(e.value, ref) <= TOL and rel(e.value, ref) <= float(e.bound) + 1e-7 for e in (eig, eig_gap))
    print(f"   one primal + gradient {1e3 * t_grad:.0f} ms; one tangent product {1e3 * t_tan:.0f} ms")
    print(f"   {'':28s}{'products':>9s}{'time s':>9s}{'rel. error':>12s}{'bound':>10s}{'vs floor':>10s}")
    print(f"   {'floor (needed products)':28s}{k_need:9d}{t_floor:9.2f}{'<= 1e-03':>12s}{'':>10s}{1:9.2f}x")
    for name, e, t in (("adaptive, residual bound", eig, t_ad), ("adaptive, + gap estimate", eig_gap, t_gap)):
        print(f"   {name:28s}{int(e.n_matvec):9d}{t:9.2f}{rel(e.value, ref):12.1e}"
              f"{float(e.bound):10.1e}{t / t_floor:9.2f}x")
    print(f"   {'before (order 20 + resid.)':28s}{21:9d}{t_bf:9.2f}{rel(v_bf, ref):12.1e}{'':>10s}"
          f"{t_bf / t_floor:9.2f}x")
    print(f"   adaptive (default) vs before: {t_bf / t_ad:.2f}x faster; claimed accuracy met: {ok}")
    return ok


def part_tracked(args):
    print(f"\n== 2. tracked sharpness, tol {TOL:g}, warm starts, 10 SGD steps (book settings)")
    print(f"   {'run':16s}{'rule':10s}{'products per step (steps 1-10)':>42s}{'median':>8s}{'max err':>10s}{'ok':>4s}")
    all_k, all_ok = {False: [], True: []}, True
    for (d, w, c) in ((4, 256, 2.5), (4, 256, 8.0), (8, 32, 8.0)):
        for gap in (False, True):
            cfg = sweep.SweepConfig(dataset="mnist", n_train=4096, n_measure=512, depths=(d,), widths=(w,),
                                    seeds=(1,), train=train.TrainConfig(batch_size=512, num_steps=10,
                                                                        sharpness_gap_bound=gap))
            pt = sweep.Point(cfg, d, w)
            cs = jnp.asarray([[c]])
            tr = train.run_grid(pt.model, pt.params, pt.aux, pt.lam0, cs, pt.data, pt.batches, cfg.train)
            k = np.asarray(tr.sharpness_matvecs)[0, 0, 1:]
            lam = np.asarray(tr.sharpness)[0, 0, 1:]
            if not gap:  # the reference at the same parameters, once per run
                p, refs = pt.params, []
                one = cfg.train.replace(num_steps=1, measure_sharpness=False)
                lf = train.loss_fn(pt.model, "mse")
                ref_fn = jax.jit(lambda q, a: hessian.loss_sharpness(
                    lambda r: lf(r, a, pt.data.x_meas, pt.data.y_meas), q, None, "lanczos", args.ref_order, 0.0).value)
                for t in range(10):
                    step, p = train.run_grid(pt.model, p, pt.aux, pt.lam0, cs, pt.data, pt.batches[t:t + 1], one,
                                             return_params=True)
                    p = jax.tree.map(lambda a: a[:, 0], p)
                    assert abs(float(step.loss[0, 0, 1]) - float(tr.loss[0, 0, t + 1])) <= 1e-5 * abs(float(step.loss[0, 0, 1]))
                    refs.append(float(ref_fn(jax.tree.map(lambda a: a[0], p), jax.tree.map(lambda a: a[0], pt.aux))))
            errs = [rel(lam[t], refs[t]) for t in range(10)]
            ok = max(errs) <= TOL
            all_ok &= ok or gap  # the gap estimate is opt-in and not rigorous: reported, not required
            all_k[gap] += list(k)
            print(f"   d={d} w={w} c={c:<4g}{'gap' if gap else 'residual':10s}{' '.join(f'{v:3d}' for v in k):>42s}"
                  f"{np.median(k):8.1f}{max(errs):10.1e}{'yes' if ok else 'NO':>4s}")
    for gap in (False, True):
        print(f"   {'gap estimate' if gap else 'residual bound (default)'}: {len(all_k[gap])} measurements, median "
              f"{np.median(all_k[gap]):.1f} products (before: 21), max {max(all_k[gap])}")
    print(f"   every default estimate within {TOL:g} of the reference: {all_ok}")
    return all_ok


CRIT = r"""
import json, os, resource, sys, time
t0 = time.perf_counter()
from earlytrain import sweep
extra = {} if os.environ.get("BENCH_EARLY_EXIT", "1") == "1" else {"search_early_exit": False}
cfg = sweep.from_params(dataset="mnist", depths=[4], widths=[256], seeds=[1, 2, 3], n_train=4096,
                        n_measure=512, batch_size=512, num_steps=10, T1=10, x_min=0.0, x_max=6.0,
                        x_step=0.1, search="bisect", **extra)
ds = sweep.critical_point(cfg)
out = {k: [float(v) for v in ds[k].values] for k in ("c_loss", "c_sharp", "c_max", "lambda0")}
out["wall"] = time.perf_counter() - t0
ru = resource.getrusage(resource.RUSAGE_SELF)
out["cpu"] = ru.ru_utime + ru.ru_stime
out["runs"] = [int(ds.attrs["n_loss_runs"]), int(ds.attrs["n_sharpness_runs"])]
out["matvecs"] = int(ds.attrs["n_sharpness_matvecs"])
print("RESULT " + json.dumps(out))
"""


def _crit_in(lib: Path, jax_cache: str = "", early_exit: bool = True) -> dict:
    """One critical_point in a fresh process, empty results cache; ``jax_cache``: the persistent
    compilation cache directory ('' = off), at the threshold the book and tests use;
    ``early_exit`` False: ``search_early_exit=False`` (a library that has it)."""
    with tempfile.TemporaryDirectory() as res:
        env = {**os.environ, "PYTHONPATH": str(lib), "EARLYTRAIN_RESULTS": res, "JAX_COMPILATION_CACHE_DIR": jax_cache,
               "EARLYTRAIN_DATA": str(et_data.data_dir()),  # a worktree has no data/
               "BENCH_EARLY_EXIT": "1" if early_exit else "0"}
        env.pop("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", None)
        if jax_cache:
            env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = jaxcache.MIN_COMPILE_SECS
        out = subprocess.run([sys.executable, "-c", CRIT], env=env, capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"critical_point with the library in {lib} failed:\n{out.stderr[-3000:]}")
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def part_critical(args):
    print(f"\n== 3. one critical_point (d=4, w=256, MNIST, seeds 1-3, bisection, book settings), a fresh "
          f"process each, the compilation cache warm (filled by one run of each first); then "
          f"{args.crit_repeats} rounds of before and after in turn", flush=True)
    show = lambda name, r: print(f"   {name:32s} wall {r['wall']:6.1f} s  CPU {r['cpu']:6.1f} s  products "
                                 f"{r['matvecs']:5d}  runs (loss, sharpness) {r['runs']}  load {os.getloadavg()[0]:.1f}",
                                 flush=True)
    print(f"   load average before: {os.getloadavg()[0]:.1f}", flush=True)
    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryDirectory() as jc:
        wt = Path(tmp) / "baseline"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(wt), args.baseline_rev],
                       check=True, capture_output=True)
        before_name, after_name = f"before ({args.baseline_rev})", "after (this tree)"
        try:
            show(f"{before_name}, compiles", _crit_in(wt / "lib", jc))  # fill the compilation cache
            show(f"{after_name}, compiles", _crit_in(ROOT / "lib", jc))
            off = _crit_in(ROOT / "lib", jc, early_exit=False)  # the old code path: constants, products
            show("this tree, early exit off, compiles", off)
            res = {before_name: [], after_name: []}
            for _ in range(args.crit_repeats):
                for name, lib in ((before_name, wt / "lib"), (after_name, ROOT / "lib")):
                    res[name].append(_crit_in(lib, jc))
                    show(name, res[name][-1])
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(wt)], capture_output=True)
    med = lambda rs, k: float(np.median([r[k] for r in rs]))
    base, new = res[before_name], res[after_name]
    for name, rs in res.items():
        print(f"   {name:32s} median wall {med(rs, 'wall'):6.1f} s, CPU {med(rs, 'cpu'):6.1f} s")
    print(f"   constants: c_loss {base[0]['c_loss']}  c_sharp {base[0]['c_sharp']}  c_max {base[0]['c_max']}")
    same = all(r[k] == base[0][k] for r in base + new + [off] for k in ("c_loss", "c_sharp", "c_max")) \
        and all(r["lambda0"] == off["lambda0"] for r in new)
    dl0 = max(rel(a, b) for a, b in zip(new[0]["lambda0"], base[0]["lambda0"]))
    print(f"   speed-up {med(base, 'wall') / med(new, 'wall'):.2f}x wall, {med(base, 'cpu') / med(new, 'cpu'):.2f}x CPU; "
          f"products {base[0]['matvecs']} (before), {off['matvecs']} (early exit off) -> {new[0]['matvecs']}; "
          f"same constants: {same}; lambda_0 differs from before by at most {dl0:.1e} (relative)")
    print(f"   load average after: {os.getloadavg()[0]:.1f}")
    return same


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--parts", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--width", type=int, default=512)
    ap.add_argument("--n", type=int, default=2048)
    ap.add_argument("--cap", type=int, default=40, help="products cap (the book: 2 x 20 for lambda_0)")
    ap.add_argument("--ref-order", type=int, default=80)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--baseline-rev", default="bb60475",
                    help="git revision of the library part 3 compares with (before the early exit)")
    ap.add_argument("--crit-repeats", type=int, default=3, help="rounds of part 3")
    args = ap.parse_args(argv)
    print(f"jax {jax.__version__}, devices {jax.devices()}")
    ok = True
    if 1 in args.parts:
        ok &= part_cold(args)
    if 2 in args.parts:
        ok &= part_tracked(args)
    if 3 in args.parts:
        ok &= part_critical(args)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
