"""What one point of a sweep computes, counted from its configuration alone: runs, training steps,
Hessian-vector products (``count_point``), and the relative work that weights a sweep's progress
(``point_work``, ``Eta``).

It sits below the sweeps: it reads a configuration's fields (a ``sweep.SweepConfig``, a
trajectories argument ``{"cfg", "c"}``, a ``saturation.SaturationConfig``, recognised by their
fields) and imports none of the modules that run them, so ``cluster`` (the progress bar) and
``estimate`` (the costs, timed) both build on it without a cycle.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

from . import data, memory, train

TYPICAL_MATVECS = 7        # products of one warm-started sharpness measurement (median 6.5 measured)
# relative costs per (example x parameter), for weighting points against each other only (the
# ETA calibrates itself on the points done): a loss evaluation ~ 1/3 of a training step, a
# linearization ~ a step, a Hessian-vector product ~ 2 steps (forward over reverse)
WEIGHTS = {"step": 1.0, "eval": 1 / 3, "linearize": 1.0, "hvp": 2.0}


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
    """Upper bound on the c values one indicator's search evaluates per seed (grid of n points),
    its spot check included (a bisection probes the middle of its bracket)."""
    if strategy == "grid":
        return n
    if strategy == "coarse_to_fine":
        return min(n, math.ceil(n / stride) + stride - 1 + 2)
    return min(n, math.ceil(math.log2(n + 1)) + 2)  # bisect


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
    extra_evals: int = 0        # loss evaluations on the measurement subset besides the runs' own
    cached: bool = False
    seconds: float | None = None  # estimated (0 when cached)


def parameters(cfg, depth: int, width: int) -> int:
    """P of the model of ``cfg`` (a SweepConfig) at (depth, width), from its shapes alone."""
    return memory.model_shapes(cfg.model.at(depth, width), data.example_shape(cfg.dataset))[0]


def count_point(cfg, depth: int, width: int) -> PointCost:
    """Runs, steps and products of ``sweep.critical_point`` at (depth, width) of ``cfg`` (bounds)."""
    S, n, T, k = len(cfg.seeds), len(cfg.c_grid), cfg.train.num_steps, cfg.train.sharpness_iters
    per = evaluations_per_seed(n, cfg.search, cfg.stride)
    loss_runs = S * (n if cfg.search == "grid" else min(n, 2 * per))
    sharp = cfg.c_sharp_max_width is None or width <= cfg.c_sharp_max_width
    sharp_runs = S * per if sharp else 0
    measured = int(train.sharpness_steps(cfg.train.replace(measure_sharpness=True)).sum())
    measurements = S + sharp_runs * measured  # at most: a run decided early stops measuring
    typical = k if cfg.train.sharpness_method == "power" else min(k, TYPICAL_MATVECS)
    return PointCost(depth, width, parameters(cfg, depth, width), loss_runs, sharp_runs,
                     (loss_runs + sharp_runs) * T, matvecs_max=S * 2 * k + sharp_runs * measured * k,
                     matvecs_typical=S * 2 * k + measurements * typical - S * typical, measurements=measurements)


def _one_point(cfg) -> bool:
    """A one-point network sweep configuration (a SweepConfig of one depth and one width)?"""
    return all(hasattr(cfg, a) for a in ("depths", "widths", "c_grid", "train", "model")) \
        and len(cfg.depths) == len(cfg.widths) == 1


def point_work(arg) -> float | None:
    """Relative work of one point of a sweep, from its argument as ``cluster.run_points`` gets it:
    a one-point SweepConfig (phase sweep: ``count_point``), a trajectories dict {"cfg", "c"}
    (its runs, measured at every step if it measures the sharpness), or a one-point
    SaturationConfig (recognised by its ``sweep``: every point of a saturation sweep runs the same
    plan of runs and measurements, so its work is its sweep's per-step work); None for anything
    else. No calibration: only ratios between the points of one sweep count."""
    try:
        if isinstance(arg, dict) and _one_point(arg.get("cfg")):  # trajectories
            cfg = arg["cfg"]
            d, w = cfg.depths[0], cfg.widths[0]
            runs = len(cfg.seeds) * len(arg.get("c", ()))
            measured = int(train.sharpness_steps(cfg.train).sum()) if cfg.train.measure_sharpness else 0
            p = PointCost(d, w, parameters(cfg, d, w), runs, 0, runs * cfg.train.num_steps, 0,
                          runs * measured * TYPICAL_MATVECS, runs * measured)
        elif _one_point(arg):
            cfg, p = arg, count_point(arg, arg.depths[0], arg.widths[0])
        elif _one_point(getattr(arg, "sweep", None)):  # a saturation point
            cfg = arg.sweep
            d, w, S = cfg.depths[0], cfg.widths[0], len(cfg.seeds)
            p = PointCost(d, w, parameters(cfg, d, w), 0, S, S * cfg.train.num_steps, 0,
                          S * TYPICAL_MATVECS, S)
        else:
            return None
    except Exception:  # noqa: BLE001  (a weight is a nicety: never fail a sweep for it)
        return None
    B = cfg.n_train if cfg.train.optimizer == "gd" else cfg.train.batch_size
    M = cfg.n_measure
    runs = p.loss_runs + p.sharpness_runs
    return p.params * (p.steps * B * WEIGHTS["step"] + runs * (cfg.train.num_steps + 1) * M * WEIGHTS["eval"]
                       + p.measurements * M * WEIGHTS["linearize"] + p.matvecs_typical * M * WEIGHTS["hvp"])


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
