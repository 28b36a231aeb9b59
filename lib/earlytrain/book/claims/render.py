"""Tables of records: a chapter's verdicts (:func:`show`), the book's report (:func:`report`) and a
DataFrame of every record (:func:`summary`). One compact row per claim (claim, paper's value,
measured, verdict with its margin, stability); the statement, the paper's words, the rule, the
numbers the rule saw and the rule's hash fold inside the row (``<details>``)."""
from __future__ import annotations

import html
import math
from pathlib import Path

from .records import FRAGILE, Record, load, records, scale_of
from .registry import KINDS, PAPERS, REGISTRY, claims_of
from .rules import CLOSE, VERDICTS

COLUMNS = ["claim", "kind", "paper", "where", "statement", "expected", "measured", "spread", "verdict", "margin",
           "stability", "rule"]
VERDICT_COLORS = {"reproduced": "#c7e9c0", "partly": "#fdd0a2", "not reproduced": "#fcbba1",
                  "not at this scale": "#d9d9d9"}


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


def verdict_word(r: Record) -> str:
    """The verdict as the report prints it: an exact check reads "verified (exact)" / "failed (exact)"."""
    if r.kind == "exact":
        return {"reproduced": "verified (exact)", "not reproduced": "failed (exact)"}.get(r.verdict, r.verdict)
    return r.verdict


def frame(recs: list[Record]):
    """A pandas DataFrame of records (one row per claim)."""
    import pandas as pd
    rows = [{"claim": r.id, "kind": r.kind, "paper": r.paper, "where": r.where, "statement": r.statement,
             "expected": r.expected, "measured": fmt(r.measured), "spread": fmt(r.spread), "verdict": r.verdict,
             "margin": r.margin, "stability": r.stability, "rule": r.rule, "detail": r.detail,
             "rule_hash": r.rule_hash, "figure": r.figure, "chapter": r.chapter} for r in recs]
    return pd.DataFrame(rows, columns=COLUMNS + ["detail", "rule_hash", "figure", "chapter"])


def table(chapter: str):
    """This run's verdicts of ``chapter`` as a DataFrame."""
    return frame(records(chapter))


class HTML:
    """Rendered by Jupyter (and the book) as HTML; ``str()`` gives the markup."""

    def __init__(self, markup: str):
        self.markup = markup

    def _repr_html_(self):
        return self.markup

    def __str__(self):
        return self.markup


def _e(s) -> str:
    return html.escape(str(s))


STYLE = ("<style>table.claims{table-layout:fixed;width:100%;max-width:100%;font-size:0.85em;border-collapse:"
         "collapse}table.claims td,table.claims th{vertical-align:top;padding:3px 5px;overflow-wrap:anywhere;"
         "border-bottom:1px solid #ddd}table.claims details summary{cursor:pointer}</style>")
HEAD = ('<colgroup><col style="width:30%"><col style="width:14%"><col style="width:20%"><col style="width:24%">'
        '<col style="width:12%"></colgroup><tr><th>claim</th><th>paper\'s value</th><th>measured</th>'
        "<th>verdict (margin)</th><th>stability</th></tr>")


def _stability(r: Record) -> str:
    if r.stability is None:
        return "<small>n/a (one measurement)</small>"
    s = f"{100 * r.stability:.0f} %"
    return (f"<b>{s} fragile</b>" if r.fragile else s) + f"<br><small>of {r.n_boot} resamples of the inits</small>"


def _rows_html(recs: list[Record], page: str = "") -> str:
    out = []
    for r in recs:
        link = f'<a href="{page}#{_e(r.figure)}">{_e(r.figure)}</a>'
        kind = "" if r.kind == "reproduction" else f" <small>[{_e(r.kind)}]</small>"
        close = " <b>close call</b>" if r.close else ""
        margin = f"<br><small>{_e(r.margin_text)}</small>" if r.margin_text else ""
        folded = (f"<details><summary>{_e(r.statement)}</summary><small>"
                  f"<b>Paper</b>: {_e(PAPERS[r.paper].split(' (')[0])}, {_e(r.where)}. {_e(r.quote)}<br>"
                  f"<b>Measured</b>: {_e(r.quantity)}<br><b>Rule</b>: {_e(r.rule)}<br>"
                  f"<b>The rule saw</b>: {_e(r.detail)}<br>"
                  + (f"<b>Regime</b>: {_e(r.regime_note)}<br>" if r.regime_note else "")
                  + (f"<b>Would be tested by</b> <code>book/params/{_e(r.chapter)}/{_e(r.preset)}</code> (this "
                     f"run: {r.cost_s:.0f} s to this record)<br>" if r.verdict == "not at this scale" else "")
                  + f"<b>Figure</b>: {link}; rule hash <code>{_e(r.rule_hash or 'n/a')}</code></small></details>")
        out.append(
            "<tr>"
            f"<td><code>{_e(r.id)}</code>{kind}{folded}</td>"
            f"<td>{_e(r.expected)}</td>"
            f"<td>{_e(fmt(r.measured))}" + (f"<br><small>sd over inits: {_e(fmt(r.spread))}</small>"
                                            if r.spread is not None else "") + "</td>"
            f'<td style="background:{VERDICT_COLORS[r.verdict]}"><b>{_e(verdict_word(r))}</b>{close}'
            + (f"<br><small>would be {_e(r.would_be)} (outside the regime)</small>" if r.would_be else "")
            + f"{margin}</td>"
            f"<td>{_stability(r)}</td></tr>")
    return "".join(out)


def show(chapter: str) -> HTML:
    """This run's verdicts of ``chapter``, as an HTML table (figure links on the same page)."""
    recs = records(chapter)
    missing = [c.id for c in claims_of(chapter) if c.id not in {r.id for r in recs}]
    note = f"<p><small>Scale of this run: {_e(scale_of(chapter) or 'n/a')}." + (
        f" Not recorded: {_e(', '.join(missing))}." if missing else "") + "</small></p>"
    return HTML(f'{STYLE}<table class="claims">{HEAD}{_rows_html(recs)}</table>{note}')


def counts(recs: list[Record]) -> dict:
    """{kind: {verdict: n}} over records."""
    out = {k: {v: 0 for v in VERDICTS} for k in KINDS}
    for r in recs:
        out[r.kind][r.verdict] += 1
    return out


def _summary_html(recs: list[Record]) -> str:
    c = counts(recs)
    rep, ex, ext = c["reproduction"], c["exact"], c["extension"]
    n_rep, n_ex, n_ext = sum(rep.values()), sum(ex.values()), sum(ext.values())
    close = [r.id for r in recs if r.close]
    fragile = [r.id for r in recs if r.fragile]
    return ("<p><b>Reproductions: " + ", ".join(f"{rep[v]} {v}" for v in VERDICTS) + f"</b> of {n_rep}. "
            f"<b>Exact checks of the code: {ex['reproduced']} verified: exact</b> of {n_ex}"
            + (f" ({n_ex - ex['reproduced']} not: " + ", ".join(f"{ex[v]} {v}" for v in VERDICTS[1:] if ex[v]) + ")"
               if n_ex - ex["reproduced"] else "") + ". "
            + (f"Extensions (the book's own questions, not the papers'): " + ", ".join(
                f"{ext[v]} {v}" for v in VERDICTS if ext[v]) + f" of {n_ext}. " if n_ext else "")
            + f"{len(recs)} recorded claims ({len(REGISTRY)} registered).</p>"
            f"<p><small>Close calls (margin under {100 * CLOSE:.0f} % of the rule's scale): "
            f"{_e(', '.join(close) or 'none')}. Fragile (the same verdict in under {100 * FRAGILE:.0f} % of the "
            f"bootstrap resamples of the initialisations): {_e(', '.join(fragile) or 'none')}.</small></p>")


def report(directory_: Path | str | None = None, order: list[str] | None = None) -> HTML:
    """Every chapter's recorded claims, grouped by chapter, with its scale; registered claims that
    no chapter recorded are listed as such. Reproductions, exact checks and extensions are counted
    apart."""
    data = load(directory_)
    chapters = list(dict.fromkeys((order or []) + sorted({c.chapter for c in REGISTRY.values()})))
    parts, every = [], []
    for ch in chapters:
        d = data.get(ch)
        recs = d["records"] if d else []
        every += recs
        missing = [c.id for c in claims_of(ch) if c.id not in {r.id for r in recs}]
        head = f"<h3>{_e(ch)}</h3>"
        if d is None:
            parts.append(head + "<p>This chapter recorded no claims in this build (not executed, or it "
                                f"failed): {_e(', '.join(missing))}.</p>")
            continue
        parts.append(head + f"<p><small>Scale: {_e(d['scale'])}. Execution: {fmt(d['elapsed_s'])} s up to its "
                     "last record.</small></p>"
                     f'<table class="claims">{HEAD}{_rows_html(recs, page=ch + ".html")}</table>'
                     + (f"<p>Not recorded: {_e(', '.join(missing))}.</p>" if missing else ""))
    return HTML(STYLE + _summary_html(every) + "".join(parts))


def summary(directory_: Path | str | None = None):
    """A DataFrame of every recorded claim (the report's rows, for tests and scripts)."""
    import pandas as pd
    data = load(directory_)
    frames = [frame(d["records"]) for d in data.values()]
    return pd.concat(frames, ignore_index=True) if frames else frame([])
