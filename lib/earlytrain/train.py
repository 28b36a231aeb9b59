"""Early training as data: one run is a ``lax.scan`` over steps; many runs are ``vmap``s of it.

The learning rate is ``eta = c / lambda_0``, computed inside the traced function from the
constant c and the measured initial sharpness, so a sweep over many c compiles once per shape.
All runs of a sweep share the initialisation (per seed) and the order of the SGD batches
(common random numbers), so differences between c are not sampling noise.

Measurement: loss, accuracy and sharpness are measured after every step on a fixed,
declared measurement subset (``TrainData.x_meas``) that never consumes SGD batches (unlike the
authors' demo code, ``estimate_hessian``, which measures lambda_t on the next SGD batch and then
skips it).

Divergence: a run whose minibatch loss or measured loss exceeds ``div_threshold`` (K = 1e5) or
is not finite is marked diverged at that step. Its parameters are frozen from then on, its later
metrics are NaN *markers* and its ``diverged`` flag stays True. Nothing non-finite is ever fed
back into the computation, so no NaN reaches other runs of the same batch.
"""
from __future__ import annotations

import dataclasses
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree
import numpy as np
import optax

from . import hessian, losses
from .errors import check, check_bool, check_choice, check_int, check_positive, check_real, is_real, strict_init
from .models import Model

OPTIMIZERS = ("sgd", "gd")
# float32 matmul / convolution precision (jax.lax.Precision names). On recent NVIDIA GPUs JAX's
# "default" may run float32 products in TF32 (~1e-3 relative error per product: the size of the
# sharpness tolerance), "high" in bf16_3x; "highest" is full float32, the same as on this CPU.
MATMUL_PRECISIONS = ("highest", "high", "default")


@strict_init
@dataclass(frozen=True)
class TrainConfig:
    loss: str = "mse"                 # "mse" (0.5 * mean) or "xent"
    optimizer: str = "sgd"            # "sgd" (minibatches) or "gd" (full batch over the pool)
    batch_size: int = 512             # SGD batch size B
    num_steps: int = 10               # steps T per run (T1 = 10 in the paper's code)
    div_threshold: float = 1e5        # K: a loss above it counts as diverged
    measure_sharpness: bool = True    # measure lambda_t (the costly part)
    sharpness_every: int = 1          # ... after every k-th step only (NaN in between)
    sharpness_per_decade: int = 0     # > 0: also at this many log-spaced steps per decade
    sharpness_method: str = "lanczos"  # "lanczos" or "power" (the paper's)
    sharpness_iters: int = 20         # cap on the Hessian-vector products of one measurement
    sharpness_tol: float = 1e-3       # relative accuracy at which a measurement stops (0: cap)
    lambda0_tol: float = 1e-4         # ... for lambda_0, the denominator of c and of every ratio
    sharpness_gap_bound: bool = False  # also stop by the Kato-Temple gap *estimate* (fewer
    #                                    products, not rigorous: see hessian; lambda_0 never does)
    sharpness_warm_mix: float = 0.1   # weight of a fixed random vector added to every warm start,
    #                                   so no eigenvector is invisible to the Krylov space [I]
    sgd_seed: int = 1                 # seed J of the batch order (the paper uses J = 1 only)
    matmul_precision: str = "highest"  # of every matmul / convolution of the training steps, the
    #                                    Hessian-vector products and lambda_0 (MATMUL_PRECISIONS)
    hvp_chunk: Optional[int] = None   # examples per Hessian-vector-product chunk, a divisor of the
    #                                   measurement's examples (memory: one chunk's activations live
    #                                   at a time; ``hessian.chunked_hvp``); None: all at once (a
    #                                   sweep picks it from the device's memory, memory.auto_hvp_chunk)
    search_early_exit: bool = True    # a sweep's search runs are computed only until the
    #                                   indicator they answer is decided (``run``'s ``decide``):
    #                                   the same constants, fewer products and steps; False: full runs

    def __post_init__(self):
        check_choice(self.loss, "loss", losses.LOSSES)
        check_choice(self.optimizer, "optimizer", OPTIMIZERS)
        check_int(self.batch_size, "batch_size", minimum=1)
        check_int(self.num_steps, "num_steps", minimum=1)
        check_positive(self.div_threshold, "div_threshold")
        check_bool(self.measure_sharpness, "measure_sharpness")
        check_bool(self.sharpness_gap_bound, "sharpness_gap_bound")
        check_real(self.sharpness_warm_mix, "sharpness_warm_mix", minimum=0)
        check_choice(self.sharpness_method, "sharpness_method", hessian.METHODS)
        check_int(self.sharpness_iters, "sharpness_iters", minimum=1)
        check_int(self.sharpness_every, "sharpness_every", minimum=1)
        check_int(self.sharpness_per_decade, "sharpness_per_decade", minimum=0)
        for name, cap in (("sharpness_tol", "sharpness_iters"), ("lambda0_tol", "2 * sharpness_iters")):
            tol = getattr(self, name)
            check(is_real(tol) and 0 <= tol < 1, name, f"a number in [0, 1) (0: always spend {cap} products)", tol)
        check_int(self.sgd_seed, "sgd_seed", minimum=0)
        check_choice(self.matmul_precision, "matmul_precision", MATMUL_PRECISIONS)
        check_bool(self.search_early_exit, "search_early_exit")
        if self.hvp_chunk is not None:
            check_int(self.hvp_chunk, "hvp_chunk", minimum=1)

    def replace(self, **kw) -> "TrainConfig":
        return dataclasses.replace(self, **kw)


class TrainData(NamedTuple):
    """x [N, ...], y [N, k]: the pool SGD draws from; x_meas [M, ...], y_meas [M, k]: the fixed
    measurement subset for loss, accuracy and sharpness."""
    x: jax.Array
    y: jax.Array
    x_meas: jax.Array
    y_meas: jax.Array


class Trajectory(NamedTuple):
    """Per-step records, step 0 = initialisation; leading axes added by vmap ([S, C, T + 1])."""
    loss: jax.Array              # [T+1] measured loss (NaN after divergence)
    accuracy: jax.Array          # [T+1]
    sharpness: jax.Array         # [T+1] top Hessian eigenvalue (NaN if not measured / diverged)
    sharpness_residual: jax.Array  # [T+1] |Hv - lambda v| / |lambda| of each estimate
    diverged: jax.Array          # [T+1] bool, True from the divergence step on
    sharpness_matvecs: jax.Array   # [T+1] int32 Hessian-vector products spent (0: not measured)
    sharpness_converged: jax.Array  # [T+1] bool: the estimate met its tolerance (False: not
    #                                 measured, or the cap was reached first)
    sharpness_decided: jax.Array   # [T+1] bool: the measurement stopped early because its Ritz
    #                                value decided the run's c_sharp indicator (``run``'s
    #                                ``decide``): the value is a lower bound, not an estimate to
    #                                tolerance; later steps are not measured. Always False for
    #                                full measurements.


def batch_schedule(n: int, batch_size: int, num_steps: int, seed: int) -> np.ndarray:
    """Indices of the SGD batches, [T, B] int32: a fresh permutation of the pool every epoch
    (as the paper's ``data_stream``), the incomplete last batch of an epoch dropped."""
    check(batch_size <= n, "batch_size", f"at most the training-set size n_train = {n}", batch_size)
    rng = np.random.RandomState(seed)
    per_epoch = n // batch_size
    batches = []
    while len(batches) < num_steps:
        perm = rng.permutation(n)
        batches.extend(perm[i * batch_size:(i + 1) * batch_size] for i in range(per_epoch))
    return np.asarray(batches[:num_steps], dtype=np.int32)


def matmul_precision(cfg: TrainConfig):
    """The context in which a run, a sharpness measurement or lambda_0 is traced: every dot and
    convolution without an explicit ``precision=`` (flax's layers, jnp's matmuls, the Lanczos
    vector products) gets ``cfg.matmul_precision`` (``jax.default_matmul_precision`` is read when
    an operation is traced, so this holds inside jit; tests/test_train.py checks the lowered HLO)."""
    return jax.default_matmul_precision(cfg.matmul_precision)


def loss_fn(model: Model, loss_name: str):
    """The training loss as a function (params, aux, x [N, ...], y [N, k]) -> scalar: the mean
    of ``losses.get(loss_name)`` over the N examples of the model's outputs. Every training step,
    loss measurement and Hessian-vector product of a run differentiates this function."""
    loss = losses.get(loss_name)
    return lambda params, aux, x, y: loss(model.apply(params, aux, x), y)


def measure_sharpness(model: Model, params, aux, x, y, cfg: TrainConfig, v0=None,
                      gap_bound: bool | None = None, mix_direction=None, above=None,
                      active=True) -> hessian.Eig:
    """Top Hessian eigenvalue of the training loss on (x, y) at params; v0 [n] warm-starts it.

    Stops when the rigorous residual bound on its relative error is <= cfg.sharpness_tol;
    with gap_bound (default: cfg.sharpness_gap_bound) also by the Kato-Temple gap estimate,
    which needs fewer products but is not rigorous: it claimed accuracy it did not have on
    cross-entropy Hessians with near-degenerate top eigenvalues (bench/README.md), so it is off
    by default. mix_direction: ``warm_start``'s random vector, if computed already (a
    run computes it once, not at every step). above, active: ``hessian.lanczos`` (the early
    exit). Traced at ``cfg.matmul_precision``. The products are over the M examples of x at
    once, or with ``cfg.hvp_chunk`` < M over chunks of that many (``hessian.chunked_hvp``: the
    same products up to summation order, one chunk's activations in memory, each product
    re-running the chunks' forward and backward passes)."""
    lf = loss_fn(model, cfg.loss)
    gap = cfg.sharpness_gap_bound if gap_bound is None else gap_bound
    M = x.shape[0]
    chunk = M if cfg.hvp_chunk is None else cfg.hvp_chunk
    with matmul_precision(cfg):
        if v0 is not None and cfg.sharpness_warm_mix > 0:
            v0 = warm_start(v0, cfg.sharpness_warm_mix, mix_direction)
        if chunk == M:  # one linearization shared by every product of the measurement
            return hessian.loss_sharpness(lambda p: lf(p, aux, x, y), params, v0, cfg.sharpness_method,
                                          cfg.sharpness_iters, cfg.sharpness_tol, gap, above, active)
        flat, unravel = ravel_pytree(params)
        matvec = hessian.chunked_hvp(lambda q, xy: lf(unravel(q), aux, *xy), flat, (x, y), chunk)
        v0 = hessian.start_vector(flat.shape[0], flat.dtype) if v0 is None else v0
        return hessian.top_eigenvalue(matvec, v0, cfg.sharpness_method, cfg.sharpness_iters,
                                      cfg.sharpness_tol, gap, above, active)


def warm_start(v: jax.Array, mix: float, direction=None) -> jax.Array:
    """The start vector of a tracked measurement: the previous top eigenvector v [n] (unit) plus
    ``mix`` times a fixed random unit vector, normalised.

    Why: a Krylov method sees only the eigenvectors its start vector touches. The previous step's
    eigenvector can be (nearly) an eigenvector of another eigenvalue after a large step (a catapult
    flips the top direction of the uv model's 2x2 blocks into a negative eigenvalue's), and a
    stopping rule would then certify that eigenvalue after one product. The random part gives
    every eigenvector a weight ~ mix / sqrt(n) and a residual ~ mix * spread(H) at the first
    product, so the iteration must go on until the top eigenvalue has been found.
    ``direction``: that random unit vector (default: ``hessian.start_vector``, computed here)."""
    r = hessian.start_vector(v.shape[0], v.dtype) if direction is None else direction
    w = v + mix * r
    return w / jnp.linalg.norm(w)


def sharpness_steps(cfg: TrainConfig) -> np.ndarray:
    """Which steps measure the sharpness: bool [T], entry t-1 for the record after step t.

    Every ``sharpness_every``-th step, and with ``sharpness_per_decade`` = n > 0 also the steps
    round(10^(j/n)), j = 0, 1, ... (log-spaced: dense early, sparse late, even on a log time
    axis). Set sharpness_every = num_steps for a purely log-spaced schedule."""
    T = cfg.num_steps
    r = np.arange(1, T + 1)
    mask = r % cfg.sharpness_every == 0
    if cfg.sharpness_per_decade:
        n = cfg.sharpness_per_decade
        logs = np.unique(np.round(10.0 ** (np.arange(int(np.ceil(n * np.log10(T))) + 1) / n)).astype(int))
        mask[logs[logs <= T] - 1] = True
    return mask


DECIDES = ("sharp_rise", "loss")


class Decide(NamedTuple):
    """What a search run must decide (``run(..., decide=...)``), from its steps 1..T1:

    * "sharp_rise": its c_sharp indicator, "max_t rd(lambda_t / lambda_0) > 1 + eps or the run
      diverged" (``phases.sharpness_rises``; needs ``measure_sharpness``);
    * "loss": its c_max indicator (``phases.runs_diverge``) and its c_loss indicator, "max_t
      rd(L_t / L_0) > 1 or the run diverged" (``phases.loss_rises``); with ``loss_rise_stop``
      (a traced argument of ``run``: the same compiled program either way) the c_loss indicator
      only, decided also by the loss rise.

    ``boundary``: the ratio at which the rise indicator turns True (``phases.rise_boundary(decimals,
    eps)``)."""
    T1: int
    boundary: float
    indicator: str = "sharp_rise"


# relative safety margin of an early decision: a Ritz value (or a loss) must exceed the threshold
# by this much (far above float32 rounding of a Ritz value or of a ratio, ~1e-7; far below
# sharpness_tol)
DECIDE_MARGIN = 1e-5


def decide_threshold(lam0: hessian.Eig, decide: Decide):
    """The sharpness above which a run's c_sharp indicator is decided True: lambda_0's estimate
    times its own error bound (a Ritz value is a lower bound, the truth lies within ``bound``
    above it), times the indicator's boundary ratio, times 1 + DECIDE_MARGIN. A measurement
    above it makes both the indicator on the estimates (what the sweep computes, so the
    constants are the current engine's) and the one on the true eigenvalues True.
    inf where lambda_0 is not a finite positive estimate with a finite bound (never decides)."""
    return _rise_threshold(lam0.value * (1 + lam0.bound), lam0.value, decide)


def loss_threshold(loss0, decide: Decide):
    """The measured loss above which a run's c_loss indicator is decided True: L_0 times the
    boundary ratio times 1 + DECIDE_MARGIN. The indicator is computed from the recorded losses
    (float32 values, their ratio in float64); a loss above this threshold (a float32 product,
    relative error ~1e-7) has a ratio above the boundary, so the recorded run gives True, as the
    full run would (a max over steps). inf where L_0 is not finite and positive (never decides)."""
    return _rise_threshold(loss0, loss0, decide)


def _rise_threshold(upper, ref, decide: Decide):
    """upper x the boundary ratio x (1 + DECIDE_MARGIN), in ref's dtype; inf (never decides)
    where that is not finite or ref (the quantity at step 0) is not positive."""
    thr = upper * decide.boundary * (1 + DECIDE_MARGIN)
    ok = jnp.isfinite(thr) & (ref > 0)
    return jnp.where(ok, thr, jnp.inf).astype(jnp.result_type(ref))


def run(model: Model, params0, aux, lr, data: TrainData, batches, cfg: TrainConfig,
        lam0: hessian.Eig, decide: Decide | None = None, loss_rise_stop=False) -> Trajectory:
    """One run of T = cfg.num_steps steps of SGD / GD with learning rate ``lr`` (traced scalar).

    batches: [T, B] int32 indices into data.x (ignored for GD). lam0: the initial sharpness
    estimate (its vector warm-starts the first measurement). Returns a Trajectory of [T + 1].
    decide, loss_rise_stop: compute the run only as far as its indicator needs (``run_with_params``).
    """
    return run_with_params(model, params0, aux, lr, data, batches, cfg, lam0, decide, loss_rise_stop)[0]


def run_with_params(model: Model, params0, aux, lr, data: TrainData, batches, cfg: TrainConfig,
                    lam0: hessian.Eig, decide: Decide | None = None, loss_rise_stop=False):
    """As ``run``, and also return the parameters after the last step (the last finite ones
    for a diverged run): (Trajectory, params_T).

    No step of a diverged run measures the sharpness (its record is NaN either way). With
    ``decide`` (the early exit of a search run, ``Decide``), a run is computed only until the
    indicator it answers is decided, and no later step of it is computed at all: neither trained
    nor measured (loss, accuracy, sharpness NaN, 0 products, ``diverged`` as at the decision;
    params_T those at the decision). Every indicator is decided at divergence and after step T1.
    A rise is decided at the first value above its threshold:

    * "sharp_rise": a measurement stops at the first Ritz value above ``decide_threshold``
      (exact: Ritz values are lower bounds of lambda_t and grow with the products, so the full
      estimate would be above it too) and is flagged ``sharpness_decided``;
    * "loss" with ``loss_rise_stop`` True (a traced bool): at the first measured loss above
      ``loss_threshold`` (that loss is recorded); False: at divergence and T1 only.

    A run whose indicator stays False is trained and measured at every step 1..T1 exactly as
    without ``decide``. So a trajectory answers its indicator: a run decided by a rise does not
    say whether it would have diverged later (nor, for "sharp_rise", whether its loss rises);
    its records up to the decision are those of the full run."""
    with matmul_precision(cfg):
        return _run_with_params(model, params0, aux, lr, data, batches, cfg, lam0, decide, loss_rise_stop)


def _run_with_params(model, params0, aux, lr, data, batches, cfg, lam0, decide, loss_rise_stop):
    lf = loss_fn(model, cfg.loss)
    opt = optax.sgd(learning_rate=lr)
    nan = jnp.asarray(jnp.nan, jnp.result_type(float))

    def measure(params):
        f = model.apply(params, aux, data.x_meas)
        return losses.get(cfg.loss)(f, data.y_meas), losses.accuracy(f, data.y_meas)

    early = decide is not None
    if early:
        check_choice(decide.indicator, "decide.indicator", DECIDES)
        check(decide.indicator != "sharp_rise" or cfg.measure_sharpness, "decide.indicator",
              '"loss" for a run that does not measure the sharpness', decide.indicator)
        check_int(decide.T1, "T1", minimum=1)
    # warm_start's random vector, once per run rather than at every measurement (1.5 ms each
    # at 334k parameters, against a few products)
    mix_direction = hessian.start_vector(lam0.vector.shape[0], lam0.vector.dtype)
    above = decide_threshold(lam0, decide) if early and decide.indicator == "sharp_rise" else None
    loss0, acc0 = measure(params0)
    loss_above = None
    if early and decide.indicator == "loss":
        loss_above = jnp.where(jnp.asarray(loss_rise_stop), loss_threshold(loss0, decide), jnp.inf)

    def sharpness(p, v, need):
        eig = measure_sharpness(model, p, aux, data.x_meas, data.y_meas, cfg, v,
                                mix_direction=mix_direction, above=above, active=need)
        return eig.value, eig.residual, eig.vector, eig.n_matvec, eig.converged

    def skip(p, v, need):
        return nan.astype(v.dtype), nan.astype(v.dtype), v, jnp.int32(0), jnp.asarray(False)

    # live: the steps a search run may need (1..T1); a full run computes every step
    live = np.arange(1, cfg.num_steps + 1) <= decide.T1 if early else np.ones(cfg.num_steps, bool)
    when = sharpness_steps(cfg) & live

    def step(carry, xs):
        now, _, idx = xs
        params, opt_state, diverged, v, decided = carry
        if cfg.optimizer == "sgd":
            xb, yb = data.x[idx], data.y[idx]
        else:
            xb, yb = data.x, data.y
        batch_loss, grads = jax.value_and_grad(lf)(params, aux, xb, yb)
        updates, new_opt_state = opt.update(grads, opt_state, params)
        new_params = optax.apply_updates(params, updates)
        loss, acc = measure(new_params)
        bad = ~(jnp.isfinite(batch_loss) & jnp.isfinite(loss)) | (batch_loss > cfg.div_threshold) \
            | (loss > cfg.div_threshold)
        diverged = diverged | bad
        keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(diverged, b, a), new, old)
        params, opt_state = keep(new_params, params), keep(new_opt_state, opt_state)
        if cfg.measure_sharpness:
            # a real branch per run under lax.map (the CPU default): a skipped step costs
            # nothing; under vmap both branches run, and ``active`` stops the products of the
            # skipped lanes (the loop runs for the longest measured lane)
            need = now & ~diverged & ~decided
            sharp, resid, vec, nmv, conv = jax.lax.cond(need, sharpness, skip, params, v, need)
            sharp = jnp.where(need, sharp, nan)
            resid, nmv, conv = jnp.where(need, resid, nan), jnp.where(need, nmv, 0), conv & need
            v = jnp.where(need, vec, v)
            hit = need & (sharp > above) if above is not None else jnp.asarray(False)
            decided = decided | hit
        else:
            sharp = resid = nan
            nmv, conv, hit = jnp.int32(0), jnp.asarray(False), jnp.asarray(False)
        if loss_above is not None:  # the loss recorded at this step decides the loss indicator
            decided = decided | (~diverged & (loss > loss_above))
        out = (jnp.where(diverged, nan, loss), jnp.where(diverged, nan, acc),
               jnp.where(diverged, nan, sharp), jnp.where(diverged, nan, resid), diverged,
               jnp.where(diverged, 0, nmv), conv & ~diverged, hit & ~diverged)
        return (params, opt_state, diverged, v, decided), out

    def nothing(carry, xs):  # a search run's steps after its indicator is decided (or after T1)
        n = nan.astype(carry[3].dtype)
        return carry, (nan, nan, n, n, carry[2], jnp.int32(0), jnp.asarray(False), jnp.asarray(False))

    def step_or_nothing(carry, xs):
        # under lax.map (the CPU default) a real branch: a decided run costs nothing more; under
        # vmap both branches run (the same cost as before, the same records)
        return jax.lax.cond(carry[4] | carry[2] | ~xs[1], nothing, step, carry, xs)

    carry0 = (params0, opt.init(params0), jnp.asarray(False), lam0.vector, jnp.asarray(False))
    xs = batches if cfg.optimizer == "sgd" else jnp.zeros((cfg.num_steps, 0), jnp.int32)
    (params_T, *_), (loss, acc, sharp, resid, div, nmv, conv, hit) = jax.lax.scan(
        step_or_nothing if early else step, carry0, (jnp.asarray(when), jnp.asarray(live), xs))
    prepend = lambda a0, a: jnp.concatenate([jnp.asarray(a0, a.dtype)[None], a])
    if not cfg.measure_sharpness:
        lam = (nan, nan, 0, False)
    else:
        lam = (lam0.value, lam0.residual, lam0.n_matvec, lam0.converged)
    return Trajectory(prepend(loss0, loss), prepend(acc0, acc), prepend(lam[0], sharp),
                      prepend(lam[1], resid), prepend(False, div), prepend(lam[2], nmv),
                      prepend(lam[3], conv), prepend(False, hit)), params_T


def initial_sharpness(model: Model, params, aux, data: TrainData, cfg: TrainConfig,
                      batching: str | None = None) -> hessian.Eig:
    """lambda_0 for a batch of initialisations: params/aux with leading axis S -> Eig of [S].

    batching (None: ``default_batching()``): "vmap", the S measurements in one vmapped call;
    "map" (the CPU), each by its own call, ``cpu_threads()`` at a time (``in_threads``): a seed's
    lambda_0 is then the same whichever seeds are measured beside it.

    Stops at ``cfg.lambda0_tol`` (1e-4 by default, 10x tighter than the per-step 1e-3) by the
    residual bound alone (rigorous: no gap estimate from a cold start), with a cap of twice
    the per-step products: lambda_0 is the denominator of every c = eta * lambda_0
    and of every ratio lambda_t / lambda_0, and it is measured from a cold start while later
    steps are warm-started. Why these tolerances: c_sharp compares lambda_t / lambda_0 rounded
    to 1e-2 with 1, so the ratio needs an accuracy well below 5e-3 (1e-3 + 1e-4 here); c lives
    on a grid with steps of 7 % (x_step = 0.1), so an error of 1e-4 in lambda_0 moves eta by a
    70th of a grid step and can change a critical constant only for a run sitting that close
    to its threshold."""
    batching = batching or default_batching()
    check_choice(batching, "batching", ("vmap", "map"))
    if batching == "vmap" or any(isinstance(a, jax.core.Tracer) for a in jax.tree.leaves(params)):
        return initial_sharpness_batch(model, params, aux, data, cfg)  # (inside a traced function: one call)
    S = jax.tree.leaves(params)[0].shape[0]
    seed = [_rows((params, aux), s) for s in range(S)]
    parts = in_threads(lambda s: initial_sharpness_batch(model, *seed[s], data, cfg), range(S),
                       ("lambda0", model, cfg, _avals((seed[0], data))),
                       lambda: initial_sharpness_batch.lower(model, *seed[0], data, cfg).compile())
    return _stack_rows(parts)


@partial(jax.jit, static_argnames=("model", "cfg"))
def initial_sharpness_batch(model: Model, params, aux, data: TrainData, cfg: TrainConfig) -> hessian.Eig:
    """``initial_sharpness`` of the S initialisations in one compiled, vmapped call."""
    cfg0 = cfg.replace(sharpness_iters=2 * cfg.sharpness_iters, sharpness_tol=cfg.lambda0_tol)
    with matmul_precision(cfg):
        return jax.vmap(lambda p, a: measure_sharpness(model, p, a, data.x_meas, data.y_meas, cfg0,
                                                       gap_bound=False))(params, aux)


def cpu_threads() -> int:
    """How many runs (or lambda_0 measurements) the CPU's "map" batching computes at once:
    ``EARLYTRAIN_CPU_THREADS`` if set (a positive integer), else 1.

    Why 1 by default: XLA's CPU kernels (matmuls, convolutions) split their sums among the cores,
    and two programs computing at once change how, so their results differ in the last bits from
    one execution to the next (measured: an FCN trajectory at a chaotic c then differs visibly
    after a few steps). One at a time, every run is bit-reproducible. More than one keeps the
    cores busier (a single run leaves them partly idle: about 1.25x faster here,
    bench/README.md) at the price of that reproducibility; the constants of the book's searches
    did not move in a build with 2."""
    env = os.environ.get("EARLYTRAIN_CPU_THREADS")
    if env is None:
        return 1
    check(env.strip().isdigit() and int(env) >= 1, "EARLYTRAIN_CPU_THREADS",
          "a positive integer (runs computed at once on the CPU)", env)
    return int(env)


_WARM: set = set()  # the programs ``in_threads`` has compiled in this process
_POOLS: dict[int, ThreadPoolExecutor] = {}
_POOLS_LOCK, _WARM_LOCK = threading.Lock(), threading.Lock()


def _avals(tree) -> tuple:
    return tuple((tuple(a.shape), str(a.dtype)) for a in jax.tree.leaves(tree))


def _rows(tree, s: int):
    """Row s of every leaf, keeping its axis ([1, ...]), as new device arrays: sliced on the host,
    because slicing a device array compiles a program per leaf shape (a ResNet's dozens of
    parameter shapes cost seconds of compiles per point; so does ``jnp.asarray`` of a host array,
    ``jax.device_put`` does not)."""
    return jax.tree.map(lambda a: jax.device_put(np.asarray(a)[s:s + 1]), tree)


def _stack_rows(parts):
    """Inverse of ``_rows`` over all rows: leaves [1, ...] -> [S, ...], joined on the host."""
    return jax.tree.map(lambda *a: jax.device_put(np.concatenate([np.asarray(x) for x in a])), *parts)


def in_caller_context(fn):
    """``fn`` wrapped to run under the calling thread's JAX settings that are thread-local
    (``jax.enable_x64``, ``jax.default_matmul_precision`` contexts): a worker thread otherwise
    computes with the process defaults (float32 where the caller asked for float64)."""
    x64, precision = jax.config.jax_enable_x64, jax.config.jax_default_matmul_precision

    def wrapped(*a, **kw):
        with jax.enable_x64(x64), jax.default_matmul_precision(precision):
            return fn(*a, **kw)
    return wrapped


def in_threads(fn, tasks, program, compile_first, threads: int | None = None) -> list:
    """[fn(t) for t in tasks], ``threads`` (default ``cpu_threads()``) at a time, in order.

    ``fn`` runs one compiled program (the same one for every task) and blocks until its results
    are ready. ``program``: a hashable key of that program; ``compile_first()`` compiles it
    ahead of time (``jit(...).lower(...).compile()``, which fills jit's own cache) and is called
    the first time a program is seen in this process: threads that call a program not compiled
    yet would each compile it. With threads > 1 the calls compute at the same time, and XLA's
    CPU kernels then round differently from one execution to the next (``cpu_threads``)."""
    tasks = list(tasks)
    threads = cpu_threads() if threads is None else threads
    check_int(threads, "threads", minimum=1)
    if threads == 1 or len(tasks) < 2:
        return [jax.block_until_ready(fn(t)) for t in tasks]
    program = (program, jax.config.jax_enable_x64, jax.config.jax_default_matmul_precision)
    if program not in _WARM:
        with _WARM_LOCK:  # one compile, even when two threads bring the same new program
            if program not in _WARM:
                compile_first()
                _WARM.add(program)
    with _POOLS_LOCK:
        pool = _POOLS.get(threads) or _POOLS.setdefault(
            threads, ThreadPoolExecutor(threads, thread_name_prefix="earlytrain-run"))
    return list(pool.map(in_caller_context(lambda t: jax.block_until_ready(fn(t))), tasks))


def run_each(model: Model, params, aux, lam0: hessian.Eig, c, data: TrainData, batches,
             cfg: TrainConfig, decide: Decide | None = None, loss_rise_stop: bool = False,
             threads: int | None = None) -> Trajectory:
    """``run_grid``'s runs, each computed by its own call, ``threads`` (default ``cpu_threads()``)
    at a time: the CPU's "map" batching with its cores kept busy.

    params/aux/lam0: leading axis S; c: [S, C] -> numpy Trajectory [S, C, T + 1]. One compiled
    program (``run_grid`` on a [1, 1] batch) serves every batch of runs, so a run's records do
    not depend on which runs are in its batch (with threads = 1: bit for bit)."""
    c = np.asarray(c)
    S, C = c.shape
    dtype = jnp.result_type(float)  # the dtype jnp.asarray gives c (float32 unless x64)
    seed = [_rows((params, aux, lam0), s) for s in range(S)]

    def one(task, how=run_grid):
        s, k = task
        return how(model, *seed[s], jax.device_put(c[s:s + 1, k:k + 1].astype(dtype)), data, batches, cfg,
                   batching="map", decide=decide, loss_rise_stop=loss_rise_stop)
    program = ("run", model, cfg, decide, _avals((seed[0], data, batches)), np.dtype(dtype).name)
    tasks = [(s, k) for s in range(S) for k in range(C)]
    runs = in_threads(lambda t: jax.tree.map(lambda a: np.asarray(a)[0, 0], one(t)), tasks, program,
                      lambda: one((0, 0), run_grid.lower).compile(), threads)
    return jax.tree.map(lambda *a: np.stack(a).reshape((S, C) + a[0].shape), *runs)


def default_batching() -> str:
    """How run_grid batches runs: "vmap" on accelerators; "map" (a compiled sequential loop) on
    CPU, where XLA runs the batched matmuls of vmapped runs with different weights no faster than
    one at a time and bench/bench_sweep.py measured the loop faster (0.46-0.75x for vmap)."""
    return "map" if jax.default_backend() == "cpu" else "vmap"


@partial(jax.jit, static_argnames=("model", "cfg", "return_params", "batching", "decide"))
def run_grid(model: Model, params, aux, lam0: hessian.Eig, c, data: TrainData, batches,
             cfg: TrainConfig, return_params: bool = False, batching: str | None = None,
             decide: Decide | None = None, loss_rise_stop=False):
    """Runs for S initialisations x C learning-rate constants, eta = c / lambda_0.

    params/aux/lam0: leading axis S; c: [S, C] (each seed may have its own c values, as in a
    bisection) -> Trajectory with leaves [S, C, T + 1]; with return_params, also the final
    parameters (leaves [S, C, ...]). batching: "vmap" or "map" (None: ``default_batching()``);
    both give the same numbers up to float rounding. One compile per (model, shapes, cfg, ...).
    decide, loss_rise_stop (traced: one program for both values): the early exit of search runs
    (``run_with_params``); decide None: full measurements.
    """
    batching = batching or default_batching()
    check_choice(batching, "batching", ("vmap", "map"))
    one = run_with_params if return_params else run
    over = jax.vmap if batching == "vmap" else (lambda f: lambda *a: jax.lax.map(lambda t: f(*t), a))

    def per_seed(p, a, lam, cs):
        return over(lambda ci: one(model, p, a, ci / lam.value, data, batches, cfg, lam, decide,
                                   loss_rise_stop))(cs)
    return over(per_seed)(params, aux, lam0, c)
