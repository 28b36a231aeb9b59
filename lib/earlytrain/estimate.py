"""What a sweep (phase, saturation, connectivity, the uv model's) will cost, said before it runs.

``phase_sweep_cost(cfg)`` counts, for every (depth, width) point of a ``sweep.SweepConfig``, what
``sweep.critical_point`` will spend, and times it from a short calibration on the device in use:

* runs: training runs of ``num_steps`` steps per seed, for the loss / divergence indicators and for
  the sharpness indicator (none above ``c_sharp_max_width``). Upper bounds from the search over the
  ``n`` points of the c grid: "grid" evaluates every point, "bisect" ceil(log2(n + 1)) points plus
  a spot check of 2, "coarse_to_fine" ceil(n / stride) + stride - 1 plus 2; the loss and
  divergence searches share their runs (memoised) but are counted apart, so the bound holds.
* Hessian-vector products: lambda_0 (at most ``2 sharpness_iters`` per seed) and every measured step
  of a sharpness run (at most ``sharpness_iters``; TYPICAL_MATVECS, the median measured along the
  book's warm-started trajectories, is what the time uses).
* time: the calibration compiles and times, at the sweep's smallest point (its parameter count
  P_c, examples as the sweep uses them but at most CALIBRATION_EXAMPLES, CNN_CALIBRATION_EXAMPLES
  for a CNN), a training step (loss and gradient of a batch), a loss evaluation (the per-step
  measurement), and the linearization of the gradient followed by Hessian-vector products (as a
  measurement spends them: one linearization, then products of its tangent map, each about the
  cost of the linearization, so the call is split evenly between them) on random inputs of the
  data set's shape, each the median of REPEATS calls (the device as it runs now, the load of other
  processes included). Each gives seconds per (example x parameter); a point's time is its runs'
  steps, evaluations, linearizations and products scaled by its own P and example counts, plus
  COMPILES_PER_POINT times the calibration's compile time. Load that comes and goes during the run
  is not foreseen. Work grows like examples x parameters for FCNs and for a CNN family at a fixed
  input size; the smallest point runs least efficiently, so larger points are over-estimated
  rather than under.
  Cached points (the results cache already holds them) cost nothing and are counted apart.

``saturation_cost(cfg)`` does the same for ``saturation.saturation_sweep`` (runs trained to each
group's last measurement step, a measurement at each of its steps), and ``connectivity_cost(cfg)``
for ``connectivity.barrier_sweep``: its phase sweep, then per point the barrier search (loss-only
runs of T1 steps, at most as many as a loss search, each followed by ``n_tau`` loss evaluations
along its line) and the point's lambda_0.

``uv_cost(cfg)``: the uv model's sweeps (``uv_phases``: the early phase diagram, the saturation,
the catapult and the bifurcation sweeps). A run of the uv model iterates a two-number map, so its
cost is the count of map steps (runs x steps, the early sweep's bisections included, at most)
times the seconds of one map step, calibrated by timing the sweeps' own vmapped map on a batch of
runs (``calibrate_uv``), plus its compiles.

The estimate is a planning figure (within a factor of a few), not a benchmark: bench/ measures
(bench/README.md, the gpu_check section, compares estimates with measured times).

``scripts/rerun_chapter.py`` prints it for every configuration a chapter's configuration cell
builds (``sweep_configs``) and asks before a run estimated over an hour.

The counts and the relative work that weights a sweep's progress bar live below the sweeps, in
``work`` (re-exported here); this module sits above every sweep module it estimates.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from . import cache, data, hessian, losses, memory, models, sweep
from .analyses import connectivity, saturation
from .uv import model as uv, phases as uv_phases
from .errors import check
# PointCost, TYPICAL_MATVECS and parameters are re-exported: the estimate's callers read them here
from .work import PointCost, TYPICAL_MATVECS, count_point, evaluations_per_seed, fmt_seconds, parameters  # noqa: F401

CALIBRATION_EXAMPLES = 128  # at most this many examples in each calibration call (an FCN)
CNN_CALIBRATION_EXAMPLES = 8  # at least this many (a CNN, whose work per example and parameter is the
#                             image's positions: a Myrtle-5 at 80 channels took minutes with 128 on a loaded CPU)
CALIBRATION_ACTIVATIONS = 2 ** 18  # examples per call between those two: this many activations in all
COMPILES_PER_POINT = 3      # run_grid without and with sharpness, lambda_0: compiles per point
REPEATS = 3                 # timed calls of each calibrated function (the median is used: the
#                             device as it runs now, other processes' load included)
HVP_BATCH = 6               # products timed after the first, all after one linearization
UV_CALIBRATION = (64, 64, 200)  # uv calibration: states x learning rates x map steps per call


@dataclass
class Calibration:
    """Seconds per (example x parameter) of the three costs, measured on ``device``."""
    device: str
    params: int                 # P_c of the calibration point
    depth: int
    width: int
    step_s: float               # one training step (loss and gradient) on step_examples
    step_examples: int
    eval_s: float               # one loss evaluation on eval_examples
    eval_examples: int
    hvp_s: float                # one Hessian-vector product on eval_examples (linearized)
    linearize_s: float          # the linearization a measurement's products share
    compile_s: float            # compiling the three
    wall_s: float               # the calibration's own time

    def per(self, kind: str) -> float:
        t, n = {"step": (self.step_s, self.step_examples), "eval": (self.eval_s, self.eval_examples),
                "hvp": (self.hvp_s, self.eval_examples), "linearize": (self.linearize_s, self.eval_examples)}[kind]
        return t / (n * self.params)


@dataclass
class SweepCost:
    label: str
    kind: str
    dataset: str
    arch: str
    search: str
    grid_points: int
    seeds: int
    points: list[PointCost] = field(default_factory=list)
    calibration: Calibration | None = None

    @property
    def seconds(self) -> float:
        return sum(p.seconds or 0.0 for p in self.points)

    def total(self, name: str) -> int:
        return sum(getattr(p, name) for p in self.points if not p.cached)

    def __str__(self) -> str:
        todo = [p for p in self.points if not p.cached]
        head = (f"{self.label}: {self.kind} on {self.dataset} ({self.arch}), {len(self.points)} points "
                f"(depth, width), {len(self.points) - len(todo)} cached; {self.seeds} seeds, c grid of "
                f"{self.grid_points}, search {self.search!r}")
        lines = [head,
                 f"  runs (at most): {self.total('loss_runs')} for loss/divergence + "
                 f"{self.total('sharpness_runs')} with sharpness, {self.total('steps')} training steps",
                 f"  Hessian-vector products: at most {self.total('matvecs_max')} "
                 f"(about {self.total('matvecs_typical')} at {TYPICAL_MATVECS} per measurement)"]
        cal = self.calibration
        if cal is not None:
            lines.append(f"  time on {cal.device}: about {fmt_seconds(self.seconds)} (calibrated at depth "
                         f"{cal.depth}, width {cal.width}, {cal.params} parameters: a step of "
                         f"{cal.step_examples} examples {cal.step_s * 1e3:.3g} ms, a Hessian-vector product on "
                         f"{cal.eval_examples} {cal.hvp_s * 1e3:.3g} ms, compiles {cal.compile_s:.1f} s)")
            slow = sorted(todo, key=lambda p: -(p.seconds or 0))[:4]
            if slow:
                lines.append("  longest points: " + ", ".join(
                    f"d={p.depth} w={p.width} {fmt_seconds(p.seconds or 0)}" for p in slow))
        return "\n".join(lines)


def _model_name(cfg) -> str:
    """The model's name for the printed estimate (a ModelConfig's arch, a Network's name)."""
    return getattr(cfg.model, "arch", None) or getattr(cfg.model, "name", type(cfg.model).__name__)


def calibrate(cfg, depth: int | None = None, width: int | None = None) -> Calibration:
    """Time a training step, a loss evaluation and a Hessian-vector product at (depth, width)
    (default: the sweep's smallest) on the default device, on random inputs (see module doc)."""
    t0 = time.perf_counter()
    depth = min(cfg.depths) if depth is None else depth
    width = min(cfg.widths) if width is None else width
    spec = cfg.model.at(depth, width)
    model = models.build(spec)
    shape = data.example_shape(cfg.dataset)
    act = memory.model_shapes(spec, shape)[1]  # activations per example: the work per example
    most = int(np.clip(CALIBRATION_ACTIVATIONS // act, CNN_CALIBRATION_EXAMPLES, CALIBRATION_EXAMPLES))
    B = min(cfg.n_train if cfg.train.optimizer == "gd" else cfg.train.batch_size, most)
    M = min(cfg.n_measure, most)
    rng = np.random.default_rng(0)
    xb = jnp.asarray(rng.standard_normal((B,) + shape), jnp.float32)
    xm = jnp.asarray(rng.standard_normal((M,) + shape), jnp.float32)
    n_out = data.n_targets(cfg.dataset)
    yb = jax.nn.one_hot(jnp.arange(B) % n_out, n_out)
    ym = jax.nn.one_hot(jnp.arange(M) % n_out, n_out)
    params, aux = model.init(jax.random.PRNGKey(0), xm)
    loss = losses.get(cfg.train.loss)
    P = models.num_params(params)
    flat0, f_meas = hessian.flat_loss(lambda p: loss(model.apply(p, aux, xm), ym), params)
    step = jax.jit(jax.value_and_grad(lambda p: loss(model.apply(p, aux, xb), yb)))
    evaluate = jax.jit(lambda p: loss(model.apply(p, aux, xm), ym))

    @jax.jit
    def products(p, vs):  # as a measurement spends them: one linearization, then the products
        mv = hessian.linearized_hvp(f_meas, p)
        return jax.lax.map(mv, vs)

    vs = jnp.asarray(rng.standard_normal((1 + HVP_BATCH, flat0.size)), flat0.dtype)
    calls = {"step": (step, (params,)), "eval": (evaluate, (params,)), "hvpK": (products, (flat0, vs))}
    times, compile_s = {}, 0.0
    for name, (fn, args) in calls.items():
        t = time.perf_counter()
        jax.block_until_ready(fn(*args))  # compile (and a first run)
        compile_s += time.perf_counter() - t
        runs = []
        for _ in range(REPEATS):
            t = time.perf_counter()
            jax.block_until_ready(fn(*args))
            runs.append(time.perf_counter() - t)
        times[name] = float(np.median(runs))
    # one call: a linearization (a forward and backward pass) and 1 + HVP_BATCH products; each
    # product costs about a linearization, so the call is split evenly (no difference of two
    # noisy timings: on a shared machine that came out anywhere from 0 to 6 steps a product)
    hvp_s = linearize_s = times["hvpK"] / (2 + HVP_BATCH)
    dev = jax.devices()[0]
    return Calibration(f"{dev.platform} ({dev.device_kind})", P, depth, width, times["step"], B,
                       times["eval"], M, hvp_s, linearize_s, compile_s, time.perf_counter() - t0)


def point_seconds(cfg, p: PointCost, cal: Calibration) -> float:
    """Estimated seconds of the point ``p`` of ``cfg`` from ``cal`` (module doc)."""
    B = cfg.n_train if cfg.train.optimizer == "gd" else cfg.train.batch_size
    M = cfg.n_measure
    runs = p.loss_runs + p.sharpness_runs
    T = cfg.train.num_steps
    work = (p.steps * B * cal.per("step") + (runs * (T + 1) + p.extra_evals) * M * cal.per("eval")
            + p.matvecs_typical * M * cal.per("hvp") + p.measurements * M * cal.per("linearize")) * p.params
    return work + COMPILES_PER_POINT * cal.compile_s


def phase_sweep_cost(cfg, label: str = "sweep", calibration: Calibration | bool | None = True,
                     cached: bool = True) -> SweepCost:
    """The cost of ``sweep.phase_sweep(cfg)`` (module doc). ``calibration``: True to calibrate now,
    a Calibration to reuse, None/False for counts only. ``cached``: look the points up in the
    results cache (a cached point costs nothing)."""
    out = SweepCost(label, "phase sweep", cfg.dataset, _model_name(cfg), cfg.search, len(cfg.c_grid), len(cfg.seeds))
    lookup = cache.cached(sweep.critical_point, name="sweep.critical_point").lookup if cached else None
    for d in cfg.depths:
        for w in cfg.widths:
            p = count_point(cfg, d, w)
            p.cached = bool(lookup is not None and lookup(cfg.replace(depths=(d,), widths=(w,))) is not None)
            out.points.append(p)
    return _timed(out, cfg, calibration)


def _timed(out: SweepCost, cfg, calibration) -> SweepCost:
    if calibration is True:
        calibration = calibrate(cfg) if any(not p.cached for p in out.points) else None
    if calibration:
        out.calibration = calibration
        for p in out.points:
            p.seconds = 0.0 if p.cached else point_seconds(cfg, p, calibration)
    return out


def saturation_cost(scfg, label: str = "saturation", calibration: Calibration | bool | None = True,
                    cached: bool = True) -> SweepCost:
    """The cost of ``saturation.saturation_sweep(scfg)``: per (depth, width), every group of its
    plan runs S x (the largest group) runs to the group's last measurement step and measures the
    sharpness at each of its steps (``saturation`` module doc); lambda_0 as in a phase sweep."""
    cfg = scfg.sweep
    S, k = len(cfg.seeds), cfg.train.sharpness_iters
    groups = saturation.plan(scfg)
    width_g = max(len(g["idx"]) for g in groups)
    runs = S * width_g * len(groups)
    steps = sum(S * width_g * int(g["steps"][-1]) for g in groups)
    meas = sum(S * width_g * len(g["steps"]) for g in groups)
    typical = k if cfg.train.sharpness_method == "power" else min(k, TYPICAL_MATVECS)
    out = SweepCost(label, "saturation sweep", cfg.dataset, _model_name(cfg), "all", len(cfg.c_grid), S)
    lookup = cache.cached(saturation.saturation_point, name="saturation.saturation_point").lookup if cached else None
    for d in cfg.depths:
        for w in cfg.widths:
            p = PointCost(d, w, parameters(cfg, d, w), loss_runs=0, sharpness_runs=runs, steps=steps,
                          matvecs_max=S * 2 * k + meas * k, matvecs_typical=S * 2 * k + meas * typical,
                          measurements=S + meas)
            one = dataclasses.replace(scfg, sweep=cfg.replace(depths=(d,), widths=(w,)))
            p.cached = bool(lookup is not None and lookup(one) is not None)
            out.points.append(p)
    return _timed(out, cfg, calibration)


def connectivity_cost(ccfg, label: str = "connectivity", calibration: Calibration | bool | None = True,
                      cached: bool = True) -> "Costs":
    """The cost of ``connectivity.barrier_sweep(ccfg)``: its phase sweep (``phase_sweep_cost``), then
    per (depth, width) the barrier search: loss-only runs of T1 steps (at most what a loss search
    evaluates; the search is bounded by the first divergent c), each with its final parameters and
    ``n_tau`` loss evaluations on the measurement subset along its line, and the point's lambda_0.
    Both parts share one calibration; cached points cost nothing."""
    cfg = ccfg.sweep
    phase = phase_sweep_cost(cfg, f"{label} (its phase sweep)", calibration, cached)
    cal = phase.calibration if calibration is True else calibration
    out = SweepCost(f"{label} (barrier search)", "barrier search", cfg.dataset, _model_name(cfg), cfg.search,
                    len(cfg.c_grid), len(cfg.seeds))
    lookup = cache.cached(connectivity.barrier_point, name="connectivity.barrier_point").lookup if cached else None
    S, n, k = len(cfg.seeds), len(cfg.c_grid), cfg.train.sharpness_iters
    runs = S * evaluations_per_seed(n, cfg.search, cfg.stride)
    for d in cfg.depths:
        for w in cfg.widths:
            p = PointCost(d, w, parameters(cfg, d, w), loss_runs=runs, sharpness_runs=0,
                          steps=runs * cfg.train.num_steps, matvecs_max=S * 2 * k,
                          matvecs_typical=S * 2 * k, measurements=S, extra_evals=runs * ccfg.n_tau)
            one = ccfg.replace(sweep=cfg.replace(depths=(d,), widths=(w,)))
            p.cached = bool(lookup is not None and lookup(one) is not None)
            out.points.append(p)
    if calibration is True and cal is None:  # the phase sweep's points were all cached
        cal = True  # _timed calibrates if a barrier point is not
    return Costs([phase, _timed(out, cfg, cal)])


# ----------------------------------------------------------------------------- the uv model
@dataclass
class UVCalibration:
    """Seconds of one step of the uv map for one run (the sweeps' vmapped map), on ``device``."""
    device: str
    step_s: float
    compile_s: float
    runs: int                   # runs per timed call
    steps: int                  # map steps per run of the timed call
    wall_s: float


@dataclass
class UVCost:
    """Map steps (runs x steps) of a uv sweep per width, and their time."""
    label: str
    kind: str
    widths: list
    run_steps: list             # per width: runs x map steps, at most
    runs: list                  # per width: runs, at most
    compiles: int
    calibration: UVCalibration | None = None

    @property
    def seconds(self) -> float:
        cal = self.calibration
        return 0.0 if cal is None else sum(self.run_steps) * cal.step_s + self.compiles * cal.compile_s

    def __str__(self) -> str:
        lines = [f"{self.label}: uv {self.kind}, {len(self.widths)} points (widths {', '.join(map(str, self.widths))})",
                 f"  runs (at most): {sum(self.runs)}, {sum(self.run_steps)} steps of the uv map"]
        cal = self.calibration
        if cal is not None:
            lines.append(f"  time on {cal.device}: about {fmt_seconds(self.seconds)} (a map step of one run "
                         f"{cal.step_s * 1e9:.3g} ns, timed on {cal.runs} runs x {cal.steps} steps; "
                         f"{self.compiles} compiles of {cal.compile_s:.1f} s)")
        return "\n".join(lines)


def calibrate_uv() -> UVCalibration:
    """Time the uv sweeps' vmapped map (``uv_phases``'s runs: states x learning rates) on random
    states, ``UV_CALIBRATION`` in size: the median of REPEATS calls, and its compile."""
    t0 = time.perf_counter()
    S, X, T = UV_CALIBRATION
    key = jax.random.PRNGKey(0)
    df0 = 0.1 * jax.random.normal(key, (S,))
    lam0 = 1.0 + jax.random.uniform(jax.random.fold_in(key, 1), (S,))
    lr = jnp.broadcast_to(jnp.linspace(0.5, 3.0, X)[None, :], (S, X)) / lam0[:, None]
    runs = jax.vmap(jax.vmap(uv.fn_map, in_axes=(None, None, None, None, 0, None, None)),
                    in_axes=(0, 0, None, None, 0, None, None))  # as the sweeps: [S] states x [S, X] rates
    fn = jax.jit(lambda a, b, c: runs(a, b, 0.0, 1.0, c, T, 1e5))
    t = time.perf_counter()
    jax.block_until_ready(fn(df0, lam0, lr))
    compile_s = time.perf_counter() - t
    times = []
    for _ in range(REPEATS):
        t = time.perf_counter()
        jax.block_until_ready(fn(df0, lam0, lr))
        times.append(time.perf_counter() - t)
    dev = jax.devices()[0]
    return UVCalibration(f"{dev.platform} ({dev.device_kind})", float(np.median(times)) / (S * X * T),
                         compile_s, S * X, T, time.perf_counter() - t0)


def _uv_kind(cfg) -> str | None:
    """Which uv sweep a configuration of ``uv_phases`` sets up (by its fields), None if none."""
    if type(cfg).__module__ != uv_phases.__name__ or not dataclasses.is_dataclass(cfg):
        return None
    names = {f.name for f in dataclasses.fields(cfg)}
    for kind, field_ in (("early phase diagram", "refine"), ("catapult sweep", "ks"),
                         ("bifurcation diagram", "n_lr"), ("saturation sweep", "window")):
        if field_ in names:
            return kind
    return None


def uv_cost(cfg, label: str = "uv", calibration: UVCalibration | bool | None = True) -> UVCost:
    """The cost of a uv sweep of ``uv_phases`` (module doc): per width, its runs and map steps
    (upper bounds), timed by ``calibration`` (True: ``calibrate_uv()`` now)."""
    kind = _uv_kind(cfg)
    check(kind is not None, "cfg", "the configuration of a uv_phases sweep", type(cfg).__name__)
    if kind == "bifurcation diagram":  # one point: n_lr runs from one state
        widths, runs, steps, compiles = ["-"], [cfg.n_lr], [cfg.n_lr * cfg.steps], 1
    else:
        widths = list(cfg.widths)
        S = cfg.n_init
        if kind == "catapult sweep":
            per, compiles = S * len(cfg.ks), 1
            steps = [per * cfg.steps] * len(widths)
            runs = [per] * len(widths)
        else:
            X = len(uv_phases.x_grid(cfg.x_min, cfg.x_max, cfg.x_step))
            if kind == "early phase diagram":  # c and k scalings on the grid; 7 constants bisected
                grid, bisected = 2 * S * X, 7 * S * cfg.refine
                runs = [grid + bisected] * len(widths)
                compiles = 1 + (7 if cfg.refine else 0)
            else:
                runs, compiles = [S * X] * len(widths), 1
            steps = [r * cfg.steps for r in runs]
    out = UVCost(label, kind, widths, steps, runs, compiles)
    if calibration is True:
        calibration = calibrate_uv()
    out.calibration = calibration or None
    return out


# ----------------------------------------------------------------------------- a chapter's sweeps
class Costs(list):
    """Several costs that make one sweep (a connectivity sweep: its phase sweep and its barrier
    search): ``seconds`` adds them up, ``str`` prints each."""

    @property
    def seconds(self) -> float:
        return sum(c.seconds for c in self)

    def __str__(self) -> str:
        return "\n".join(map(str, self))


def estimable(v) -> bool:
    """Whether ``cost_of`` estimates this configuration."""
    return isinstance(v, (sweep.SweepConfig, saturation.SaturationConfig, connectivity.ConnectivityConfig)) \
        or _uv_kind(v) is not None


def sweep_configs(namespace: dict) -> dict[str, object]:
    """The configurations ``cost_of`` estimates in a namespace (a chapter's globals), by name, also
    inside lists, tuples and dicts one level down. A SweepConfig that is the ``sweep`` of a
    ConnectivityConfig found there is left out (its cost is in the connectivity's)."""
    found = {}
    for name, v in namespace.items():
        if name.startswith("_"):
            continue
        if estimable(v):
            found[name] = v
        elif isinstance(v, (list, tuple)):
            found.update({f"{name}[{i}]": x for i, x in enumerate(v) if estimable(x)})
        elif isinstance(v, dict):
            found.update({f"{name}[{k!r}]": x for k, x in v.items() if estimable(x)})
    inner = [v.sweep for v in found.values() if isinstance(v, connectivity.ConnectivityConfig)]
    return {k: v for k, v in found.items() if not (isinstance(v, sweep.SweepConfig) and any(v == s for s in inner))}


def cost_of(cfg, label: str, calibration: Calibration | bool | None = True):
    """The cost of one configuration ``sweep_configs`` found: ``phase_sweep_cost`` of a
    SweepConfig, ``saturation_cost`` of a SaturationConfig, ``connectivity_cost`` of a
    ConnectivityConfig, ``uv_cost`` of a uv sweep's configuration (its own calibration). Each has
    ``seconds`` and prints itself."""
    if isinstance(cfg, saturation.SaturationConfig):
        return saturation_cost(cfg, label, calibration)
    if isinstance(cfg, connectivity.ConnectivityConfig):
        return connectivity_cost(cfg, label, calibration)
    if _uv_kind(cfg) is not None:
        return uv_cost(cfg, label, True if calibration is True else None)
    return phase_sweep_cost(cfg, label, calibration)


def other_configs(namespace: dict) -> list[str]:
    """Names of the other configuration dataclasses (``*Config``, not ModelConfig or TrainConfig)
    of a namespace that ``cost_of`` does not estimate."""
    skip = {"ModelConfig", "TrainConfig"}
    return [f"{n} ({type(v).__name__})" for n, v in namespace.items()
            if not n.startswith("_") and dataclasses.is_dataclass(v) and not isinstance(v, type)
            and type(v).__name__.endswith("Config") and type(v).__name__ not in skip and not estimable(v)]
