"""The data behind every figure of the book, and how the book was built.

A chapter shows a figure with :func:`figure` instead of ``myst_nb.glue``: it glues the figure and
records, for the book build, which results are behind it:

* the **results-cache entries** (``<results>/<function>/<key16>.nc`` and their JSON sidecars:
  config, code hash, versions, device): those the cache returned in this kernel since the
  chapter's previous figure (``cache.SERVED``: the sweep drawn here, computed or read), plus those
  of the earlier figures named in ``uses`` (a figure drawn again from results loaded for an
  earlier one);
* the **drawn values**: every line, point set, segment set and image of the figure, read back
  from its artists in data coordinates, saved as a small netCDF file (with the axes' labels).
  A figure computed in the chapter without the results cache has only this file; it is also the
  reduced file linked instead of a result larger than ``MAX_SHIP_BYTES``;
* the **library call that drew it** (``earlytrain.book.plotting.uv.phase_diagrams``), read from the
  calling cell: the call that made the figure object passed in.

With ``EARLYTRAIN_PROVENANCE`` (a directory) and ``EARLYTRAIN_CHAPTER`` set, as the book build sets
them for each chapter (``scripts/bookexec.py``), the record goes to
``<dir>/<chapter>.json`` (the manifest) and the drawn values to ``<dir>/<chapter>/<key>.drawn.nc``.
Without them (a chapter run by plain papermill) nothing is written. The book's Sphinx extension
(``earlytrain.book.sphinxext``) puts a one-line data link under each figure from the manifests, copies
the files into the HTML and links the claim records of the figure to the report.

The execution page (``book/build_info.md``) calls :func:`build_page`: per chapter, whether this
build executed it and how long it took (the build's record, ``<dir>/build.json``, written by
``scripts/bookexec.py``), the results it computed and those it read from the results cache
(``<dir>/<chapter>.results.jsonl``, the cache's log of the kernel that executed it), the
machine, the versions and the commit.
"""
from __future__ import annotations

import ast
import html
import json
import linecache
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from .. import cache

DIR_ENV = "EARLYTRAIN_PROVENANCE"
CHAPTER_ENV = "EARLYTRAIN_CHAPTER"
BUILD_T0_ENV = "EARLYTRAIN_BUILD_T0"
SCHEMA = 1
MAX_SHIP_BYTES = 20 * 2**20  # a result larger than this is not copied into the HTML (20 MiB)
REPO_ROOT = Path(__file__).resolve().parents[3]

_FIGURES: dict[str, dict] = {}  # this process's figures, in order of recording
_MARK = [0]  # position in cache.SERVED after the previous figure


def directory() -> Path | None:
    d = os.environ.get(DIR_ENV)
    return Path(d) if d else None


def chapter() -> str | None:
    return os.environ.get(CHAPTER_ENV) or None


def _atomic_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


# ----------------------------------------------------------------------------- the drawing call
def _dotted(node: ast.AST) -> list[str] | None:
    """``a.b.c`` as ["a", "b", "c"]; None for anything but names and attributes."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return [node.id] + parts[::-1]


def _qualname(func: ast.AST, frame) -> str:
    """The drawing function named by ``func`` in the caller's namespace, as module.qualname."""
    parts = _dotted(func)
    if parts is None:
        return ast.unparse(func)
    ns = {**frame.f_globals, **frame.f_locals}
    obj = ns.get(parts[0])
    for p in parts[1:]:
        obj = getattr(obj, p, None)
    mod, qual = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    return f"{mod}.{qual}" if mod and qual else ".".join(parts)


def drawing_call(frame, fig_arg: int = 1, caller: str = "figure") -> str | None:
    """The function whose call made the figure passed to ``caller(...)`` at the frame's current
    line: the call itself if the figure argument is a call, else the last ``name = f(...)``
    before it in the same source (a notebook cell). None when it cannot be read."""
    lines = linecache.getlines(frame.f_code.co_filename, frame.f_globals)
    if not lines:
        return None
    try:
        tree = ast.parse("".join(lines))
    except SyntaxError:
        return None
    line = frame.f_lineno
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)
             and (_dotted(n.func) or [""])[-1] == caller and n.lineno <= line <= (n.end_lineno or n.lineno)]
    if not calls:
        return None
    call = min(calls, key=lambda n: (n.end_lineno or n.lineno) - n.lineno)  # the innermost
    arg = call.args[fig_arg] if len(call.args) > fig_arg else next(
        (k.value for k in call.keywords if k.arg == "fig"), None)
    if isinstance(arg, ast.Call):
        return _qualname(arg.func, frame)
    if isinstance(arg, ast.Name):
        found = None
        for n in ast.walk(tree):
            if (isinstance(n, ast.Assign) and n.lineno < call.lineno and isinstance(n.value, ast.Call)
                    and any(isinstance(t, ast.Name) and t.id == arg.id for t in n.targets)):
                if found is None or n.lineno > found.lineno:
                    found = n
        if found is not None:
            return _qualname(found.value.func, frame)
    return None


# ----------------------------------------------------------------------------- the drawn values
def _floats(a) -> np.ndarray:
    a = np.ma.asarray(a)
    try:
        return np.ma.filled(a.astype(float), np.nan)
    except (TypeError, ValueError):
        return np.full(a.shape, np.nan)


def drawn_values(fig, key: str = ""):
    """The values a matplotlib figure draws, read back from its artists in data coordinates, as an
    ``xarray.Dataset``: per axes ``a<i>``, each line (``a<i>_line<j>_x`` / ``_y``), point set of a
    scatter (``a<i>_points<j>_x`` / ``_y``), segment set (error bars, ``a<i>_segments<j>``:
    segment x end x (x, y)) and image or mesh (``a<i>_image<j>``), with the line's label and the
    axes' title and axis labels as attributes."""
    import xarray as xr
    from matplotlib.collections import LineCollection, PathCollection, QuadMesh

    vars_ = {}

    def put(name, arrays: dict, attrs: dict):
        for suffix, (dims, values) in arrays.items():
            vars_[name + suffix] = xr.Variable(dims, values, attrs={k: v for k, v in attrs.items() if v})

    for i, ax in enumerate(fig.axes):
        axattrs = {"axes_title": ax.get_title(), "axes_xlabel": ax.get_xlabel(), "axes_ylabel": ax.get_ylabel(),
                   "axes_xscale": ax.get_xscale(), "axes_yscale": ax.get_yscale()}
        for j, ln in enumerate(ax.get_lines()):
            x, y = _floats(ln.get_xdata()).ravel(), _floats(ln.get_ydata()).ravel()
            if x.size != y.size or x.size == 0:
                continue
            label = ln.get_label()
            put(f"a{i}_line{j}", {"_x": ((f"a{i}_line{j}",), x), "_y": ((f"a{i}_line{j}",), y)},
                {**axattrs, "label": "" if label.startswith("_") else label})
        for j, col in enumerate(ax.collections):
            label = col.get_label() or ""
            attrs = {**axattrs, "label": "" if label.startswith("_") else label}
            if isinstance(col, PathCollection):
                off = _floats(col.get_offsets()).reshape(-1, 2)
                if off.size:
                    put(f"a{i}_points{j}", {"_x": ((f"a{i}_points{j}",), off[:, 0]),
                                            "_y": ((f"a{i}_points{j}",), off[:, 1])}, attrs)
            elif isinstance(col, LineCollection):
                segs = [_floats(s) for s in col.get_segments()]
                if segs and all(s.shape == segs[0].shape for s in segs) and segs[0].ndim == 2:
                    put(f"a{i}_segments{j}", {"": ((f"a{i}_segments{j}", f"a{i}_segments{j}_end", "xy"),
                                                   np.stack(segs))}, attrs)
            elif isinstance(col, QuadMesh) and col.get_array() is not None:
                arr = _floats(col.get_array())
                put(f"a{i}_image{j}", {"": (tuple(f"a{i}_image{j}_{k}" for k in range(arr.ndim)), arr)}, attrs)
        for j, im in enumerate(ax.images):
            arr = _floats(im.get_array())
            if arr.ndim in (1, 2):
                put(f"a{i}_image_{j}", {"": (tuple(f"a{i}_image_{j}_{k}" for k in range(arr.ndim)), arr)},
                    {**axattrs, "extent": str(list(im.get_extent()))})
    ds = xr.Dataset(vars_)
    ds.attrs.update(figure=key, note="the values this figure draws, read back from its artists in data "
                    "coordinates (earlytrain.book.provenance.drawn_values); the results behind it are linked beside it")
    return ds


def reduce_to(ds, max_bytes: int):
    """``ds`` if it holds at most ``max_bytes``, else every k-th element along its long dimensions
    (over 1000 long), k the smallest that fits, said in ``attrs["reduced"]``."""
    if ds.nbytes <= max_bytes:
        return ds
    long = [d for d, n in ds.sizes.items() if n > 1000]
    k = 2
    while ds.isel({d: slice(None, None, k) for d in long}).nbytes > max_bytes and k < 10**6:
        k *= 2
    out = ds.isel({d: slice(None, None, k) for d in long})
    out.attrs.update(ds.attrs, reduced=f"every {k}-th point along the dimensions longer than 1000: the figure "
                     f"draws {ds.nbytes / 2**20:.0f} MB of values, over the {max_bytes / 2**20:.0f} MB shipped")
    return out


# ----------------------------------------------------------------------------- recording
def _result_entry(served: dict) -> dict:
    nc = Path(served["path"])
    return {"function": served["function"], "nc": str(nc), "json": str(nc.with_suffix(".json")),
            "computed": bool(served.get("computed"))}


def figure(key: str, fig, uses=(), drawn_by: str | None = None) -> dict:
    """Glue ``fig`` under ``key`` (as ``myst_nb.glue(key, fig, display=False)``) and record what is
    behind it (module doc). ``uses``: keys of earlier figures of this chapter whose results this
    one draws too. ``drawn_by``: the drawing function, when it cannot be read from the cell.
    Returns the record."""
    from myst_nb import glue

    uses = [uses] if isinstance(uses, str) else list(uses)
    for u in uses:
        if u not in _FIGURES:
            raise ValueError(f"figure {key!r} uses {u!r}, which no earlier figure() call recorded")
    glue(key, fig, display=False)
    if drawn_by is None:
        drawn_by = drawing_call(sys._getframe(1)) or "(not read from the cell)"
    served, _MARK[0] = cache.SERVED[_MARK[0]:], len(cache.SERVED)
    results = {}
    for entry in [r for u in uses for r in _FIGURES[u]["results"]] + [_result_entry(s) for s in served]:
        prev = results.get(entry["nc"])
        results[entry["nc"]] = {**entry, "computed": entry["computed"] or bool(prev and prev["computed"])}
    rec = {"key": key, "drawn_by": drawn_by, "results": list(results.values()), "drawn": None}
    d, ch = directory(), chapter()
    if d is not None and ch is not None:
        drawn = d / ch / f"{key}.drawn.nc"
        drawn.parent.mkdir(parents=True, exist_ok=True)
        ds = reduce_to(drawn_values(fig, key), MAX_SHIP_BYTES)
        ds.attrs.update(chapter=ch, drawn_by=drawn_by, results=json.dumps([f"{r['function']}/{Path(r['nc']).name}" for r in rec["results"]]))
        tmp = drawn.with_name(f".{drawn.name}.tmp{os.getpid()}")
        ds.to_netcdf(tmp, engine="h5netcdf", encoding={v: {"zlib": True, "complevel": 4} for v in ds.data_vars})
        os.replace(tmp, drawn)
        rec["drawn"] = str(drawn)
    _FIGURES[key] = rec
    if d is not None and ch is not None:
        _atomic_text(d / f"{ch}.json", json.dumps({"schema": SCHEMA, "chapter": ch, "figures": _FIGURES}, indent=1))
    return rec


def manifest(chapter_: str, directory_: Path | str | None = None) -> dict | None:
    """A chapter's recorded figures ({key: record}), or None if it recorded none here."""
    d = Path(directory_) if directory_ is not None else directory()
    p = d / f"{chapter_}.json" if d is not None else None
    if p is None or not p.is_file():
        return None
    return json.loads(p.read_text()).get("figures", {})


def missing_files(chapter_: str, directory_: Path | str) -> list[str] | None:
    """The files a chapter's manifest names that do not exist (None: no manifest)."""
    figs = manifest(chapter_, directory_)
    if figs is None:
        return None
    paths = [p for rec in figs.values() for r in rec["results"] for p in (r["nc"], r["json"])]
    paths += [rec["drawn"] for rec in figs.values() if rec.get("drawn")]
    return [p for p in paths if not Path(p).is_file()]


# ----------------------------------------------------------------------------- checking a built book
def check_html(outdir: Path | str) -> dict:
    """Check a built book's HTML: every figure (``<figure>``) has one data line
    (``p.earlytrain-data``) and every file it links exists and opens (``.nc`` with xarray, ``.json``
    with json). Returns {"figures": n, "files": n, "bytes": n}; raises AssertionError naming the
    page and figure otherwise."""
    import re
    import xarray as xr

    outdir = Path(outdir)
    n_fig, files = 0, set()
    for page in sorted(outdir.rglob("*.html")):
        if "_static" in page.parts or "_sources" in page.parts:
            continue
        text = page.read_text(errors="replace")
        for m in re.finditer(r"<figure\b[^>]*>(.*?)</figure>", text, re.S):
            n_fig += 1
            fid = re.search(r'id="([^"]+)"', m.group(0))
            where = f"{page.relative_to(outdir)} figure {fid.group(1) if fid else '?'}"
            lines = re.findall(r'<p class="[^"]*earlytrain-data[^"]*"[^>]*>(.*?)</p>', m.group(1), re.S)
            assert len(lines) == 1, f"{where}: {len(lines)} data lines"
            hrefs = re.findall(r'href="([^"#]+\.(?:nc|json))"', lines[0])
            assert any(h.endswith(".nc") for h in hrefs), f"{where}: no netCDF file linked"
            for h in hrefs:
                f = (page.parent / html.unescape(h)).resolve()
                assert f.is_file(), f"{where}: linked file {h} does not exist"
                files.add(f)
    for f in sorted(files):
        if f.suffix == ".nc":
            with xr.open_dataset(f, engine="h5netcdf") as ds:
                ds.load()
        else:
            json.loads(f.read_text())
    return {"figures": n_fig, "files": len(files), "bytes": sum(f.stat().st_size for f in files)}


# ----------------------------------------------------------------------------- how the book was built
def machine() -> dict:
    """CPU model, cores, memory and JAX devices of this machine."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) * 1024
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    import jax
    devs = jax.devices()
    kinds = sorted({f"{d.platform}: {d.device_kind}" for d in devs})
    return {"cpu": cpu, "cores": os.cpu_count(), "cores usable": usable,
            "memory": f"{mem / 2**30:.1f} GiB" if mem else "unknown",
            "jax devices": f"{len(devs)} x " + ", ".join(kinds), "system": f"{platform.system()} {platform.release()}"}


VERSIONED = ("jax", "jaxlib", "flax", "optax", "numpy", "xarray", "jupyter-book", "myst-nb", "matplotlib")


def versions() -> dict:
    from importlib import metadata
    out = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def commit(root: Path | str | None = None) -> str:
    """The git commit of ``root`` (default: the working directory, a chapter's book), with
    "+ uncommitted changes" if the work tree differs, or why there is none."""
    root = Path.cwd() if root is None else root
    try:
        sha = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=20, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=20, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown (not a git work tree)"
    return sha + (" + uncommitted changes" if dirty else "")


def results_log(chapter_: str, directory_: Path | str) -> dict | None:
    """What a chapter's kernel got from the results cache (``<dir>/<chapter>.results.jsonl``):
    {"computed": n, "read": n, "compute_s": s} over distinct results, None without a log."""
    p = Path(directory_) / f"{chapter_}.results.jsonl"
    if not p.is_file():
        return None
    by_path: dict[str, dict] = {}
    for line in p.read_text().splitlines():
        try:
            e = json.loads(line)
        except ValueError:
            continue
        prev = by_path.get(e["path"])
        if prev is None or (e.get("computed") and not prev.get("computed")):
            by_path[e["path"]] = e
    comp = [e for e in by_path.values() if e.get("computed")]
    return {"computed": len(comp), "read": len(by_path) - len(comp),
            "compute_s": sum(e.get("wall_time_s") or 0.0 for e in comp)}


class _HTML:
    def __init__(self, markup: str):
        self.markup = markup

    def _repr_html_(self) -> str:
        return self.markup


def _table(head: list[str], rows: list[list]) -> str:
    e = lambda v: html.escape(str(v))
    return ('<table class="earlytrain-build"><tr>' + "".join(f"<th>{e(h)}</th>" for h in head) + "</tr>"
            + "".join("<tr>" + "".join(f"<td>{e(v)}</td>" for v in r) + "</tr>" for r in rows) + "</table>")


def _secs(s) -> str:
    if s is None:
        return "n/a"
    s = int(round(s))
    return f"{s // 60}:{s % 60:02d}"


def build_page(directory_: Path | str | None = None) -> _HTML:
    """The execution page: this build's record of every chapter, results computed and read, the
    machine, the versions, the commit and the build time (module doc)."""
    d = Path(directory_) if directory_ is not None else directory()
    rec = {}
    if d is not None and (d / "build.json").is_file():
        rec = json.loads((d / "build.json").read_text())
    rows = []
    for ch in rec.get("chapters", []):
        res = results_log(Path(ch["name"]).name, d) if d is not None else None
        state = {"executed": "executed", "failed": "FAILED", "cached": "from the jupyter cache"}[ch["state"]]
        if ch.get("reason") and ch["state"] != "cached":
            state += f" (stale: {ch['reason']})"
        secs = ch["seconds"] if ch["state"] != "cached" else ch.get("last_seconds")
        rows.append([ch["name"], state, _secs(secs) + ("" if ch["state"] != "cached" else " (when executed)"),
                     res["computed"] if res else "n/a", res["read"] if res else "n/a",
                     _secs(res["compute_s"]) if res else "n/a"])
    out = []
    t0 = rec.get("started")
    when = time.strftime("%Y-%m-%d %H:%M %Z", time.localtime(t0)) if t0 else "n/a"
    out.append(f"<p>Built {html.escape(when)} from commit <code>{html.escape(commit())}</code>. "
               f"Total build time: <span class=\"earlytrain-build-total\">{_secs(rec.get('chapters_s'))} to execute "
               "the chapters (the rendering time is added when the build finishes)</span>.</p>")
    out.append("<h3>Chapters</h3>" + _table(
        ["chapter", "this build", "execution time", "results computed", "results read from the cache",
         "compute time of the computed results"], rows))
    out.append("<p><small>Results are counted per distinct result file of the results cache, from the "
               "kernel that executed the chapter: for a chapter taken from the jupyter cache, the build that "
               "last executed it. Execution times include compilation.</small></p>")
    out.append("<h3>Machine</h3>" + _table(["", ""], [[k, v] for k, v in machine().items()]))
    out.append("<h3>Versions</h3>" + _table(["package", "version"], [[k, v] for k, v in versions().items()]))
    return _HTML("".join(out))
