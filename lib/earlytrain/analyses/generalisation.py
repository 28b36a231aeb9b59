"""Test accuracy after a fixed number of SGD steps, against the learning rate c = eta lambda_0.

The catapult paper's practical claim (Lewkowycz et al. 2020, Sec. 3; SPEC 8: "The best test
accuracy is usually in the catapult phase"): trained for the same number of steps, a network
generalises best at a learning rate inside the catapult window 2 < c < c_max. :func:`test_accuracy`
trains one network per (initialisation, c) for ``sweep.train.num_steps`` steps of SGD (the book's
training loop, :func:`earlytrain.train.run_with_params`) and measures the accuracy of the final
parameters on a seeded subset of the *test* split; :func:`best_c` reads, per initialisation, the c
of the best test accuracy among the runs that did not diverge.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from .. import data as data_mod
from .. import losses, models, train
from ..errors import check
from ..sweep import SweepConfig


@dataclass(frozen=True)
class GeneralisationConfig:
    """``sweep``: the network (its first depth and width), data, seeds and SGD (its
    ``train.num_steps`` is the number of steps of every run); ``cs``: the constants c = eta
    lambda_0; ``n_test``: the size of the seeded test subset."""
    sweep: SweepConfig
    cs: tuple = (1.0, 2.5, 4.0)
    n_test: int = 2000

    def __post_init__(self):
        cs = tuple(float(c) for c in self.cs)
        check(len(cs) > 0 and all(np.isfinite(c) and c > 0 for c in cs), "cs",
              "a non-empty list of finite positive constants c", self.cs)
        object.__setattr__(self, "cs", cs)
        size = data_mod.SPLIT_SIZES[self.sweep.dataset]["test"]
        check(isinstance(self.n_test, int) and 1 <= self.n_test <= size, "n_test",
              f"an integer in [1, {size}] (the {self.sweep.dataset} test split)", self.n_test)

    def replace(self, **kw) -> "GeneralisationConfig":
        return dataclasses.replace(self, **kw)


@partial(jax.jit, static_argnames=("model", "cfg"))
def _runs(model, params, aux, lam0, lrs, tdata, batches, x_test, y_test, cfg):
    def one(lr):
        tr, p_T = train.run_with_params(model, params, aux, lr, tdata, batches, cfg, lam0)
        return tr.loss[-1], tr.diverged[-1], losses.accuracy(model.apply(p_T, aux, x_test), y_test)
    return jax.vmap(one)(lrs)


def test_accuracy(cfg: GeneralisationConfig) -> xr.Dataset:
    """(seed, c) -> test_accuracy (NaN for a diverged run), train_loss (the final loss on the
    measurement subset), diverged; (seed) -> lambda0."""
    s = cfg.sweep
    model = models.build(s.model.replace(depth=s.depths[0], width=s.widths[0]))
    d = data_mod.load(s.dataset, n=s.n_train, seed=s.data_seed)
    x, y = jnp.asarray(d.x), jnp.asarray(d.y)
    tdata = train.TrainData(x, y, x[:s.n_measure], y[:s.n_measure])
    t = data_mod.load(s.dataset, n=cfg.n_test, seed=s.data_seed, split="test")
    params, aux = models.init_many(model, models.seed_keys(s.seeds), tdata.x_meas)
    lam0 = train.initial_sharpness(model, params, aux, tdata, s.train.replace(measure_sharpness=True))
    batches = jnp.asarray(train.batch_schedule(s.n_train, min(s.train.batch_size, s.n_train), s.train.num_steps,
                                               s.train.sgd_seed))
    tcfg = s.train.replace(measure_sharpness=False)
    cs = np.asarray(cfg.cs)
    out = {"test_accuracy": [], "train_loss": [], "diverged": []}
    for i in range(len(s.seeds)):
        pick = lambda a: a[i]
        p, a, l0 = jax.tree.map(pick, params), jax.tree.map(pick, aux), jax.tree.map(pick, lam0)
        loss, div, acc = _runs(model, p, a, l0, jnp.asarray(cs / float(l0.value)), tdata, batches,
                               jnp.asarray(t.x), jnp.asarray(t.y), tcfg)
        div = np.asarray(div)
        out["test_accuracy"].append(np.where(div, np.nan, np.asarray(acc, float)))
        out["train_loss"].append(np.asarray(loss, float))
        out["diverged"].append(div)
    coords = {"seed": list(s.seeds), "c": cs}
    ds = xr.Dataset({k: (("seed", "c"), np.stack(v)) for k, v in out.items()}, coords=coords)
    ds["lambda0"] = ("seed", np.asarray(lam0.value, float))
    ds.attrs.update(steps=s.train.num_steps, n_test=cfg.n_test, depth=s.depths[0], width=s.widths[0])
    return ds


def best_c(ds: xr.Dataset) -> xr.Dataset:
    """Per initialisation: best_c (the c of the highest test accuracy among the runs that did not
    diverge; the smallest such c on a tie), c_max (the largest c of the grid that did not diverge)
    and in_catapult (2 < best_c <= c_max: inside the catapult window)."""
    acc = ds.test_accuracy.values
    cs = ds.c.values
    best, cmax = [], []
    for row, div in zip(acc, ds.diverged.values):
        ok = np.isfinite(row) & ~div
        best.append(float(cs[ok][np.argmax(row[ok])]) if ok.any() else np.nan)
        cmax.append(float(cs[ok].max()) if ok.any() else np.nan)
    best, cmax = np.asarray(best), np.asarray(cmax)
    return xr.Dataset({"best_c": ("seed", best), "c_max": ("seed", cmax),
                       "in_catapult": ("seed", (best > 2) & (best <= cmax))}, coords={"seed": ds.seed.values})
