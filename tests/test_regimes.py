"""The regime rule of chapter 08 (earlytrain.analyses.regimes) on synthetic trajectories with known
boundaries, and its input checks."""
import numpy as np
import pytest

from earlytrain.errors import ConfigError
from earlytrain.analyses.regimes import eos_stats, regime_boundaries


def synthetic(T=1000, lr=0.1):
    """lambda: 100 -> falls to 10 by step 5, flat to step 100, rises linearly to 2/eta = 20 at
    step 300, then oscillates +-2 % around 20."""
    t = np.arange(T + 1, dtype=float)
    lam = np.empty_like(t)
    lam[:6] = np.geomspace(100, 10, 6)
    lam[6:101] = 10.0
    k = (t[101:301] - 100) / 200
    lam[101:301] = 10 + 10 * k
    lam[301:] = 20 * (1 + 0.02 * np.where(np.arange(T - 300) % 2, 1, -1))
    return t, lam, lr


def test_boundaries_of_a_known_trajectory():
    t, lam, lr = synthetic()
    r = regime_boundaries(t, lam, lr, tol=0.1, eos_tol=0.05)
    assert r.lam_min == 10.0 and r.lam_eos == pytest.approx(20.0)
    assert r.t_saturation == 5.0
    # last step with lam <= 11: 10 + 10 k <= 11 -> k <= 0.1 -> t <= 120
    assert r.t_sharpening == 120.0
    # first step with lam >= 19: k >= 0.9 -> t = 280
    assert r.t_eos == 280.0


def test_missing_measurements_are_ignored():
    t, lam, lr = synthetic()
    sparse = np.full_like(lam, np.nan)
    sparse[::10] = lam[::10]
    r = regime_boundaries(t, sparse, lr)
    assert r.t_saturation == 10.0 and r.t_sharpening == 120.0 and r.t_eos == 280.0


def test_regimes_not_reached_are_nan():
    t, lam, lr = synthetic()
    r = regime_boundaries(t[:200], lam[:200], lr)           # stops during sharpening
    assert np.isnan(r.t_eos) and r.t_sharpening == 120.0
    r = regime_boundaries(t[:90], lam[:90], lr)             # stops on the plateau
    assert np.isnan(r.t_eos) and np.isnan(r.t_sharpening) and r.t_saturation == 5.0


def test_eos_stats_of_a_known_trajectory():
    t, lam, lr = synthetic()
    loss = np.exp(-t / 100)
    loss[301::2] *= 1.5                                    # non-monotone loss at EoS
    r = regime_boundaries(t, lam, lr)
    s = eos_stats(t, lam, loss, lr, r.t_eos)
    assert s.ratio_max == pytest.approx(1.02)
    assert s.n == len(t) - 280
    # from step 301 on the ratio alternates 0.98, 1.02: half above 1
    assert s.frac_above == pytest.approx(np.mean(lam[280:] > 20))
    assert s.loss_increases == np.sum(np.diff(loss[280:]) > 0) > 300
    none = eos_stats(t, lam, loss, lr, float("nan"))
    assert none.n == 0 and np.isnan(none.ratio_mean)


@pytest.mark.parametrize("kw, name", [(dict(lr=0.0), "lr"), (dict(tol=-1.0), "tol"),
                                      (dict(eos_tol=1.5), "eos_tol")])
def test_bad_input_names_the_parameter(kw, name):
    t, lam, lr = synthetic()
    args = dict(lr=lr) | kw
    with pytest.raises(ConfigError, match=name):
        regime_boundaries(t, lam, **args)


def test_bad_trajectories():
    t, lam, lr = synthetic()
    with pytest.raises(ConfigError, match="sharpness"):
        regime_boundaries(t, lam[:-1], lr)
    with pytest.raises(ConfigError, match="sharpness"):
        regime_boundaries(t, np.full_like(lam, np.nan), lr)
    with pytest.raises(ConfigError, match="step"):
        regime_boundaries(t[::-1], lam, lr)
