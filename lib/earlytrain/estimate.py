"""What a phase sweep (or a saturation sweep) will cost, said before it computes.

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
group's last measurement step, a measurement at each of its steps). Other sweeps (the
connectivity chapter's) are not estimated.

The estimate is a planning figure (within a factor of a few), not a benchmark: bench/ measures.
Checked on this 2-core CPU shared with other sessions (load average 12 to 17): one critical_point
at the book's settings (d=4, w=256, bisect) spent 48 loss runs, 21 sharpness runs and 1491 products
(the bounds: 48, 24 and 1680 typical) and took 154 s, 172 s and 224 s in three runs; calibrated on
the fastest of its calls, the estimate said 49 to 72 s: the load, not the counts, made the
difference, hence the median. bench/bench_engine.py part 3 measured the same point in 27.7 s
(cold) on the unloaded machine.

``scripts/rerun_chapter.py`` prints it for every SweepConfig a chapter's configuration cell builds
and asks before a run estimated over an hour.
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field

TYPICAL_MATVECS = 7        # products of one warm-started sharpness measurement (median 6.5 measured)
CALIBRATION_EXAMPLES = 128  # at most this many examples in each calibration call (an FCN)
CNN_CALIBRATION_EXAMPLES = 8  # at least this many (a CNN, whose work per example and parameter is the
#                             image's positions: a Myrtle-5 at 80 channels took minutes with 128 on a loaded CPU)
CALIBRATION_ACTIVATIONS = 2 ** 18  # examples per call between those two: this many activations in all
COMPILES_PER_POINT = 3      # run_grid without and with sharpness, lambda_0: compiles per point
REPEATS = 3                 # timed calls of each calibrated function (the median is used: the
#                             device as it runs now, other processes' load included)
HVP_BATCH = 6               # products timed after the first, all after one linearization


def fmt_seconds(s: float) -> str:
    """A duration for people: '42 s', '12 min', '3 h 20 min', '2.4 days'."""
    if not math.isfinite(s):
        return "unknown"
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    if s < 2 * 86400:
        h, m = divmod(int(round(s / 60)), 60)
        return f"{h} h {m:02d} min"
    return f"{s / 86400:.1f} days"


def evaluations_per_seed(n: int, strategy: str, stride: int) -> int:
    """Upper bound on the c values one indicator's search evaluates per seed (grid of n points)."""
    if strategy == "grid":
        return n
    if strategy == "coarse_to_fine":
        return min(n, math.ceil(n / stride) + stride - 1 + 2)
    return min(n, math.ceil(math.log2(n + 1)) + 2)  # bisect


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
class PointCost:
    depth: int
    width: int
    params: int
    loss_runs: int              # at most
    sharpness_runs: int         # at most
    steps: int                  # training steps of all runs
    matvecs_max: int
    matvecs_typical: int
    measurements: int = 0       # sharpness measurements (lambda_0 included)
    cached: bool = False
    seconds: float | None = None  # estimated (0 when cached)


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


def count_point(cfg, depth: int, width: int) -> PointCost:
    """Runs, steps and products of ``sweep.critical_point`` at (depth, width) of ``cfg`` (bounds)."""
    from . import memory, train, data
    S, n, T, k = len(cfg.seeds), len(cfg.c_grid), cfg.train.num_steps, cfg.train.sharpness_iters
    per = evaluations_per_seed(n, cfg.search, cfg.stride)
    loss_runs = S * (n if cfg.search == "grid" else min(n, 2 * per))
    sharp = cfg.c_sharp_max_width is None or width <= cfg.c_sharp_max_width
    sharp_runs = S * per if sharp else 0
    measured = int(train.sharpness_steps(cfg.train.replace(measure_sharpness=True)).sum())
    measurements = S + sharp_runs * measured
    typical = k if cfg.train.sharpness_method == "power" else min(k, TYPICAL_MATVECS)
    P = memory.model_shapes(cfg.model.at(depth, width), data.example_shape(cfg.dataset))[0]
    return PointCost(depth, width, P, loss_runs, sharp_runs, (loss_runs + sharp_runs) * T,
                     matvecs_max=S * 2 * k + sharp_runs * measured * k,
                     matvecs_typical=S * 2 * k + sharp_runs * measured * typical,
                     measurements=measurements)


def calibrate(cfg, depth: int | None = None, width: int | None = None) -> Calibration:
    """Time a training step, a loss evaluation and a Hessian-vector product at (depth, width)
    (default: the sweep's smallest) on the default device, on random inputs (see module doc)."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    from . import data, hessian, losses, models
    t0 = time.perf_counter()
    depth = min(cfg.depths) if depth is None else depth
    width = min(cfg.widths) if width is None else width
    from . import memory
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
    work = (p.steps * B * cal.per("step") + runs * (T + 1) * M * cal.per("eval")
            + p.matvecs_typical * M * cal.per("hvp") + p.measurements * M * cal.per("linearize")) * p.params
    return work + COMPILES_PER_POINT * cal.compile_s


def phase_sweep_cost(cfg, label: str = "sweep", calibration: Calibration | bool | None = True,
                     cached: bool = True) -> SweepCost:
    """The cost of ``sweep.phase_sweep(cfg)`` (module doc). ``calibration``: True to calibrate now,
    a Calibration to reuse, None/False for counts only. ``cached``: look the points up in the
    results cache (a cached point costs nothing)."""
    from . import cache, sweep
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
    from . import cache, data, memory, saturation
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
            P = memory.model_shapes(cfg.model.at(d, w), data.example_shape(cfg.dataset))[0]
            p = PointCost(d, w, P, loss_runs=0, sharpness_runs=runs, steps=steps,
                          matvecs_max=S * 2 * k + meas * k, matvecs_typical=S * 2 * k + meas * typical,
                          measurements=S + meas)
            one = dataclasses.replace(scfg, sweep=cfg.replace(depths=(d,), widths=(w,)))
            p.cached = bool(lookup is not None and lookup(one) is not None)
            out.points.append(p)
    return _timed(out, cfg, calibration)


def sweep_configs(namespace: dict) -> dict[str, object]:
    """The SweepConfig and SaturationConfig values of a namespace (a chapter's globals), by name,
    also inside lists, tuples and dicts one level down."""
    from .saturation import SaturationConfig
    from .sweep import SweepConfig
    kinds = (SweepConfig, SaturationConfig)
    found = {}
    for name, v in namespace.items():
        if name.startswith("_"):
            continue
        if isinstance(v, kinds):
            found[name] = v
        elif isinstance(v, (list, tuple)):
            found.update({f"{name}[{i}]": x for i, x in enumerate(v) if isinstance(x, kinds)})
        elif isinstance(v, dict):
            found.update({f"{name}[{k!r}]": x for k, x in v.items() if isinstance(x, kinds)})
    return found


def cost_of(cfg, label: str, calibration: Calibration | bool | None = True) -> SweepCost:
    """``phase_sweep_cost`` of a SweepConfig, ``saturation_cost`` of a SaturationConfig."""
    from .saturation import SaturationConfig
    if isinstance(cfg, SaturationConfig):
        return saturation_cost(cfg, label, calibration)
    return phase_sweep_cost(cfg, label, calibration)


def other_configs(namespace: dict) -> list[str]:
    """Names of the other configuration dataclasses (``*Config``, not SweepConfig, SaturationConfig,
    ModelConfig or TrainConfig) of a namespace: sweeps this module does not estimate."""
    skip = {"SweepConfig", "SaturationConfig", "ModelConfig", "TrainConfig"}
    return [f"{n} ({type(v).__name__})" for n, v in namespace.items()
            if not n.startswith("_") and dataclasses.is_dataclass(v) and not isinstance(v, type)
            and type(v).__name__.endswith("Config") and type(v).__name__ not in skip]


# ----------------------------------------------------------------------------- progress
# relative costs per (example x parameter), for weighting points against each other only (the
# ETA below calibrates itself on the points done): a loss evaluation ~ 1/3 of a training step,
# a linearization ~ a step, a Hessian-vector product ~ 2 steps (forward over reverse)
_WEIGHTS = {"step": 1.0, "eval": 1 / 3, "linearize": 1.0, "hvp": 2.0}


def point_work(arg) -> float | None:
    """Relative work of one point of a sweep, from its argument as ``cluster.run_points`` gets it
    (a one-point SweepConfig of a phase sweep, a one-point SaturationConfig, or a trajectories
    dict {"cfg", "c"}); None for anything else. No calibration: only ratios between points count."""
    from . import train
    from .saturation import SaturationConfig
    from .sweep import SweepConfig
    try:
        if isinstance(arg, dict) and isinstance(arg.get("cfg"), SweepConfig):  # trajectories
            cfg = arg["cfg"]
            p = count_point(cfg, cfg.depths[0], cfg.widths[0])
            runs = len(cfg.seeds) * len(arg.get("c", ()))
            measured = int(train.sharpness_steps(cfg.train).sum())
            p = PointCost(p.depth, p.width, p.params, runs, 0, runs * cfg.train.num_steps, 0,
                          runs * measured * TYPICAL_MATVECS if cfg.train.measure_sharpness else 0,
                          runs * measured if cfg.train.measure_sharpness else 0)
        elif isinstance(arg, SweepConfig) and len(arg.depths) == len(arg.widths) == 1:
            cfg, p = arg, count_point(arg, arg.depths[0], arg.widths[0])
        elif isinstance(arg, SaturationConfig):
            cfg, p = arg.sweep, saturation_cost(arg, calibration=None, cached=False).points[0]
        else:
            return None
    except Exception:  # noqa: BLE001  (a weight is a nicety: never fail a sweep for it)
        return None
    B = cfg.n_train if cfg.train.optimizer == "gd" else cfg.train.batch_size
    M = cfg.n_measure
    runs = p.loss_runs + p.sharpness_runs
    return p.params * (p.steps * B * _WEIGHTS["step"] + runs * (cfg.train.num_steps + 1) * M * _WEIGHTS["eval"]
                       + p.measurements * M * _WEIGHTS["linearize"] + p.matvecs_typical * M * _WEIGHTS["hvp"])


class Eta:
    """ETA of a list of points of unequal size: elapsed x (work left / work done), the work of a
    point by ``point_work`` (None for all when any point's is unknown: then no ETA)."""

    def __init__(self, args: list, todo: list[bool]):
        works = [point_work(a) for a in args]
        self.works = works if all(w is not None and w > 0 for w in works) else None
        self.todo = list(todo)
        self.t0 = time.perf_counter()
        self.done = 0.0

    def finished(self, i: int) -> None:
        if self.works is not None:
            self.done += self.works[i]
        self.todo[i] = False

    def text(self) -> str:
        if self.works is None or self.done <= 0:
            return ""
        left = sum(w for w, t in zip(self.works, self.todo) if t)
        return f"ETA {fmt_seconds((time.perf_counter() - self.t0) * left / self.done)} (by point size)"
