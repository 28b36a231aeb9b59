"""Numerical guards: lambda_0 <= 0 or not finite stops a sweep before any run (never a negative
or infinite eta = c / lambda_0); estimates that missed their accuracy bound are flagged in the
result and reported with an AccuracyWarning. Tiny synthetic data, no data set needed."""
from __future__ import annotations

import warnings

import jax.numpy as jnp
import numpy as np
import pytest

from earlytrain import guards, sweep, train
from earlytrain.errors import AccuracyWarning, NumericalError
from earlytrain.train import TrainConfig

CFG = sweep.SweepConfig(n_train=64, n_measure=32, depths=(2,), widths=(4,), seeds=(1, 2), x_min=0.0,
                        x_max=3.0, x_step=1.0, T1=3, search="grid",
                        train=TrainConfig(batch_size=16, num_steps=3, sharpness_iters=20))


@pytest.fixture
def synthetic(monkeypatch, tmp_path):
    rng = np.random.RandomState(0)
    x = rng.randn(64, 3, 3, 1).astype(np.float32)
    y = np.eye(10, dtype=np.float32)[rng.randint(0, 10, 64)]
    data = train.TrainData(jnp.asarray(x), jnp.asarray(y), jnp.asarray(x[:32]), jnp.asarray(y[:32]))
    monkeypatch.setattr(sweep, "train_data", lambda *a: data)
    monkeypatch.setenv("EARLYTRAIN_RESULTS", str(tmp_path))
    monkeypatch.delenv("EARLYTRAIN_REFRESH", raising=False)


def test_check_lambda0():
    guards.check_lambda0(np.array([0.5, 3.0]), ["seed 1", "seed 2"], "here")
    for bad in (0.0, -1e-6, np.inf, np.nan):
        with pytest.raises(NumericalError, match=r"at here \(seed 2: ") as err:
            guards.check_lambda0(np.array([0.5, bad]), ["seed 1", "seed 2"], "here")
        assert "seed 1" not in str(err.value)


def test_bad_lambda0_stops_the_sweep_before_any_run(synthetic, monkeypatch):
    real = train.initial_sharpness

    def broken(*a, **k):
        eig = real(*a, **k)
        return eig._replace(value=jnp.asarray([-2.0, np.nan], eig.value.dtype))

    def no_run(*a, **k):
        raise AssertionError("a run started with a bad lambda_0")
    monkeypatch.setattr(train, "initial_sharpness", broken)
    monkeypatch.setattr(train, "run_grid", no_run)
    with pytest.raises(NumericalError, match=r"depth 2, width 4 \(seed 1: -2, seed 2: nan\)"):
        sweep.phase_sweep(CFG, progress=False)


def test_converged_estimates_are_flagged_and_unconverged_warned(synthetic):
    with warnings.catch_warnings():
        warnings.simplefilter("error", AccuracyWarning)
        ok = sweep.phase_sweep(CFG, progress=False)
    assert ok.lambda0_converged.dtype == bool and bool(ok.lambda0_converged.all())
    assert int(ok.n_sharpness_unconverged.sum()) == 0
    # a cap of 2 products cannot reach a relative accuracy of 1e-12
    tight = CFG.replace(train=CFG.train.replace(sharpness_iters=2, sharpness_tol=1e-12, lambda0_tol=1e-12))
    with pytest.warns(AccuracyWarning) as rec:
        bad = sweep.phase_sweep(tight, progress=False)
    msgs = " | ".join(str(w.message) for w in rec)
    assert "2 of 2 lambda_0 estimates" in msgs and "sharpness estimates after step 0" in msgs, msgs
    assert not bool(bad.lambda0_converged.any()) and int(bad.n_sharpness_unconverged.sum()) > 0


def test_memory_check_rejects_what_cannot_fit_before_compute(synthetic, monkeypatch):
    from earlytrain import memory
    from earlytrain.errors import ConfigError

    def no_compute(*a, **k):
        raise AssertionError("computation started before the memory check")
    monkeypatch.setattr(sweep, "train_data", no_compute)
    monkeypatch.setattr(train, "initial_sharpness", no_compute)
    huge = CFG.replace(widths=(4, 10**7), depths=(4,))
    with pytest.raises(ConfigError, match=r"^memory: the point depth 4, width 10000000 needs about .* GB") as err:
        sweep.phase_sweep(huge, progress=False)  # the first (small) point is not computed either
    assert "lower widths / depths" in str(err.value)
    with pytest.raises(ConfigError, match="^memory:"):
        sweep.trajectory_sweep(huge, [1.0], progress=False)
    with pytest.raises(ConfigError, match="^memory:"):
        sweep.critical_point(huge.replace(widths=(10**7,)))
    # a limit the user sets, in bytes or with a suffix
    need = memory.point_bytes(CFG, 2, 4)
    assert sum(need.values()) < 2**30
    monkeypatch.setenv("EARLYTRAIN_MEMORY_LIMIT", "1K")
    with pytest.raises(ConfigError, match="more than the 9.54e-07 GB available"):
        sweep.phase_sweep(CFG, progress=False)
    monkeypatch.setenv("EARLYTRAIN_MEMORY_LIMIT", "lots")
    with pytest.raises(ConfigError, match="^EARLYTRAIN_MEMORY_LIMIT:"):
        sweep.phase_sweep(CFG, progress=False)
    monkeypatch.setenv("EARLYTRAIN_MEMORY_LIMIT", "1G")
    memory.check_sweep(CFG)
    assert memory.limit_bytes() == 2**30
