"""The phase diagram of your own model: lambda_0, trajectories and the critical constants
c_loss, c_sharp, c_max of any network, on any data.

A model is one of
  * a Flax module (``params`` only: no BatchNorm state), mapping x [B, ...] -> f [B, k];
  * a pair ``(init, apply)``: ``init(key, x [1, ...]) -> params``, ``apply(params, x) -> f``;
  * for ``phase_diagram``, a *family*: a function of the keyword ``width`` (and / or ``depth``)
    returning either, e.g. ``lambda width: MyMLP(width=width)``;
  * a ``models.Network`` (from ``network``), or a ``models.ModelConfig`` (the book's FCN,
    Myrtle and ResNet: they take this same path).

Data are a data set's name ("mnist", "fashion_mnist", "cifar10"), a pair ``(x, y)`` of arrays
(x [N, ...]; y [N, k] targets or integer labels [N]), or ``data.Arrays``.

Settings are the keywords of ``sweep.SweepConfig`` and ``train.TrainConfig``: among them the loss
("mse" or "xent"), ``batch_size``, ``optimizer`` ("sgd" or "gd"), ``num_steps``, ``T1`` (the steps
over which a rise counts), the c grid (``x_min``, ``x_max``, ``x_step``: c = 2^x), ``seeds``,
``n_train`` and ``n_measure``, ``search``, ``sharp_eps``. The learning rate of a run is
eta = c / lambda_0. An unknown or invalid setting is a ConfigError naming it, before any compute.

Every result is computed once: the results cache keys it on the settings, on earlytrain's own
source and on the model's (its source hash, or ``version=``), so an edit to the model recomputes
and a re-run reads the cache. ``scheduler`` (or ``EARLYTRAIN_SCHEDULER``) computes the points on a
Dask cluster with the same numbers; a script that starts one needs ``if __name__ == "__main__":``.

The Datasets are those of ``sweep``: ``phase_diagram`` returns exactly what ``sweep.phase_sweep``
returns for the book's chapters (dims depth, width, seed), so ``earlytrain.book.plotting`` draws it.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Optional, Sequence

import flax.linen as nn
import xarray as xr

from . import data as data_mod
from . import models, sweep
from .errors import check, check_names
from .models import ModelConfig, Network
from .sweep import SweepConfig
from .train import TrainConfig

_FIXED = {"dataset", "model", "train", "depths", "widths"}  # set by the arguments, not by settings


def network(model, version: Optional[str] = None, name: Optional[str] = None) -> Network:
    """A ``Network`` of a module, a pair or a family (see ``models.network``)."""
    return models.network(model, version=version, name=name)


def as_data(data) -> Any:
    """A data set's name as is; ``(x, y)`` -> ``data.Arrays``; ``data.Arrays`` as is."""
    if isinstance(data, (str, data_mod.Arrays)):
        return data
    check(isinstance(data, (tuple, list)) and len(data) == 2, "data",
          "a data set's name, a pair (x, y) of arrays, or data.Arrays", type(data).__name__)
    return data_mod.arrays(*data)


def config(model, data, *, widths: Optional[Sequence[int]] = None, depths: Optional[Sequence[int]] = None,
           version: Optional[str] = None, **settings) -> SweepConfig:
    """The ``SweepConfig`` the functions here run: ``model`` and ``data`` as in the module
    docstring, ``widths`` / ``depths`` the family's points (a single model: one point, labelled
    depth 1, width 1; a ModelConfig: its own depth and width unless given)."""
    sf = {f.name for f in dataclasses.fields(SweepConfig)} - _FIXED
    tf = {f.name for f in dataclasses.fields(TrainConfig)}
    check_names(settings, sf | tf, "settings", "fields of SweepConfig or TrainConfig (e.g. loss, "
                "batch_size, T1, x_max, seeds)")
    if isinstance(model, ModelConfig):
        check(version is None, "version", "None for a ModelConfig (the book's models are versioned "
              "with earlytrain's own source)", version)
        spec = model
        depths = (model.depth,) if depths is None else depths
        widths = (model.width,) if widths is None else widths
    else:
        spec = models.network(model, version=version)
        family = not isinstance(model, (nn.Module, tuple, list)) and not (
            isinstance(model, Network) and not model.axes)
        if widths is not None or depths is not None:
            check(family, "model", "a family (a function of width / depth) when widths or depths "
                  "are given", model)
        for axis, given in (("width", widths), ("depth", depths)):
            if axis in spec.axes:
                check(given is not None, f"{axis}s", f"the {axis}s of the family {spec.name}", given)
            elif given is not None:
                check(False, f"{axis}s", f"None: {spec.name} takes no keyword {axis!r}", given)
        depths = (1,) if depths is None else depths
        widths = (1,) if widths is None else widths
    train_cfg = TrainConfig(**{k: v for k, v in settings.items() if k in tf})
    rest = {k: v for k, v in settings.items() if k in sf}
    return SweepConfig(dataset=as_data(data), model=spec, train=train_cfg, depths=depths, widths=widths, **rest)


def _one(ds: xr.Dataset) -> xr.Dataset:
    return ds.isel(depth=0, width=0, drop=True)


def lambda_0(model, data, *, version: Optional[str] = None, progress: bool = False, scheduler=None,
             **settings) -> xr.Dataset:
    """The initial sharpness lambda_0 (top Hessian eigenvalue of the loss on the ``n_measure``
    measurement examples) of each initialisation -> Dataset over (seed,): ``lambda0`` and its
    accuracy record (``lambda0_residual``, ``lambda0_bound``, ``lambda0_matvecs``,
    ``lambda0_converged``)."""
    cfg = config(model, data, version=version, **settings)
    return _one(sweep.initial_sharpness(cfg, progress=progress, scheduler=scheduler))


def trajectories(model, data, c: Sequence[float], *, version: Optional[str] = None, progress: bool = False,
                 scheduler=None, **settings) -> xr.Dataset:
    """Runs at the constants ``c`` (eta = c / lambda_0) -> Dataset over (seed, c, step) of
    ``loss``, ``accuracy``, ``sharpness`` (NaN where not measured: set ``measure_sharpness=False``
    to skip it), ``diverged`` and the estimates' records; step 0 is the initialisation."""
    cfg = config(model, data, version=version, **settings)
    return _one(sweep.trajectory_sweep(cfg, c, progress=progress, scheduler=scheduler))


def critical_constants(model, data, *, version: Optional[str] = None, progress: bool = False, scheduler=None,
                       **settings) -> xr.Dataset:
    """c_loss, c_sharp, c_max of one model -> Dataset over (seed,) with the censoring
    (``c_max_censored``: no divergence on the grid, c_max is then its end), lambda_0 and the
    cost of the search (runs, Hessian-vector products); c_loss / c_sharp are NaN where no run
    of the grid shows the rise."""
    return _one(phase_diagram(model, data, version=version, progress=progress, scheduler=scheduler,
                              **settings))


def phase_diagram(model, data, *, widths: Optional[Sequence[int]] = None, depths: Optional[Sequence[int]] = None,
                  version: Optional[str] = None, progress: bool = True, scheduler=None, **settings) -> xr.Dataset:
    """The critical constants over a family of models in one call -> the Dataset of
    ``sweep.phase_sweep`` over (depth, width, seed) (with ``c`` the grid and the cost per point),
    each (depth, width) computed and cached on its own (a cluster computes them in parallel)."""
    cfg = config(model, data, widths=widths, depths=depths, version=version, **settings)
    return sweep.phase_sweep(cfg, progress=progress, scheduler=scheduler)
