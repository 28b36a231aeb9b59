"""The papers' claims as data: what each chapter tests, the rule that decides, what it measured.

A :class:`Claim` is one statement of one of the three papers the book reproduces (Kalra &
Barkeshli 2023, "kb"; Kalra, He & Barkeshli 2023, the uv-model paper, "uv"; Lewkowycz et al. 2020,
the catapult paper, "catapult"), with where it stands (section / figure / appendix), the quantity
a chapter measures, the paper's value or expectation, and the rule that turns the measurement into
a verdict, stated in words (``rule``) and as code (``check``, built from the check functions
below). The rules are fixed here, before any run, and do not look at the numbers they judge.

Verdicts (``VERDICTS``):

* ``reproduced``: the rule's condition holds;
* ``partly``: its weaker, stated condition holds;
* ``not reproduced``: neither holds at a scale where the paper says the effect is there;
* ``not at this scale``: the run cannot decide (too few finite points, a constant that is only a
  bound, a regime not reached within the run), or it failed outside the claim's regime (e.g. the
  networks are far narrower than the paper's, ``in_regime=False``): a failure there is no
  evidence against the paper, so "not reproduced" becomes "not at this scale" (a success stands).

A chapter calls :func:`start` once (its scale, in words) and :func:`record` once per claim, with
values it already computes; :func:`show` displays the chapter's verdicts under its figures. When
the environment variable ``EARLYTRAIN_CLAIMS`` names a directory (the book build sets it,
``scripts/bookexec.py``; ``make rerun`` sets its own), every call rewrites
``<dir>/<chapter>.json`` with the chapter's records of this run; :func:`report` reads them all
(the book's report page). A chapter run without it (plain papermill) writes nothing.
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

VERDICTS = ("reproduced", "partly", "not reproduced", "not at this scale")
PAPERS = {
    "kb": "Kalra & Barkeshli 2023 (arXiv 2302.12250)",
    "uv": "Kalra, He & Barkeshli 2023 (arXiv 2311.02076)",
    "catapult": "Lewkowycz et al. 2020 (arXiv 2003.02218)",
    "cohen": "Cohen et al. 2021, as cited by Kalra & Barkeshli (Sec. 1)",
}
ENV = "EARLYTRAIN_CLAIMS"
SCHEMA = 1


# ----------------------------------------------------------------------------- check functions
@dataclass(frozen=True)
class Check:
    """The outcome of a check function: a verdict and the numbers behind it, in words."""
    verdict: str
    detail: str

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")


def _finite(x) -> np.ndarray:
    a = np.asarray(x, float).ravel()
    return a[np.isfinite(a)]


def _g(v) -> str:
    return f"{v:.3g}" if isinstance(v, (float, np.floating)) else str(v)


def near(value, target: float, tol: float, partly_tol: float | None = None, relative: bool = False) -> Check:
    """|value - target| <= tol (tol * |target| if ``relative``): reproduced; <= partly_tol: partly;
    else not reproduced. A value that is not finite: not at this scale."""
    v = float(value) if value is not None else float("nan")
    if not math.isfinite(v):
        return Check("not at this scale", "no finite value")
    scale = abs(target) if relative else 1.0
    d = abs(v - target)
    detail = f"|{_g(v)} - {_g(target)}| = {_g(d)}"
    if d <= tol * scale:
        return Check("reproduced", f"{detail} <= {_g(tol * scale)}")
    if partly_tol is not None and d <= partly_tol * scale:
        return Check("partly", f"{detail} <= {_g(partly_tol * scale)}")
    return Check("not reproduced", f"{detail} > {_g((partly_tol or tol) * scale)}")


def within(value, lo: float, hi: float, partly: tuple | None = None) -> Check:
    """lo <= value <= hi: reproduced; inside ``partly`` = (lo', hi'): partly; else not reproduced."""
    v = float(value) if value is not None else float("nan")
    if not math.isfinite(v):
        return Check("not at this scale", "no finite value")
    if lo <= v <= hi:
        return Check("reproduced", f"{_g(v)} in [{_g(lo)}, {_g(hi)}]")
    if partly is not None and partly[0] <= v <= partly[1]:
        return Check("partly", f"{_g(v)} in [{_g(partly[0])}, {_g(partly[1])}], not in [{_g(lo)}, {_g(hi)}]")
    return Check("not reproduced", f"{_g(v)} outside [{_g(lo)}, {_g(hi)}]")


def ordered(a, b, strict: bool = False) -> Check:
    """a <= b (a < b if ``strict``) for two numbers: reproduced, else not reproduced; a missing
    number: not at this scale."""
    a, b = float(a), float(b)
    if not (math.isfinite(a) and math.isfinite(b)):
        return Check("not at this scale", f"a = {_g(a)}, b = {_g(b)}: not both finite")
    ok = a < b if strict else a <= b
    sym = "<" if strict else "<="
    return Check("reproduced" if ok else "not reproduced", f"{_g(a)} {sym if ok else 'not ' + sym} {_g(b)}")


def fraction_true(mask, at_least: float = 0.9, partly: float | None = 0.5, valid=None) -> Check:
    """The fraction of True among the valid entries of ``mask`` (``valid``: a boolean mask of the
    same shape, default all): >= at_least reproduced, >= partly partly, else not reproduced; no
    valid entry: not at this scale."""
    m = np.asarray(mask, bool).ravel()
    ok = np.ones_like(m) if valid is None else np.asarray(valid, bool).ravel()
    n = int(ok.sum())
    if n == 0:
        return Check("not at this scale", "no valid entry")
    k = int((m & ok).sum())
    frac = k / n
    detail = f"{k} of {n} ({100 * frac:.0f} %)"
    if frac >= at_least:
        return Check("reproduced", f"{detail} >= {100 * at_least:.0f} %")
    if partly is not None and frac >= partly:
        return Check("partly", f"{detail} >= {100 * partly:.0f} %")
    return Check("not reproduced", f"{detail} < {100 * (partly if partly is not None else at_least):.0f} %")


def trend(x, y, sign: int = 1, min_points: int = 3) -> Check:
    """y against x (sorted by x), finite pairs only. Every consecutive difference has ``sign``:
    reproduced; the least-squares slope of y on log x has it (but not every step): partly; else not
    reproduced. Fewer than ``min_points`` finite pairs: not at this scale."""
    x, y = np.asarray(x, float).ravel(), np.asarray(y, float).ravel()
    ok = np.isfinite(x) & np.isfinite(y) & (x > 0)
    x, y = x[ok], y[ok]
    word = "rises" if sign > 0 else "falls"
    if x.size < min_points or np.unique(x).size < min_points:
        return Check("not at this scale", f"{x.size} finite point(s), {min_points} needed")
    o = np.argsort(x)
    x, y = x[o], y[o]
    steps = np.sign(np.diff(y)) * sign
    slope = float(np.polyfit(np.log(x), y, 1)[0]) * sign
    detail = f"y = {', '.join(_g(v) for v in y)}; {int((steps > 0).sum())} of {steps.size} steps {word}"
    if (steps > 0).all():
        return Check("reproduced", detail)
    if slope > 1e-9 * (np.abs(y).max() + 1e-300):  # not round-off of a flat line
        return Check("partly", detail + f"; fitted slope {word}")
    return Check("not reproduced", detail + f"; fitted slope does not {word[:-1]}")


def at_least(value, bound: float, partly: float | None = None) -> Check:
    """value >= bound: reproduced; >= partly: partly; else not reproduced; not finite: not at this scale."""
    v = float(value) if value is not None else float("nan")
    if not math.isfinite(v):
        return Check("not at this scale", "no finite value")
    if v >= bound:
        return Check("reproduced", f"{_g(v)} >= {_g(bound)}")
    if partly is not None and v >= partly:
        return Check("partly", f"{_g(v)} >= {_g(partly)}")
    return Check("not reproduced", f"{_g(v)} < {_g(partly if partly is not None else bound)}")


def holds(flag, what: str) -> Check:
    """A yes/no observation: True reproduced, False not reproduced, None/NaN not at this scale."""
    if flag is None or (isinstance(flag, float) and not math.isfinite(flag)):
        return Check("not at this scale", f"not observed: {what}")
    return Check("reproduced", what) if bool(flag) else Check("not reproduced", f"not so: {what}")


def all_of(*checks: Check) -> Check:
    """Combine: all reproduced -> reproduced; any not at this scale -> not at this scale (unless
    another already failed: not reproduced); none reproduced or partly -> not reproduced; else partly."""
    vs = [c.verdict for c in checks]
    detail = "; ".join(c.detail for c in checks)
    if all(v == "reproduced" for v in vs):
        return Check("reproduced", detail)
    if "not at this scale" in vs:
        decided = [v for v in vs if v != "not at this scale"]
        if decided and all(v == "not reproduced" for v in decided):
            return Check("not reproduced", detail)
        return Check("not at this scale", detail)
    if all(v == "not reproduced" for v in vs):
        return Check("not reproduced", detail)
    return Check("partly", detail)


def not_at_this_scale(reason: str) -> Check:
    return Check("not at this scale", reason)


# ----------------------------------------------------------------------------- claims
@dataclass(frozen=True)
class Claim:
    """One claim of the registry: where it is, what is measured, the paper's value, the rule."""
    id: str
    paper: str           # key of PAPERS
    where: str           # section / figure / appendix
    statement: str
    quantity: str        # what the chapter measures
    expected: str        # the paper's value or expectation
    rule: str            # the rule that decides the verdict, in words (the ``check`` in code)
    chapter: str         # the chapter that measures it, e.g. "01_phase_diagram"
    figure: str          # the MyST label (glue figure name) of the figure that shows it
    check: Callable[..., Check] = field(repr=False, compare=False)
    preset: str = "paper.yaml"  # the preset that tests it at the paper's scale

    @property
    def paper_name(self) -> str:
        return PAPERS[self.paper]


REGISTRY: dict[str, Claim] = {}


def claim(id, paper, where, statement, quantity, expected, rule, chapter, figure, check, preset="paper.yaml"):
    if id in REGISTRY:
        raise ValueError(f"claim {id!r} registered twice")
    REGISTRY[id] = Claim(id, paper, where, statement, quantity, expected, rule, chapter, figure, check, preset)
    return REGISTRY[id]


def claims_of(chapter: str) -> list[Claim]:
    return [c for c in REGISTRY.values() if c.chapter == chapter]


def _vals(m) -> list:
    return list(m.values()) if isinstance(m, dict) else list(np.atleast_1d(m))


CH1, CH2, CH3, CH4 = "01_phase_diagram", "02_uv_model", "03_catapult_chaos", "04_loss_connectivity"
CH5, CH6, CH7, CH8 = "05_intermediate_saturation", "06_output_scale", "07_architectures", "08_four_regimes"
REL_RULE = ("Out of the claim's regime (in_regime false): not reproduced becomes not at this scale.")

# --- chapter 1: the phase diagram (K&B Sec. 2, Fig. 2-4)
claim("kb-fig2-onset", "kb", "Sec. 2, Fig. 2", "The loss of a wide, shallow network rises as soon as c > 2; a "
      "narrow, deep one keeps falling up to a larger c.", "smallest c of the trajectories whose loss rises "
      "(rd2(max_t L_t/L_0) > 1), wide-shallow and narrow-deep", "wide-shallow onset < narrow-deep onset",
      "reproduced if the wide-shallow onset is strictly below the narrow-deep one; not at this scale if either "
      "network's loss never rises at the c drawn", CH1, "fig-pd-transient",
      lambda m, **_: ordered(m["wide-shallow"], m["narrow-deep"], strict=True))
claim("kb-closs-wide", "kb", "Sec. 2, Fig. 3a", "<c_loss> -> 2 as 1/w -> 0 (MSE).", "mean c_loss over inits at "
      "the widest network of the width diagram", "2", "reproduced if |<c_loss> - 2| <= 0.5, partly if <= 1. "
      + REL_RULE + " (in regime: the widest network has d/w <= 1/64 [I])", CH1, "fig-pd-width", lambda m, **_: near(m, 2.0, 0.5, 1.0))
claim("kb-closs-width", "kb", "Sec. 2, Fig. 3a", "c_loss grows with 1/w.", "mean c_loss per width",
      "increasing in 1/w", "trend(1/w, <c_loss>, +): every step up reproduced, fitted slope up partly; fewer "
      "than 3 widths not at this scale", CH1, "fig-pd-width", lambda m, x, **_: trend(x, _vals(m), +1))
claim("kb-csharp-width", "kb", "Sec. 2, Fig. 3a", "c_sharp grows with 1/w.", "mean c_sharp per width (widths "
      "where it was measured)", "increasing in 1/w", "trend(1/w, <c_sharp>, +) over the widths with a measured "
      "c_sharp; fewer than 3 not at this scale", CH1, "fig-pd-width", lambda m, x, **_: trend(x, _vals(m), +1))
claim("kb-closs-depth", "kb", "Sec. 2, Fig. 3d", "At fixed width, c_loss grows with depth (the variable is d/w).",
      "mean c_loss per depth, at each fixed width", "increasing in d at every width",
      "trend(d, <c_loss>, +) at each width (2 depths at least); all reproduced reproduced, any partly or "
      "reproduced partly", CH1, "fig-pd-depth",
      lambda m, x, **_: all_of(*[trend(x, v, +1, min_points=2) for v in m.values()]))
claim("kb-cmax-depth", "kb", "Sec. 2, Fig. 3d", "c_max rises with depth (MSE).", "mean c_max per depth at each "
      "fixed width, censored seeds (nothing diverged on the grid: a lower bound) left out",
      "increasing in d", "as kb-closs-depth, on c_max without censored values", CH1, "fig-pd-depth",
      lambda m, x, **_: all_of(*[trend(x, v, +1, min_points=2) for v in m.values()]))
claim("kb-order", "kb", "Sec. 2, Fig. 4", "Per initialisation c_loss <= c_sharp <= c_max, outliers only at "
      "large d/w.", "fraction of (network, init) with a measured c_sharp that satisfy the order",
      ">= 90 % (outliers allowed)", "fraction >= 90 % reproduced, >= 50 % partly", CH1, "fig-pd-order",
      lambda m, ordered, valid, **_: fraction_true(ordered, 0.9, 0.5, valid=valid))

# --- chapter 2: the uv model (K&B Sec. 5, App. B, G.3)
claim("uv-exact", "kb", "Sec. 5, App. B", "The top Hessian eigenvalue of the uv model has a closed form, and GD "
      "on (u, v) closes on an exact 2D map of (Delta f, lambda).", "|closed form - dense eigvalsh| (float64, w = 8) "
      "and max |lambda_GD - lambda_map| over 50 steps at k = 3 (float64)", "0 (round-off)",
      "reproduced if both are <= 1e-10", CH2, "fig-02-phase",
      lambda m, **_: all_of(*[near(v, 0.0, 1e-10) for v in _vals(m)]), preset="quick.yaml")
claim("uv-closs", "kb", "Sec. 5, Fig. 7a", "<c_loss> -> 2 at large width and grows with 1/w (uv model).",
      "mean c_loss per width", "2 at the widest, increasing in 1/w", "reproduced if |<c_loss>(widest) - 2| <= "
      "0.1 and trend(1/w, <c_loss>, +) reproduced; partly if one of them", CH2, "fig-02-phase",
      lambda m, x, **_: all_of(near(_vals(m)[-1], 2.0, 0.1), trend(x, _vals(m), +1)), preset="quick.yaml")
claim("uv-kmax", "kb", "Sec. 5, App. B", "k_max = 4 at every width (trace scaling).", "mean k_max per width",
      "4", "reproduced if every width's <k_max> is within 10 % of 4 (T1 = 10 steps let runs just above 4 "
      "survive), partly within 25 %", CH2, "fig-02-phase",
      lambda m, **_: all_of(*[near(v, 4.0, 0.1, 0.25, relative=True) for v in _vals(m)]), preset="quick.yaml")
claim("uv-trace-no-rise", "kb", "Sec. 5, Fig. 7b", "The trace never rises for k < 4: no sharpness catapult in "
      "the trace (k_sharp = k_max = 4).", "fraction of inits whose trace first rises (or the run diverges) at "
      "k_sharp >= 4 (1 - 1e-3)", "all", "fraction >= 99 % reproduced, >= 90 % partly", CH2, "fig-02-phase",
      lambda m, **_: at_least(m, 0.99, 0.9), preset="quick.yaml")
claim("uv-kfrob", "kb", "Sec. 5, Fig. 7c", "The Frobenius norm rises at k_frob > k_loss, and the gap grows "
      "with 1/w.", "mean k_frob - k_loss per width", "> 0, increasing in 1/w",
      "reproduced if every gap > 0 and trend(1/w, gap, +) reproduced; partly if one of them", CH2,
      "fig-02-phase", lambda m, x, **_: all_of(fraction_true(np.asarray(_vals(m)) > 0, 1.0, None),
                                              trend(x, _vals(m), +1)), preset="quick.yaml")
claim("uv-kloss-theory", "kb", "App. B.3, Fig. 11", "The initialisation-averaged first-step condition predicts "
      "<k_loss> at large width.", "relative error of the excess <k_loss> - 2 against theory at the widest net",
      "0", "reproduced if <= 10 %, partly if <= 25 %", CH2, "fig-02-theory",
      lambda m, **_: near(m, 0.0, 0.10, 0.25), preset="quick.yaml")
claim("uv-kcrit", "kb", "App. B.2, Fig. 10", "k_crit ~ 2 at every width (intermediate saturation).",
      "k_crit = argmin chi'' per width", "2", "reproduced if |log2 k_crit - 1| <= 0.15 at every width, partly "
      "if at half of them", CH2, "fig-02-saturation",
      lambda m, **_: fraction_true(np.abs(np.log2(np.asarray(_vals(m), float)) - 1) <= 0.15, 1.0, 0.5,
                                   valid=np.isfinite(np.asarray(_vals(m), float))))
claim("uv-zero-init", "kb", "App. G.3", "With zero output at init the first step raises the loss iff k > 2 at "
      "every width, and raises the trace at every k.", "first-step k_loss range over widths and inits; smallest "
      "mean first-step trace rise", "k_loss = 2 exactly; trace rise > 0",
      "reproduced if max |k_loss - 2| <= 1e-3 and the smallest trace rise > 0", CH2, "fig-02-zero",
      lambda m, **_: all_of(near(m["max |k_loss - 2|"], 0.0, 1e-3), ordered(0.0, m["min trace rise"], strict=True)),
      preset="quick.yaml")

# --- chapter 3: catapult, EoS, chaos
claim("cat-ends-flat", "catapult", "Sec. 2 (warm-up model)", "In the catapult window 2 < k < 4 training "
      "converges to a flatter minimum with eta lambda < 2.", "fraction of catapult runs ending with eta "
      "lambda_T < 2", "all", "fraction >= 99 % reproduced, >= 90 % partly", CH3, "fig-03-duration",
      lambda m, **_: at_least(m, 0.99, 0.9), preset="quick.yaml")
claim("cat-kmax-4", "catapult", "Sec. 2", "The uv model diverges for k > 4 and converges below.", "diverged "
      "run at the largest k > 4 of the regimes figure; final eta lambda of the runs with 2 < k < 4",
      "k > 4 diverges; 2 < k < 4 ends below 2", "reproduced if the k > 4 run diverged and every 2 < k < 4 run ends "
      "below 2", CH3, "fig-03-regimes",
      lambda m, **_: all_of(holds(m["diverged above 4"], "the run above k = 4 diverged"),
                            fraction_true(np.asarray(_vals(m["final"]), float) < 2, 1.0, None)), preset="quick.yaml")
claim("cat-duration", "catapult", "Sec. 2", "The catapult lasts O(log w) steps: t_peak ~ ln w / (2 ln(k - 1)).",
      "fitted slope of t_peak against ln w, per k, relative to 1/(2 ln(k - 1))", "ratio 1",
      "reproduced if every |slope/theory - 1| <= 25 %, partly if every <= 50 %", CH3, "fig-03-duration",
      lambda m, **_: all_of(*[near(v, 1.0, 0.25, 0.5) for v in _vals(m)]), preset="quick.yaml")
claim("cat-fcn-cmax", "catapult", "Sec. 3 (experiments)", "Wide ReLU networks trained with SGD diverge above "
      "eta lambda_0 ~ 12 (not the uv model's 4).", "mean c_max of a ReLU FCN on MNIST (censored seeds: not at "
      "this scale)", "~12", "reproduced if 8 <= <c_max> <= 18 (12 within x1.5), partly if 6 <= <c_max> <= 24 "
      "(x2); any censored seed: not at this scale", CH3, "fig-03-fcn-catapult",
      lambda m, censored=False, **_: not_at_this_scale("c_max is only a lower bound (no run diverged on the grid)")
      if censored else within(m, 8.0, 18.0, (6.0, 24.0)))
claim("cat-fcn-closs", "catapult", "Sec. 3", "The catapult starts at eta_crit = 2 / lambda_0.", "mean c_loss of "
      "the same FCN", "2", "reproduced if |<c_loss> - 2| <= 0.5, partly if <= 1", CH3, "fig-03-fcn-catapult",
      lambda m, **_: near(m, 2.0, 0.5, 1.0))
claim("cat-fcn-trajectory", "catapult", "Sec. 3, Fig. 1", "In the catapult the loss first grows while eta "
      "lambda_t falls below 2.", "max_t L_t / L_0 and final eta lambda_t at the largest c drawn",
      "loss rise > 1 and eta lambda_T < 2", "reproduced if both, partly if one", CH3, "fig-03-fcn-catapult",
      lambda m, **_: all_of(ordered(1.0, m["loss rise"], strict=True), ordered(m["final eta lambda"], 2.0, strict=True)))
claim("uvp-sharpening", "uv", "Sec. 3-4", "A small initial output (0 < f/y < 1) makes the sharpness grow "
      "(progressive sharpening).", "fraction of the sharpening runs whose lambda_T > lambda_0", "all",
      "fraction >= 99 % reproduced, >= 50 % partly", CH3, "fig-03-sharpening",
      lambda m, **_: at_least(m, 0.99, 0.5), preset="quick.yaml")
claim("uvp-eos", "uv", "Sec. 4", "Above eta_c sharpening drives eta lambda to 2 and GD oscillates about the "
      "edge of stability.", "smallest and largest eta lambda_t over the last 10 % of the steps, for each run with "
      "eta > eta_c", "the orbit straddles 2", "reproduced if every run's late orbit straddles 2 (smallest <= 2 <= "
      "largest), partly if some do; no run above eta_c: not at this scale", CH3, "fig-03-sharpening",
      lambda m, **_: fraction_true([lo <= 2.0 <= hi for lo, hi in _vals(m)], 1.0, 1e-9)
      if len(m) else not_at_this_scale("no run above eta_c"), preset="quick.yaml")
claim("uvp-period-doubling", "uv", "Sec. 5", "The late-time sharpness follows a period-doubling route to chaos "
      "as eta grows.", "first eta with period 2, 4, 8, then no short period (chaos)", "increasing order",
      "reproduced if all four onsets are found in increasing order; partly if periods 2 and 4 are found in order",
      CH3, "fig-03-bifurcation",
      lambda m, **_: Check("reproduced", f"onsets {m}") if all(math.isfinite(m[k]) for k in ("2", "4", "8", "chaos"))
      and m["2"] < m["4"] < m["8"] < m["chaos"] else Check("partly", f"onsets {m}")
      if math.isfinite(m["2"]) and math.isfinite(m["4"]) and m["2"] < m["4"] else
      Check("not at this scale" if not math.isfinite(m["2"]) else "not reproduced", f"onsets {m}"))

# --- chapter 4: loss connectivity
claim("kb-barrier-order", "kb", "Sec. 2.2, Def. 2-3", "c_sharp <= c_barrier per initialisation: sharpness "
      "reduction and the loss catapult stay in the initial basin.", "fraction of inits (measured c_sharp) with "
      "c_sharp <= c_barrier", ">= 90 %", "fraction >= 90 % reproduced, >= 50 % partly", CH4, "fig-04-diagram",
      lambda m, ordered, valid, **_: fraction_true(ordered, 0.9, 0.5, valid=valid))
claim("kb-barrier-full-order", "kb", "Sec. 2.2, Fig. 3", "c_loss <= c_sharp <= c_barrier <= c_max per "
      "initialisation.", "fraction of inits with the full order", ">= 90 %",
      "fraction >= 90 % reproduced, >= 50 % partly", CH4, "fig-04-diagram",
      lambda m, ordered, valid, **_: fraction_true(ordered, 0.9, 0.5, valid=valid))
claim("kb-barrier-distinct", "kb", "Sec. 2.2, Fig. 3", "A barrier opens below divergence: c_barrier < c_max "
      "(a distinct constant).", "per width, the number of inits with c_barrier < c_max", "at every width of the "
      "paper (256-2048)", "reproduced if a majority of inits has c_barrier < c_max at >= 2 widths, partly at 1; "
      + REL_RULE + " (in regime: widest width >= 256, the paper's smallest)", CH4, "fig-04-diagram",
      lambda m, **_: (lambda n: Check("reproduced" if n >= 2 else "partly" if n == 1 else "not reproduced",
                                      f"majority at {n} width(s): {m}"))(sum(v > 0.5 for v in _vals(m))))

# --- chapter 5: intermediate saturation
claim("kb-ccrit", "kb", "Sec. 3, Fig. 5, Def. 4", "c_crit = argmin chi'' ~ 2 for MSE, independent of width.",
      "c_crit per width", "2", "reproduced if |log2 c_crit - 1| <= one grid step (x_step) at every width, "
      "partly at half of them", CH5, "fig-05-chi",
      lambda m, x_step, **_: fraction_true(np.abs(np.log2(np.asarray(_vals(m), float)) - 1) <= 1.01 * x_step,
                                           1.0, 0.5, valid=np.isfinite(np.asarray(_vals(m), float))))
claim("kb-chi-broadens", "kb", "Sec. 3, Fig. 5", "The peak of chi'' broadens (is shallower) as d/w grows.",
      "min chi'' per width", "|min chi''| decreasing in 1/w", "trend(1/w, min chi'', +) (a shallower, less "
      "negative minimum at smaller w); fewer than 3 widths not at this scale", CH5, "fig-05-chi",
      lambda m, x, **_: trend(x, _vals(m), +1))

# --- chapter 6: output at initialisation (App. G, H)
claim("kb-standard-closs", "kb", "Sec. 4, Fig. 6", "For standard networks c_loss grows with 1/w (full-batch GD "
      "on a CIFAR-10 subset).", "mean c_loss per width", "increasing in 1/w", "trend(1/w, <c_loss>, +)", CH6,
      "fig-out-variants", lambda m, x, **_: trend(x, _vals(m), +1))
claim("kb-centered-closs", "kb", "App. G, Fig. 6", "Centered networks have c_loss ~ 2 at every width.",
      "mean c_loss per width", "2", "reproduced if |<c_loss> - 2| <= 0.5 at every width, partly if <= 1",
      CH6, "fig-out-variants", lambda m, **_: all_of(*[near(v, 2.0, 0.5, 1.0) for v in _vals(m)]))
claim("kb-zero-closs", "kb", "App. G, Fig. 6", "Zero-init networks have c_loss ~ 2 at every width.",
      "mean c_loss per width", "2", "as kb-centered-closs", CH6, "fig-out-variants",
      lambda m, **_: all_of(*[near(v, 2.0, 0.5, 1.0) for v in _vals(m)]))
claim("kb-alpha-sharpness", "kb", "App. H.1", "A large initial output norm alpha makes the sharpness fall early, "
      "a small one makes it rise.", "max over t >= 1 and c of lambda_t/lambda_0 at the smallest and the largest "
      "alpha", "> 1 at the smallest alpha, <= 1 at the largest", "reproduced if both, partly if one", CH6,
      "fig-out-alpha-traj",
      lambda m, **_: all_of(ordered(1.0, m["smallest alpha"], strict=True), ordered(m["largest alpha"], 1.0)))
claim("kb-alpha-closs", "kb", "App. H.1", "With a fixed output scale, c_loss still grows with 1/w.",
      "mean c_loss per width, for each alpha", "increasing in 1/w at every alpha",
      "trend(1/w, <c_loss>, +) at every alpha: all reproduced reproduced; any reproduced or partly partly",
      CH6, "fig-out-alpha", lambda m, x, **_: all_of(*[trend(x, v, +1) for v in m.values()]))
claim("kb-lazy-standard", "kb", "App. H.2", "A lazy output scale (s < 0) behaves like the standard one.",
      "mean over widths of |c_loss(lazy) / c_loss(standard) - 1|", "0", "reproduced if <= 20 %, partly if <= 40 %",
      CH6, "fig-out-exp", lambda m, **_: near(m, 0.0, 0.2, 0.4))
claim("kb-cmax-scale", "kb", "App. H.2", "c_max rises with 1/w for lazy networks and falls for rich ones.",
      "mean c_max per width (censored seeds left out) for s < 0 and s > 0", "lazy rising, rich falling",
      "trend(1/w, <c_max>, +) for lazy and trend(..., -) for rich: both reproduced reproduced, else partly if "
      "any partly or reproduced", CH6, "fig-out-exp",
      lambda m, x, **_: all_of(trend(x, _vals(m["lazy"]), +1), trend(x, _vals(m["rich"]), -1)))

# --- chapter 7: other architectures and losses
claim("kb-myrtle-closs", "kb", "Sec. 3, Fig. 3b", "Myrtle CNNs: c_loss > 2 grows with 1/w.", "mean c_loss per "
      "width", "increasing in 1/w", "trend(1/w, <c_loss>, +), 3 widths at least. " + REL_RULE +
      " (in regime: some width with d/w <= 1/16 [I])", CH7, "fig-07-myrtle", lambda m, x, **_: trend(x, _vals(m), +1))
claim("kb-resnet-closs", "kb", "Sec. 3, Fig. 3c", "ResNet-18 without normalisation: c_loss grows with 1/w.",
      "mean c_loss per width", "increasing in 1/w", "as kb-myrtle-closs", CH7, "fig-07-resnet",
      lambda m, x, **_: trend(x, _vals(m), +1))
claim("kb-xent-closs", "kb", "App. F", "With cross-entropy c_loss sits appreciably above 2 at large width "
      "(~4 [I]).", "mean c_loss at the widest FCN", "~4 [I]", "reproduced if 2.83 <= <c_loss> <= 5.66 (4 within "
      "x sqrt 2), partly if above 2.5", CH7, "fig-07-xent",
      lambda m, **_: within(m, 2 ** 1.5, 2 ** 2.5, (2.5, math.inf)))
claim("kb-xent-drop", "kb", "App. F, I", "With cross-entropy the drop of chi sits at larger c than with MSE, "
      "near c ~ 4 [I].", "c of the steepest fall of chi (argmin chi') per width", "~4 [I]",
      "reproduced if |log2 c - 2| <= one grid step at every width, partly if <= two steps", CH7,
      "fig-07-xent-sat",
      lambda m, x_step, **_: all_of(*[near(math.log2(v) if v and v > 0 else float("nan"), 2.0, 1.01 * x_step,
                                           2.02 * x_step) for v in _vals(m)]))

# --- chapter 8: four regimes
def _eos_check(m, **_) -> Check:
    mean, above = m["mean"], m["above"]
    if not math.isfinite(mean):
        return not_at_this_scale("the run does not reach the edge of stability")
    d = f"mean eta lambda / 2 = {mean:.3f}, {100 * above:.0f} % of the measurements above 1"
    if abs(mean - 1) <= 0.02 and above >= 0.2:
        return Check("reproduced", d)
    return Check("partly", d) if abs(mean - 1) <= 0.05 else Check("not reproduced", d)


def _eos_loss_check(m, **_) -> Check:
    drop, rises = m["drop"], m["rises"]
    if not math.isfinite(drop):
        return not_at_this_scale("the run does not reach the edge of stability")
    d = f"loss falls by a factor {drop:.3g}, rises at {int(rises)} step(s)"
    if drop > 1 and rises > 0:
        return Check("reproduced", d)
    return Check("partly", d) if drop > 1 else Check("not reproduced", d)


claim("kb-four-regimes", "kb", "Sec. 1, Fig. 1", "The sharpness goes through an early transient, intermediate "
      "saturation, progressive sharpening and the edge of stability.", "the steps at which saturation, "
      "sharpening and the edge of stability start (rule of earlytrain.regimes)", "all three reached",
      "reproduced if all three are reached within the run; partly if saturation and sharpening are (the edge of "
      "stability needs a longer run); otherwise not at this scale", CH8, "fig-reg-four",
      lambda m, **_: Check("reproduced", str(m)) if all(math.isfinite(v) for v in m.values()) else
      Check("partly", str(m)) if math.isfinite(m["saturation"]) and math.isfinite(m["sharpening"]) else
      not_at_this_scale(str(m)))
claim("cohen-eos", "cohen", "K&B Sec. 1 (regime iv)", "At the edge of stability the sharpness hovers about 2/eta.",
      "mean of eta lambda_t / 2 over the EoS regime and the fraction of measurements above 1",
      "mean ~1, oscillating about it", "reproduced if |mean - 1| <= 0.02 and >= 20 % of measurements above 1; "
      "partly if |mean - 1| <= 0.05; EoS not reached: not at this scale", CH8, "fig-reg-eos",
      _eos_check)
claim("cohen-eos-loss", "cohen", "K&B Sec. 1 (regime iv)", "At the edge of stability the loss keeps decreasing, "
      "non-monotonically.", "loss drop factor over the EoS regime and the steps at which the loss rose",
      "drop > 1 and some rises", "reproduced if both; partly if the loss falls monotonically; EoS not "
      "reached: not at this scale", CH8, "fig-reg-eos",
      _eos_loss_check)


# --- chapter 9: robustness of the FCN phase diagram (App. C, J, K)
CH9 = "09_robustness"
SAME_TOL, SAME_PARTLY = 0.5, 1.0  # |log2 ratio| of the means: a factor sqrt 2 (5 grid steps), a factor 2


def _same_diagram(m, **_) -> Check:
    """m: {"c_loss w=64": log2(<c>_variant / <c>_baseline), ...} at the points inside the validity
    range (or NaN / an empty dict: nothing to compare). Judged on the largest |entry|."""
    items = [(k, float(v)) for k, v in m.items()] if isinstance(m, dict) else [("value", float(m))]
    items = [(k, v) for k, v in items if math.isfinite(v)]
    if not items:
        return not_at_this_scale("no (depth, width) with d/w <= 1/16 and finite constants in both sweeps")
    key, worst = max(items, key=lambda kv: abs(kv[1]))
    c = near(abs(worst), 0.0, SAME_TOL, SAME_PARTLY)
    return Check(c.verdict, f"largest |log2 ratio| at {key} (of {len(items)}): {c.detail}")


def _robust_claims(tag: str, where: str, name: str, statement: str, expected_note: str) -> None:
    claim(f"kb-{tag}-closs-width", "kb", where, f"{statement}: c_loss still grows with 1/w (the "
          "sharpness-reduction phase opens as the network narrows).", f"mean c_loss per width ({name})",
          "increasing in 1/w", "trend(1/w, <c_loss>, +): every step up reproduced, fitted slope up partly; "
          "fewer than 3 widths not at this scale", CH9, "fig-rob-constants",
          lambda m, x, **_: trend(x, _vals(m), +1))
    claim(f"kb-{tag}-same", "kb", where, f"{statement}: the phase diagram is the same as the baseline's "
          "(SP, no bias, B = 512) " + expected_note + ".",
          f"log2(<c>_{name} / <c>_baseline) per width, for c_loss, c_sharp and c_max (a c_max with a censored "
          "seed on either side left out), same seeds, at the widths with d/w <= 1/16 [I]",
          "0 (the same constants)", f"reproduced if every |log2 ratio| <= {SAME_TOL} (a factor sqrt 2, 5 grid "
          f"steps), partly if every one <= {SAME_PARTLY} (a factor 2); no width with d/w <= 1/16: not at this "
          "scale", CH9, "fig-rob-diagrams", _same_diagram)


_robust_claims("ntp", "App. C [I]", "NTP", "In the neural tangent parameterisation (NTP) instead of SP",
               "[I: SPEC does not give App. C's wording; read as 'qualitatively the same', judged on the constants]")
_robust_claims("bias", "App. K", "bias", "With biases in every layer (SP, He init, zero biases)",
               "(SPEC 1.1: 'FCNs with bias give the same phase diagram')")
_robust_claims("batch", "App. J", "B=128", "With a smaller SGD batch (B = 128 against 512 by default; the paper's value is not known)",
               "[I: SPEC only says App. J compares a smaller batch size]")
claim("kb-robust-order", "kb", "App. C, J, K", "In every variant, c_loss <= c_sharp <= c_max per initialisation.",
      "fraction of (variant, width, init) with a measured c_sharp that satisfy the order, over the "
      "baseline and the three variants", ">= 90 % (outliers allowed)", "fraction >= 90 % reproduced, >= 50 % partly",
      CH9, "fig-rob-diagrams", lambda m, ordered, valid, **_: fraction_true(ordered, 0.9, 0.5, valid=valid))

# ----------------------------------------------------------------------------- records
@dataclass
class Record:
    """A claim as measured in one run of its chapter (what the files hold)."""
    id: str
    paper: str
    where: str
    statement: str
    quantity: str
    expected: str
    rule: str
    chapter: str
    figure: str
    preset: str
    measured: object          # a number, or {label: number}
    spread: object            # spread over initialisations (std), same shape, or None
    verdict: str
    detail: str               # the numbers the rule saw
    in_regime: bool
    regime_note: str
    scale: str                # the chapter's scale, in words
    cost_s: float             # seconds from the chapter's start() to this record

    def problems(self) -> list[str]:
        """What is invalid in this record ([] if nothing)."""
        out = []
        c = REGISTRY.get(self.id)
        if c is None:
            return [f"{self.id}: not a registered claim"]
        for f in ("paper", "where", "statement", "quantity", "expected", "rule", "chapter", "figure", "preset"):
            if getattr(self, f) != getattr(c, f):
                out.append(f"{self.id}: {f} differs from the registry")
        for f in ("where", "statement", "quantity", "expected", "rule", "figure", "detail", "scale"):
            if not isinstance(getattr(self, f), str) or not getattr(self, f).strip():
                out.append(f"{self.id}: empty {f}")
        if self.paper not in PAPERS:
            out.append(f"{self.id}: unknown paper {self.paper!r}")
        if self.verdict not in VERDICTS:
            out.append(f"{self.id}: verdict {self.verdict!r}")
        if not _numbers_ok(self.measured):
            out.append(f"{self.id}: measured {self.measured!r} is not a number or a dict/list of numbers")
        if self.spread is not None and not _numbers_ok(self.spread):
            out.append(f"{self.id}: spread {self.spread!r}")
        if not _any_finite(self.measured) and self.verdict != "not at this scale":
            out.append(f"{self.id}: nothing finite measured but verdict {self.verdict!r}")
        if not (isinstance(self.cost_s, (int, float)) and self.cost_s >= 0):
            out.append(f"{self.id}: cost_s {self.cost_s!r}")
        return out


def _numbers_ok(v) -> bool:
    if isinstance(v, dict):
        return len(v) > 0 and all(isinstance(k, str) and _numbers_ok(x) for k, x in v.items())
    if isinstance(v, list):
        return len(v) > 0 and all(_numbers_ok(x) for x in v)
    return v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) or isinstance(v, bool)


def _any_finite(v) -> bool:
    if isinstance(v, dict):
        return any(_any_finite(x) for x in v.values())
    if isinstance(v, list):
        return any(_any_finite(x) for x in v)
    return isinstance(v, (int, float)) and math.isfinite(float(v))


def _plain(v):
    """JSON-safe: numpy -> Python, NaN -> None, dict keys -> str."""
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if hasattr(v, "values") and hasattr(v, "dims"):  # xarray
        v = np.asarray(v.values)
    if isinstance(v, np.ndarray) and v.ndim == 0:
        v = v.item()
    if isinstance(v, (list, tuple, np.ndarray)):
        return [_plain(x) for x in np.asarray(v, dtype=object).ravel()] if isinstance(v, np.ndarray) else \
            [_plain(x) for x in v]
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return float(v) if math.isfinite(float(v)) else None
    return v


def _num(v):
    """For the check functions: None -> NaN, recursively (JSON gives None for NaN)."""
    if isinstance(v, dict):
        return {k: _num(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_num(x) for x in v]
    return float("nan") if v is None else v


# ----------------------------------------------------------------------------- per-chapter state
_STATE: dict[str, dict] = {}


def directory() -> Path | None:
    """Where the chapters' claim files go: $EARLYTRAIN_CLAIMS, or None (nothing written)."""
    d = os.environ.get(ENV)
    return Path(d) if d else None


def default_directory() -> Path:
    """Where the report reads by default: $EARLYTRAIN_CLAIMS or <repo>/_build/claims."""
    return directory() or Path(__file__).resolve().parents[2] / "_build" / "claims"


def start(chapter: str, scale: str) -> None:
    """Begin this run's claims of ``chapter`` (forgets earlier ones, rewrites its file)."""
    if not claims_of(chapter):
        raise ValueError(f"no claim is registered for chapter {chapter!r}")
    _STATE[chapter] = {"scale": scale, "t0": time.time(), "records": {}}
    _write(chapter)


def record(chapter: str, claim_id: str, measured, spread=None, in_regime: bool = True,
           regime_note: str = "", **inputs) -> Record:
    """Judge claim ``claim_id`` on ``measured`` (and the keyword ``inputs`` its check needs) by its
    registered rule, keep the record and rewrite the chapter's file. ``in_regime=False`` (with
    ``regime_note``) says the run is outside the claim's regime: see the module doc."""
    c = REGISTRY.get(claim_id)
    if c is None:
        raise KeyError(f"unknown claim {claim_id!r}")
    if c.chapter != chapter:
        raise ValueError(f"claim {claim_id!r} belongs to chapter {c.chapter!r}, not {chapter!r}")
    st = _STATE.get(chapter)
    if st is None:
        raise RuntimeError(f"call claims.start({chapter!r}, scale) before recording its claims")
    m, s = _plain(measured), _plain(spread)
    try:
        res = c.check(_num(m), **inputs)
    except (ValueError, TypeError, KeyError, ZeroDivisionError) as e:
        res = Check("not at this scale", f"the rule could not be evaluated: {type(e).__name__}: {e}")
    if not _any_finite(m):
        res = Check("not at this scale", (res.detail if res.verdict == "not at this scale" else "nothing finite measured")
                    + (f" ({regime_note})" if regime_note else ""))
    if not in_regime and res.verdict == "not reproduced":
        res = Check("not at this scale", f"{res.detail} (outside the claim's regime: {regime_note})")
    rec = Record(c.id, c.paper, c.where, c.statement, c.quantity, c.expected, c.rule, c.chapter, c.figure,
                 c.preset, m, s, res.verdict, res.detail, bool(in_regime), regime_note, st["scale"],
                 round(time.time() - st["t0"], 1))
    st["records"][claim_id] = rec
    _write(chapter)
    return rec


def _write(chapter: str) -> None:
    d = directory()
    if d is None:
        return
    st = _STATE[chapter]
    d.mkdir(parents=True, exist_ok=True)
    data = {"schema": SCHEMA, "chapter": chapter, "scale": st["scale"], "started": st["t0"],
            "elapsed_s": round(time.time() - st["t0"], 1),
            "claims": [asdict(r) for r in records(chapter)]}
    tmp = d / f".{chapter}.json.tmp{os.getpid()}"
    tmp.write_text(json.dumps(data, indent=1, allow_nan=False))
    os.replace(tmp, d / f"{chapter}.json")


def records(chapter: str) -> list[Record]:
    """This process's records of ``chapter`` (in registry order)."""
    st = _STATE.get(chapter, {"records": {}})
    return [st["records"][c.id] for c in claims_of(chapter) if c.id in st["records"]]


def load(directory_: Path | str | None = None) -> dict[str, dict]:
    """Every chapter file of the directory: {chapter: {"scale", "elapsed_s", "records": [Record]}}."""
    d = Path(directory_) if directory_ is not None else default_directory()
    out = {}
    for p in sorted(d.glob("*.json")) if d.is_dir() else []:
        data = json.loads(p.read_text())
        recs = [Record(**r) for r in data.get("claims", [])]
        out[data["chapter"]] = {"scale": data.get("scale", ""), "elapsed_s": data.get("elapsed_s"),
                                "records": recs}
    return out


# ----------------------------------------------------------------------------- tables
COLUMNS = ["claim", "paper", "where", "statement", "expected", "measured", "spread", "verdict", "rule"]


def fmt(v) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return "n/a" if not math.isfinite(v) else f"{v:.3g}"
    if isinstance(v, dict):
        return "; ".join(f"{k}: {fmt(x)}" for k, x in v.items())
    if isinstance(v, list):
        return ", ".join(fmt(x) for x in v)
    return str(v)


def frame(recs: list[Record]):
    """A pandas DataFrame of records (one row per claim)."""
    import pandas as pd
    rows = [{"claim": r.id, "paper": r.paper, "where": r.where, "statement": r.statement,
             "expected": r.expected, "measured": fmt(r.measured), "spread": fmt(r.spread),
             "verdict": r.verdict, "rule": r.rule, "detail": r.detail, "figure": r.figure,
             "chapter": r.chapter} for r in recs]
    return pd.DataFrame(rows, columns=COLUMNS + ["detail", "figure", "chapter"])


def table(chapter: str):
    """This run's verdicts of ``chapter`` as a DataFrame."""
    return frame(records(chapter))


VERDICT_COLORS = {"reproduced": "#c7e9c0", "partly": "#fdd0a2", "not reproduced": "#fcbba1",
                  "not at this scale": "#d9d9d9"}


def _esc(s) -> str:
    import html
    return html.escape(str(s))


class HTML:
    """Rendered by Jupyter (and the book) as HTML; ``str()`` gives the markup."""

    def __init__(self, markup: str):
        self.markup = markup

    def _repr_html_(self):
        return self.markup

    def __str__(self):
        return self.markup


def _rows_html(recs: list[Record], page: str = "") -> str:
    out = []
    for r in recs:
        link = f'<a href="{page}#{_esc(r.figure)}">{_esc(r.figure)}</a>'
        out.append(
            "<tr>"
            f"<td><code>{_esc(r.id)}</code><br><small>{_esc(PAPERS[r.paper].split(' (')[0])}, {_esc(r.where)}</small></td>"
            f"<td>{_esc(r.statement)}<br><small>measured: {_esc(r.quantity)}</small></td>"
            f"<td>{_esc(r.expected)}</td>"
            f"<td>{_esc(fmt(r.measured))}" + (f"<br><small>sd over inits: {_esc(fmt(r.spread))}</small>"
                                              if r.spread is not None else "") + "</td>"
            f'<td style="background:{VERDICT_COLORS[r.verdict]}"><b>{_esc(r.verdict)}</b>'
            f"<br><small>{_esc(r.detail)}</small>"
            + (f"<br><small>would be tested by <code>book/params/{_esc(r.chapter)}/{_esc(r.preset)}</code> "
               f"(this run: {r.cost_s:.0f} s to this record)</small>" if r.verdict == "not at this scale" else "")
            + "</td>"
            f"<td><small>{_esc(r.rule)}</small></td>"
            f"<td>{link}</td></tr>")
    return "".join(out)


HEAD = ("<tr><th>claim</th><th>statement</th><th>paper's value</th><th>measured</th><th>verdict</th>"
        "<th>rule</th><th>figure</th></tr>")


def show(chapter: str) -> HTML:
    """This run's verdicts of ``chapter``, as an HTML table (figure links on the same page)."""
    recs = records(chapter)
    missing = [c.id for c in claims_of(chapter) if c.id not in {r.id for r in recs}]
    st = _STATE.get(chapter, {})
    note = f"<p><small>Scale of this run: {_esc(st.get('scale', 'n/a'))}." + (
        f" Not recorded: {_esc(', '.join(missing))}." if missing else "") + "</small></p>"
    return HTML(f'<table class="claims">{HEAD}{_rows_html(recs)}</table>{note}')


def report(directory_: Path | str | None = None, order: list[str] | None = None) -> HTML:
    """Every chapter's recorded claims, grouped by chapter, with its scale; registered claims that
    no chapter recorded are listed as such."""
    data = load(directory_)
    chapters = list(dict.fromkeys((order or []) + sorted({c.chapter for c in REGISTRY.values()})))
    counts = {v: 0 for v in VERDICTS}
    parts = []
    for ch in chapters:
        d = data.get(ch)
        recs = d["records"] if d else []
        for r in recs:
            counts[r.verdict] += 1
        missing = [c.id for c in claims_of(ch) if c.id not in {r.id for r in recs}]
        head = f"<h3>{_esc(ch)}</h3>"
        if d is None:
            parts.append(head + "<p>This chapter recorded no claims in this build (not executed, or it "
                                f"failed): {_esc(', '.join(missing))}.</p>")
            continue
        parts.append(head + f"<p><small>Scale: {_esc(d['scale'])}. Execution: {fmt(d['elapsed_s'])} s up to its "
                     "last record.</small></p>"
                     f'<table class="claims">{HEAD}{_rows_html(recs, page=ch + ".html")}</table>'
                     + (f"<p>Not recorded: {_esc(', '.join(missing))}.</p>" if missing else ""))
    total = sum(counts.values())
    summary = ("<p><b>" + ", ".join(f"{counts[v]} {v}" for v in VERDICTS) +
               f"</b> of {total} recorded claims ({len(REGISTRY)} registered).</p>")
    return HTML(summary + "".join(parts))


def summary(directory_: Path | str | None = None):
    """A DataFrame of every recorded claim (the report's rows, for tests and scripts)."""
    import pandas as pd
    data = load(directory_)
    frames = [frame(d["records"]) for d in data.values()]
    return pd.concat(frames, ignore_index=True) if frames else frame([])
