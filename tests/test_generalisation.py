"""earlytrain.analyses.generalisation: test accuracy after a fixed number of SGD steps against c (a tiny
FCN on an MNIST subset), and the reading of the best c per initialisation."""
from __future__ import annotations

import numpy as np
import pytest
import jax
import jax.numpy as jnp
import xarray as xr

from earlytrain import data, losses, models, sweep, train
from earlytrain.analyses import generalisation
from earlytrain.errors import ConfigError


def tiny(cs=(0.5, 2.5, 4096.0), steps=40):
    s = sweep.from_params(dataset="mnist", depths=[2], widths=[32], seeds=[1, 2], n_train=256, n_measure=128,
                          batch_size=64, num_steps=steps, T1=min(steps, 10))
    return generalisation.GeneralisationConfig(sweep=s, cs=cs, n_test=200)


def test_test_accuracy_trains_and_measures_on_the_test_split():
    ds = generalisation.test_accuracy(tiny())
    assert ds.test_accuracy.dims == ("seed", "c") and ds.sizes == {"seed": 2, "c": 3}
    ok = ~ds.diverged.values
    acc = ds.test_accuracy.values
    assert np.all((acc[ok] >= 0) & (acc[ok] <= 1)) and np.isnan(acc[~ok]).all()
    assert ds.diverged.sel(c=4096.0).all(), "far above c_max the runs diverge"
    assert not ds.diverged.sel(c=0.5).any()
    # the same number, computed independently: the book's training loop, then the test split
    cfg = tiny()
    s = cfg.sweep
    model = models.build(s.model.replace(depth=2, width=32))
    d = data.load("mnist", n=256, seed=s.data_seed)
    x, y = jnp.asarray(d.x), jnp.asarray(d.y)
    td = train.TrainData(x, y, x[:128], y[:128])
    params, aux = models.init_many(model, models.seed_keys([2]), td.x_meas)
    p0, a0 = jax.tree.map(lambda v: v[0], params), jax.tree.map(lambda v: v[0], aux)
    lam0 = jax.tree.map(lambda v: v[0], train.initial_sharpness(model, params, aux, td, s.train))
    batches = jnp.asarray(train.batch_schedule(256, 64, 40, s.train.sgd_seed))
    _, p_T = train.run_with_params(model, p0, a0, 2.5 / float(lam0.value), td, batches,
                                   s.train.replace(measure_sharpness=False), lam0)
    t = data.load("mnist", n=200, seed=s.data_seed, split="test")
    acc_T = float(losses.accuracy(model.apply(p_T, a0, jnp.asarray(t.x)), jnp.asarray(t.y)))
    acc_0 = float(losses.accuracy(model.apply(p0, a0, jnp.asarray(t.x)), jnp.asarray(t.y)))
    assert float(ds.test_accuracy.sel(seed=2, c=2.5)) == pytest.approx(acc_T, abs=1e-6)
    assert acc_T > acc_0, "40 SGD steps at c = 2.5 raise the test accuracy"
    assert (ds.lambda0 > 0).all() and ds.attrs["steps"] == 40
    again = generalisation.test_accuracy(tiny())
    np.testing.assert_array_equal(again.test_accuracy.values, acc)     # seeded: the same numbers


def test_best_c_reads_the_catapult_window():
    acc = np.array([[0.5, 0.8, 0.7, np.nan], [0.9, 0.8, 0.7, np.nan], [0.5, 0.6, 0.9, np.nan]])
    div = np.isnan(acc)
    ds = xr.Dataset({"test_accuracy": (("seed", "c"), acc), "diverged": (("seed", "c"), div)},
                    coords={"seed": [1, 2, 3], "c": [1.0, 4.0, 8.0, 16.0]})
    b = generalisation.best_c(ds)
    assert list(b.best_c.values) == [4.0, 1.0, 8.0]
    assert list(b.c_max.values) == [8.0, 8.0, 8.0]
    assert list(b.in_catapult.values) == [True, False, True]   # 8 = c_max of the grid still counts


def test_config_errors_name_the_parameter():
    with pytest.raises(ConfigError, match="cs"):
        tiny(cs=())
    with pytest.raises(ConfigError, match="n_test"):
        tiny().replace(n_test=10 ** 6)
