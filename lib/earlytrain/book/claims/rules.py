"""The check functions: rules that turn a measurement into a verdict, with its margin.

Every rule is a small frozen dataclass: its parameters are the rule's numbers (so ``repr`` of a rule
is its full statement in code, hashed into each record), calling it on a measurement gives a
:class:`Check` (verdict, the numbers it saw, the margin to the nearest boundary of another verdict)
and :meth:`Rule.examples` gives synthetic inputs that reach "reproduced" and "not reproduced" (the
registry-wide test runs them, so that no rule can be one that never fails).

Verdicts are ordered from best to worst (:data:`SEVERITY`); a rule that combines several entries
(:class:`Every`) takes the worst, so one failure is never hidden by successes.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np

VERDICTS = ("reproduced", "partly", "not reproduced", "not at this scale")
SEVERITY = {"reproduced": 0, "partly": 1, "not at this scale": 2, "not reproduced": 3}
RESOLVED = 0.975   # bootstrap share of one sign that counts as resolved (a 95 % interval excludes 0)
N_INNER = 400      # resamples of the initialisations inside a trend rule
SEED = 0


@dataclass(frozen=True)
class Check:
    """The outcome of a rule: a verdict, the numbers behind it, and its margin.

    ``margin`` is the distance, in the rule's own units, from the measured value to the nearest
    boundary of another verdict (None for a yes/no observation or when nothing was measured);
    ``rel_margin`` the same as a share of the rule's scale (the report marks calls below
    :data:`CLOSE` as close); ``margin_text`` says it in words."""
    verdict: str
    detail: str
    margin: float | None = None
    rel_margin: float | None = None
    margin_text: str = ""

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")


CLOSE = 0.1


def _g(v) -> str:
    return f"{v:.3g}" if isinstance(v, (float, np.floating)) else str(v)


def _f(v) -> float:
    try:
        return float(v) if v is not None else float("nan")
    except (TypeError, ValueError):
        raise TypeError(f"expected a number, got {v!r}") from None


def _vals(m) -> list:
    return list(m.values()) if isinstance(m, dict) else list(np.atleast_1d(np.asarray(m, dtype=object)))


def _nearest(value: float, bounds, scale: float, unit: str = "") -> tuple[float, float, str]:
    """(margin, relative margin, text): the distance from ``value`` to the nearest of ``bounds``."""
    bounds = [b for b in bounds if b is not None and math.isfinite(b)]
    if not bounds:
        return None, None, ""
    b = min(bounds, key=lambda b: abs(value - b))
    m = abs(value - b)
    rel = m / scale if scale > 0 else float("inf")
    return m, rel, f"margin {_g(m)}{unit} to the boundary at {_g(b)}"


def nothing(reason: str) -> Check:
    return Check("not at this scale", reason)


class Rule:
    """Base of the rules: ``rule(measured, **inputs) -> Check``; ``examples()`` -> {verdict:
    (measured, inputs)} reaching at least "reproduced" and "not reproduced"."""
    stat = "mean"  # how per-initialisation values reduce to the measured value (stability bootstrap)

    def __call__(self, m, **inputs) -> Check:  # pragma: no cover - abstract
        raise NotImplementedError

    def examples(self) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError


# ----------------------------------------------------------------------------- scalar rules
@dataclass(frozen=True)
class Near(Rule):
    """|value - target| <= tol (x |target| if relative): reproduced; <= partly: partly; else not."""
    target: float
    tol: float
    partly: float | None = None
    relative: bool = False

    def __call__(self, m, **_) -> Check:
        v = _f(m)
        if not math.isfinite(v):
            return nothing("no finite value")
        s = abs(self.target) if self.relative else 1.0
        d = abs(v - self.target)
        t, p = self.tol * s, (self.partly * s if self.partly is not None else None)
        mg, rel, txt = _nearest(d, [t, p], t)
        head = f"|{_g(v)} - {_g(self.target)}| = {_g(d)}"
        if d <= t:
            return Check("reproduced", f"{head} <= {_g(t)}", mg, rel, txt)
        if p is not None and d <= p:
            return Check("partly", f"{head} <= {_g(p)}", mg, rel, txt)
        return Check("not reproduced", f"{head} > {_g(p if p is not None else t)}", mg, rel, txt)

    def examples(self):
        s = abs(self.target) if self.relative else 1.0
        far = self.target + 3 * (self.partly if self.partly is not None else self.tol) * s
        return {"reproduced": (self.target, {}), "not reproduced": (far, {})}


@dataclass(frozen=True)
class Within(Rule):
    """lo <= value <= hi: reproduced; inside ``partly`` = (lo', hi'): partly; else not reproduced.
    ``censored``: the value is only a lower bound (the true value is at least it): above hi' not
    reproduced (it can only be larger); otherwise not at this scale."""
    lo: float
    hi: float
    partly: tuple | None = None

    def __call__(self, m, censored: bool = False, **_) -> Check:
        v = _f(m)
        if not math.isfinite(v):
            return nothing("no finite value")
        bounds = [self.lo, self.hi] + (list(self.partly) if self.partly else [])
        mg, rel, txt = _nearest(v, bounds, self.hi - self.lo)
        top = self.partly[1] if self.partly else self.hi
        if censored:
            if v > top:
                return Check("not reproduced", f"{_g(v)} is a lower bound (censored) above {_g(top)}: the value "
                             "can only be larger", v - top, (v - top) / (self.hi - self.lo), f"margin {_g(v - top)} "
                             f"above {_g(top)}")
            return nothing(f"{_g(v)} is only a lower bound (censored: nothing diverged on the grid) and does not "
                           f"exceed {_g(top)}; a wider grid would decide")
        if self.lo <= v <= self.hi:
            return Check("reproduced", f"{_g(v)} in [{_g(self.lo)}, {_g(self.hi)}]", mg, rel, txt)
        if self.partly is not None and self.partly[0] <= v <= self.partly[1]:
            return Check("partly", f"{_g(v)} in [{_g(self.partly[0])}, {_g(self.partly[1])}], not in "
                         f"[{_g(self.lo)}, {_g(self.hi)}]", mg, rel, txt)
        return Check("not reproduced", f"{_g(v)} outside [{_g(self.lo)}, {_g(self.hi)}]"
                     + (f" and [{_g(self.partly[0])}, {_g(self.partly[1])}]" if self.partly else ""), mg, rel, txt)

    def examples(self):
        return {"reproduced": ((self.lo + self.hi) / 2, {}),
                "not reproduced": ((self.partly[1] if self.partly else self.hi) * 2 + 1, {})}


@dataclass(frozen=True)
class AtLeast(Rule):
    """value >= bound: reproduced; >= partly: partly; else not reproduced."""
    bound: float
    partly: float | None = None

    def __call__(self, m, **_) -> Check:
        v = _f(m)
        if not math.isfinite(v):
            return nothing("no finite value")
        mg, rel, txt = _nearest(v, [self.bound, self.partly], abs(self.bound) or 1.0)
        if v >= self.bound:
            return Check("reproduced", f"{_g(v)} >= {_g(self.bound)}", mg, rel, txt)
        if self.partly is not None and v >= self.partly:
            return Check("partly", f"{_g(v)} >= {_g(self.partly)}, < {_g(self.bound)}", mg, rel, txt)
        return Check("not reproduced", f"{_g(v)} < {_g(self.partly if self.partly is not None else self.bound)}",
                     mg, rel, txt)

    def examples(self):
        low = (self.partly if self.partly is not None else self.bound)
        return {"reproduced": (self.bound, {}), "not reproduced": (low - abs(low) - 1, {})}


@dataclass(frozen=True)
class Below(Rule):
    """value < bound (<= unless strict): reproduced; else not reproduced (the mirror of AtLeast)."""
    bound: float
    strict: bool = True

    def __call__(self, m, **_) -> Check:
        v = _f(m)
        if not math.isfinite(v):
            return nothing("no finite value")
        mg, rel, txt = _nearest(v, [self.bound], abs(self.bound) or 1.0)
        ok = v < self.bound if self.strict else v <= self.bound
        sym = "<" if self.strict else "<="
        return Check("reproduced" if ok else "not reproduced",
                     f"{_g(v)} {sym if ok else 'not ' + sym} {_g(self.bound)}", mg, rel, txt)

    def examples(self):
        return {"reproduced": (self.bound - 1, {}), "not reproduced": (self.bound + 1, {})}


@dataclass(frozen=True)
class Above(Rule):
    """value > bound (strict): reproduced; else not reproduced."""
    bound: float

    def __call__(self, m, **_) -> Check:
        v = _f(m)
        if not math.isfinite(v):
            return nothing("no finite value")
        mg, rel, txt = _nearest(v, [self.bound], abs(self.bound) or 1.0)
        ok = v > self.bound
        return Check("reproduced" if ok else "not reproduced",
                     f"{_g(v)} {'>' if ok else '<='} {_g(self.bound)}", mg, rel, txt)

    def examples(self):
        return {"reproduced": (self.bound + 1, {}), "not reproduced": (self.bound - 1, {})}


@dataclass(frozen=True)
class Ordered(Rule):
    """m[a] < m[b] (<= unless strict): reproduced, else not reproduced. ``censored`` names the keys
    whose value is only a lower bound (the true value is above it): a censored b above a still
    decides (b can only be larger); a censored a cannot be compared (not at this scale)."""
    a: str
    b: str
    strict: bool = True

    def __call__(self, m, censored=(), **_) -> Check:
        a, b = _f(m[self.a]), _f(m[self.b])
        censored = set(censored or ())
        if not (math.isfinite(a) and math.isfinite(b)):
            return nothing(f"{self.a} = {_g(a)}, {self.b} = {_g(b)}: not both finite")
        if self.a in censored:
            return nothing(f"{self.a} > {_g(a)} is only a lower bound: cannot be compared")
        ok = a < b if self.strict else a <= b
        bnd = f" (> {_g(b)}: a lower bound, censored)" if self.b in censored else ""
        if self.b in censored and not ok:
            return nothing(f"{self.a} = {_g(a)} is not below the lower bound {_g(b)} of {self.b}: undecided")
        sym = "<" if self.strict else "<="
        gap = b - a
        return Check("reproduced" if ok else "not reproduced",
                     f"{self.a} = {_g(a)} {sym if ok else 'not ' + sym} {self.b} = {_g(b)}{bnd}", abs(gap),
                     abs(gap) / max(abs(a), abs(b), 1e-300),
                     f"margin {_g(abs(gap))} ({self.b} - {self.a}{', at least' if self.b in censored else ''})")

    def examples(self):
        return {"reproduced": ({self.a: 1.0, self.b: 2.0}, {}), "not reproduced": ({self.a: 3.0, self.b: 2.0}, {})}


@dataclass(frozen=True)
class Holds(Rule):
    """A yes/no observation: True reproduced, False not reproduced, None not at this scale."""
    what: str

    def __call__(self, m, **_) -> Check:
        if m is None or (isinstance(m, float) and not math.isfinite(m)):
            return nothing(f"not observed: {self.what}")
        return Check("reproduced", self.what, None, None, "a yes/no observation: no margin") if bool(m) else \
            Check("not reproduced", f"not so: {self.what}", None, None, "a yes/no observation: no margin")

    def examples(self):
        return {"reproduced": (True, {}), "not reproduced": (False, {})}


@dataclass(frozen=True)
class Fraction(Rule):
    """The share of True among the valid entries of the input ``ok`` (``valid``: same shape; the
    initialisations on the last axis): >= at_least reproduced, >= partly partly, else not
    reproduced. The measured value is that share; the margin also says how many entries would have
    to flip."""
    at_least: float = 0.9
    partly: float | None = 0.5
    stat = "fraction"

    def __call__(self, m, ok=None, valid=None, **_) -> Check:
        if ok is None:
            raise TypeError("Fraction needs the boolean input ok=")
        o = np.asarray(ok, bool).ravel()
        v = np.ones_like(o) if valid is None else np.asarray(valid, bool).ravel()
        n = int(v.sum())
        if n == 0:
            return nothing("no valid entry")
        k = int((o & v).sum())
        frac = k / n
        detail = f"{k} of {n} ({100 * frac:.0f} %)"
        # the margin: how many entries would have to flip to change the verdict, as a share of n
        flips = min(k - need + 1 if k >= need else need - k
                    for need in (math.ceil(b * n - 1e-9) for b in (self.at_least, self.partly) if b is not None))
        mg = rel = flips / n
        txt = f"{flips} of {n} entr{'y' if n == 1 else 'ies'} would have to change for another verdict (margin {mg:.2g} in share)"
        if frac >= self.at_least:
            return Check("reproduced", f"{detail} >= {100 * self.at_least:.0f} %", mg, rel, txt)
        if self.partly is not None and frac >= self.partly:
            return Check("partly", f"{detail} >= {100 * self.partly:.0f} %", mg, rel, txt)
        return Check("not reproduced", f"{detail} < {100 * (self.partly if self.partly is not None else self.at_least):.0f} %",
                     mg, rel, txt)

    def examples(self):
        return {"reproduced": (1.0, {"ok": np.ones(10, bool)}), "not reproduced": (0.0, {"ok": np.zeros(10, bool)})}


# ----------------------------------------------------------------------------- trends
def reduce_stat(a: np.ndarray, stat: str, axis=-1) -> np.ndarray:
    """``a`` reduced along ``axis`` by ``stat`` ("mean", "median", "std", ...), NaN-aware and quiet."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if stat == "std":
            return np.nanstd(a, axis=axis, ddof=1)
        if stat == "mean":
            return np.nanmean(a, axis=axis)
        raise ValueError(f"stat must be 'mean' or 'std', got {stat!r}")


def slope_share(x, per_init, sign: int, stat: str = "mean", n: int = N_INNER, seed: int = SEED) -> float:
    """The share of bootstrap resamples of the initialisations (columns of ``per_init``, one row per
    x) whose least-squares slope of stat(y) on log x has ``sign`` (resamples with a NaN mean left
    out); NaN if there are fewer than 2 initialisations."""
    P = np.asarray(per_init, float)
    k = P.shape[1]
    if k < 2:
        return float("nan")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, k, size=(n, k))
    Y = reduce_stat(P[:, idx], stat)                      # (n_x, n)
    lx = np.log(np.asarray(x, float))[:, None]
    lx = lx - lx.mean()
    ok = np.isfinite(Y).all(axis=0)
    if not ok.any():
        return float("nan")
    slope = (lx * (Y[:, ok] - Y[:, ok].mean(axis=0))).sum(axis=0) / (lx ** 2).sum()
    return float(np.mean(sign * slope > 0))


@dataclass(frozen=True)
class Trend(Rule):
    """y (the chapter's statistic per x, e.g. <c_loss> per width) against x, judged on the
    initialisations behind it (``per_init``: one list of per-initialisation values per x).

    * reproduced: every consecutive step of y (sorted by x) has ``sign`` and the sign of the fitted
      slope of y on log x is resolved: at least 97.5 % of the bootstrap resamples of the
      initialisations give that sign (a 95 % interval that excludes 0);
    * partly: the slope's sign is resolved but not every step has it;
    * not reproduced: the sign is not resolved (or resolved the other way);
    * not at this scale: fewer than ``min_points`` finite points, or fewer than 2 initialisations.

    With ``min_points=2`` a single step is judged the same way, on the initialisations."""
    sign: int = 1
    min_points: int = 3
    stat: str = "mean"

    def __call__(self, m, x=None, per_init=None, **_) -> Check:
        if x is None or per_init is None:
            raise TypeError("Trend needs x= and per_init= (one list of per-initialisation values per x)")
        y = np.asarray([_f(v) for v in _vals(m)], float)
        x = np.asarray(x, float).ravel()
        P = [np.asarray(p, float).ravel() for p in _vals(per_init)]
        if not (len(y) == len(x) == len(P)):
            raise ValueError(f"Trend: {len(y)} values, {len(x)} x and {len(P)} per-initialisation lists")
        n_init = max((p.size for p in P), default=0)
        if any(p.size != n_init for p in P):
            raise ValueError("Trend: per_init lists of different lengths")
        ok = np.isfinite(x) & np.isfinite(y) & (x > 0)
        word = "rises" if self.sign > 0 else "falls"
        if ok.sum() < self.min_points or np.unique(x[ok]).size < self.min_points:
            return nothing(f"{int(ok.sum())} finite point(s), {self.min_points} needed")
        if n_init < 2:
            return nothing("fewer than 2 initialisations: the sign of the trend cannot be resolved")
        o = np.argsort(x[ok])
        xs, ys = x[ok][o], y[ok][o]
        Ps = np.stack([P[i] for i in np.flatnonzero(ok)[o]])
        steps = np.diff(ys) * self.sign
        share = slope_share(xs, Ps, self.sign, self.stat)
        all_steps = bool((steps > 0).all())
        resolved = bool(share >= RESOLVED)
        scale = float(np.ptp(ys)) or 1.0  # a step is judged against the whole rise (or fall) of y
        smallest = float(steps.min())
        detail = (f"y = {', '.join(_g(v) for v in ys)}; {int((steps > 0).sum())} of {steps.size} steps "
                  f"{word[:-1]}; "
                  f"{100 * share:.1f} % of {N_INNER} resamples of the {n_init} initialisations give a fitted "
                  f"slope that {word[:-1]}s (resolved at >= {100 * RESOLVED:.1f} %)")
        m_share = abs(share - RESOLVED)
        txt = (f"bootstrap share {share:.3f} against {RESOLVED}: margin {m_share:.3f}; smallest step "
               f"{_g(smallest)} against 0")
        rel_share = m_share / (1 - RESOLVED)
        if resolved and all_steps:
            rel = min(rel_share, abs(smallest) / scale)
            return Check("reproduced", detail, min(m_share, abs(smallest)), rel, txt)
        if resolved:
            return Check("partly", detail, m_share, min(rel_share, abs(smallest) / scale), txt)
        return Check("not reproduced", detail + "; not resolved", m_share, rel_share, txt)

    def examples(self):
        n = self.min_points + 1
        x = list(2.0 ** -np.arange(n, 0, -1))                      # increasing x
        base = self.sign * np.arange(n, dtype=float)
        if self.stat == "std":
            good = [list(10 + np.array([-1, 1, -2, 2, 0]) * (1 + i)) for i in range(n)]
            bad = good[::-1]
            m_good = [float(np.std(g, ddof=1)) for g in good]
            if self.sign < 0:
                good, bad, m_good = bad, good, m_good[::-1]
            m_bad = m_good[::-1]
        else:
            noise = np.array([-0.1, 0.1, -0.05, 0.05, 0.0])
            good = [list(v + noise) for v in base]
            bad = good[::-1]
            m_good, m_bad = list(base), list(base[::-1])
        return {"reproduced": (m_good, {"x": x, "per_init": good}),
                "not reproduced": (m_bad, {"x": x, "per_init": bad})}


# ----------------------------------------------------------------------------- combinations
def worst(checks: dict) -> tuple[str, Check]:
    """The worst of several checks (``SEVERITY``), ties by the smallest margin: (key, check)."""
    return max(checks.items(), key=lambda kv: (SEVERITY[kv[1].verdict],
                                               -(kv[1].rel_margin if kv[1].rel_margin is not None else math.inf)))


@dataclass(frozen=True)
class Every(Rule):
    """The same rule at every entry of a dict (e.g. every width): the verdict of the worst entry
    (not reproduced > not at this scale > partly > reproduced), so that a failure is never hidden.
    Per-entry inputs: ``per_init`` and any input given as a dict with the same keys."""
    rule: Rule = field(default=None)

    @property
    def stat(self):
        return self.rule.stat

    def __call__(self, m, per_init=None, **inputs) -> Check:
        if not isinstance(m, dict) or not m:
            raise TypeError(f"Every needs a non-empty dict of entries, got {m!r}")
        out = {}
        for k, v in m.items():
            kw = {n: (x[k] if isinstance(x, dict) else x) for n, x in inputs.items()}
            if per_init is not None:
                kw["per_init"] = per_init[k]
            out[k] = self.rule(v, **kw)
        key, c = worst(out)
        counts = {v: sum(o.verdict == v for o in out.values()) for v in VERDICTS}
        head = ", ".join(f"{n} {v}" for v, n in counts.items() if n)
        return Check(c.verdict, f"{head} of {len(out)}; decided by {key}: {c.detail}", c.margin, c.rel_margin,
                     f"{key}: {c.margin_text}" if c.margin_text else "")

    def examples(self):
        ex = self.rule.examples()
        (mg, ig), (mb, ib) = ex["reproduced"], ex["not reproduced"]

        def pack(a, b, ia, ib_):
            inputs = {}
            for n in set(ia) | set(ib_):
                if n == "per_init":
                    continue
                inputs[n] = {"a": ia.get(n), "b": ib_.get(n)}
            if "per_init" in ia:
                inputs["per_init"] = {"a": ia["per_init"], "b": ib_["per_init"]}
            return {"a": a, "b": b}, inputs
        return {"reproduced": pack(mg, mg, ig, ig), "not reproduced": pack(mg, mb, ig, ib)}


# ----------------------------------------------------------------------------- rules of one claim
@dataclass(frozen=True)
class LargestShift(Rule):
    """m: {"c_loss w=64": log2(<c>_variant / <c>_baseline), ...}: judged on the largest |entry|:
    <= tol reproduced, <= partly partly, else not reproduced; nothing finite: not at this scale."""
    tol: float = 0.5
    partly: float | None = 1.0

    def __call__(self, m, **_) -> Check:
        items = [(k, _f(v)) for k, v in m.items()] if isinstance(m, dict) else [("value", _f(m))]
        items = [(k, v) for k, v in items if math.isfinite(v)]
        if not items:
            return nothing("no (depth, width) with d/w <= 1/16 and finite constants in both sweeps")
        key, w = max(items, key=lambda kv: abs(kv[1]))
        c = Near(0.0, self.tol, self.partly)(abs(w))
        return Check(c.verdict, f"largest |log2 ratio| at {key} (of {len(items)}): {c.detail}", c.margin,
                     c.rel_margin, c.margin_text)

    def examples(self):
        return {"reproduced": ({"c_loss w=64": 0.1}, {}), "not reproduced": ({"c_loss w=64": 3.0}, {})}


@dataclass(frozen=True)
class ResolvedShift(Rule):
    """Per-initialisation paired values (``per_init``, e.g. log2 of a constant's ratio between two
    runs with the same seeds): reproduced if their mean has ``sign`` and the sign is resolved (at
    least 97.5 % of the bootstrap resamples of the initialisations give it); otherwise not
    reproduced; fewer than 2 finite initialisations: not at this scale."""
    sign: int = -1

    def __call__(self, m, per_init=None, **_) -> Check:
        if per_init is None:
            raise TypeError("ResolvedShift needs per_init=")
        p = np.asarray(per_init, float).ravel()
        p = p[np.isfinite(p)]
        if p.size < 2:
            return nothing(f"{p.size} finite initialisation(s), 2 needed")
        rng = np.random.default_rng(SEED)
        means = p[rng.integers(0, p.size, size=(N_INNER, p.size))].mean(axis=1)
        share = float(np.mean(self.sign * means > 0))
        mean = float(p.mean())
        word = "below" if self.sign < 0 else "above"
        detail = (f"mean {_g(mean)} over {p.size} initialisations; {100 * share:.1f} % of {N_INNER} resamples "
                  f"{word} 0 (resolved at >= {100 * RESOLVED:.1f} %)")
        mg = abs(share - RESOLVED)
        txt = f"bootstrap share {share:.3f} against {RESOLVED}: margin {mg:.3f}"
        ok = share >= RESOLVED
        return Check("reproduced" if ok else "not reproduced", detail, mg, mg / (1 - RESOLVED), txt)

    def examples(self):
        good = [self.sign * v for v in (1.0, 1.2, 0.9, 1.1)]
        return {"reproduced": (float(np.mean(good)), {"per_init": good}),
                "not reproduced": (-float(np.mean(good)), {"per_init": [-v for v in good]})}


@dataclass(frozen=True)
class MajorityAt(Rule):
    """m: {label: share of initialisations with the property}: reproduced if a majority (> 1/2)
    has it at >= ``at_least`` entries, partly at ``partly`` entries, else not reproduced."""
    at_least: int = 2
    partly: int | None = 1

    def __call__(self, m, **_) -> Check:
        vals = [_f(v) for v in _vals(m)]
        if not any(math.isfinite(v) for v in vals):
            return nothing("no finite share")
        n = sum(v > 0.5 for v in vals)
        mg = min(abs(n - b) + (1 if n >= b else 0) for b in (self.at_least, self.partly) if b is not None)
        txt = f"{mg} entr{'y' if mg == 1 else 'ies'} would change the verdict"
        d = f"a majority at {n} of {len(vals)} entries: {m}"
        if n >= self.at_least:
            return Check("reproduced", d, mg, mg / max(len(vals), 1), txt)
        if self.partly is not None and n >= self.partly:
            return Check("partly", d, mg, mg / max(len(vals), 1), txt)
        return Check("not reproduced", d, mg, mg / max(len(vals), 1), txt)

    def examples(self):
        return {"reproduced": ({f"w={i}": 1.0 for i in range(self.at_least)}, {}),
                "not reproduced": ({f"w={i}": 0.0 for i in range(self.at_least)}, {})}


@dataclass(frozen=True)
class EosHover(Rule):
    """m: {"mean": mean of eta lambda_t / 2 over the EoS regime, "above": share of measurements
    above 1}: the sharpness hovers about 2/eta if the mean is within ``tol`` of 1 and between
    ``lo`` and 1 - ``lo`` of the measurements lie above 1 (it oscillates about 2/eta): reproduced;
    within ``tol`` but on one side: partly; mean further than ``tol``: not reproduced."""
    tol: float = 0.02
    lo: float = 0.2

    def __call__(self, m, **_) -> Check:
        mean, above = _f(m["mean"]), _f(m["above"])
        if not math.isfinite(mean):
            return nothing("the run does not reach the edge of stability")
        d = abs(mean - 1)
        detail = f"|mean eta lambda / 2 - 1| = {d:.3f}; {100 * above:.0f} % of the measurements above 1"
        mg, rel, txt = _nearest(d, [self.tol], self.tol)
        if d > self.tol:
            return Check("not reproduced", detail + f" (> {self.tol})", mg, rel, txt)
        side = min(above - self.lo, (1 - self.lo) - above)
        mg2 = min(mg, abs(side))
        txt2 = txt + f"; share above 1 is {abs(side):.2f} from [{self.lo}, {1 - self.lo}]"
        if side >= 0:
            return Check("reproduced", detail, mg2, min(rel, abs(side) / self.lo), txt2)
        return Check("partly", detail + "; on one side of 2/eta", mg2, min(rel, abs(side) / self.lo), txt2)

    def examples(self):
        return {"reproduced": ({"mean": 1.0, "above": 0.5}, {}), "not reproduced": ({"mean": 0.9, "above": 0.0}, {})}


@dataclass(frozen=True)
class EosLoss(Rule):
    """m: {"drop": loss at the start of the EoS regime / loss at its end, "largest rise": the
    largest relative one-step rise of the loss in it}: the loss keeps decreasing
    non-monotonically: drop > 1 and a rise of at least ``rise`` (not round-off): reproduced; drop >
    1 with no such rise: partly (monotone); drop <= 1: not reproduced."""
    rise: float = 0.01

    def __call__(self, m, **_) -> Check:
        drop, r = _f(m["drop"]), _f(m["largest rise"])
        if not math.isfinite(drop):
            return nothing("the run does not reach the edge of stability")
        detail = f"the loss falls by a factor {drop:.3g}; its largest one-step rise is {100 * r:.2g} %"
        if drop <= 1:
            return Check("not reproduced", detail + ": it does not keep decreasing", abs(drop - 1), abs(drop - 1),
                         f"margin {_g(abs(drop - 1))} to a drop of 1")
        mg = min(drop - 1, abs(r - self.rise))
        rel = min(drop - 1, abs(r - self.rise) / self.rise)
        txt = f"drop {_g(drop)} against 1; largest rise {_g(r)} against {self.rise}"
        if r >= self.rise:
            return Check("reproduced", detail, mg, rel, txt)
        return Check("partly", detail + f" (< {100 * self.rise:g} %: monotone up to round-off)", mg, rel, txt)

    def examples(self):
        return {"reproduced": ({"drop": 3.0, "largest rise": 0.2}, {}),
                "not reproduced": ({"drop": 0.5, "largest rise": 0.2}, {})}


@dataclass(frozen=True)
class FourRegimes(Rule):
    """m: {"saturation", "sharpening", "edge of stability"}: the steps at which they start (NaN: not
    reached). All three reached in this order: reproduced; saturation then sharpening in order, the
    edge of stability not reached within the run: partly; any two reached out of order, or no
    saturation at all: not reproduced; saturation but no sharpening within the run: not at this scale."""

    def __call__(self, m, **_) -> Check:
        t = {k: _f(m[k]) for k in ("saturation", "sharpening", "edge of stability")}
        found = [(k, v) for k, v in t.items() if math.isfinite(v)]
        detail = ", ".join(f"{k} at step {_g(v)}" if math.isfinite(v) else f"{k} not reached" for k, v in t.items())
        steps = [v for _, v in found]
        gaps = np.diff(steps) if len(steps) > 1 else np.array([])
        mg = float(np.abs(gaps).min()) if gaps.size else None
        txt = f"closest starts {mg:g} steps apart" if mg is not None else ""
        if gaps.size and (gaps <= 0).any():
            return Check("not reproduced", detail + ": out of order", mg, None, txt)
        if not math.isfinite(t["saturation"]):
            return Check("not reproduced", detail + ": no intermediate saturation", None, None, txt)
        if len(found) == 3:
            return Check("reproduced", detail, mg, None, txt)
        if math.isfinite(t["sharpening"]):
            return Check("partly", detail + " (a longer run would decide the edge of stability)", mg, None, txt)
        return nothing(detail + " (a longer run would decide)")

    def examples(self):
        return {"reproduced": ({"saturation": 10, "sharpening": 100, "edge of stability": 500}, {}),
                "not reproduced": ({"saturation": 100, "sharpening": 10, "edge of stability": 500}, {})}


@dataclass(frozen=True)
class PeriodDoubling(Rule):
    """m: {"2", "4", "8", "chaos"}: the first eta of each (NaN: not found). All four in increasing
    order: reproduced; 2 and 4 in order, the rest not found: partly; any found out of order: not
    reproduced; no period 2: not at this scale."""

    def __call__(self, m, **_) -> Check:
        keys = ("2", "4", "8", "chaos")
        v = [_f(m[k]) for k in keys]
        found = [x for x in v if math.isfinite(x)]
        detail = "onsets " + ", ".join(f"{k}: {_g(x)}" for k, x in zip(keys, v))
        gaps = np.diff(found) if len(found) > 1 else np.array([])
        mg = float(np.abs(gaps).min()) if gaps.size else None
        txt = f"closest onsets {_g(mg)} apart in eta" if mg is not None else ""
        if gaps.size and (gaps <= 0).any():
            return Check("not reproduced", detail + ": out of order", mg, None, txt)
        if not math.isfinite(v[0]):
            return nothing(detail + ": no period 2 on the grid")
        prefix = 0
        while prefix < 4 and math.isfinite(v[prefix]):
            prefix += 1
        if prefix == 4:
            return Check("reproduced", detail, mg, None, txt)
        if prefix >= 2 and len(found) == prefix:
            return Check("partly", detail, mg, None, txt)
        return Check("not reproduced", detail + ": the cascade stops or skips", mg, None, txt)

    def examples(self):
        return {"reproduced": ({"2": 1.0, "4": 1.2, "8": 1.25, "chaos": 1.3}, {}),
                "not reproduced": ({"2": 1.0, "4": 0.9, "8": 1.25, "chaos": 1.3}, {})}


@dataclass(frozen=True)
class LogNear(Rule):
    """|log2 value - target| <= tol: reproduced; <= partly: partly; else not reproduced. With
    ``in_steps`` the tolerances are in grid steps (the input ``x_step``, in log2 c)."""
    target: float
    tol: float
    partly: float | None = None
    in_steps: bool = False

    def __call__(self, m, x_step=None, **_) -> Check:
        v = _f(m)
        if not (math.isfinite(v) and v > 0):
            return nothing("no finite positive value")
        if self.in_steps and x_step is None:
            raise TypeError("LogNear(in_steps=True) needs x_step=")
        unit = float(x_step) if self.in_steps else 1.0
        d = abs(math.log2(v) - self.target) / unit
        u = " grid steps" if self.in_steps else ""
        c = Near(0.0, self.tol, self.partly)(d)
        return Check(c.verdict, f"|log2 {_g(v)} - {_g(self.target)}| = {_g(d)}{u}: " + c.detail.split(" = ", 1)[-1],
                     c.margin, c.rel_margin, c.margin_text + u)

    def examples(self):
        kw = {"x_step": 0.25} if self.in_steps else {}
        far = 2.0 ** (self.target + 4 * (self.partly or self.tol) * (0.25 if self.in_steps else 1.0))
        return {"reproduced": (2.0 ** self.target, kw), "not reproduced": (far, kw)}


@dataclass(frozen=True)
class Share(Rule):
    """A scalar rule at every entry of a dict (e.g. every width): the share of entries it
    reproduces (entries it cannot judge left out): >= at_least reproduced, >= partly partly, else
    not reproduced."""
    rule: Rule = field(default=None)
    at_least: float = 1.0
    partly: float | None = 0.5

    def __call__(self, m, **inputs) -> Check:
        if not isinstance(m, dict) or not m:
            raise TypeError(f"Share needs a non-empty dict of entries, got {m!r}")
        out = {k: self.rule(v, **{n: (x[k] if isinstance(x, dict) else x) for n, x in inputs.items()})
               for k, v in m.items()}
        ok = [o.verdict == "reproduced" for o in out.values()]
        valid = [o.verdict != "not at this scale" for o in out.values()]
        c = Fraction(self.at_least, self.partly)(None, ok=ok, valid=valid)
        each = "; ".join(f"{k}: {o.detail}" for k, o in out.items())
        return Check(c.verdict, f"{c.detail} of the entries reproduced ({each})", c.margin, c.rel_margin,
                     c.margin_text)

    def examples(self):
        (mg, ig), (mb, ib) = self.rule.examples()["reproduced"], self.rule.examples()["not reproduced"]
        return {"reproduced": ({"a": mg, "b": mg}, ig), "not reproduced": ({"a": mb, "b": mb}, ib)}
