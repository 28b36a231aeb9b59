"""The papers' claims, measured live: what each chapter tests, the rule that decides, the verdict,
its margin and its stability over initialisations.

A claim (:mod:`.registry`) is one statement of one of the three papers the book reproduces (Kalra
& Barkeshli 2023, "kb"; Kalra, He & Barkeshli 2023, the uv-model paper, "uv"; Lewkowycz et al.
2020, the catapult paper, "catapult"), with where it stands, the paper's statement (its wording or a close paraphrase, cited by paper
and section), the quantity a chapter measures, the paper's value and the rule that turns the measurement
into a verdict, in words (``rule``) and in code (``check``, a rule of :mod:`.rules`). Exact checks
of the code (identities of the uv map) are their own kind and are counted apart from the
reproductions; so are the book's own questions ("extension").

How the rules came to be, honestly: they were first written after the chapters had run, with the
chapters' numbers in view, and some were loosened later. Issue 16 rewrote them against the papers'
statements (symmetric regime gate, no "partly" by chance, no hidden failures, censored values as
bounds), again with earlier builds' numbers known. So the rules are not pre-registered; what each
record does carry is ``rule_hash``, a hash of its rule's words, parameters and code, so that a
verdict that changed because its rule changed can be told from one that changed because the numbers
did.

Verdicts (``VERDICTS``):

* ``reproduced``: the rule's condition holds (for an exact check: "verified (exact)");
* ``partly``: its weaker, stated condition holds (never reachable by the sign of noise alone);
* ``not reproduced``: neither holds, at a scale where the paper says the effect is there;
* ``not at this scale``: the run cannot decide (too few finite points, a bound that does not
  decide, a regime not reached), or the run is outside the claim's regime (``in_regime=False``):
  there any outcome is evidence neither way, and the detail names the verdict it would have been.

A rule that raises stops the chapter (the error names the claim). Each record also states its
margin (the distance to the nearest boundary of another verdict, in the rule's units) and, where the
chapter passes its per-initialisation values, its stability: the share of 200 bootstrap resamples
of the initialisations (numpy only, seeded; no new training) that give the same verdict, below 80 %
marked fragile.

A chapter calls :func:`start` once (its scale, in words) and :func:`record` once per claim, with
values it already computes; :func:`show` displays the chapter's verdicts under its figures. When
the environment variable ``EARLYTRAIN_CLAIMS`` names a directory (the book build sets it,
``scripts/bookexec.py``; ``make rerun`` sets its own), every call rewrites
``<dir>/<chapter>.json`` with the chapter's records of this run; :func:`report` reads them all
(the book's report page). A chapter run without it (plain papermill) writes nothing.
"""
from __future__ import annotations

from . import records as _records
from .records import (ENV, FRAGILE, N_BOOT, SCHEMA, Record, default_directory, directory, get, judge, load,
                      record, records, reset, scale_of, stability, start)
from .registry import KINDS, PAPERS, REGISTRY, Claim, claim, claims_of
from .render import HTML, counts, fmt, frame, report, show, summary, table, verdict_word
from .rules import (CLOSE, RESOLVED, SEVERITY, VERDICTS, Above, AtLeast, Below, Check, EosHover, EosLoss, Every,
                    FourRegimes, Fraction, Holds, LargestShift, LogNear, MajorityAt, Near, Ordered, PeriodDoubling,
                    ResolvedShift, Rule, Share, Trend, Within, slope_share)

__all__ = [n for n in dir() if not n.startswith("__")]
