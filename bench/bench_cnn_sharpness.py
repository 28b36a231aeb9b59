"""Benchmark: where the time of a CNN sharpness measurement goes, XLA convolution vs patches.

The setting is chapter 07's c_sharp search: a Myrtle-5 CNN (default 8 channels) on
Fashion-MNIST, a 64-example measurement subset, SGD on 64-example batches, T = 10 steps,
2 seeds, Lanczos of order 20 (+1 product for the residual) after every step. ``--arch resnet``
runs the BN-free ResNet-18 on CIFAR-10 instead.

Part 1, the mechanism: one 3x3 conv layer (``--layer-channels`` in and out, SAME padding) on
64 images of 28x28, loss sum(tanh(conv(x))^2). A Hessian-vector product in the kernel at the top
level of a jitted function, and ``--loop`` of them inside a ``lax.fori_loop`` (time per product),
for XLA's convolution and for ``cnn.conv_patches``.

Part 2, the network. For each implementation of ``cnn.conv_module`` / ``cnn.pool_module``
("xla": lax.conv_general_dilated and nn.avg_pool, the library's code before; "patches": the
patches @ kernel product and a reshape-mean pool), each piece is compiled ahead of time and the
compile time (trace + lower, and XLA compile) is printed apart from the execution time (median
of ``--repeats`` calls after a warm-up call):

  1. the loss (a forward pass) on the measurement subset;
  2. one Hessian-vector product at the top level of a jitted function;
  3. ``--loop`` HVPs inside a ``lax.fori_loop`` (time per product): the context every HVP of the
     library runs in (Lanczos is a ``lax.scan``, a run is a ``lax.scan`` over steps);
  4. one sharpness measurement, ``train.measure_sharpness`` (Lanczos, order ``--order``);
  5. one T-step run of all seeds with the sharpness after every step (``train.run_grid``, one c
     per seed, the library's default batching), and the same run without the sharpness.

Ratios are measured within the run: xla / patches per piece, loop / top-level per HVP, and the
run's time against T sharpness measurements. Same numbers: lambda_0 and the runs' losses and
sharpness must agree between the two implementations to float32 rounding (relative 1e-3, as
bench_sweep.py: a catapulting run amplifies rounding); otherwise the script exits with 1.

Run:  .venv/bin/python bench/bench_cnn_sharpness.py [--arch myrtle] [--width 8] [--n-measure 64]
      [--batch 64] [--steps 10] [--seeds 2] [--order 20] [--c 4] [--loop 5] [--repeats 3]
      [--impls patches xla] [--layer-channels 8 32] [--no-layer] [--no-network]
"""
from __future__ import annotations

import argparse
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

import timing
from earlytrain import cnn, hessian, losses, models, sweep, train
from earlytrain.train import TrainConfig

DATASET = {"myrtle": "fashion_mnist", "resnet": "cifar10"}
DEPTH = {"myrtle": 5, "resnet": 18}


def build(arch, depth, width, impl):
    """A library Model whose convolutions use ``impl``: the book's module, built as a network of
    one's own (models.network), since ModelConfig leaves conv_impl to the device's default."""
    builder = {"myrtle": cnn.myrtle, "resnet": cnn.resnet}[arch]
    return models.build(models.network(builder(depth=depth, width=width, conv_impl=impl)))


def aot(fn, *args, repeats=3, **static):
    """(trace+lower s, compile s, median execute s, result) of jitted fn, compiled ahead of time."""
    t0 = time.perf_counter()
    lowered = jax.jit(fn, static_argnames=tuple(static)).lower(*args, **static)
    t1 = time.perf_counter()
    compiled = lowered.compile()
    t2 = time.perf_counter()
    timing.block(compiled(*args))  # warm-up
    t_exec, _, out = timing.timed(lambda: compiled(*args), repeats)
    return t1 - t0, t2 - t1, t_exec, out


def layer(channels, args):
    """Part 1: (top-level HVP s, in-loop HVP s, HVP) per implementation for one conv layer."""
    x = jax.random.normal(jax.random.PRNGKey(0), (64, 28, 28, channels))
    k = jax.random.normal(jax.random.PRNGKey(1), (3, 3, channels, channels)) / (3 * channels ** 0.5)
    dn = ("NHWC", "HWIO", "NHWC")
    convs = {"xla": lambda x, k: jax.lax.conv_general_dilated(x, k, (1, 1), "SAME", dimension_numbers=dn),
             "patches": lambda x, k: cnn.conv_patches(x, k, (1, 1), "SAME", dimension_numbers=dn)}
    out = {}
    for impl in args.impls:
        loss = lambda k, conv=convs[impl]: jnp.sum(jnp.tanh(conv(x, k)) ** 2)  # noqa: E731
        hvp = lambda k, v, loss=loss: jax.jvp(jax.grad(loss), (k,), (v,))[1]  # noqa: E731
        loop = lambda k, v, hvp=hvp: jax.lax.fori_loop(  # noqa: E731
            0, args.loop, lambda i, u: hvp(k, u / jnp.linalg.norm(u)), v)
        *_, t_top, hv = aot(hvp, k, k, repeats=args.repeats)
        *_, t_loop, _ = aot(loop, k, k, repeats=max(1, args.repeats // 2))
        out[impl] = (t_top, t_loop / args.loop, np.asarray(hv, float))
    return out


def measure(impl, args):
    arch, depth = args.arch, DEPTH[args.arch]
    model = build(arch, depth, args.width, impl)
    data = sweep.train_data(DATASET[arch], args.n_train, args.n_measure, 0)
    seeds = list(range(1, args.seeds + 1))
    params, aux = models.init_many(model, models.seed_keys(seeds), data.x_meas)
    p1, a1 = jax.tree.map(lambda a: a[0], (params, aux))
    loss = lambda p: losses.mse(model.apply(p, a1, data.x_meas), data.y_meas)  # noqa: E731
    flat, f = hessian.flat_loss(loss, p1)
    v = hessian.start_vector(flat.shape[0], flat.dtype)
    rows, r = {}, args.repeats

    rows["loss (forward)"] = aot(lambda p: f(p), flat, repeats=r)
    rows["1 HVP, top level"] = aot(lambda p, v: hessian.hvp(f, p)(v), flat, v, repeats=r)

    def loop(p, v):
        mv = hessian.hvp(f, p)
        return jax.lax.fori_loop(0, args.loop, lambda i, u: mv(u / jnp.linalg.norm(u)), v)
    tl, tc, te, _ = aot(loop, flat, v, repeats=r)
    rows["1 HVP, in fori_loop"] = (tl, tc, te / args.loop, None)

    tcfg = TrainConfig(loss="mse", batch_size=args.batch, num_steps=args.steps, sharpness_iters=args.order)
    rows["1 sharpness (Lanczos)"] = aot(
        lambda p: train.measure_sharpness(model, p, a1, data.x_meas, data.y_meas, tcfg), p1, repeats=r)

    lam0 = train.initial_sharpness(model, params, aux, data, tcfg)
    batches = jnp.asarray(train.batch_schedule(args.n_train, args.batch, args.steps, tcfg.sgd_seed))
    c = jnp.full((len(seeds), 1), args.c)
    out = {"lam0": np.asarray(lam0.value, float)}
    for sharp in (True, False):
        cfg = tcfg.replace(measure_sharpness=sharp)
        key = f"{args.steps}-step run x {len(seeds)} seeds, " + ("sharpness" if sharp else "loss only")
        rows[key] = aot(lambda p, a, l, cc, b: train.run_grid(model, p, a, l, cc, data, b, cfg),
                        params, aux, lam0, c, batches, repeats=max(1, r // 2))
        tr = rows[key][3]
        out["loss" if not sharp else "loss_s"] = np.asarray(tr.loss, float)
        if sharp:
            out["sharpness"] = np.asarray(tr.sharpness, float)
    return model, flat.shape[0], rows, out


def rel_diff(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    ok = np.isfinite(a) & np.isfinite(b)
    same_nan = bool(np.array_equal(np.isnan(a), np.isnan(b)))
    if not ok.any():
        return 0.0, same_nan
    return float(np.max(np.abs(a[ok] - b[ok]) / np.maximum(np.abs(a[ok]), 1e-30))), same_nan


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", choices=tuple(DATASET), default="myrtle")
    ap.add_argument("--width", type=int, default=8)
    ap.add_argument("--n-train", type=int, default=256)
    ap.add_argument("--n-measure", type=int, default=64)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--order", type=int, default=20, help="Lanczos order per measurement")
    ap.add_argument("--c", type=float, default=4.0, help="c = eta * lambda_0 of the timed runs")
    ap.add_argument("--loop", type=int, default=5, help="HVPs in the fori_loop timing")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--impls", nargs="+", choices=cnn.CONV_IMPLS, default=list(cnn.CONV_IMPLS))
    ap.add_argument("--layer-channels", type=int, nargs="+", default=[8, 32])
    ap.add_argument("--no-layer", action="store_true", help="skip part 1")
    ap.add_argument("--no-network", action="store_true", help="skip part 2")
    args = ap.parse_args(argv)
    print(f"jax {jax.__version__}, devices {jax.devices()}, default conv_impl here: {cnn.default_conv_impl()}")
    ok = True
    if not args.no_layer:
        print(f"\n== one 3x3 conv layer, 64 images 28x28: ms per Hessian-vector product (in the kernel), "
              f"top level vs in a fori_loop of {args.loop}")
        print(f"   {'channels':>8s}" + "".join(f"{i + ' top':>14s}{i + ' loop':>14s}{'loop/top':>10s}" for i in args.impls)
              + ("   loop xla/patches  rel. diff" if len(args.impls) == 2 else ""))
        for ch in args.layer_channels:
            r = layer(ch, args)
            line = f"   {ch:8d}" + "".join(f"{1e3 * r[i][0]:14.1f}{1e3 * r[i][1]:14.1f}{r[i][1] / r[i][0]:9.1f}x"
                                        for i in args.impls)
            if len(args.impls) == 2:
                d = float(np.abs(r["xla"][2] - r["patches"][2]).max() / np.abs(r["xla"][2]).max())
                ok &= d < 1e-4
                line += f"{r['xla'][1] / r['patches'][1]:18.1f}x{d:11.1e}"
            print(line, flush=True)
    if args.no_network:
        return 0 if ok else 1
    res = {}
    for impl in args.impls:
        t0 = time.perf_counter()
        _, n, rows, out = measure(impl, args)
        res[impl] = (rows, out)
        print(f"   ({impl}: {time.perf_counter() - t0:.0f} s for its measurements)", flush=True)
    print(f"\n== {args.arch}-{DEPTH[args.arch]} width {args.width} on {DATASET[args.arch]}, {n:,} params, "
          f"measurement subset {args.n_measure}, SGD batch {args.batch}, T = {args.steps}, {args.seeds} seeds, "
          f"Lanczos order {args.order}, c = {args.c:g}")
    impls = list(res)
    print(f"   {'':40s}" + "".join(f"{i:^36s}" for i in impls))
    head = "".join(f"{'lower':>12s}{'compile':>12s}{'execute':>12s}" for _ in impls)
    print(f"   {'piece (seconds)':40s}{head}" + ("  execute xla/patches" if len(impls) == 2 else ""))
    for key in res[impls[0]][0]:
        cells = "".join(f"{res[i][0][key][0]:12.2f}{res[i][0][key][1]:12.2f}{res[i][0][key][2]:12.4f}" for i in impls)
        ratio = f"{res['xla'][0][key][2] / res['patches'][0][key][2]:20.1f}x" if len(impls) == 2 else ""
        print(f"   {key:40s}{cells}{ratio}")
    run_key = f"{args.steps}-step run x {args.seeds} seeds, sharpness"
    for i in impls:
        rows = res[i][0]
        loop_vs_top = rows["1 HVP, in fori_loop"][2] / rows["1 HVP, top level"][2]
        sharp_share = args.steps * args.seeds * rows["1 sharpness (Lanczos)"][2] / rows[run_key][2]
        print(f"   {i}: an HVP in a loop costs {loop_vs_top:.1f}x one at the top level; "
              f"{args.steps} x {args.seeds} sharpness measurements = {100 * sharp_share:.0f}% of the run with sharpness; "
              f"sharpness / loss-only run: {rows[run_key][2] / rows[run_key.replace('sharpness', 'loss only')][2]:.0f}x")
    if len(impls) == 2:
        a, b = res["xla"][1], res["patches"][1]
        print("   same numbers (max relative difference xla vs patches):")
        for k in ("lam0", "loss", "loss_s", "sharpness"):
            d, same_nan = rel_diff(a[k], b[k])
            good = d < 1e-3 and same_nan
            ok &= good
            print(f"     {k:10s} {d:.1e}  NaN pattern {'same' if same_nan else 'DIFFERENT'}  -> {'OK' if good else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
