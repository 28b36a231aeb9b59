"""The four regimes of training (paper Fig. 1) placed on one sharpness trajectory.

On a log time axis the sharpness lambda_t of a run at eta = c / lambda_0 goes through
(i) the early transient, (ii) intermediate saturation, (iii) progressive sharpening and
(iv) the edge of stability (EoS), where lambda_t hovers at 2 / eta. The paper draws the
boundaries by eye; ``regime_boundaries`` is our rule [I], stated in its docstring and in
chapter 08, with two tolerances that are parameters.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..errors import check, check_positive

REGIME_NAMES = ("early transient", "intermediate saturation", "progressive sharpening",
                "edge of stability")


class Regimes(NamedTuple):
    """Boundaries (steps) of the four regimes of one sharpness trajectory; NaN = not reached."""
    t_saturation: float   # end of the early transient = start of intermediate saturation
    t_sharpening: float   # start of progressive sharpening
    t_eos: float          # start of the edge of stability
    lam_min: float        # the plateau value used by the rule
    lam_eos: float        # 2 / eta


def _trajectory(step, sharpness) -> tuple[np.ndarray, np.ndarray]:
    step = np.asarray(step, float)
    lam = np.asarray(sharpness, float)
    check(step.ndim == 1 and step.shape == lam.shape, "sharpness",
          f"a 1-d array of the shape of step {step.shape}", lam.shape)
    ok = np.isfinite(lam)
    check(int(ok.sum()) >= 2, "sharpness", "at least two finite measurements", int(ok.sum()))
    step, lam = step[ok], lam[ok]
    check(bool(np.all(np.diff(step) > 0)), "step", "strictly increasing steps", step)
    return step, lam


def regime_boundaries(step, sharpness, lr: float, tol: float = 0.1, eos_tol: float = 0.05) -> Regimes:
    """Place the four regimes on one sharpness trajectory.

    step [T], sharpness [T] (NaN where not measured; dropped); lr = eta > 0.
      * lam_min: the smallest sharpness of the run (first occurrence at step t_min).
      * t_eos: the first step after t_min with lambda_t >= (1 - eos_tol) * 2 / eta (NaN if never).
      * t_saturation: the first step with lambda_t <= (1 + tol) * lam_min: the early fall has
        come within ``tol`` of the plateau.
      * t_sharpening: the last step before t_eos (or the end of the run) with
        lambda_t <= (1 + tol) * lam_min: after it the sharpness stays above the plateau by more
        than ``tol``. If that is the last measured step, sharpening is not reached (NaN).
    """
    check_positive(lr, "lr")
    check_positive(tol, "tol")
    check(isinstance(eos_tol, (int, float)) and 0 < eos_tol < 1, "eos_tol", "a fraction in (0, 1)", eos_tol)
    step, lam = _trajectory(step, sharpness)
    lam_eos = 2.0 / lr
    i_min = int(np.argmin(lam))
    lam_min = float(lam[i_min])
    hit = i_min + np.nonzero(lam[i_min:] >= (1 - eos_tol) * lam_eos)[0]
    i_eos = int(hit[0]) if hit.size else len(lam)
    near = np.nonzero(lam[:i_eos] <= (1 + tol) * lam_min)[0]
    t_sat = float(step[near[0]])
    t_sharp = float(step[near[-1]]) if near[-1] < len(lam) - 1 else float("nan")
    t_eos = float(step[i_eos]) if hit.size else float("nan")
    return Regimes(t_sat, t_sharp, t_eos, lam_min, float(lam_eos))


class EoSStats(NamedTuple):
    """Edge-of-stability statistics after t_eos (NaN if EoS is not reached)."""
    ratio_mean: float     # mean of eta * lambda_t / 2 over the EoS regime
    ratio_max: float      # its largest value (> 1: the sharpness overshoots 2 / eta)
    frac_above: float     # fraction of EoS measurements with eta * lambda_t > 2
    n: int                # number of EoS measurements
    loss_increases: int   # steps of the EoS regime at which the loss went up (non-monotone loss)


def eos_stats(step, sharpness, loss, lr: float, t_eos: float) -> EoSStats:
    """Summarise the EoS regime of one run: step [T], sharpness [T] (NaN where not measured),
    loss [T] (every step), lr = eta, t_eos from ``regime_boundaries``."""
    check_positive(lr, "lr")
    step_all = np.asarray(step, float)
    loss = np.asarray(loss, float)
    check(loss.shape == step_all.shape, "loss", f"an array of the shape of step {step_all.shape}", loss.shape)
    if not np.isfinite(t_eos):
        return EoSStats(float("nan"), float("nan"), float("nan"), 0, 0)
    s, lam = _trajectory(step, sharpness)
    r = lr * lam[s >= t_eos] / 2.0
    after = step_all >= t_eos
    dl = np.diff(loss[after])
    return EoSStats(float(r.mean()), float(r.max()), float((r > 1).mean()), int(r.size),
                    int(np.sum(dl[np.isfinite(dl)] > 0)))
