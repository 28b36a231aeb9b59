"""The book's Sphinx extension (``_config.yml``: ``sphinx: extra_extensions``).

* **A data line under every figure.** ``{glue:figure}`` is myst-nb's directive with the glue key
  kept on the figure node. When a page is written, each such figure gets one line, from the
  chapter's manifest (``earlytrain.book.provenance``, ``<provenance dir>/<chapter>.json``): links to the
  figure's drawn values and to the results-cache files behind it (netCDF and JSON sidecar), the
  library call that drew it, and the claims recorded for it (the chapter's claims file, records
  whose ``figure`` is the figure's label), each linked to its row of the report. The files are
  copied into the HTML (``_data/``), so they download offline; a result larger than
  ``provenance.MAX_SHIP_BYTES`` is not copied, and the line says so (its drawn values are the
  reduced file). A figure of a chapter that recorded no manifest (executed outside the book
  build, e.g. ``make rerun``'s chapter) says "not recorded"; a manifest without the figure, or a
  missing file, is a warning (the build runs with -W). On the report page each recorded claim
  gets an anchor (``id="<claim id>"``) at its first ``<code>`` id, if its table has none.
* **The total build time** on the execution page (``book/build_info.md``): when the build
  finishes, the page's ``earlytrain-build-total`` span gets the time since
  ``$EARLYTRAIN_BUILD_T0`` (set by ``scripts/build_book.py``).

The provenance dir is ``$EARLYTRAIN_PROVENANCE`` or ``<book>/_build/provenance``; the claims dir
``$EARLYTRAIN_CLAIMS`` or ``<book>/_build/claims`` (as ``scripts/bookexec.py``).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections import OrderedDict
from pathlib import Path

from docutils import nodes
from sphinx.util import logging

from . import provenance

logger = logging.getLogger(__name__)
DATA_DIR = "_data"  # in the HTML output
CSS = ("<style>p.earlytrain-data{font-size:0.78em;line-height:1.35;margin:0.3em 0 0 0;color:#555}"
       "p.earlytrain-data a{white-space:nowrap}</style>")


def _dir(app, env: str, sub: str) -> Path:
    d = os.environ.get(env)
    return Path(d).resolve() if d else Path(app.srcdir).resolve() / "_build" / sub


def _figure_directive():
    from myst_nb.ext.glue.directives import PasteFigureDirective

    class DataFigureDirective(PasteFigureDirective):
        """``{glue:figure}``, keeping the glue key on the figure node (for its data line)."""

        def run(self):
            out = super().run()
            for n in out:
                if isinstance(n, nodes.figure):
                    n["earlytrain_key"] = self.arguments[0]
            return out

    return DataFigureDirective


def _claims_of(app, chapter: str) -> list[dict]:
    p = _dir(app, "EARLYTRAIN_CLAIMS", "claims") / f"{chapter}.json"
    try:
        return json.loads(p.read_text()).get("claims", []) if p.is_file() else []
    except (OSError, ValueError):
        return []


def _copy(app, src: str, rel: str) -> tuple[str, int] | None:
    """Copy ``src`` to ``<outdir>/_data/<rel>`` (if newer); its path under the output and size."""
    s = Path(src)
    if not s.is_file():
        return None
    dest = Path(app.outdir) / DATA_DIR / rel
    st = s.stat()
    if not dest.is_file() or dest.stat().st_size != st.st_size or dest.stat().st_mtime < st.st_mtime:
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(s, dest)
    return f"{DATA_DIR}/{rel}", st.st_size


def _ref(text: str, uri: str, title: str = "") -> nodes.reference:
    r = nodes.reference("", text, refuri=uri, internal=False)
    if title:
        r["reftitle"] = title
    return r


def _mb(n: int) -> str:
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{max(n, 1) / 2**10:.0f} kB"


def data_line(app, docname: str, chapter: str, key: str, label: str, rec: dict | None,
              claims: list[dict]) -> nodes.paragraph:
    up = "../" * app.builder.get_target_uri(docname).count("/")
    para = nodes.paragraph(classes=["earlytrain-data"])
    para += nodes.strong("", "Data: ")
    if rec is None:
        para += nodes.Text("not recorded in this build (the chapter was not executed by the book build).")
        return para
    parts = []
    if rec.get("drawn"):
        got = _copy(app, rec["drawn"], f"figures/{chapter}/{Path(rec['drawn']).name}")
        if got is None:
            logger.warning(f"{docname}: figure {key!r}: drawn values {rec['drawn']} missing", type="earlytrain")
        else:
            parts.append([_ref("drawn values", up + got[0], f"netCDF, {_mb(got[1])}: the values the figure draws")])
    groups: OrderedDict[str, list[dict]] = OrderedDict()
    for r in rec.get("results", []):
        groups.setdefault(r["function"], []).append(r)
    for fn, rs in groups.items():
        ncs, jss, big = [], [], []
        for i, r in enumerate(rs, 1):
            n = str(i) if len(rs) > 1 else "nc"
            src = Path(r["nc"])
            if src.is_file() and src.stat().st_size > provenance.MAX_SHIP_BYTES:
                big.append(f"{n} ({_mb(src.stat().st_size)})")
            else:
                got = _copy(app, r["nc"], f"results/{fn}/{src.name}")
                if got is None:
                    logger.warning(f"{docname}: figure {key!r}: result {r['nc']} missing (re-execute the chapter)",
                                   type="earlytrain")
                    continue
                ncs.append(_ref(n, up + got[0], f"netCDF, {_mb(got[1])}" + (", computed in the build that "
                                "executed the chapter" if r.get("computed") else ", read from the results cache")))
            got = _copy(app, r["json"], f"results/{fn}/{Path(r['json']).name}")
            if got is not None:
                jss.append(_ref(str(i) if len(rs) > 1 else "json", up + got[0], "JSON: config, code hash, versions, device"))
        seg = [nodes.literal("", fn), nodes.Text(f" \u00d7{len(rs)}: nc " if len(rs) > 1 else " ")]
        for j, x in enumerate(ncs):
            seg += [nodes.Text(" ")] * bool(j) + [x]
        if big:
            seg.append(nodes.Text(f"{' ' if ncs else ''}[not shipped: {', '.join(big)} over "
                                  f"{provenance.MAX_SHIP_BYTES // 2**20} MB; the drawn values are the reduced file]"))
        seg.append(nodes.Text(", json " if len(rs) > 1 else " + "))
        for j, x in enumerate(jss):
            seg += [nodes.Text(" ")] * bool(j) + [x]
        parts.append(seg)
    if not groups:
        parts.append([nodes.Text("no cached result (computed in the chapter)")])
    parts.append([nodes.Text("drawn by "), nodes.literal("", rec.get("drawn_by", "?"))])
    mine = [c for c in claims if c.get("figure") == label]
    if mine:
        report = app.config.earlytrain_report_doc
        seg = [nodes.Text("claims: ")]
        for j, c in enumerate(mine):
            if j:
                seg.append(nodes.Text(", "))
            if report in app.env.all_docs:
                uri = app.builder.get_relative_uri(docname, report) + "#" + c["id"]
                seg.append(_ref(c["id"], uri, f"{c.get('verdict', '')}: see the report"))
            else:
                seg.append(nodes.literal("", c["id"]))
        parts.append(seg)
    for j, seg in enumerate(parts):
        if j:
            para += nodes.Text(" \u00b7 ")
        para.extend(seg)
    return para


def anchor_claims(app, doctree) -> None:
    """On the report page: an anchor ``id="<claim id>"`` at the first ``<code><claim id></code>`` of its
    HTML output, for each recorded claim that has none (the data lines link to them)."""
    ids = set()
    for p in _dir(app, "EARLYTRAIN_CLAIMS", "claims").glob("*.json"):
        try:
            ids.update(c["id"] for c in json.loads(p.read_text()).get("claims", []))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    for raw in list(doctree.findall(nodes.raw)):
        if raw.get("format") != "html":
            continue
        text = new = raw.astext()
        for cid in ids:
            if f'id="{cid}"' not in new and f"<code>{cid}</code>" in new:
                new = new.replace(f"<code>{cid}</code>", f'<span id="{cid}"></span><code>{cid}</code>', 1)
        if new != text:
            raw.replace_self(nodes.raw("", new, format="html"))


def on_doctree_resolved(app, doctree, docname: str) -> None:
    if app.builder.format != "html":
        return
    if docname == app.config.earlytrain_report_doc:
        anchor_claims(app, doctree)
    figs = [n for n in doctree.findall(nodes.figure) if n.get("earlytrain_key")]
    if not figs:
        return
    chapter = Path(docname).name
    prov = _dir(app, provenance.DIR_ENV, "provenance")
    manifest = provenance.manifest(chapter, prov)
    claims = _claims_of(app, chapter)
    for fig in figs:
        key = fig["earlytrain_key"]
        label = (fig.get("names") or fig.get("ids") or [""])[0]
        rec = manifest.get(key) if manifest is not None else None
        if manifest is not None and rec is None:
            logger.warning(f"{docname}: figure {key!r} is not in {prov / (chapter + '.json')} (it is glued "
                           "without earlytrain.book.provenance.figure?)", type="earlytrain")
        fig += data_line(app, docname, chapter, key, label, rec, claims)


def on_page_context(app, pagename, templatename, context, doctree) -> None:
    if doctree is not None and any(n.get("earlytrain_key") for n in doctree.findall(nodes.figure)):
        context["metatags"] = context.get("metatags", "") + CSS


def on_build_finished(app, exc) -> None:
    if exc is not None or app.builder.format != "html":
        return
    data = Path(app.outdir) / DATA_DIR
    files = [p for p in data.rglob("*") if p.is_file()] if data.is_dir() else []
    if files:
        logger.info(f"figure data: {len(files)} files, {_mb(sum(p.stat().st_size for p in files))} in {data}")
    t0 = os.environ.get(provenance.BUILD_T0_ENV)
    if not t0:
        return
    total = time.time() - float(t0)
    text = f"{int(total) // 60} min {int(total) % 60} s (execution and rendering, measured when the build finished)"
    pat = re.compile(r'(<span class="earlytrain-build-total">)(.*?)(</span>)', re.S)
    for page in Path(app.outdir).rglob("*.html"):
        s = page.read_text()
        if "earlytrain-build-total" in s:
            page.write_text(pat.sub(lambda m: m.group(1) + text + m.group(3), s))


def setup(app):
    app.setup_extension("myst_nb")
    app.add_config_value("earlytrain_report_doc", "book/report", "env")
    app.add_directive_to_domain("glue", "figure", _figure_directive(), override=True)
    app.connect("doctree-resolved", on_doctree_resolved)
    app.connect("html-page-context", on_page_context)
    app.connect("build-finished", on_build_finished)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": False}
