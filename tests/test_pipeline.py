"""End-to-end known answer: the exactly solvable uv model run through the whole pipeline.

The uv model (f = w^-1/2 v.u on the single example x = 1, y = 0, L = f^2 / 2; SPEC 6,
``earlytrain.uv.model``) is wrapped as a ``models.Model`` and trained by ``train.run_grid`` with full-
batch GD (the "mse" loss is 0.5 mean((f - y)^2), which is L itself for one example and one
output); lambda_0 and every lambda_t come from the library's sharpness estimator, and
``phases.critical_constants`` turns the trajectories into c_loss, c_sharp and c_max on the
book's grid c = 2^x, x = 0, 0.1, ... Everything is checked against the uv module's closed forms:

* lambda^H (``uv.hessian_top``) of the exact function-space map (``uv.fn_map``) at every step;
* k_max = 4 in trace units (SPEC 6: for k < 4 the trace never rises and the catapult ends, for
  k >= 4 it grows), i.e. c_max = the last grid point below 4 lambda^H_0 / tr H_0;
* the first-step loss threshold k_loss = 4 / (1 + sqrt(1 - 8 r)) (``uv.k_loss_first_step``,
  r = f_0^2 / (w lambda_0^2)), i.e. c_loss = the first grid point above k_loss lambda^H_0 / tr H_0
  (unrounded ratios; later steps cannot rise first, SPEC 6);
* the weights of a run that diverges at a step t0 >= 2: frozen at the GD weights of step t0 - 1.

Float64 (``jax.enable_x64`` inside each computation), so the pipeline and the closed forms agree
to round-off and the only approximation left is the estimator's stated tolerance.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr

from earlytrain import models, phases, train
from earlytrain.uv import model as uv

S, T = 6, 10                                            # initialisations, GD steps (T1 = 10)
X_GRID = np.round(np.arange(0.0, 3.0 + 1e-9, 0.1), 10)  # the book's x_step = 0.1, up to c = 8
C_GRID = 2.0 ** X_GRID
CFG = train.TrainConfig(optimizer="gd", batch_size=1, num_steps=T)  # default estimator settings
# Round-off of the pipeline against the closed-form map, both float64 (eps 2.2e-16): a GD step
# can multiply an error by up to ~1 + k + k^2 (k = eta tr H <= 8 here), so an a-priori bound over
# T = 10 steps is useless; what is measured (w = 8, all runs before divergence) is 1.4e-11
# relative to L_0 + L_t for the losses, 1e-13 for the frozen weights and 1e-15 for lambda_0
# (the catapult expands errors only for a few steps, by |1 - k| <= 3 each). 1e-8 sits 3 decades
# above that and 6 below what a wrong step, learning rate or loss normalisation gives (>= 1e-2).
ROUNDOFF = 1e-8


def _uv_model(width: int) -> models.Model:
    """The uv model as a library Model: params {"u": [w], "v": [w]}, x [B, 1] -> f [B, 1]."""
    return models.Model(init=None, apply=functools.partial(_uv_apply, width ** -0.5),
                        config=models.ModelConfig(depth=2, width=width, n_out=1, parameterization="ntp"))


def _uv_apply(gamma, params, aux, x):
    del aux
    return gamma * jnp.sum(params["u"] * params["v"]) * x


@functools.lru_cache(maxsize=None)
def _sweep(width: int, cfg: train.TrainConfig = CFG) -> dict:
    """One full-grid sweep of S initialisations, and its closed-form reference (numpy, float64)."""
    CFG = cfg  # noqa: N806 (the estimator settings of this sweep)
    with jax.enable_x64(True):
        model, gamma = _uv_model(width), width ** -0.5
        u, v = uv.init(jax.random.PRNGKey(0), width, "ntp", n=S)
        params, aux = {"u": u, "v": v}, jnp.zeros(S)
        one, zero = jnp.ones((1, 1)), jnp.zeros((1, 1))
        data = train.TrainData(one, zero, one, zero)
        lam0 = train.initial_sharpness(model, params, aux, data, CFG)
        c = jnp.asarray(np.tile(C_GRID, (S, 1)))
        batches = jnp.zeros((T, 1), jnp.int32)  # unused by GD
        tr, params_T = train.run_grid(model, params, aux, lam0, c, data, batches, CFG, return_params=True)
        # the closed forms, at the learning rates the pipeline used (eta = c / lambda_0)
        df0, tr0 = uv.initial_state(u, v, 0.0, gamma)
        lr = c / lam0.value[:, None]
        ref = jax.vmap(jax.vmap(lambda d, l, e: uv.fn_map(d, l, 0.0, gamma, e, T),
                                in_axes=(None, None, 0)))(df0, tr0, lr)
        path = jax.vmap(jax.vmap(lambda a, b, e: uv.gd_params_path(a, b, 0.0, gamma, e, T),
                                 in_axes=(None, None, 0)))(u, v, lr)
        out = dict(
            width=width, lam0=np.asarray(lam0.value), top0=np.asarray(uv.hessian_top(df0, tr0, 0.0, gamma, width)),
            trace0=np.asarray(tr0), r0=np.asarray(df0 ** 2 / (width * tr0 ** 2)),
            traj=jax.tree.map(np.asarray, tr), params_T=jax.tree.map(np.asarray, params_T),
            ref_loss=np.asarray(0.5 * ref.df ** 2), ref_diverged=np.asarray(ref.diverged),
            ref_sharp=np.asarray(uv.hessian_top(ref.df, ref.lam, 0.0, gamma, width)),
            path_u=np.asarray(path[0]), path_v=np.asarray(path[1]))
    return out


def _constants(loss, sharp, diverged, decimals=2) -> xr.Dataset:
    dims = ("seed", "c", "step")
    ds = xr.Dataset({"loss": (dims, loss), "sharpness": (dims, sharp), "diverged": (dims, diverged)},
                    coords={"seed": np.arange(S), "c": C_GRID, "step": np.arange(T + 1)})
    return phases.critical_constants(ds, decimals=decimals)


def _grid_below(values):
    """The last grid point strictly below each value."""
    return np.array([C_GRID[C_GRID < v][-1] for v in values])


def _grid_above(values):
    return np.array([C_GRID[C_GRID > v][0] for v in values])


@pytest.fixture(scope="module")
def run8():
    return _sweep(8)


def test_lambda0_is_the_top_hessian_eigenvalue(run8):
    """lambda_0 from the estimator = lambda^H_0 in closed form, to lambda0_tol (a rigorous
    residual bound; the measured error is 1e-15 here). Catches: the trace or the largest-magnitude
    eigenvalue instead of the top one, a lambda_0 not meeting its stated tolerance."""
    np.testing.assert_allclose(run8["lam0"], run8["top0"], rtol=CFG.lambda0_tol)
    ratio = run8["top0"] / run8["trace0"]          # lambda^H / tr H in [1, 1.5] (SPEC 6)
    assert np.all((ratio > 1.0) & (ratio <= 1.5)) and np.ptp(ratio) > 0.1  # seeds differ visibly


def test_trajectories_follow_the_exact_map(run8):
    """Per-step loss and divergence of every run = the exact function-space map at eta = c / lambda_0.
    Catches: eta = c * lambda_0, an off-by-one step, a different loss normalisation, a divergence
    flagged at the wrong step or not frozen."""
    tr, ref, div = run8["traj"], run8["ref_loss"], run8["ref_diverged"]
    np.testing.assert_array_equal(tr.diverged, div)
    assert div[..., -1].any() and not div[..., -1].all()   # both kinds of run on the grid
    live = ~div
    l0 = ref[..., :1]
    assert np.all(np.abs(tr.loss - ref)[live] <= (ROUNDOFF * (l0 + ref))[live])
    for name in ("loss", "sharpness", "accuracy"):
        assert np.all(np.isnan(getattr(tr, name)[div])), name   # NaN markers after divergence


@pytest.mark.parametrize("width", [8, 32])  # 32: a catapult turns the warm start into a
# negative eigenvalue's eigenvector (seed 2, c = 4, step 9); train.warm_start's random part catches it
def test_sharpness_estimates_are_the_top_eigenvalue(width):
    """Every measured lambda_t (warm-started, stopped by the residual bound at sharpness_tol) is the
    closed-form lambda^H_max of the exact map's state, to sharpness_tol. Catches: an estimator
    that certifies a lower eigenvalue, a stale warm start, lambda of the wrong step."""
    n_off, worst = _estimates_off(_sweep(width))
    assert n_off == 0, f"{n_off} estimates off, worst {worst:.3g}"


def _estimates_off(run) -> tuple[int, float]:
    """How many live lambda_t miss the closed form by more than sharpness_tol (+ ROUNDOFF for the
    float64 trajectories themselves), and the worst relative error."""
    tr, ref = run["traj"], run["ref_sharp"]
    live = ~run["ref_diverged"]
    err = np.abs(tr.sharpness - ref)[live] / np.abs(ref[live])
    return int((err > CFG.sharpness_tol + ROUNDOFF).sum()), float(err.max())


def test_pure_warm_starts_certify_a_wrong_eigenvalue():
    """Why train.warm_start mixes in a random vector: without it (sharpness_warm_mix = 0) the w = 32
    sweep accepts a negative eigenvalue's estimate as lambda_t after a catapult (the previous top
    eigenvector has become that eigenvalue's), so the estimate test above would fail."""
    n_off, worst = _estimates_off(_sweep(32, CFG.replace(sharpness_warm_mix=0.0)))
    assert n_off >= 1 and worst > 0.5, (n_off, worst)


def test_critical_constants_are_the_closed_forms(run8):
    """c_loss, c_sharp, c_max of the pipeline = Definition 1 on the exact map, and the uv model's
    closed forms: c_max = last grid point below 4 lambda^H_0 / tr H_0 (k_max = 4), c_loss (unrounded)
    = first grid point above k_loss(r_0) lambda^H_0 / tr H_0. Catches: a wrong c_max rule (first
    divergent c instead of the one below it), T1 or rounding misapplied, seeds mixed up (the
    constants differ between seeds here)."""
    tr = run8["traj"]
    got = _constants(tr.loss, tr.sharpness, tr.diverged)
    want = _constants(run8["ref_loss"], run8["ref_sharp"], run8["ref_diverged"])
    for name in ("c_loss", "c_sharp", "c_max", "c_max_censored"):
        np.testing.assert_array_equal(got[name].values, want[name].values, err_msg=name)
    assert not got["c_max_censored"].values.any() and np.isfinite(got["c_sharp"].values).all()
    ratio = run8["top0"] / run8["trace0"]
    np.testing.assert_array_equal(got["c_max"].values, _grid_below(4 * ratio))
    assert len(np.unique(got["c_max"].values)) >= 3
    exact = _constants(tr.loss, tr.sharpness, tr.diverged, decimals=None)
    k_loss = np.asarray(uv.k_loss_first_step(run8["r0"]))
    np.testing.assert_array_equal(exact["c_loss"].values, _grid_above(k_loss * ratio))
    # the phases are ordered as SPEC 4.1 says
    assert np.all(got["c_loss"].values <= got["c_sharp"].values)
    assert np.all(got["c_sharp"].values <= got["c_max"].values)


def test_late_divergence_freezes_the_last_finite_weights(run8):
    """A run that diverges at step t0 >= 2 returns the GD weights of step t0 - 1 (the frozen-
    parameters path), with loss and sharpness recorded up to t0 - 1 and NaN from t0. Catches:
    weights updated on or after the divergent step, frozen one step early, frozen at init."""
    div = run8["ref_diverged"]
    first = np.where(div.any(-1), np.argmax(div, -1), -1)   # [S, C] divergence step, -1: none
    late = np.argwhere(first >= 2)
    assert len(late) >= S  # several per seed on this grid (steps 3 to 9)
    for s, k in late:
        t0 = first[s, k]
        for name, path in (("u", run8["path_u"]), ("v", run8["path_v"])):
            got = run8["params_T"][name][s, k]
            np.testing.assert_allclose(got, path[s, k, t0 - 1], rtol=ROUNDOFF,
                                       atol=ROUNDOFF * np.abs(path[s, k, t0 - 1]).max())
            assert np.abs(got - path[s, k, t0]).max() > 1e-3 * np.abs(path[s, k, t0]).max()
        loss = run8["traj"].loss[s, k]
        assert np.all(np.isfinite(loss[:t0])) and np.all(np.isnan(loss[t0:]))
