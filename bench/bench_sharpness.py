"""Benchmark: top-Hessian-eigenvalue estimators (``hessian.lanczos``, ``hessian.power_iteration``).

Part 1, against a dense reference. A ReLU FCN small enough that its Hessian fits in memory
(depth 3, width 24 on 256 MNIST images average-pooled 4x4 to 7x7: 1,992 parameters, MSE loss
at initialisation). The exact top eigenvalue comes from
``numpy.linalg.eigvalsh(hessian.dense_hessian(...))`` in float64 (jax x64), timed (Hessian and
eigendecomposition separately, compile excluded). For each estimator (in float64 and in the
float32 training uses) the smallest Lanczos order / number of power iterations reaching a
relative error of 1e-3 is found by increasing it, and the estimator is then timed at that
setting: ratios dense time / estimator time and dense HVP-equivalents (n) / estimator HVPs.

Part 2, a realistic network (depth 4, width 256, 1024 MNIST examples, float32, ~335k
parameters; no dense Hessian possible): time per Hessian-vector product, and the relative error
of Lanczos and power iteration at equal budgets of 10, 20, 40 products against a high-order
Lanczos reference.

Run:  .venv/bin/python bench/bench_sharpness.py [--width 24] [--pool 4] [--n 256] [--big-width 256]
      [--big-n 1024] [--ref-order 80] [--repeats 5] [--tol 1e-3]
"""
from __future__ import annotations

import argparse
import sys
import time

import jax

jax.config.update("jax_enable_x64", True)  # the dense reference is float64

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from earlytrain import data as et_data  # noqa: E402
import krylov  # noqa: E402
import timing  # noqa: E402
from timing import block  # noqa: E402
from earlytrain import hessian, losses, models  # noqa: E402
from earlytrain.models import ModelConfig  # noqa: E402


def timed(fn, repeats):
    """(median wall time, last result) of ``repeats`` calls of fn()."""
    median, _, out = timing.timed(fn, repeats)
    return median, out


def cast(tree, dtype):
    return jax.tree.map(lambda a: jnp.asarray(a, dtype), tree)


def problem(depth, width, n, pool, dtype, seed=1):
    """(flat params [n_params], flat loss f) for an FCN at init on n MNIST examples."""
    d = et_data.load("mnist", n=n, seed=0)
    x = d.x
    if pool > 1:
        b, h, w, c = x.shape
        x = x.reshape(b, h // pool, pool, w // pool, pool, c).mean((2, 4))
    x, y = jnp.asarray(x, dtype), jnp.asarray(d.y, dtype)
    model = models.build(ModelConfig(depth=depth, width=width))
    params, aux = model.init(jax.random.PRNGKey(seed), x)
    params, aux = cast(params, dtype), cast(aux, dtype)
    loss = lambda p: losses.mse(model.apply(p, aux, x), y)  # noqa: E731
    flat, f = hessian.flat_loss(loss, params)
    return flat, f, loss, params


def make_estimators(f):
    """Jitted (p, v0) -> Eig for fixed-order Lanczos (tol = 0, order static) and power iteration
    (tol = 0, iterations traced, so one compile serves every count); and the recurrence of one
    long Lanczos run (its prefixes give every order). Products share one linearization."""
    lanczos = jax.jit(lambda p, v0, order: hessian.lanczos(hessian.linearized_hvp(f, p), v0, order, 0.0),
                      static_argnums=2)
    power = jax.jit(lambda p, v0, k: hessian.power_iteration(hessian.linearized_hvp(f, p), v0, k, 0.0))

    def tridiag(p, v0, order):
        return krylov.tridiag(hessian.linearized_hvp(f, p), v0, order)
    return lanczos, power, tridiag


def rel(est, ref):
    return abs(float(est) - ref) / abs(ref)


def first_lanczos_order(flat, v0, tridiag, lam, tol, max_order):
    """Smallest order whose top Ritz value is within tol (from one long run's prefixes)."""
    alphas, betas = tridiag(flat, v0, max_order)
    for m in range(2, max_order + 1):
        if rel(ritz_top(alphas, betas, m), lam) < tol:
            return m
    return None


def first_power_iters(flat, v0, power, lam, tol, max_iters):
    """Smallest iteration count within tol: doubling, then bisection (errors are ~monotone)."""
    err = lambda k: rel(power(flat, v0, k).value, lam)  # noqa: E731
    k_prev, k = 0, 1
    while err(k) >= tol:
        if k >= max_iters:
            return None
        k_prev, k = k, min(2 * k, max_iters)
    lo, hi = k_prev, k  # err(lo) >= tol (or lo = 0), err(hi) < tol
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if err(mid) < tol else (mid, hi)
    return hi


def part_dense(args):
    flat64, f64, loss64, params64 = problem(args.depth, args.width, args.n, args.pool, jnp.float64)
    n = flat64.shape[0]
    dense = jax.jit(lambda p: hessian.dense_hessian(loss64, p))
    t0 = time.perf_counter()
    block(dense(params64))
    t_first = time.perf_counter() - t0
    t_hess, H = timed(lambda: dense(params64), max(1, args.repeats // 2))
    Hn = np.asarray(H)
    t0 = time.perf_counter()
    evals = np.linalg.eigvalsh(Hn)
    t_eig = time.perf_counter() - t0
    t_dense = t_hess + t_eig
    lam, lam2, lam_min = float(evals[-1]), float(evals[-2]), float(evals[0])
    print(f"\n== dense reference: FCN depth {args.depth} width {args.width}, {args.n} MNIST examples "
          f"pooled to {28 // args.pool}x{28 // args.pool}, MSE at init, n = {n:,} params "
          f"(Hessian {Hn.nbytes / 2**20:.0f} MiB float64)")
    print(f"   lambda_1 = {lam:.6g}, lambda_2 = {lam2:.6g} (lambda_2/lambda_1 = {lam2 / lam:.4f}), "
          f"lambda_min = {lam_min:.3g}, symmetric to {np.max(np.abs(Hn - Hn.T)):.1e}")
    print(f"   dense time: Hessian {t_hess:.2f} s (+{max(t_first - t_hess, 0):.2f} s compile) + "
          f"eigvalsh {t_eig:.2f} s = {t_dense:.2f} s")
    print(f"   {'estimator':18s}{'iters to':>9s}{'HVPs':>6s}{'rel err':>10s}{'residual':>10s}"
          f"{'time ms':>9s}{'dense/est time':>16s}{'n/HVPs':>8s}")
    rows = []
    for dtype in (jnp.float64, jnp.float32):
        if dtype == jnp.float64:
            flat, f = flat64, f64
        else:
            flat, f, _, _ = problem(args.depth, args.width, args.n, args.pool, jnp.float32)
        v0 = hessian.start_vector(n, dtype)
        lanczos, power, tridiag = make_estimators(f)
        tag = "f64" if dtype == jnp.float64 else "f32"
        m = first_lanczos_order(flat, v0, tridiag, lam, args.tol, min(n, args.max_order))
        while m is not None and rel(lanczos(flat, v0, m).value, lam) >= args.tol and m < n:
            m += 1  # (the library call should agree with the prefix; guard anyway)
        k = first_power_iters(flat, v0, power, lam, args.tol, args.max_power)
        for name, it, fn in (("lanczos", m, lambda: lanczos(flat, v0, m)),
                             ("power", k, lambda: power(flat, v0, k))):
            if it is None:
                print(f"   {name + ' ' + tag:18s}  not within the limit")
                continue
            block(fn())  # compile
            t, eig = timed(fn, args.repeats)
            hv = int(eig.n_matvec)
            print(f"   {name + ' ' + tag:18s}{it:9d}{hv:6d}{rel(eig.value, lam):10.1e}"
                  f"{float(eig.residual):10.1e}{1e3 * t:9.1f}{t_dense / t:15.0f}x{n / hv:7.0f}x")
            rows.append((name, tag, it, hv, t))
    return rows


def part_big(args):
    flat, f, _, _ = problem(args.big_depth, args.big_width, args.big_n, 1, jnp.float32)
    n = flat.shape[0]
    v0 = hessian.start_vector(n, jnp.float32)
    hvp = jax.jit(lambda p, v: hessian.linearized_hvp(f, p)(v))
    block(hvp(flat, v0))
    t_hvp, _ = timed(lambda: hvp(flat, v0), 4 * args.repeats)
    lanczos, power, tridiag = make_estimators(f)
    t0 = time.perf_counter()
    alphas, betas = block(tridiag(flat, v0, args.ref_order))
    t_ref = time.perf_counter() - t0
    ritz = np.linalg.eigvalsh(np.diag(np.asarray(alphas, float)) + np.diag(np.asarray(betas, float), 1)
                             + np.diag(np.asarray(betas, float), -1))
    ref, ref_ratio = ritz[-1], ritz[-2] / ritz[-1]
    ref_half = ritz_top(alphas, betas, args.ref_order // 2)
    print(f"\n== realistic network: FCN depth {args.big_depth} width {args.big_width}, {args.big_n} "
          f"MNIST examples, float32, MSE at init, n = {n:,} params")
    print(f"   time per HVP: {1e3 * t_hvp:.1f} ms (median of {4 * args.repeats})")
    print(f"   reference: Lanczos order {args.ref_order}, lambda_1 = {ref:.6g} "
          f"(order {args.ref_order // 2} differs by {rel(ref_half, ref):.1e} rel.; second Ritz value / "
          f"lambda_1 = {ref_ratio:.4f}; {t_ref:.1f} s incl. compile)")
    print(f"   {'HVP budget':>10s}{'lanczos err':>13s}{'power err':>11s}{'power/lanczos':>15s}"
          f"{'lanczos ms':>12s}{'power ms':>10s}")
    for budget in args.budgets:
        el = lanczos(flat, v0, budget)  # order m costs m products (the residual is free)
        ep = power(flat, v0, budget)    # k iterations cost k products
        assert int(el.n_matvec) == budget and int(ep.n_matvec) == budget, (el.n_matvec, ep.n_matvec)
        tl, _ = timed(lambda: lanczos(flat, v0, budget), max(1, args.repeats // 2))
        tp, _ = timed(lambda: power(flat, v0, budget), max(1, args.repeats // 2))
        a, b = rel(el.value, ref), rel(ep.value, ref)
        print(f"   {budget:10d}{a:13.1e}{b:11.1e}{b / max(a, 1e-12):14.2g}x{1e3 * tl:12.0f}{1e3 * tp:10.0f}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument("--width", type=int, default=24)
    ap.add_argument("--n", type=int, default=256, help="examples (dense part)")
    ap.add_argument("--pool", type=int, default=4, help="average-pool the images by this (dense part)")
    ap.add_argument("--tol", type=float, default=1e-3)
    ap.add_argument("--max-order", type=int, default=200)
    ap.add_argument("--max-power", type=int, default=20000)
    ap.add_argument("--big-depth", type=int, default=4)
    ap.add_argument("--big-width", type=int, default=256)
    ap.add_argument("--big-n", type=int, default=1024)
    ap.add_argument("--ref-order", type=int, default=80)
    ap.add_argument("--budgets", type=int, nargs="+", default=[10, 20, 40])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-big", action="store_true", help="skip part 2")
    args = ap.parse_args(argv)
    print(f"jax {jax.__version__}, devices {jax.devices()}")
    part_dense(args)
    if not args.no_big:
        part_big(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
