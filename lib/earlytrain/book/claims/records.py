"""Records: a claim as measured in one run of its chapter, its verdict, margin and stability, and
the per-chapter JSON files the report reads."""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from .registry import KINDS, PAPERS, REGISTRY, claims_of
from .rules import CLOSE, SEED, VERDICTS, Check, reduce_stat

ENV = "EARLYTRAIN_CLAIMS"
SCHEMA = 2
N_BOOT = 200       # resamples of the initialisations for a record's stability
FRAGILE = 0.8      # a verdict that fewer than this share of the resamples give is marked fragile


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
    kind: str = "reproduction"
    quote: str = ""
    would_be: str = ""        # outside the regime: the verdict the rule gave
    margin: float | None = None
    rel_margin: float | None = None
    margin_text: str = ""
    per_init: object = None   # the per-initialisation values behind ``measured`` (same layout, lists)
    stability: float | None = None  # share of bootstrap resamples of the inits giving the same verdict
    n_boot: int = 0
    rule_hash: str = ""

    @property
    def close(self) -> bool:
        # an exact check passes by round-off or fails by a bug: its margin is shown, never a "close call"
        return (self.rel_margin is not None and self.rel_margin < CLOSE and self.verdict != "not at this scale"
                and self.kind != "exact")

    @property
    def fragile(self) -> bool:
        return self.stability is not None and self.stability < FRAGILE

    def problems(self) -> list[str]:
        """What is invalid in this record ([] if nothing)."""
        out = []
        c = REGISTRY.get(self.id)
        if c is None:
            return [f"{self.id}: not a registered claim"]
        for f in ("paper", "where", "statement", "quantity", "expected", "rule", "chapter", "figure", "preset",
                  "kind", "quote"):
            if getattr(self, f) != getattr(c, f):
                out.append(f"{self.id}: {f} differs from the registry")
        if self.rule_hash != c.rule_hash:
            out.append(f"{self.id}: rule_hash differs from the registry's rule (the rule changed since)")
        for f in ("where", "statement", "quantity", "expected", "rule", "figure", "detail", "scale", "quote"):
            if not isinstance(getattr(self, f), str) or not getattr(self, f).strip():
                out.append(f"{self.id}: empty {f}")
        if self.paper not in PAPERS:
            out.append(f"{self.id}: unknown paper {self.paper!r}")
        if self.kind not in KINDS:
            out.append(f"{self.id}: kind {self.kind!r}")
        if self.verdict not in VERDICTS:
            out.append(f"{self.id}: verdict {self.verdict!r}")
        if not self.in_regime and self.verdict != "not at this scale":
            out.append(f"{self.id}: outside its regime but verdict {self.verdict!r}")
        if not _numbers_ok(self.measured):
            out.append(f"{self.id}: measured {self.measured!r} is not a number or a dict/list of numbers")
        if self.spread is not None and not _numbers_ok(self.spread):
            out.append(f"{self.id}: spread {self.spread!r}")
        if not _any_finite(self.measured) and self.verdict != "not at this scale":
            out.append(f"{self.id}: nothing finite measured but verdict {self.verdict!r}")
        if self.stability is not None and not 0 <= self.stability <= 1:
            out.append(f"{self.id}: stability {self.stability!r}")
        if not (isinstance(self.cost_s, (int, float)) and self.cost_s >= 0):
            out.append(f"{self.id}: cost_s {self.cost_s!r}")
        return out


def _numbers_ok(v) -> bool:
    if isinstance(v, dict):
        return len(v) > 0 and all(isinstance(k, str) and _numbers_ok(x) for k, x in v.items())
    if isinstance(v, list):
        return len(v) > 0 and all(_numbers_ok(x) for x in v)
    return v is None or isinstance(v, (int, float, bool))


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
    if isinstance(v, np.ndarray):
        return [_plain(x) for x in v.tolist()]
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return float(v) if math.isfinite(float(v)) else None
    return v


def _num(v):
    """For the rules: None -> NaN, recursively (JSON gives None for NaN)."""
    if isinstance(v, dict):
        return {k: _num(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_num(x) for x in v]
    return float("nan") if v is None else v


# ----------------------------------------------------------------------------- stability
def _is_leaf(v) -> bool:
    return isinstance(v, list) and all(not isinstance(x, (list, dict)) for x in v)


def _n_init(p) -> set:
    if _is_leaf(p):
        return {len(p)}
    items = p.values() if isinstance(p, dict) else p
    return set().union(*[_n_init(x) for x in items]) if items else set()


def _take(p, idx):
    if _is_leaf(p):
        return [p[i] for i in idx]
    if isinstance(p, dict):
        return {k: _take(x, idx) for k, x in p.items()}
    return [_take(x, idx) for x in p]


def _reduce(p, stat: str):
    if _is_leaf(p):
        return float(reduce_stat(np.asarray(_num(p), float), stat))
    if isinstance(p, dict):
        return {k: _reduce(x, stat) for k, x in p.items()}
    return [_reduce(x, stat) for x in p]


def stability(check, verdict: str, measured, per_init=None, init_inputs: dict | None = None, inputs=None,
              n: int = N_BOOT, seed: int = SEED) -> float | None:
    """The share of ``n`` bootstrap resamples of the initialisations whose verdict is ``verdict``.

    ``per_init``: the layout of ``measured`` with a list of per-initialisation values at each leaf
    (reduced by the rule's statistic, ``check.stat``: mean or std); ``init_inputs``: inputs of the
    rule with the initialisations on their last axis (resampled with the same indices). None when
    there is nothing to resample (no per-initialisation data, or fewer than 2 initialisations)."""
    init_inputs = init_inputs or {}
    inputs = inputs or {}
    sizes = (_n_init(per_init) if per_init is not None else set()) | {np.shape(v)[-1] for v in init_inputs.values()}
    if not sizes:
        return None
    if len(sizes) != 1:
        raise ValueError(f"per-initialisation data with different numbers of initialisations: {sorted(sizes)}")
    k = sizes.pop()
    if k < 2:
        return None
    rng = np.random.default_rng(seed)
    same = 0
    for _ in range(n):
        idx = rng.integers(0, k, size=k)
        kw = dict(inputs)
        m = measured
        if per_init is not None:
            p = _take(per_init, idx)
            kw["per_init"] = p
            if check.stat in ("mean", "std"):
                m = _reduce(p, check.stat)
        for name, v in init_inputs.items():
            kw[name] = np.asarray(v)[..., idx]
        same += check(m, **kw).verdict == verdict
    return same / n


# ----------------------------------------------------------------------------- per-chapter state
_STATE: dict[str, dict] = {}


def reset() -> None:
    """Forget every chapter's records of this process (what a fresh kernel has)."""
    _STATE.clear()


def scale_of(chapter: str) -> str | None:
    """The scale ``start`` was given for ``chapter`` in this process, or None."""
    return _STATE.get(chapter, {}).get("scale")


def directory() -> Path | None:
    """Where the chapters' claim files go: $EARLYTRAIN_CLAIMS, or None (nothing written)."""
    d = os.environ.get(ENV)
    return Path(d) if d else None


def default_directory() -> Path:
    """Where the report reads by default: $EARLYTRAIN_CLAIMS or <repo>/_build/claims."""
    return directory() or Path(__file__).resolve().parents[4] / "_build" / "claims"


def start(chapter: str, scale: str) -> None:
    """Begin this run's claims of ``chapter`` (forgets earlier ones, rewrites its file)."""
    if not claims_of(chapter):
        raise ValueError(f"no claim is registered for chapter {chapter!r}")
    _STATE[chapter] = {"scale": scale, "t0": time.time(), "records": {}}
    _write(chapter)


def judge(claim_id: str, measured, per_init=None, init_inputs: dict | None = None, **inputs) -> Check:
    """The registered rule of ``claim_id`` on a measurement. A rule that raises stops the caller
    (the error names the claim, the rule's own error chained)."""
    c = REGISTRY[claim_id]
    try:
        kw = dict(inputs)
        if per_init is not None:
            kw["per_init"] = _num(_plain(per_init))
        kw.update({k: np.asarray(v) for k, v in (init_inputs or {}).items()})
        return c.check(_num(_plain(measured)), **kw)
    except Exception as e:
        raise RuntimeError(f"the rule of claim {claim_id!r} ({c.check!r}) raised {type(e).__name__}: {e}") from e


def record(chapter: str, claim_id: str, measured, spread=None, in_regime: bool = True, regime_note: str = "",
           per_init=None, init_inputs: dict | None = None, **inputs) -> None:
    """Judge claim ``claim_id`` on ``measured`` by its registered rule, keep the record and rewrite
    the chapter's file (returns None, so that a chapter cell ending in it prints nothing; see
    :func:`get`).

    ``per_init``: the per-initialisation values behind ``measured`` (the same layout, a list at each
    leaf); ``init_inputs``: inputs of the rule with the initialisations on their last axis; both
    feed the stability bootstrap. ``in_regime=False`` (with ``regime_note``): the run is outside the
    claim's regime, so the verdict is "not at this scale" whatever the rule says (named in the
    detail). A rule that raises stops the chapter."""
    c = REGISTRY.get(claim_id)
    if c is None:
        raise KeyError(f"unknown claim {claim_id!r}")
    if c.chapter != chapter:
        raise ValueError(f"claim {claim_id!r} belongs to chapter {c.chapter!r}, not {chapter!r}")
    st = _STATE.get(chapter)
    if st is None:
        raise RuntimeError(f"call claims.start({chapter!r}, scale) before recording its claims")
    m, s, p = _plain(measured), _plain(spread), _plain(per_init)
    res = judge(claim_id, m, per_init=p, init_inputs=init_inputs, **inputs)
    try:
        stab = stability(c.check, res.verdict, _num(m), _num(p) if p is not None else None,
                         {k: np.asarray(v) for k, v in (init_inputs or {}).items()}, inputs)
    except Exception as e:
        raise RuntimeError(f"the stability bootstrap of claim {claim_id!r} raised {type(e).__name__}: {e}") from e
    verdict, detail, would = res.verdict, res.detail, ""
    if not _any_finite(m) and verdict != "not at this scale":
        raise RuntimeError(f"claim {claim_id!r}: nothing finite measured, yet its rule says {verdict!r}")
    if not in_regime:  # evidence neither way: no verdict, so no stability of one either
        would, stab = res.verdict, None
        verdict = "not at this scale"
        detail = f"would be {would} ({res.detail}); outside the regime: {regime_note or 'no note given'}"
    elif regime_note and verdict == "not at this scale":
        detail = f"{detail} ({regime_note})"
    rec = Record(c.id, c.paper, c.where, c.statement, c.quantity, c.expected, c.rule, c.chapter, c.figure,
                 c.preset, m, s, verdict, detail, bool(in_regime), regime_note, st["scale"],
                 round(time.time() - st["t0"], 1), kind=c.kind, quote=c.quote, would_be=would,
                 margin=_plain(res.margin), rel_margin=_plain(res.rel_margin), margin_text=res.margin_text,
                 per_init=p, stability=stab, n_boot=N_BOOT if stab is not None else 0, rule_hash=c.rule_hash)
    st["records"][claim_id] = rec
    _write(chapter)


def get(chapter: str, claim_id: str) -> Record:
    """This process's record of ``claim_id``."""
    return _STATE[chapter]["records"][claim_id]


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
    """Every chapter file of the directory: {chapter: {"scale", "elapsed_s", "records": [Record]}}
    (fields a file of an older schema lacks take their defaults)."""
    d = Path(directory_) if directory_ is not None else default_directory()
    names = {f.name for f in fields(Record)}
    out = {}
    for p in sorted(d.glob("*.json")) if d.is_dir() else []:
        data = json.loads(p.read_text())
        recs = [Record(**{k: v for k, v in r.items() if k in names}) for r in data.get("claims", [])]
        out[data["chapter"]] = {"scale": data.get("scale", ""), "elapsed_s": data.get("elapsed_s"),
                                "records": recs}
    return out
