"""The uv model: a two-layer linear network of width w trained on one example.

    f = gamma * v.u * x,   u, v in R^w,   x = 1,   L = (f - y)^2 / 2,   Delta f = f - y.

It is exactly solvable (Kalra & Barkeshli 2023, arXiv 2302.12250, Sec. 5 and App. B;
Lewkowycz et al. 2020, arXiv 2003.02218; Kalra, He & Barkeshli 2023, arXiv 2311.02076):
gradient descent on (u, v) closes on the two numbers (Delta f, lambda), where
lambda = tr H = gamma^2 (|u|^2 + |v|^2) is also the NTK of the single example. This module has

* initialisation for three parameterisations (``PARAMETERIZATIONS``):
  ``"ntp"`` u, v ~ N(0, varw), gamma = w^-1/2 (large output at init, f_0 = O(1));
  ``"mup"`` u, v ~ N(0, varw / w), gamma = 1 (small output, f_0 = O(w^-1/2));
  ``"zero"`` u ~ N(0, varw), v = 0, gamma = w^-1/2 (f_0 = 0, but lambda_0 = O(1)).
  Both "ntp" and "mup" have lambda_0 ~ 2 varw, "zero" has lambda_0 ~ varw.
* closed forms for the Hessian's trace, Frobenius norm and top eigenvalue (``hessian_*``),
  as functions of (Delta f, lambda) only, so they can be evaluated on either dynamics;
* ``gd_params``: gradient descent in parameter space (lax.scan), and ``fn_map``: the exact
  function-space map (Delta f, lambda) -> (Delta f', lambda'). The two agree to round-off
  (tests/test_uv.py), so sweeps can use the O(1)-per-step map at any width.

Learning rate, label, gamma and the initial state are traced arrays: one compile serves every
value, and everything vmaps over initialisations and learning rates. Divergence (loss > K or a
non-finite value) is a flag carried through the scan that freezes the state; the metrics of a
diverged run are NaN from the step it diverged, and ``diverged`` says so, so no NaN ever
enters the state.

Derivation of the map (x = 1, g = grad f = gamma (v, u), H = g g^T + gamma Delta f P with
P the swap of u and v):
    u' = u - eta gamma Delta f v,   v' = v - eta gamma Delta f u
    Delta f' = Delta f (1 - eta lambda + eta^2 gamma^2 f Delta f)
    lambda'  = lambda + eta gamma^2 Delta f (eta lambda Delta f - 4 f).
"""
from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp

from ..errors import check, check_choice, check_int, check_positive

PARAMETERIZATIONS = ("ntp", "mup", "zero")
DIV_THRESHOLD = 1e5  # K of Definition 1: a run whose loss exceeds K has diverged [C]


# --------------------------------------------------------------------------- validation
def _check_width(width) -> None:
    check_int(width, "width", minimum=1)


def _check_parameterization(parameterization) -> None:
    check_choice(parameterization, "parameterization", PARAMETERIZATIONS)


def _check_steps(steps) -> None:
    check_int(steps, "steps", minimum=1)


# --------------------------------------------------------------------------- init
def output_multiplier(width: int, parameterization: str = "ntp") -> float:
    """gamma: the constant in f = gamma v.u. ntp/zero: w^-1/2; mup: 1."""
    _check_width(width)
    _check_parameterization(parameterization)
    return 1.0 if parameterization == "mup" else width ** -0.5


def init(key: jax.Array, width: int, parameterization: str = "ntp", varw: float = 1.0,
         n: int | None = None, dtype=None) -> tuple[jax.Array, jax.Array]:
    """Draw (u, v): shapes [w] each, or [n, w] if ``n`` is given (n independent initialisations).

    The variance varw / w^s with s = 1 for "mup" keeps lambda_0 = gamma^2 (|u|^2+|v|^2) ~ 2 varw
    in both parameterisations, so they differ only in the size of f_0 (Kalra, He & Barkeshli,
    UV_int in the why-warmup code). "zero" sets v = 0 (last layer zero), so f_0 = 0 exactly.
    """
    _check_width(width)
    _check_parameterization(parameterization)
    check_positive(varw, "varw")
    if n is not None:
        check_int(n, "n", minimum=1)
    dtype = dtype or jnp.zeros(()).dtype  # float64 when x64 is enabled
    shape = (width,) if n is None else (n, width)
    ku, kv = jax.random.split(key)
    std = (varw / width) ** 0.5 if parameterization == "mup" else varw ** 0.5
    u = std * jax.random.normal(ku, shape, dtype)
    v = jnp.zeros(shape, dtype) if parameterization == "zero" else std * jax.random.normal(kv, shape, dtype)
    return u, v


# --------------------------------------------------------------------------- observables
def output(u, v, gamma):
    """f = gamma v.u over the last axis. u, v [..., w] -> [...]."""
    return gamma * jnp.sum(u * v, axis=-1)


def loss(u, v, gamma, y):
    """L = (f - y)^2 / 2. [..., w] -> [...]."""
    return 0.5 * (output(u, v, gamma) - y) ** 2


def ntk(u, v, gamma):
    """lambda = tr H = |grad f|^2 = gamma^2 (|u|^2 + |v|^2). [..., w] -> [...]."""
    return gamma ** 2 * (jnp.sum(u * u, axis=-1) + jnp.sum(v * v, axis=-1))


def cosine(u, v):
    """Weight correlation u.v / (|u| |v|) (0 if either vector is zero). [..., w] -> [...]."""
    den = jnp.sqrt(jnp.sum(u * u, axis=-1) * jnp.sum(v * v, axis=-1))
    return jnp.where(den > 0, jnp.sum(u * v, axis=-1) / jnp.where(den > 0, den, 1.0), 0.0)


def balanced_correlation(df, lam, y, gamma):
    """rho = 2 u.v / (|u|^2 + |v|^2) = 2 gamma f / lambda, a function of (Delta f, lambda) only.

    Equals the cosine u.v/(|u||v|) when |u| = |v| and is otherwise the cosine times the balance
    factor 2|u||v|/(|u|^2+|v|^2) <= 1. Because it is exact in function space, the loss is an exact
    function of (lambda, rho): L = (rho lambda / (2 gamma) - y)^2 / 2 (see ``loss_on_plane``).
    """
    return 2.0 * gamma * (y + df) / lam


def loss_on_plane(lam, rho, y, gamma):
    """The loss as a function of (lambda, rho) with rho = ``balanced_correlation``. Broadcasts."""
    return 0.5 * (rho * lam / (2.0 * gamma) - y) ** 2


def hessian_trace(df, lam):
    """tr H = lambda (the P term of H is traceless). Kept for symmetry with the others."""
    del df
    return lam


def hessian_frobenius(df, lam, y, gamma, width: int):
    """||H||_F = sqrt(lambda^2 + 4 gamma^2 f Delta f + 2 w gamma^2 Delta f^2).

    From H = g g^T + a P, a = gamma Delta f: ||g g^T||_F^2 = lambda^2, 2 a g^T P g = 4 gamma^2 f Delta f,
    a^2 ||P||_F^2 = 2 w gamma^2 Delta f^2. All arguments broadcast; width is the integer w.
    """
    f = y + df
    return jnp.sqrt(lam ** 2 + 4 * gamma ** 2 * f * df + 2 * width * gamma ** 2 * df ** 2)


def hessian_top(df, lam, y, gamma, width: int):
    """Largest Hessian eigenvalue lambda^H_max.

    H acts on span{g_+, g_-} (the projections of g on the +-1 eigenspaces of P) as a 2x2 matrix
    with trace lambda and determinant -gamma^2 Delta f (2 f + Delta f), and as +-a = +-gamma Delta f
    (each w - 1 times) on the rest. So lambda^H_max = max{ (lambda + sqrt(lambda^2 + 4 gamma^2 Delta f
    (2 f + Delta f)))/2, |gamma Delta f| }, the second entry only when w > 1 (width may be traced).
    """
    f = y + df
    disc = jnp.maximum(lam ** 2 + 4 * gamma ** 2 * df * (2 * f + df), 0.0)  # >= 0 exactly; clamp round-off
    top = 0.5 * (lam + jnp.sqrt(disc))
    return jnp.where(jnp.asarray(width) > 1, jnp.maximum(top, jnp.abs(gamma * df)), top)


def dense_hessian(u, v, gamma, y):
    """The exact [2w, 2w] Hessian of L by autodiff (test reference; use float64)."""
    w = u.shape[-1]
    return jax.hessian(lambda p: 0.5 * (gamma * jnp.dot(p[:w], p[w:]) - y) ** 2)(jnp.concatenate([u, v]))


# --------------------------------------------------------------------------- dynamics
class Trajectory(NamedTuple):
    """One run (leading batch axes from vmap allowed). Arrays [T+1] over steps t = 0..T.

    df, lam: Delta f_t and lambda_t = tr H_t (NaN from the step the run diverged on).
    diverged: True from the step where the loss exceeded K or went non-finite.
    cos: u.v/(|u||v|) (parameter-space runs only; NaN for ``fn_map``).
    """
    df: jax.Array
    lam: jax.Array
    diverged: jax.Array
    cos: jax.Array


def map_step(df, lam, y, gamma, lr):
    """One step of the exact function-space map. Returns (Delta f', lambda')."""
    f = y + df
    df_new = df * (1.0 - lr * lam + lr ** 2 * gamma ** 2 * f * df)
    lam_new = lam + lr * gamma ** 2 * df * (lr * lam * df - 4.0 * f)
    return df_new, lam_new


def _frozen_scan(step, state0, observe, steps, threshold):
    """lax.scan of ``step`` that freezes the state once the loss exceeds ``threshold``.

    observe(state) -> (loss, tuple of metrics). Metrics are NaN from the diverging step on.
    """
    def body(carry, _):
        state, div = carry
        new = step(state)
        l_new, _ = observe(new)
        bad = ~jnp.isfinite(l_new) | (l_new > threshold)
        bad = bad | ~jnp.all(jnp.stack([jnp.all(jnp.isfinite(s)) for s in jax.tree_util.tree_leaves(new)]))
        div_new = div | bad
        keep = jax.tree_util.tree_map(lambda a, b: jnp.where(div_new, a, b), state, new)
        _, metrics = observe(keep)
        metrics = tuple(jnp.where(div_new, jnp.nan, m) for m in metrics)
        return (keep, div_new), (metrics, div_new)

    _, m0 = observe(state0)
    (_, _), (ms, divs) = jax.lax.scan(body, (state0, jnp.asarray(False)), None, length=steps)
    metrics = tuple(jnp.concatenate([jnp.asarray(a)[None], b]) for a, b in zip(m0, ms))
    return metrics, jnp.concatenate([jnp.asarray([False]), divs])


@partial(jax.jit, static_argnames=("steps",))
def _fn_map(df0, lam0, y, gamma, lr, steps, threshold):
    observe = lambda s: (0.5 * s[0] ** 2, (s[0], s[1]))
    step = lambda s: map_step(s[0], s[1], y, gamma, lr)
    (df, lam), div = _frozen_scan(step, (df0, lam0), observe, steps, threshold)
    return Trajectory(df, lam, div, jnp.full_like(df, jnp.nan))


def fn_map(df0, lam0, y, gamma, lr, steps: int, threshold: float = DIV_THRESHOLD) -> Trajectory:
    """Iterate the exact function-space map from (Delta f_0, lambda_0) for ``steps`` steps.

    Scalars in, Trajectory of [steps+1] arrays out; vmap for batches (all inputs but ``steps`` are
    traced, so a sweep over learning rates compiles once). Cost O(steps), independent of width.
    """
    _check_steps(steps)
    return _fn_map(df0, lam0, y, gamma, lr, steps, threshold)


@partial(jax.jit, static_argnames=("steps",))
def _gd_params(u0, v0, y, gamma, lr, steps, threshold):
    def step(s):
        u, v = s
        df = output(u, v, gamma) - y
        return u - lr * gamma * df * v, v - lr * gamma * df * u

    def observe(s):
        u, v = s
        df = output(u, v, gamma) - y
        return 0.5 * df ** 2, (df, ntk(u, v, gamma), cosine(u, v))

    (df, lam, cos), div = _frozen_scan(step, (u0, v0), observe, steps, threshold)
    return Trajectory(df, lam, div, cos)


def gd_params(u0, v0, y, gamma, lr, steps: int, threshold: float = DIV_THRESHOLD) -> Trajectory:
    """Full-batch gradient descent on (u, v) in parameter space; u0, v0 [w].

    Returns the same Trajectory as ``fn_map`` (plus the weight cosine), measured from the weights.
    """
    _check_steps(steps)
    check(jnp.shape(u0) == jnp.shape(v0) and jnp.ndim(u0) == 1, "u0, v0", "two vectors of equal shape [w]",
          (jnp.shape(u0), jnp.shape(v0)))
    return _gd_params(u0, v0, y, gamma, lr, steps, threshold)


@partial(jax.jit, static_argnames=("steps",))
def gd_params_path(u0, v0, y, gamma, lr, steps: int):
    """The weights themselves along a GD run: (u [T+1, w], v [T+1, w]). No divergence handling;
    for short plotting runs only (Fig. 8 trajectories and loss interpolation)."""
    def body(s, _):
        u, v = s
        df = output(u, v, gamma) - y
        new = (u - lr * gamma * df * v, v - lr * gamma * df * u)
        return new, new
    _, (us, vs) = jax.lax.scan(body, (u0, v0), None, length=steps)
    return jnp.concatenate([u0[None], us]), jnp.concatenate([v0[None], vs])


def interpolation_loss(u0, v0, u1, v1, y, gamma, taus):
    """L((1 - tau) theta_0 + tau theta_1) - L(theta_0) for tau in ``taus`` [n] -> [n] (Def. 2)."""
    uu = (1 - taus)[:, None] * u0 + taus[:, None] * u1
    vv = (1 - taus)[:, None] * v0 + taus[:, None] * v1
    return loss(uu, vv, gamma, y) - loss(u0, v0, gamma, y)


def initial_state(u, v, y, gamma):
    """(Delta f_0, lambda_0) from weights [..., w]."""
    return output(u, v, gamma) - y, ntk(u, v, gamma)


# --------------------------------------------------------------------------- fixed points
def map_jacobian(df, lam, y, gamma, lr):
    """2x2 Jacobian d(Delta f', lambda')/d(Delta f, lambda) of the map at a point (autodiff)."""
    fn = lambda z: jnp.stack(map_step(z[0], z[1], y, gamma, lr))
    return jax.jacfwd(fn)(jnp.stack([jnp.asarray(df), jnp.asarray(lam)]))


def minima_jacobian_eigenvalues(lam, lr):
    """Closed form: on the line of minima Delta f = 0 the Jacobian is [[1 - eta lambda, 0],
    [-4 eta gamma^2 y, 1]], eigenvalues (1 - eta lambda, 1): stable iff 0 < eta lambda < 2."""
    return jnp.stack([1.0 - lr * lam, jnp.ones_like(jnp.asarray(lam, dtype=float))])


def critical_lr(y, gamma):
    """eta_c = 1/(gamma |y|): on a minimum lambda >= 2 gamma |f| = 2 gamma |y|, so a stable minimum
    (lambda < 2/eta) exists only for eta < eta_c. Infinite for y = 0."""
    return jnp.where(y == 0, jnp.inf, 1.0 / (gamma * jnp.abs(jnp.where(y == 0, 1.0, y))))


# --------------------------------------------------------------------------- init averages
def r_moments(width):
    """Exact <r> and <r^2> over the NTP/muP Gaussian init, r = gamma^2 f^2/lambda^2 = (u.v)^2/(|u|^2+|v|^2)^2.

    With a = (u+v)/sqrt2, b = (u-v)/sqrt2 iid N(0, I_w), r = s^2/4 with s = (|a|^2-|b|^2)/(|a|^2+|b|^2),
    whose density is proportional to (1-s^2)^(w/2-1) on [-1, 1]. Beta/Gamma integrals give
    <s^2> = 1/(w+1) and <s^4> = 3/((w+1)(w+3)), hence <r> = 1/(4(w+1)), <r^2> = 3/(16(w+1)(w+3)).
    """
    w = jnp.asarray(width, dtype=float)
    return 1.0 / (4 * (w + 1)), 3.0 / (16 * (w + 1) * (w + 3))


def k_loss_averaged(width):
    """Smallest k > 0 where the init-averaged first-step factor exceeds 1 (App. B.3):
    (1-k)^2 + 2(1-k) k^2 <r> + k^4 <r^2> > 1. Dividing k out leaves the cubic
    <r^2> k^3 - 2<r> k^2 + (1 + 2<r>) k - 2 = 0, whose smallest positive root is returned.
    Accepts a scalar or sequence of widths (numpy, not traced)."""
    import numpy as np
    widths = np.atleast_1d(np.asarray(width, dtype=float))
    out = []
    for w in widths:
        a, b = 1 / (4 * (w + 1)), 3 / (16 * (w + 1) * (w + 3))
        roots = np.roots([b, -2 * a, 1 + 2 * a, -2])
        real = roots[(np.abs(roots.imag) < 1e-9) & (roots.real > 0)].real
        out.append(real.min())
    out = np.asarray(out)
    return out if np.ndim(width) else out[0]


def k_loss_first_step(r):
    """Per-initialisation first-step threshold for y = 0: the loss rises at step 1 iff
    |1 - k + k^2 r| > 1, i.e. k > [1 - sqrt(1 - 8r)]/(2r) = 4/(1 + sqrt(1 - 8r)) ~ 2 + 4r
    (the second form has no cancellation at small r), or k > 1/r if r > 1/8."""
    r = jnp.asarray(r)
    small = 4.0 / (1.0 + jnp.sqrt(jnp.maximum(1 - 8 * r, 0.0)))
    return jnp.where(r <= 1 / 8, small, 1.0 / jnp.where(r > 0, r, 1.0))
