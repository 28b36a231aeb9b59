"""Execute the book's stale chapters into jupyter-cache, in parallel, before Jupyter Book runs.

jupyter-cache (myst-nb's ``execute_notebooks: cache``) keys a chapter on its notebook's code
cells only, so an edit to the library (a colour in ``book/plotting/style.py``, a line that
``sweep.summary`` prints) left every page stale. Here a chapter's *library* is the import closure
of the ``earlytrain`` modules its code cells import (``earlytrain.cache.module_deps``, the same
closure the results cache hashes) plus every module of ``earlytrain/book/plotting/``; the sha256 of each
of those sources is stored in the chapter's jupyter-cache record (its ``data`` field).

Before ``jupyter-book build`` (``scripts/build_book.py``), :func:`execute_stale`:

* finds every notebook of ``_toc.yml`` that myst-nb would execute in ``cache`` mode: ``.ipynb``
  files and MyST Markdown notebooks (``.md`` with a jupytext ``format_name: myst`` or
  ``file_format: mystnb`` front matter, the book's chapters), read with myst-nb's own reader so that
  the cells (and so the jupyter-cache key) are exactly those Jupyter Book looks up; not those
  with ``mystnb: execution_mode`` other than ``cache`` in their metadata, e.g. ``make rerun``'s
  chapter, nor those matched by ``execute.exclude_patterns``);
* leaves cached a chapter whose record exists and whose library hashes are the current ones;
* executes the others (no record, or a library module changed, or the record predates this
  scheme), longest first, ``jobs`` at a time, each in its own
  process and kernel, with the book's timeout and ``allow_errors``; caches each executed notebook
  with its library hashes and removes the chapter's older records; touches the notebook file
  (its mtime), or Sphinx, which sees an unchanged source, would keep the old page;
* prints progress (running / done / cached, elapsed times) at every start and finish and every
  ``every`` seconds; writes a failing chapter's traceback where myst-nb writes it
  (``_build/html/reports/<docname>.err.log``) and goes on with the others.

Longest first. A chapter's expected time is the execution time of its last jupyter-cache record
(this machine's), else its entry in the committed cost file ``book/params/costs.json`` (COSTS_FILE:
the seconds each chapter took in the last build that executed it, so that a fresh clone, whose
cache is empty, also starts the longest chapters first); a chapter in neither starts first of all
(it may be long). Two workers then end within a few seconds of each other instead of the last
chapter of the table of contents running alone. Every build refreshes the file with the chapters
it executed (:func:`refresh_costs`; an entry changes only when the new time differs by more than
REFRESH_TOLERANCE, so the committed file does not churn with every build's noise), provided the
build paid what a fresh clone pays: no result read from the results cache, and the compilation
cache empty at its start (``jaxcache.is_cold``).

Claims and the report (``earlytrain.book.claims``). Each chapter records its claims' verdicts into
``<claims dir>/<chapter>.json`` while it executes; the claims dir is ``$EARLYTRAIN_CLAIMS`` or
``<root>/_build/claims``, and the kernels run with ``EARLYTRAIN_CLAIMS`` set to it. A notebook whose
metadata has ``earlytrain: {report: true}`` (``book/report.md``) reads those files, so it is
never stale:

* it executes after every chapter of the build has finished (never alongside one);
* it is stale when any chapter executes in this build, or when the claims files differ from those
  it was last executed with (their sha256, stored in its record: ``make rerun`` replaces a
  chapter's file), besides the usual reasons (code cells, library);
* a cached chapter that records claims (its code imports ``earlytrain.book.claims``) but whose claims
  file is missing executes again ("claims not recorded"), so the report never lacks its rows.

Figures and the execution page (``earlytrain.book.provenance``). Each kernel runs with
``EARLYTRAIN_PROVENANCE`` (``$EARLYTRAIN_PROVENANCE`` or ``<root>/_build/provenance``),
``EARLYTRAIN_CHAPTER`` (the notebook's stem) and ``EARLYTRAIN_RESULTS_LOG``
(``<provenance dir>/<chapter>.results.jsonl``, emptied first): the chapter records its figures'
manifest and the results cache logs what it computed and read. A cached chapter that records
figures (its code imports ``earlytrain.book.provenance``) but whose manifest, or a file it names, is
missing executes again. A notebook with ``earlytrain: {build_info: true}`` (``book/build_info.md``)
executes in every build, after the chapters, when this build's record
(``<provenance dir>/build.json``: each chapter executed, failed or cached, with its time) is written.

Jupyter Book then finds every notebook cached and executes nothing. The library is located by
importing ``earlytrain`` (so ``PYTHONPATH`` decides, as it does for the kernels).
"""
from __future__ import annotations

import ast
import concurrent.futures as cf
import hashlib
import json
import multiprocessing
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable

import nbformat
import yaml

BUDGET_S = 8 * 60  # a chapter should execute within 8 minutes on the reference 2-core CPU
LIB_KEY = "earlytrain_library"  # key of the {module: sha256} dict in a cache record's data
CLAIMS_KEY = "earlytrain_claims"  # key of the claims files' sha256 in a report's record
CLAIMS_ENV = "EARLYTRAIN_CLAIMS"
PROV_ENV = "EARLYTRAIN_PROVENANCE"  # figure manifests, results logs, the build record
ABOUT_COSTS = ("Seconds each chapter took to execute in the last build that computed everything, as a fresh "
               "clone does (no cached result, an empty compilation cache); scripts/bookexec.py orders a build's "
               "chapters by them, longest first; refreshed by such a build when a time moves by more than 15 %.")
COSTS_FILE = "book/params/costs.json"  # committed per-chapter execution times (relative to the root)
REFRESH_TOLERANCE = 0.15  # a cost entry is rewritten when the new time differs by more than this


# ----------------------------------------------------------------------------- the book
def book_config(root: Path) -> dict:
    path = root / "_config.yml"
    return (yaml.safe_load(path.read_text()) or {}) if path.exists() else {}


def cache_path(root: Path, config: dict | None = None) -> Path:
    """Where myst-nb keeps the jupyter cache: ``execute.cache`` or ``<root>/_build/.jupyter_cache``."""
    config = book_config(root) if config is None else config
    custom = (config.get("execute") or {}).get("cache")
    return (root / custom).resolve() if custom else root / "_build" / ".jupyter_cache"


NOTEBOOK_SUFFIXES = (".ipynb", ".md")  # what a _toc.yml entry without extension may name


def is_notebook(path: Path) -> bool:
    """An ``.ipynb`` file, or a Markdown file that myst-nb reads as a notebook (MyST front matter)."""
    if path.suffix == ".ipynb":
        return path.is_file()
    if path.suffix != ".md" or not path.is_file():
        return False
    from myst_nb.core.read import is_myst_markdown_notebook
    return is_myst_markdown_notebook(path.read_text(encoding="utf8"))


def source_of(root: Path, entry: str) -> Path | None:
    """The file a ``_toc.yml`` entry (a docname, with or without extension) names, if a notebook."""
    p = root / entry
    if p.suffix in NOTEBOOK_SUFFIXES:
        return p if is_notebook(p) else None
    for suffix in NOTEBOOK_SUFFIXES:
        q = p.with_name(p.name + suffix)
        if q.is_file():  # the one source of this docname (Sphinx refuses two)
            return q if is_notebook(q) else None
    return None


def md_config(root: Path):
    """myst-parser's configuration as the book sets it (``parse.myst_enable_extensions``)."""
    from myst_parser.config.main import MdParserConfig
    exts = (book_config(root).get("parse") or {}).get("myst_enable_extensions") or []
    try:
        return MdParserConfig(enable_extensions=set(exts))
    except Exception:  # an extension this myst-parser does not know: code cells do not depend on it
        return MdParserConfig()


def read_notebook(path: Path, root: Path | None = None) -> nbformat.NotebookNode:
    """A notebook as myst-nb reads it: ``.ipynb`` with nbformat, a MyST ``.md`` with myst-nb's
    reader (the same code cells, metadata and so jupyter-cache hash as in ``jupyter-book build``)."""
    path = Path(path)
    if path.suffix == ".ipynb":
        return nbformat.read(str(path), as_version=4)
    from myst_nb.core.read import read_myst_markdown_notebook
    config = md_config(Path(root) if root else path.parent)
    return read_myst_markdown_notebook(path.read_text(encoding="utf8"), config=config,
                                       add_source_map=True, path=str(path))


def toc_notebooks(root: Path) -> list[Path]:
    """The notebooks (``.ipynb``, MyST ``.md``) that ``_toc.yml`` lists (``root``, ``file``
    entries), in order."""
    toc = yaml.safe_load((root / "_toc.yml").read_text()) or {}
    found: list[Path] = []

    def walk(node):
        if isinstance(node, dict):
            for key in ("root", "file"):
                if isinstance(node.get(key), str):
                    p = source_of(root, node[key])
                    if p is not None and p not in found:
                        found.append(p)
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(toc)
    return found


def docname(root: Path, nb_path: Path) -> str:
    return nb_path.relative_to(root).with_suffix("").as_posix()


# ----------------------------------------------------------------------------- claims
def claims_dir(root: Path) -> Path:
    """Where the book's chapters record their claims: $EARLYTRAIN_CLAIMS or <root>/_build/claims."""
    d = os.environ.get(CLAIMS_ENV)
    return Path(d).resolve() if d else Path(root).resolve() / "_build" / "claims"


def claims_hash(directory: Path) -> str:
    """sha256 over the names and contents of the claims files (``*.json``) of ``directory``."""
    h = hashlib.sha256()
    for p in sorted(Path(directory).glob("*.json")) if Path(directory).is_dir() else []:
        h.update(p.name.encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def is_report(nb: nbformat.NotebookNode) -> bool:
    return bool((nb.metadata.get("earlytrain") or {}).get("report")) or is_build_info(nb)


def is_build_info(nb: nbformat.NotebookNode) -> bool:
    """The execution page: executes in every build, after the chapters."""
    return bool((nb.metadata.get("earlytrain") or {}).get("build_info"))


def provenance_dir(root: Path) -> Path:
    """Where the chapters record their figures: $EARLYTRAIN_PROVENANCE or <root>/_build/provenance."""
    d = os.environ.get(PROV_ENV)
    return Path(d).resolve() if d else Path(root).resolve() / "_build" / "provenance"


def figures_missing(directory: Path, chapter: str) -> str:
    """Why a cached chapter's figure records are not usable ("" if they are)."""
    from earlytrain.book import provenance
    missing = provenance.missing_files(chapter, directory)
    if missing is None:
        return f"figures not recorded in {directory}"
    if not missing:
        return ""
    return f"figure data missing: {missing[0]}" + (f" and {len(missing) - 1} more" if len(missing) > 1 else "")


# ----------------------------------------------------------------------------- the library
def _package_dir() -> Path:
    import earlytrain
    return Path(earlytrain.__file__).resolve().parent


def _code_source(cell_source: str) -> str:
    """A code cell without IPython magics / shell escapes, which ast cannot parse."""
    return "\n".join("" if re.match(r"\s*[%!]", line) else line for line in cell_source.splitlines())


def notebook_imports(nb: nbformat.NotebookNode) -> set[str]:
    """The ``earlytrain`` modules a notebook's code cells import, as names relative to the
    package (``"uv.model"``, ``"book.plotting.__init__"``, ``"__init__"``), in the form ``module_deps`` takes."""
    pkg = _package_dir()

    def module(name: str) -> str | None:
        if not name:
            return "__init__"
        rel = name.replace(".", "/")
        if (pkg / f"{rel}.py").is_file():
            return name
        if (pkg / rel / "__init__.py").is_file():
            return f"{name}.__init__"
        return None

    out: set[str] = set()
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        try:
            tree = ast.parse(_code_source(cell.source))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    head, _, rest = a.name.partition(".")
                    if head == "earlytrain":
                        out.add("__init__")
                        out.add(module(rest) or "__init__")
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                head, _, rest = node.module.partition(".")
                if head != "earlytrain":
                    continue
                base = module(rest) or "__init__"
                out.add(base)
                for a in node.names:  # "from earlytrain.uv import model as uv": uv may be a module
                    sub = module(f"{rest}.{a.name}" if rest else a.name)
                    if sub:
                        out.add(sub)
    return out


def library_of(nb: nbformat.NotebookNode) -> dict[str, str]:
    """``{module: sha256 of its source}`` over the notebook's library: the import closure of the
    ``earlytrain`` modules it imports plus every module of ``earlytrain/book/plotting/``."""
    from earlytrain.cache import module_deps
    pkg = _package_dir()
    mods: set[str] = set()
    for m in notebook_imports(nb):
        mods.update(module_deps(m))
    for p in (pkg / "book" / "plotting").rglob("*.py"):
        mods.add(p.relative_to(pkg).with_suffix("").as_posix().replace("/", "."))
    return {m: hashlib.sha256((pkg / (m.replace(".", "/") + ".py")).read_bytes()).hexdigest()
            for m in sorted(mods)}


def changed_modules(old: dict | None, new: dict[str, str]) -> list[str]:
    if not isinstance(old, dict):
        return []
    return sorted(m for m in set(old) | set(new) if old.get(m) != new.get(m))


# ----------------------------------------------------------------------------- costs
def read_costs(root: Path) -> dict[str, float]:
    """``{docname: seconds}`` from the committed cost file (empty if there is none or it is
    unreadable: the schedule then falls back to the table of contents, never fails the build)."""
    path = Path(root) / COSTS_FILE
    try:
        seconds = (json.loads(path.read_text()) or {}).get("seconds") or {}
    except (OSError, ValueError, AttributeError):
        return {}
    return {str(k): float(v) for k, v in seconds.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0}


def refresh_costs(root: Path, chapters: list["Chapter"], *, compiles_cold: bool) -> list[str]:
    """Write the execution times of ``chapters`` that executed without error and computed every
    result they used (none read from the results cache) into the cost file (whole seconds; an
    entry is kept when the new time is within REFRESH_TOLERANCE of it), when the build compiled
    everything too (``compiles_cold``: the compilation cache was cold at its start). Those times
    are what a fresh clone pays; a warm build's would misorder it (the CNN chapter 07 is the
    longest cold and fifth warm). Only a root that has the file's directory (the book's
    ``book/params``) gets one. Returns the docnames whose entry changed."""
    path = Path(root) / COSTS_FILE
    if not path.parent.is_dir() or not compiles_cold:
        return []
    try:
        doc = json.loads(path.read_text()) if path.exists() else {}
        doc = doc if isinstance(doc, dict) else {}
    except (OSError, ValueError):
        doc = {}
    old = read_costs(root)
    seconds = dict(old)
    changed = []
    for ch in chapters:
        if ch.error or ch.seconds is None or ch.cached_results:
            continue  # failed, or served partly by the results cache: not what a fresh clone pays
        prev = old.get(ch.name)
        if prev is None or abs(ch.seconds - prev) > REFRESH_TOLERANCE * max(prev, 1.0):
            seconds[ch.name] = round(ch.seconds)
            changed.append(ch.name)
    if changed:
        doc.setdefault("about", ABOUT_COSTS)
        doc["seconds"] = {k: round(v) for k, v in sorted(seconds.items())}  # whole seconds, no 128 / 128.0 churn
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(doc, indent=2) + "\n")
        os.replace(tmp, path)
    return changed


def makespan(seconds: list[float], jobs: int = 2) -> float:
    """When the last of ``seconds`` (in this order) ends if each starts on the first free of
    ``jobs`` workers, as :func:`execute_stale` submits them: a simulation of a schedule."""
    free = [0.0] * max(1, jobs)
    for s in seconds:
        i = free.index(min(free))
        free[i] += s
    return max(free)


# ----------------------------------------------------------------------------- planning
@dataclass
class Chapter:
    path: Path
    name: str                       # docname, e.g. "book/01_phase_diagram"
    library: dict[str, str]
    reason: str = ""                # why it executes ("" if cached)
    last_seconds: float | None = None  # expected time: last record's, else the cost file's
    seconds: float | None = None    # this build's execution time
    error: str | None = None        # exc_string of a failed execution
    report: bool = False            # reads the chapters' claims: executes after them
    claims_hash: str | None = None  # (report) the claims files it was executed with
    cached_results: int = 0         # results this build's execution read from the results cache

    @property
    def short(self) -> str:
        return Path(self.name).name


@dataclass
class Plan:
    cache_dir: Path
    execute: list[Chapter] = field(default_factory=list)
    cached: list[Chapter] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)   # not executed by the cache (mode, pattern)


def _mode_of(nb: nbformat.NotebookNode, default: str) -> str:
    md = nb.metadata.get("mystnb") or {}
    mode = md.get("execution_mode", md.get("nb_execution_mode", default))
    return "off" if mode is False else str(mode)


def plan(root: Path) -> Plan:
    """Which chapters are stale (and why) and which are cached. Touches nothing."""
    from jupyter_cache import get_cache

    config = book_config(root)
    ex = config.get("execute") or {}
    default_mode = ex.get("execute_notebooks", "auto")
    default_mode = "off" if default_mode is False else str(default_mode)
    out = Plan(cache_path(root, config))
    cdir, pdir = claims_dir(root), provenance_dir(root)
    cache = get_cache(str(out.cache_dir))
    records = sorted(cache.list_cache_records(), key=lambda r: r.created)
    last_by_uri = {r.uri: (r.data or {}).get("execution_seconds") for r in records}
    costs = read_costs(root)
    for path in toc_notebooks(root):
        name = docname(root, path)
        nb = read_notebook(path, root)
        excluded = any(PurePosixPath(path.as_posix()).match(p) for p in ex.get("exclude_patterns") or [])
        if _mode_of(nb, default_mode) != "cache" or excluded:
            out.skipped.append(name)
            continue
        last = last_by_uri.get(str(path))
        ch = Chapter(path, name, library_of(nb), last_seconds=last if last is not None else costs.get(name),
                     report=is_report(nb))
        try:
            record = cache.match_cache_notebook(nb)
        except KeyError:
            record = None
        if record is None:
            ch.reason = "not executed yet" if last is None else "notebook changed"
        else:
            ch.last_seconds = (record.data or {}).get("execution_seconds", ch.last_seconds)
            stored = (record.data or {}).get(LIB_KEY)
            if stored is None:
                ch.reason = "no library hash recorded"
            elif stored != ch.library:
                ch.reason = "library changed: " + ", ".join(changed_modules(stored, ch.library))
            elif ch.report and (record.data or {}).get(CLAIMS_KEY) != claims_hash(cdir):
                ch.reason = "claims changed"
            elif (not ch.report and {"book.claims", "book.claims.__init__"} & notebook_imports(nb)  # a module or a package
                  and not (cdir / f"{path.stem}.json").is_file()):
                ch.reason = f"claims not recorded in {cdir}"
            elif not ch.report and "book.provenance" in notebook_imports(nb):
                ch.reason = figures_missing(pdir, path.stem)
        if is_build_info(nb) and not ch.reason:
            ch.reason = "executes in every build"
        (out.execute if ch.reason else out.cached).append(ch)
    if any(not c.report for c in out.execute):  # chapters execute: their claims change
        for ch in [c for c in out.cached if c.report]:
            out.cached.remove(ch)
            ch.reason = "chapters executed"
            out.execute.append(ch)
    order(out.execute)
    return out


def order(chapters: list[Chapter]) -> list[Chapter]:
    """Sort in place, longest expected time first, so that the workers finish together; unknown
    times first of all (they may be long), reports last (they read what the chapters record);
    ties keep the table of contents' order."""
    chapters.sort(key=lambda c: (c.report, -(c.last_seconds if c.last_seconds is not None else float("inf"))))
    return chapters


# ----------------------------------------------------------------------------- execution
def _execute_one(path: str, timeout: int | None, allow_errors: bool, claims: str | None = None,
                 root: str | None = None, prov: str | None = None) -> dict:
    """Worker (own process): execute one notebook in its directory, return it and its outcome.
    ``claims``: the claims directory its kernel records into (``EARLYTRAIN_CLAIMS``); ``prov``:
    the provenance directory (figure manifest, results log; module doc)."""
    from jupyter_cache.executors.utils import single_nb_execution
    if claims:
        os.environ[CLAIMS_ENV] = claims
    if prov:
        stem = Path(path).stem
        Path(prov).mkdir(parents=True, exist_ok=True)
        (Path(prov) / f"{stem}.json").unlink(missing_ok=True)  # a failed run leaves no old manifest
        (Path(prov) / f"{stem}.results.jsonl").write_text("")
        os.environ.update({PROV_ENV: prov, "EARLYTRAIN_CHAPTER": stem,
                           "EARLYTRAIN_RESULTS_LOG": str(Path(prov) / f"{stem}.results.jsonl")})
    nb = read_notebook(Path(path), root)
    start = time.perf_counter()
    try:
        res = single_nb_execution(nb, cwd=str(Path(path).parent), timeout=timeout,
                                  allow_errors=allow_errors, meta_override=True)
        # the cell and its traceback (str of nbclient's error), not nbclient's own frames
        err, exc, secs = res.err, res.err and f"{type(res.err).__name__}: {res.err}", res.time
    except Exception as e:  # dead kernel, unreadable notebook, ...: still reported per chapter
        import traceback
        err, exc, secs = e, traceback.format_exc(), time.perf_counter() - start
    if err is not None:
        exc = f"{_failing_cell(nb)}\n{exc}"
    return {"nb": nbformat.writes(nb), "seconds": secs, "cached_results": cached_results_read(prov, path),
            "error": None if err is None else f"{type(err).__name__}", "exc_string": exc}


def cached_results_read(prov: str | None, path) -> int:
    """How many distinct results the chapter's execution read from the results cache without
    computing them (``provenance.results_log`` of ``<prov>/<stem>.results.jsonl``); 0 without a log."""
    from earlytrain.book import provenance
    log = provenance.results_log(Path(path).stem, prov) if prov else None
    return log["read"] if log else 0


def _failing_cell(nb: nbformat.NotebookNode) -> str:
    """Which code cell failed: the first with an error output, else the first not executed."""
    code = [c for c in nb.cells if c.cell_type == "code"]
    for i, c in enumerate(code, 1):
        if any(o.get("output_type") == "error" for o in c.get("outputs", [])):
            return f"Failing cell: code cell {i} of {len(code)} (In [{c.get('execution_count')}])"
    for i, c in enumerate(code, 1):
        if c.get("execution_count") is None and c.source.strip():
            return f"Failing cell: code cell {i} of {len(code)} (did not finish)"
    return "Failing cell: unknown"


def _fmt(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 60}:{s % 60:02d}"


def _status(t0: float, running: dict, done: list, failed: list, cached: list) -> str:
    now = time.perf_counter()
    parts = [f"[{_fmt(now - t0):>5}] running " + (", ".join(
        f"{c.short} ({_fmt(now - s)})" for c, s in running.values()) or "-")]
    if done:
        parts.append("done " + ", ".join(f"{c.short} ({c.seconds:.0f} s)" for c in done))
    if failed:
        parts.append("FAILED " + ", ".join(f"{c.short} ({c.seconds:.0f} s)" for c in failed))
    if cached:
        parts.append("cached " + ", ".join(c.short for c in cached))
    return " | ".join(parts)


def _write_build_record(directory: Path, pl: Plan, jobs: int, t0: float) -> None:
    """This build's record of its chapters, read by the execution page (module doc)."""
    import json
    chapters = sorted((c for c in pl.execute + pl.cached if not c.report), key=lambda c: c.name)
    rec = {"started": t0, "chapters_s": time.time() - t0, "jobs": jobs, "chapters": [
        {"name": c.name, "state": "cached" if c in pl.cached else "failed" if c.error else "executed",
         "seconds": c.seconds, "last_seconds": c.last_seconds, "reason": c.reason} for c in chapters]}
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "build.json").write_text(json.dumps(rec, indent=1))


def execute_stale(root: Path, jobs: int = 2, every: float = 30.0,
                  log: Callable[[str], None] = lambda s: print(s, flush=True)) -> Plan:
    """Execute the stale chapters of the book at ``root`` into its jupyter cache (see module doc).
    Returns the plan, with ``seconds`` and ``error`` filled in for the executed chapters."""
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    root = Path(root)
    pl = plan(root)
    if not pl.execute and not pl.cached:
        return pl
    import jaxcache
    compiles_cold = jaxcache.is_cold()  # before any chapter fills it
    ex = book_config(root).get("execute") or {}
    timeout, allow_errors = ex.get("timeout", 30), bool(ex.get("allow_errors", False))
    cache = get_cache(str(pl.cache_dir))
    cdir, pdir = claims_dir(root), provenance_dir(root)
    t_start = float(os.environ.get("EARLYTRAIN_BUILD_T0") or time.time())
    reports = root / "_build" / "html" / "reports"
    for ch in pl.execute:
        log(f"stale: {ch.name} ({ch.reason})" + ("" if ch.last_seconds is None else f" expected {_fmt(ch.last_seconds)}"))
    if pl.cached:
        log("cached: " + ", ".join(c.name for c in pl.cached))
    todo, running, done, failed = list(pl.execute), {}, [], []
    t0 = time.perf_counter()
    jobs = max(1, min(jobs, len(todo))) if todo else 1
    with cf.ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        try:
            while todo or running:  # each turn: a start, a finish or `every` seconds
                while todo and len(running) < jobs:  # submit only to a free worker: exact "running"
                    if todo[0].report and any(not c.report for c, _ in running.values()):
                        break  # a report waits until every chapter has recorded its claims
                    ch = todo.pop(0)
                    if ch.report:
                        ch.claims_hash = claims_hash(cdir)
                        _write_build_record(pdir, pl, jobs, t_start)
                    log_file = reports.joinpath(*(ch.name + ".err.log").split("/"))
                    log_file.unlink(missing_ok=True)
                    fut = pool.submit(_execute_one, str(ch.path), timeout, allow_errors, str(cdir), str(root), str(pdir))
                    running[fut] = (ch, time.perf_counter())
                log(_status(t0, running, done, failed, pl.cached))
                finished, _ = cf.wait(list(running), timeout=every, return_when=cf.FIRST_COMPLETED)
                for fut in finished:
                    ch, start = running.pop(fut)
                    try:
                        out = fut.result()
                    except Exception as e:  # the worker process died
                        out = {"seconds": time.perf_counter() - start, "error": type(e).__name__,
                               "exc_string": f"worker process failed: {e!r}"}
                    ch.seconds = out["seconds"]
                    ch.cached_results = out.get("cached_results", 0)
                    try:  # newer than Sphinx's last read: the page is read again
                        os.utime(ch.path)
                    except OSError as e:
                        log(f"warning: could not touch {ch.path} ({e}); its page may be the old one")
                    if out["error"]:
                        ch.error = out["exc_string"] or out["error"]
                        log_file = reports.joinpath(*(ch.name + ".err.log").split("/"))
                        log_file.parent.mkdir(parents=True, exist_ok=True)
                        log_file.write_text(ch.error)
                        failed.append(ch)
                    else:
                        _store(cache, CacheBundleIn, ch, nbformat.reads(out["nb"], as_version=4))
                        done.append(ch)
            if pl.execute:
                log(_status(t0, running, done, failed, pl.cached))
        except BaseException:  # Ctrl-C: do not wait for the chapters still running
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    changed = refresh_costs(root, done, compiles_cold=compiles_cold)
    if changed:
        log(f"chapter costs refreshed in {COSTS_FILE}: " + ", ".join(Path(n).name for n in changed))
    elif done and not compiles_cold:
        log(f"chapter costs not refreshed: the compilation cache was warm, so these times are not a "
            f"fresh clone's ({COSTS_FILE} is refreshed by a build that starts with an empty .cache/jax)")
    over = [c for c in done + failed if c.seconds and c.seconds > BUDGET_S]
    if over:
        log("over the 8-minute chapter budget: " + ", ".join(f"{c.short} ({_fmt(c.seconds)})" for c in over))
    return pl


def _store(cache, bundle_cls, ch: Chapter, nb: nbformat.NotebookNode) -> None:
    """Cache an executed chapter with its library hashes; drop its older records."""
    old = [r.pk for r in cache.list_cache_records() if r.uri == str(ch.path)]
    try:  # a record of the same code cells with another uri (a copy of the book) is replaced too
        old.append(cache.match_cache_notebook(nb).pk)
    except KeyError:
        pass
    for pk in set(old):
        try:
            cache.remove_cache(pk)
        except KeyError:
            pass
    data = {"execution_seconds": ch.seconds, LIB_KEY: ch.library}
    if ch.report:
        data[CLAIMS_KEY] = ch.claims_hash
    cache.cache_notebook_bundle(bundle_cls(nb, str(ch.path), data=data), check_validity=False, overwrite=True)


def main(argv: list[str] | None = None) -> int:
    import argparse
    ap = argparse.ArgumentParser(description="Execute the book's stale chapters into its jupyter cache.")
    ap.add_argument("root", nargs="?", default=str(Path(__file__).resolve().parent.parent))
    ap.add_argument("--jobs", type=int, default=2, help="chapters executed at once (default 2)")
    ap.add_argument("--dry-run", action="store_true", help="only say which chapters are stale and why")
    args = ap.parse_args(argv)
    root = Path(args.root).resolve()
    if args.dry_run:
        pl = plan(root)
        for ch in pl.execute:
            print(f"stale: {ch.name} ({ch.reason})")
        for ch in pl.cached:
            print(f"cached: {ch.name}")
        for name in pl.skipped:
            print(f"not executed by the cache: {name}")
        return 0
    import jaxcache
    jaxcache.enable()
    pl = execute_stale(root, jobs=args.jobs)
    return 1 if any(c.error for c in pl.execute) else 0


if __name__ == "__main__":
    raise SystemExit(main())
