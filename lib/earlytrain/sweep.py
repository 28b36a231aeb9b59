"""Sweeps over (dataset, depth, width, seed, c) returning labeled xarray Datasets.

Shapes (width, depth) change the compiled program, so they are a Python loop with one compile
each and one cached result each: an interrupted sweep resumes with the points it finished.
Seeds and c change no shape, so they are vmapped inside ``train.run_grid``.

* ``trajectory_sweep(cfg, c)``: full per-step records over (depth, width, seed, c, step).
* ``initial_sharpness(cfg)``: lambda_0 over (depth, width, seed).
* ``phase_sweep(cfg)``: critical constants over (depth, width, seed), found with
  ``cfg.search`` ("grid" = the paper's full grid; "coarse_to_fine" / "bisect" = the same grid
  point with far fewer runs when the indicators are monotone, see ``search``). Sharpness is
  measured only in the runs that decide c_sharp; c_loss and c_max need losses only.

Every point is a ``Point``: the networks of one (depth, width) with their lambda_0, which the
searches here and in ``connectivity`` / ``saturation`` evaluate runs on. The model of a sweep is
a ``models.ModelConfig`` (the book's architectures) or a ``models.Network`` (anyone's), and its
data a data set's name or ``data.Arrays``: both go through the same code (``earlytrain.api`` is
the documented entry for one's own model).
"""
from __future__ import annotations

import dataclasses
import functools
import numbers
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Optional, Union

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from . import cache, cluster, data, grid, guards, memory, models, phases, search, train
from .errors import (as_config, as_tuple, check, check_choice, check_int, check_names,
                     check_real, is_real, strict_init)
from .data import Arrays
from .models import ModelConfig, Network
from .train import TrainConfig


@strict_init
@dataclass(frozen=True)
class SweepConfig:
    dataset: Union[str, Arrays] = "mnist"  # "mnist", "fashion_mnist", "cifar10" or data.arrays(x, y)
    n_train: int = 4096               # SGD pool: a seeded subset of the training split
    n_measure: int = 1024             # measurement subset (the pool's first n_measure examples)
    data_seed: int = 0                # seed of the subset
    depths: tuple = (4,)              # depths d
    widths: tuple = (64, 128, 256)    # widths w
    seeds: tuple = (1, 2, 3, 4)       # initialisation seeds I (PRNGKey(I))
    x_min: float = 0.0                # c grid: c = 2^x, x = x_min, x_min + x_step, ..., <= x_max
    x_max: float = 6.0
    x_step: float = 0.1
    T1: int = 10                      # steps over which rises are looked for (<= train.num_steps)
    decimals: Optional[int] = 2       # rounding of the ratios before comparing with 1 (None: none)
    sharp_eps: float = 0.0            # c_sharp threshold 1 + eps (0.05 for centered / zero-init)
    search: str = "bisect"            # "grid", "coarse_to_fine" or "bisect"
    stride: int = 8                   # coarse stride of "coarse_to_fine"
    c_chunk: Optional[int] = 8        # runs per vmapped batch when measuring sharpness (memory;
    #                                   None: as many as the device's memory holds, memory.auto_c_chunk)
    c_sharp_max_width: Optional[int] = None  # skip c_sharp (NaN) above this width (cost)
    model: Union[ModelConfig, Network] = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self):
        set_ = lambda k, v: object.__setattr__(self, k, v)
        for k in ("depths", "widths", "seeds"):
            set_(k, as_tuple(getattr(self, k), k))
        if not isinstance(self.model, Network):
            set_("model", as_config(ModelConfig, self.model, "model"))
        set_("train", as_config(TrainConfig, self.train, "train"))
        if not isinstance(self.dataset, Arrays):
            check_choice(self.dataset, "dataset", data.DATASETS)
        size = data.train_size(self.dataset)
        check(isinstance(self.n_train, numbers.Integral) and not isinstance(self.n_train, bool)
              and 1 <= self.n_train <= size, "n_train",
              f"an integer in [1, {size}] (the {self.dataset} training split has {size} examples)", self.n_train)
        check_int(self.n_measure, "n_measure", minimum=1, maximum=self.n_train)
        check_int(self.data_seed, "data_seed", minimum=0)
        check(len(self.depths) > 0, "depths", "a non-empty list of depths >= 2", self.depths)
        check(len(self.widths) > 0, "widths", "a non-empty list of widths >= 1", self.widths)
        least = models.ARCHITECTURES[self.model.arch].min_depth if isinstance(self.model, ModelConfig) else 1
        for d in self.depths:
            check_int(d, "depths", minimum=least)  # the architecture's exact depths: below
        for w in self.widths:
            check_int(w, "widths", minimum=1)
        for s in self.seeds:
            check_int(s, "seeds", minimum=0)
        check(len(self.seeds) > 0 and len(set(self.seeds)) == len(self.seeds), "seeds",
              "a non-empty list of distinct integers", self.seeds)
        grid.check_grid(self.x_min, self.x_max, self.x_step, grid.MAX_POINTS_NETWORK, single_point=True)
        check_int(self.T1, "T1", minimum=1, maximum=self.train.num_steps)
        if self.decimals is not None:
            check_int(self.decimals, "decimals", minimum=0)
        check_real(self.sharp_eps, "sharp_eps", minimum=0)
        check_choice(self.search, "search", search.STRATEGIES)
        check_int(self.stride, "stride", minimum=2)
        if self.c_chunk is not None:
            check_int(self.c_chunk, "c_chunk", minimum=1)
        if self.c_sharp_max_width is not None:
            check_int(self.c_sharp_max_width, "c_sharp_max_width", minimum=0)
        check(self.train.hvp_chunk is None or self.n_measure % self.train.hvp_chunk == 0, "hvp_chunk",
              f"a divisor of n_measure = {self.n_measure} (examples per Hessian-vector product), or None",
              self.train.hvp_chunk)
        check(self.train.optimizer == "gd" or self.train.batch_size <= self.n_train, "batch_size",
              f"at most n_train = {self.n_train} (the SGD pool)", self.train.batch_size)
        for d in self.depths:  # architecture-specific checks (e.g. Myrtle depth) before any compute
            for w in self.widths:
                self.model.at(d, w).network()

    def replace(self, **kw) -> "SweepConfig":
        return dataclasses.replace(self, **kw)

    @property
    def x_grid(self) -> np.ndarray:
        """x [n] of the grid c = 2^x (``grid.x_grid``)."""
        return grid.x_grid(self.x_min, self.x_max, self.x_step)

    @property
    def c_grid(self) -> np.ndarray:
        """c = 2^x [n] (``grid.c_grid``)."""
        return grid.c_grid(self.x_min, self.x_max, self.x_step)


def from_params(**params) -> SweepConfig:
    """A SweepConfig from a chapter's flat parameters: keys of ModelConfig / TrainConfig go to
    ``model`` / ``train``; the rest are SweepConfig fields. Unknown keys are an error."""
    mf = {f.name for f in dataclasses.fields(ModelConfig)}
    tf = {f.name for f in dataclasses.fields(TrainConfig)}
    sf = {f.name for f in dataclasses.fields(SweepConfig)}
    check_names(params, (mf | tf | sf) - {"model", "train"}, "parameters",
                "names of SweepConfig, ModelConfig or TrainConfig fields")
    model = ModelConfig(**{k: v for k, v in params.items() if k in mf})
    train_cfg = TrainConfig(**{k: v for k, v in params.items() if k in tf})
    rest = {k: v for k, v in params.items() if k in sf and k not in ("model", "train")}
    return SweepConfig(model=model, train=train_cfg, **rest)


@functools.lru_cache(maxsize=4)
def train_data(dataset, n_train: int, n_measure: int, seed: int) -> train.TrainData:
    """The data of a sweep's points as device arrays: the SGD pool (``data.load_pool``: a seeded
    subset of n_train training examples, x [n_train, ...], y [n_train, k]) and its first n_measure
    examples for the sharpness. Memoised (the last 4), so the points of a sweep load it once.
    The subset is sliced on the host (a slice of a device array is an eager op, compiled on its
    own for each shape)."""
    x, y = data.load_pool(dataset, n_train, seed)
    return train.TrainData(*map(jnp.asarray, (x, y, x[:n_measure], y[:n_measure])))


def shard_seeds(tree):
    """Spread the seed axis (leading axis of every leaf) over all devices when there are
    several and it divides evenly; run_grid's jit then partitions the runs across them.
    On one device (this CPU) it returns ``tree`` unchanged."""
    devices = jax.devices()
    n_seeds = jax.tree.leaves(tree)[0].shape[0]
    if len(devices) < 2 or n_seeds % len(devices):
        return tree
    mesh = jax.sharding.Mesh(np.asarray(devices), ("seed",))
    spec = lambda a: jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("seed", *[None] * (a.ndim - 1)))
    return jax.tree.map(lambda a: jax.device_put(a, spec(a)), tree)


class Point:
    """One (depth, width) point of a sweep: S networks (one per seed), their lambda_0, and runs on
    them, memoised. The searches of ``critical_point``, ``connectivity`` and ``saturation`` all
    evaluate their runs through it.

    Building one checks the memory the point needs (``memory.check_point``) and the model's
    output against the data's targets before any data are loaded, then initialises the S
    networks on the measurement subset and measures lambda_0 [S] (guarded: a non-positive or
    non-finite lambda_0 is a NumericalError naming the seed).

    Attributes:
      cfg: the SweepConfig; model: the ``models.Model`` at this point; data: ``train.TrainData``;
      params, aux: the S initialisations (leading axis S); lam0: ``hessian.Eig`` with [S] fields;
      batches: int [T, B] SGD batch indices, the same for every run;
      memo: {(sharp, seed index, grid index): {indicator: bool}}: what the runs evaluated so far
        decided (``indicators``);
      n_runs: {sharp: runs}; n_matvecs, n_unconverged: the sharpness runs' cost and accuracy.
    """

    def __init__(self, cfg: SweepConfig, depth: int, width: int):
        memory.check_point(cfg, depth, width)  # before the data are loaded or anything is built
        # sized to the device's memory (the cache key keeps None; ``chunks`` records them):
        # the examples per Hessian-vector product first, then the runs per batch
        if cfg.train.hvp_chunk is None:
            cfg = cfg.replace(train=cfg.train.replace(hvp_chunk=memory.auto_hvp_chunk(cfg, depth, width)))
        if cfg.c_chunk is None:
            cfg = cfg.replace(c_chunk=memory.auto_c_chunk(cfg, depth, width))
        self.cfg = cfg
        self.model = _build(cfg.model.at(depth, width))
        self.data = train_data(cfg.dataset, cfg.n_train, cfg.n_measure, cfg.data_seed)
        self.params, self.aux = models.init_many(self.model, models.seed_keys(cfg.seeds), self.data.x_meas)
        self.lam0 = train.initial_sharpness(self.model, self.params, self.aux, self.data,
                                            cfg.train.replace(measure_sharpness=True))
        guards.check_lambda0(self.lam0.value, [f"seed {s}" for s in cfg.seeds],
                             f"{cfg.dataset}, depth {depth}, width {width}")
        n_batch = cfg.n_train if cfg.train.optimizer == "gd" else cfg.train.batch_size
        self.batches = jnp.asarray(train.batch_schedule(cfg.n_train, min(n_batch, cfg.n_train),
                                                        cfg.train.num_steps, cfg.train.sgd_seed))
        self.memo: dict[tuple[bool, int, int], dict] = {}
        self.n_runs = {False: 0, True: 0}
        self.n_matvecs = 0      # Hessian-vector products spent by the sharpness runs (after lambda_0)
        self.n_unconverged = 0  # estimates whose error bound did not meet sharpness_tol

    @property
    def chunks(self) -> dict[str, int]:
        """The batch sizes this point runs with, as resolved from the device's memory when the
        configuration left them None: runs per batch (c_chunk), examples per Hessian-vector
        product (hvp_chunk). Recorded in the attributes of the point's results."""
        return {"c_chunk": int(self.cfg.c_chunk), "hvp_chunk": int(self.cfg.train.hvp_chunk)}

    def lambda0_dataset(self) -> xr.Dataset:
        """lambda_0 of the S networks with its accuracy record -> Dataset over (seed,)."""
        lam0 = self.lam0
        return xr.Dataset({"lambda0": ("seed", np.asarray(lam0.value, float)),
                           "lambda0_residual": ("seed", np.asarray(lam0.residual, float)),
                           "lambda0_bound": ("seed", np.asarray(lam0.bound, float)),
                           "lambda0_matvecs": ("seed", np.asarray(lam0.n_matvec, int)),
                           "lambda0_converged": ("seed", np.asarray(lam0.converged, bool))},
                          coords={"seed": list(self.cfg.seeds)})

    def run(self, c: np.ndarray, sharp: bool, chunk: int, decide: str | None = None) -> train.Trajectory:
        """c [S, K] -> numpy Trajectory [S, K, T+1]. Under the CPU's "map" batching each run is
        its own call, ``train.cpu_threads()`` at a time (``train.run_each``); under "vmap" K is
        split into padded chunks of ``chunk``. decide: the indicator the runs answer ("diverge" or
        "loss_rise" for runs without the sharpness, "sharp_rise" with it): each run is computed
        only until that is decided (``train.run_with_params``), and its records answer that
        indicator (and for "diverge" the loss indicator too); None: full runs."""
        check_choice(decide, "decide", (None, "sharp_rise") if sharp else (None, "diverge", "loss_rise"))
        tcfg = self.cfg.train.replace(measure_sharpness=sharp)
        how = None
        if decide is not None:  # "diverge" and "loss_rise": one compiled program (a traced flag)
            how = train.Decide(self.cfg.T1, phases.rise_boundary(self.cfg.decimals, self.cfg.sharp_eps if sharp else 0.0),
                               "sharp_rise" if sharp else "loss")
        stop = decide == "loss_rise"
        S, K = c.shape
        if train.default_batching() == "map":
            tr = train.run_each(self.model, self.params, self.aux, self.lam0, c, self.data, self.batches,
                                tcfg, decide=how, loss_rise_stop=stop)
        else:
            pieces = []
            for start in range(0, K, chunk):
                part = c[:, start:start + chunk]
                pad = chunk - part.shape[1]
                part = np.concatenate([part, np.repeat(part[:, -1:], pad, 1)], 1) if pad else part
                params, aux, lam0, part = shard_seeds((self.params, self.aux, self.lam0, jnp.asarray(part)))
                tr = train.run_grid(self.model, params, aux, lam0, part, self.data, self.batches, tcfg,
                                    decide=how, loss_rise_stop=stop)
                pieces.append(jax.tree.map(lambda a: np.asarray(a)[:, : chunk - pad], tr))
            tr = jax.tree.map(lambda *a: np.concatenate(a, 1), *pieces)
        self.n_runs[sharp] += S * K
        if sharp:
            after0 = (slice(None), slice(None), slice(1, None))  # step 0 is lambda_0, counted once
            measured = tr.sharpness_matvecs[after0] > 0
            self.n_matvecs += int(tr.sharpness_matvecs[after0].sum())
            # a measurement stopped by its decision is a lower bound by design, not unconverged
            self.n_unconverged += int((measured & ~tr.sharpness_converged[after0]
                                       & ~tr.sharpness_decided[after0]).sum())
        return tr

    def indicators(self, idx: np.ndarray, name: str) -> np.ndarray:
        """Run seed s at grid index idx[s, k] and return its bool [S, K] indicator ``name``:
        "diverge" or "loss_rise" from runs that do not measure the sharpness, "sharp_rise" from
        runs that do. Memoised per (kind of run, seed, index): a column whose runs all know
        ``name`` is not re-run.

        With ``search_early_exit`` each run is computed only until ``name`` is decided
        (``train.Decide``). So a run that decided "loss_rise" by a rise does not know "diverge"
        (it is not recorded); a run that ran to T1 or diverged knows both loss indicators.

        Runs per compiled call: under the "map" batching (the CPU default) one run, a few at a
        time on the CPU's cores (``train.run_each``); under "vmap" ``c_chunk`` columns with the
        sharpness, the whole batch without."""
        check_choice(name, "indicator", ("diverge", "loss_rise", "sharp_rise"))
        cfg = self.cfg
        sharp = name == "sharp_rise"
        S, K = idx.shape
        known = lambda s, i: name in self.memo.get((sharp, s, int(i)), {})
        todo = [k for k in range(K) if not all(known(s, idx[s, k]) for s in range(S))]
        if todo:
            sub = idx[:, todo]
            chunk = min(cfg.c_chunk, len(todo)) if sharp else len(todo)
            tr = self.run(cfg.c_grid[sub], sharp, chunk, decide=name if cfg.train.search_early_exit else None)
            if sharp:
                ind = {"sharp_rise": phases.sharpness_rises(tr.sharpness, tr.diverged, cfg.T1,
                                                            cfg.decimals, cfg.sharp_eps)}
            else:
                rise = phases.loss_rises(tr.loss, tr.diverged, cfg.T1, cfg.decimals)
                div = phases.runs_diverge(tr.diverged, cfg.T1)
                # a run stopped by its loss rise does not say whether it would have diverged
                div_known = np.ones_like(rise) if name != "loss_rise" or not cfg.train.search_early_exit \
                    else (~rise | div)
                ind = {"loss_rise": rise, "diverge": np.where(div_known, div, None)}
            for s in range(S):
                for j in range(len(todo)):
                    entry = self.memo.setdefault((sharp, s, int(sub[s, j])), {})
                    entry.update({n: bool(v[s, j]) for n, v in ind.items() if v[s, j] is not None})
        return np.array([[self.memo[(sharp, s, int(i))][name] for i in idx[s]] for s in range(S)])


@functools.lru_cache(maxsize=None)
def _build(model_cfg) -> models.Model:
    # one Model object per config, so jit's static-argument cache hits across calls
    return models.build(model_cfg)


def critical_point(cfg: SweepConfig) -> xr.Dataset:
    """Critical constants for the single (depth, width) of ``cfg`` -> Dataset over (seed,).

    Every search is a plain bisection (``cfg.search``). A split bisection that probes c_sharp high,
    where a run is cheap (``search.cost_split``), was tried and withdrawn: it finds the same grid
    point only where the indicator is monotone, and the book's sharpness indicators are not always
    (chapter 10's LayerNorm MLP, w = 256, seed 2: the full grid and the plain bisection give
    c_sharp = 1.19, the split search 5.66; bench/README.md)."""
    (depth,), (width,) = cfg.depths, cfg.widths
    pt = Point(cfg, depth, width)
    c_grid, n, S = cfg.c_grid, len(cfg.c_grid), len(cfg.seeds)
    find = functools.partial(search.first_true, n=n, n_seeds=S, strategy=cfg.search, stride=cfg.stride)
    i_div = find(lambda idx: pt.indicators(idx, "diverge"), name="c_max (divergence)")
    loss_search = lambda: find(lambda idx: pt.indicators(idx, "loss_rise"), hi=i_div, name="c_loss")
    if cfg.c_sharp_max_width is None or width <= cfg.c_sharp_max_width:
        sharp_search = lambda: find(lambda idx: pt.indicators(idx, "sharp_rise"), hi=i_div, name="c_sharp")
        if train.cpu_threads() > 1 and train.default_batching() == "map":
            # the c_loss search beside the c_sharp one, in a thread: both need only i_div and their
            # runs are independent (the same probes), and its cheap loss runs use the cores a
            # sharpness run leaves idle (not bit-reproducible: ``train.cpu_threads``)
            with ThreadPoolExecutor(1, thread_name_prefix="earlytrain-c_loss") as ex:
                loss_future = ex.submit(train.in_caller_context(loss_search))
                i_sharp = sharp_search()
                i_loss = loss_future.result()
        else:
            i_loss, i_sharp = loss_search(), sharp_search()
        c_sharp = phases.c_from_index(i_sharp, c_grid)
    else:
        i_loss = loss_search()
        c_sharp = np.full(S, np.nan)
    out = xr.Dataset(coords={"seed": list(cfg.seeds)})
    out["c_loss"] = ("seed", phases.c_from_index(i_loss, c_grid))
    out["c_sharp"] = ("seed", c_sharp)
    out["c_max"] = ("seed", phases.c_max_from_first_divergent(i_div, c_grid))
    out["c_max_censored"] = ("seed", i_div == n)
    out["lambda0"] = ("seed", np.asarray(pt.lam0.value, float))
    out["lambda0_residual"] = ("seed", np.asarray(pt.lam0.residual, float))
    out["lambda0_bound"] = ("seed", np.asarray(pt.lam0.bound, float))
    out["lambda0_matvecs"] = ("seed", np.asarray(pt.lam0.n_matvec, int))
    out["lambda0_converged"] = ("seed", np.asarray(pt.lam0.converged, bool))
    out.attrs.update(n_loss_runs=pt.n_runs[False], n_sharpness_runs=pt.n_runs[True],
                     n_sharpness_matvecs=pt.n_matvecs, n_sharpness_unconverged=pt.n_unconverged,
                     grid_points=n, search=cfg.search, **pt.chunks)
    return out


def _points(cfg: SweepConfig):
    return [(d, w) for d in cfg.depths for w in cfg.widths]


def per_point(point_fn, make, cfg: SweepConfig, desc: str, progress: bool = True, scheduler=None) -> list:
    """``[(depth, width, point_fn(make(depth, width)))]`` over the (depth, width) of ``cfg``, in
    this process or on the configured cluster (``cluster.run_points``: a cached point is never
    submitted). Every network sweep computes its points through this."""
    pts = _points(cfg)
    out = cluster.run_points(point_fn, [(make(d, w),) for d, w in pts], [f"depth {d}, width {w}" for d, w in pts],
                             desc, progress, scheduler)
    return [(d, w, ds) for (d, w), ds in zip(pts, out)]


COST_ATTRS = ("n_loss_runs", "n_sharpness_runs", "n_sharpness_matvecs", "n_sharpness_unconverged")


def phase_sweep(cfg: SweepConfig, progress: bool = True, scheduler=None) -> xr.Dataset:
    """Critical constants over (depth, width, seed); each (depth, width) cached on its own.
    The cost of each point (runs, Hessian-vector products, unconverged estimates: COST_ATTRS)
    comes along as variables over (depth, width). ``scheduler``: where the points are computed
    (``cluster``; None: ``EARLYTRAIN_SCHEDULER``, unset = this process)."""
    point_fn = cache.cached(critical_point, name="sweep.critical_point")
    memory.check_sweep(cfg)  # every point, before the first is computed
    parts = []
    for d, w, ds in per_point(point_fn, lambda d, w: cfg.replace(depths=(d,), widths=(w,)), cfg,
                              f"phase sweep ({cfg.dataset})", progress, scheduler):
        costs = {k: ds.attrs.get(k, -1) for k in COST_ATTRS}  # -1: not recorded
        parts.append(ds.drop_attrs().assign(costs).expand_dims(depth=[d], width=[w]))
    out = xr.combine_by_coords(parts)
    out["c"] = ("c", cfg.c_grid)
    out.attrs["config"] = cache.canonical_json(cfg)
    if "lambda0_converged" in out:
        guards.warn_unconverged(int((~out.lambda0_converged.astype(bool)).sum()), out.lambda0_converged.size,
                                "lambda_0 estimates", cfg.train.lambda0_tol, f"phase sweep ({cfg.dataset})")
    unconverged = out.n_sharpness_unconverged.where(out.n_sharpness_unconverged > 0, 0)  # -1: not recorded
    guards.warn_unconverged(int(unconverged.sum()), None, "sharpness estimates after step 0",
                            cfg.train.sharpness_tol, f"phase sweep ({cfg.dataset})")
    return out


def trajectory_point(cfg_and_c: dict) -> xr.Dataset:
    """Per-step records for one (depth, width): dict(cfg=SweepConfig, c=[C]) -> (seed, c, step)."""
    cfg, c = cfg_and_c["cfg"], np.asarray(cfg_and_c["c"], float)
    if isinstance(cfg, dict):
        cfg = SweepConfig(**cfg)
    (depth,), (width,) = cfg.depths, cfg.widths
    pt = Point(cfg, depth, width)
    tr = pt.run(np.broadcast_to(c, (len(cfg.seeds), len(c))).copy(),
                cfg.train.measure_sharpness, pt.cfg.c_chunk)
    dims = ("seed", "c", "step")
    coords = {"seed": list(cfg.seeds), "c": c, "step": np.arange(cfg.train.num_steps + 1)}
    return xr.Dataset({k: (dims, np.asarray(v)) for k, v in tr._asdict().items()}, coords=coords)


def trajectory_sweep(cfg: SweepConfig, c, progress: bool = True, scheduler=None) -> xr.Dataset:
    """Per-step loss, accuracy, sharpness (if cfg.train.measure_sharpness), residual and
    divergence over (depth, width, seed, c, step), for the constants ``c`` (any list);
    ``scheduler`` as in ``phase_sweep``."""
    c = as_tuple(c, "c")
    check(len(c) > 0 and all(is_real(v) and np.isfinite(v) and v > 0 for v in c), "c",
          "a non-empty list of finite positive constants", c)
    c = [float(v) for v in c]
    point_fn = cache.cached(trajectory_point, name="sweep.trajectory_point")
    memory.check_sweep(cfg)
    parts = per_point(point_fn, lambda d, w: {"cfg": cfg.replace(depths=(d,), widths=(w,)), "c": c}, cfg,
                      "trajectories", progress, scheduler)
    return xr.combine_by_coords([ds.drop_attrs().expand_dims(depth=[d], width=[w]) for d, w, ds in parts])


def lambda0_point(cfg: SweepConfig) -> xr.Dataset:
    """lambda_0 for the single (depth, width) of ``cfg`` -> Dataset over (seed,)."""
    (depth,), (width,) = cfg.depths, cfg.widths
    return Point(cfg, depth, width).lambda0_dataset()


def initial_sharpness(cfg: SweepConfig, progress: bool = True, scheduler=None) -> xr.Dataset:
    """lambda_0 (with its residual, bound, products and convergence) over (depth, width, seed);
    each point cached on its own, ``scheduler`` as in ``phase_sweep``."""
    point_fn = cache.cached(lambda0_point, name="sweep.lambda0_point")
    memory.check_sweep(cfg)
    parts = per_point(point_fn, lambda d, w: cfg.replace(depths=(d,), widths=(w,)), cfg,
                      "lambda_0", progress, scheduler)
    return xr.combine_by_coords([ds.drop_attrs().expand_dims(depth=[d], width=[w]) for d, w, ds in parts])


def summary(cfg: SweepConfig, title: str = "") -> str:
    """The resolved configuration as aligned 'name = value' lines (printed atop each chapter)."""
    flat = {}
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        if isinstance(v, (Network, Arrays)):  # code or arrays of the user's: their identity
            flat[f.name] = (f"{v.name} ({v.version})" if isinstance(v, Network) else str(v))
        elif dataclasses.is_dataclass(v):  # model depth/width are set per point from depths/widths
            flat.update({f"{f.name}.{g.name}": getattr(v, g.name) for g in dataclasses.fields(v)
                         if (f.name, g.name) not in (("model", "depth"), ("model", "width"))})
        else:
            flat[f.name] = v
    flat["c grid"] = f"2^x, x = {cfg.x_grid[0]:g} .. {cfg.x_grid[-1]:g} step {cfg.x_step:g} ({len(cfg.x_grid)} points)"
    width = max(map(len, flat))
    lines = [title] if title else []
    lines += [f"  {k:<{width}} = {v}" for k, v in flat.items()]
    return "\n".join(lines)
