"""Tests of earlytrain.phases on synthetic trajectories whose critical constants are known."""
from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from earlytrain import phases


def _synthetic(i_loss, i_sharp, i_div, n_c=12, T=10, c=None, seeds=None):
    """A Dataset over (seed, c, step) with the loss rising from grid index i_loss[s] on, the
    sharpness from i_sharp[s] on and divergence (at step 4) from i_div[s] on. Index n_c: never."""
    S = len(i_loss)
    c = 2.0 ** (0.5 * np.arange(n_c)) if c is None else c
    steps = np.arange(T + 1)
    decay = 0.9 ** steps                      # falls monotonically: no rise
    bump = np.where(steps == 2, 1.5, 1.0) * decay  # rises 35% above L_0 at step 2
    loss = np.empty((S, n_c, T + 1))
    sharp = np.empty((S, n_c, T + 1))
    div = np.zeros((S, n_c, T + 1), bool)
    for s in range(S):
        for i in range(n_c):
            loss[s, i] = 0.3 * (bump if i >= i_loss[s] else decay)
            sharp[s, i] = 40.0 * (bump if i >= i_sharp[s] else decay)
            if i >= i_div[s]:
                div[s, i, 4:] = True
                loss[s, i, 4:] = np.nan
                sharp[s, i, 4:] = np.nan
    seeds = list(range(1, S + 1)) if seeds is None else seeds
    dims = ("seed", "c", "step")
    return xr.Dataset({"loss": (dims, loss), "sharpness": (dims, sharp), "diverged": (dims, div)},
                      coords={"seed": seeds, "c": c, "step": steps})


def test_critical_constants_exact():
    n_c = 12
    i_loss = [2, 0, 5, 7, 3]
    i_sharp = [4, 0, 5, 12, 12]
    i_div = [9, 1, 11, 12, 3]   # seed 4: divergence at 12 = never; seed 5 diverges where the loss rises
    ds = _synthetic(i_loss, i_sharp, i_div, n_c=n_c)
    c = ds["c"].values
    out = phases.critical_constants(ds)
    assert out["c_loss"].dims == ("seed",)
    np.testing.assert_array_equal(out["seed"].values, ds["seed"].values)
    # the rise is the first of: own rise, divergence (a diverged run counts as a rise of both)
    exp_loss = [c[min(a, b)] for a, b in zip(i_loss, i_div)]
    exp_sharp = [c[min(a, b)] if min(a, b) < n_c else np.nan for a, b in zip(i_sharp, i_div)]
    exp_max = [c[i - 1] if i < n_c else c[-1] for i in i_div]
    np.testing.assert_array_equal(out["c_loss"].values, exp_loss)
    np.testing.assert_array_equal(out["c_sharp"].values, exp_sharp)
    np.testing.assert_array_equal(out["c_max"].values, exp_max)
    np.testing.assert_array_equal(out["c_max_censored"].values, [i == n_c for i in i_div])
    # dimension order of the input does not matter
    out2 = phases.critical_constants(ds.transpose("step", "c", "seed"))
    xr.testing.assert_identical(out, out2)


def test_extra_dims_are_kept():
    a = _synthetic([2, 3], [4, 5], [8, 9])
    b = _synthetic([1, 6], [2, 7], [10, 12])
    ds = xr.concat([a.expand_dims(width=[16]), b.expand_dims(width=[32])], "width")
    out = phases.critical_constants(ds)
    c = ds["c"].values
    assert set(out["c_loss"].dims) == {"width", "seed"}
    np.testing.assert_array_equal(out["c_loss"].transpose("width", "seed").values, [[c[2], c[3]], [c[1], c[6]]])
    np.testing.assert_array_equal(out["c_max"].transpose("width", "seed").values,
                                  [[c[7], c[8]], [c[9], c[-1]]])


def _one(ratios, L0=2.0):
    """A loss trajectory [T+1] with L_t = L0 * ratio_t, ratios for t = 1..T."""
    return np.concatenate([[L0], L0 * np.asarray(ratios, float)])


def test_rounding_rule():
    no_div = np.zeros(4, bool)
    # decimals=2: 1.004 rounds to 1.00 (no rise), 1.006 to 1.01 (rise)
    assert not phases.loss_rises(_one([0.9, 1.004, 0.8]), no_div, T1=3, decimals=2)
    assert phases.loss_rises(_one([0.9, 1.006, 0.8]), no_div, T1=3, decimals=2)
    # decimals=None compares the raw ratio: 1.004 > 1
    assert phases.loss_rises(_one([0.9, 1.004, 0.8]), no_div, T1=3, decimals=None)
    assert not phases.loss_rises(_one([0.9, 1.0, 0.8]), no_div, T1=3, decimals=None)  # strict >
    for fn in (phases.loss_rises, phases.sharpness_rises):
        assert not fn(_one([1.004, 0.9, 0.9]), no_div, 3, 2)
        assert fn(_one([1.006, 0.9, 0.9]), no_div, 3, 2)
        assert fn(_one([1.004, 0.9, 0.9]), no_div, 3, None)
    # the same rule through critical_constants (a trajectory Dataset with one c)
    for ratio, decimals, rises in ((1.004, 2, False), (1.006, 2, True), (1.004, None, True)):
        traj = _one([0.95, ratio, 0.9])[None, None]
        ds = xr.Dataset({"loss": (("seed", "c", "step"), traj), "sharpness": (("seed", "c", "step"), traj),
                         "diverged": (("seed", "c", "step"), np.zeros_like(traj, bool))},
                        coords={"seed": [1], "c": [3.0], "step": np.arange(4)})
        out = phases.critical_constants(ds, decimals=decimals)
        expect = 3.0 if rises else np.nan
        np.testing.assert_array_equal(out["c_loss"].values, [expect])
        np.testing.assert_array_equal(out["c_sharp"].values, [expect])


def test_only_steps_1_to_T1_count():
    no_div = np.zeros(6, bool)
    late = _one([0.9, 0.8, 0.7, 0.6, 1.5])  # rises at step 5 only
    assert not phases.loss_rises(late, no_div, T1=4)
    assert phases.loss_rises(late, no_div, T1=5)
    div_late = no_div.copy()
    div_late[5] = True
    assert not phases.runs_diverge(div_late, T1=4)
    assert phases.runs_diverge(div_late, T1=5)
    # step 0 is the reference, never a rise or a divergence
    div0 = no_div.copy()
    div0[0] = True
    assert not phases.runs_diverge(div0, T1=5)


def test_divergence_counts_as_rise():
    """A run that diverges has NaN metrics afterwards; the rise comes from the diverged flag."""
    loss = _one([0.9, 0.8, np.nan, np.nan])
    div = np.array([False, False, False, True, True])
    assert phases.loss_rises(loss, div, T1=4)
    assert phases.sharpness_rises(loss, div, T1=4)
    assert phases.runs_diverge(div, T1=4)
    # the same NaN-free-before trajectory without the flag does not rise
    assert not phases.loss_rises(loss, np.zeros(5, bool), T1=4)


def test_c_max_rules():
    c = np.array([1.0, 2.0, 4.0, 8.0])
    np.testing.assert_array_equal(phases.c_max_from_first_divergent(np.array([2, 1, 4, 0]), c),
                                  [2.0, 1.0, 8.0, np.nan])
    np.testing.assert_array_equal(phases.c_from_index(np.array([0, 3, 4]), c), [1.0, 8.0, np.nan])
    np.testing.assert_array_equal(phases.first_true_c(np.array([[False, True, True, True],
                                                                [False] * 4]), c), [2.0, np.nan])
    # first grid point already divergent: c_max is NaN and not censored
    ds = _synthetic([0], [0], [0], n_c=4)
    out = phases.critical_constants(ds)
    assert np.isnan(out["c_max"].values[0]) and not out["c_max_censored"].values[0]
    assert out["c_loss"].values[0] == ds["c"].values[0]


def test_eps_threshold():
    no_div = np.zeros(4, bool)
    s = _one([0.99, 1.03, 0.97], L0=10.0)
    assert phases.sharpness_rises(s, no_div, T1=3, eps=0.0)
    assert not phases.sharpness_rises(s, no_div, T1=3, eps=0.05)
    assert phases.sharpness_rises(_one([0.99, 1.06, 0.97], L0=10.0), no_div, T1=3, eps=0.05)
    # eps applies to the sharpness only, and through critical_constants
    ds = _synthetic([12], [3], [12], n_c=12)
    ds["sharpness"] = ds["sharpness"].where(ds["c"] >= ds["c"][3], 40.0 * 1.03)
    ds["sharpness"][..., 0] = 40.0
    c = ds["c"].values
    assert phases.critical_constants(ds, eps=0.0)["c_sharp"].values[0] == c[0]
    assert phases.critical_constants(ds, eps=0.05)["c_sharp"].values[0] == c[3]  # its 1.5 bump
    assert np.isnan(phases.critical_constants(ds, eps=0.05)["c_loss"].values[0])


def test_phase_of_labels():
    c_loss, c_sharp, c_max = 2.0, 4.0, 8.0
    c = np.array([1.0, 1.99, 2.0, 3.0, 4.0, 6.0, 8.0, 8.01, 100.0])
    labels = phases.phase_of(c, c_loss, c_sharp, c_max)
    np.testing.assert_array_equal(labels, [0, 0, 1, 1, 2, 2, 2, 3, 3])
    assert [phases.PHASES[i] for i in labels[[0, 2, 4, 7]]] == [
        "sharpness reduction", "loss catapult", "loss and sharpness catapult", "divergent"]
    # broadcasting over seeds
    lab = phases.phase_of(3.0, np.array([2.0, 4.0]), np.array([3.5, 5.0]), np.array([9.0, 9.0]))
    np.testing.assert_array_equal(lab, [1, 0])


@pytest.mark.parametrize("decimals,eps", [(2, 0.0), (2, 0.05), (2, 0.053), (1, 0.0), (3, 0.02), (None, 0.0),
                                          (None, 0.05)])
def test_rise_boundary_is_where_the_indicator_switches(decimals, eps):
    """``rise_boundary``: ratios just above it rise, ratios just below do not, by the very rule
    ``sharpness_rises`` applies (rounding to ``decimals``, then > 1 + eps)."""
    b = phases.rise_boundary(decimals, eps)
    rel = np.array([1e-9, 1e-6, 1e-4, 1e-2])
    ratios = np.concatenate([b * (1 + rel), b * (1 - rel)])
    sharp = np.stack([np.ones_like(ratios), ratios], -1)  # [K, 2]: lambda_0 = 1, lambda_1 = ratio
    rises = phases.sharpness_rises(sharp, np.zeros_like(sharp, bool), T1=1, decimals=decimals, eps=eps)
    np.testing.assert_array_equal(rises, [True] * len(rel) + [False] * len(rel))
