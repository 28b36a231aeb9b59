"""The data behind every figure (earlytrain.book.provenance, earlytrain.book.sphinxext) and the execution page.

In-process: what ``provenance.figure`` records (the results the cache served since the previous
figure, those of the figures named in ``uses``, the drawing call read from the calling source, the
drawn values). Then a tiny book built as a user builds it (``scripts/build_book.py``, as in
tests/test_build.py): every figure has its data line, every linked file exists and opens with
xarray, the claim link points at the report, the execution page has this build's record; a
rebuild takes the chapter from the jupyter cache and keeps its data line; a chapter whose manifest
is gone executes again.
"""
from __future__ import annotations

import json
import re
import shutil

import matplotlib
import numpy as np
import pytest
import xarray as xr

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from earlytrain import cache  # noqa: E402
from earlytrain.book import provenance  # noqa: E402


def squares(cfg):
    x = np.arange(cfg["n"], dtype=float)
    return xr.Dataset({"y": ("x", x ** 2)}, coords={"x": x})


def draw(ds):
    fig, ax = plt.subplots()
    ax.plot(ds.x.values, ds.y.values, label="x squared")
    ax.scatter(ds.x.values, ds.y.values + 1)
    ax.errorbar(ds.x.values, ds.y.values, yerr=0.5, fmt="none")
    ax.set_xlabel("x")
    ax.set_title("squares")
    return fig


@pytest.fixture
def fresh(tmp_path, monkeypatch):
    monkeypatch.setenv("EARLYTRAIN_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv(provenance.DIR_ENV, str(tmp_path / "prov"))
    monkeypatch.setenv(provenance.CHAPTER_ENV, "ch")
    monkeypatch.setenv(cache.RESULTS_LOG_ENV, str(tmp_path / "prov" / "ch.results.jsonl"))
    monkeypatch.setattr(provenance, "_FIGURES", {})
    monkeypatch.setattr(provenance, "_MARK", [len(cache.SERVED)])
    return tmp_path


def test_figure_records_results_call_and_drawn_values(fresh):
    ds = cache.cached(squares)({"n": 5})
    fig = draw(ds)
    rec = provenance.figure("fig-a", fig)
    assert rec["drawn_by"] == f"{__name__}.draw"
    [res] = rec["results"]
    assert res["nc"] == ds.attrs["cache_path"] and res["computed"] and res["function"].endswith("squares")
    assert res["json"] == res["nc"][:-3] + ".json" and res["nc"].startswith(str(fresh / "results"))
    with xr.open_dataset(rec["drawn"], engine="h5netcdf") as dv:  # the drawn values, read back from the artists
        np.testing.assert_array_equal(dv.a0_line0_y.values, ds.y.values)
        np.testing.assert_array_equal(dv.a0_points0_y.values, ds.y.values + 1)
        assert dv.a0_line0_y.attrs["label"] == "x squared" and dv.a0_line0_x.attrs["axes_xlabel"] == "x"
        assert dv["a0_segments1"].shape == (5, 2, 2)  # one error bar per point, two ends, (x, y)
        assert json.loads(dv.attrs["results"]) == [f"{res['function']}/{res['nc'].rsplit('/', 1)[1]}"]

    # nothing served since: a figure drawn inline from the same data names its results by `uses`
    rec_b = provenance.figure("fig-b", draw(ds), uses="fig-a")
    assert rec_b["drawn_by"] == f"{__name__}.draw" and rec_b["results"] == rec["results"]
    assert provenance.figure("fig-c", draw(ds))["results"] == []
    rec_m = provenance.figure("fig-m",  # a call over several lines
                              draw(ds),
                              uses=["fig-a"])
    assert rec_m["drawn_by"] == f"{__name__}.draw" and len(rec_m["results"]) == 1
    again = cache.cached(squares)({"n": 5})  # read from the cache this time
    rec_d = provenance.figure("fig-d", draw(again), drawn_by="my.own.call")
    assert rec_d["drawn_by"] == "my.own.call" and [r["computed"] for r in rec_d["results"]] == [False]
    with pytest.raises(ValueError, match="no earlier figure"):
        provenance.figure("fig-e", fig, uses="fig-z")

    man = provenance.manifest("ch", fresh / "prov")
    assert list(man) == ["fig-a", "fig-b", "fig-c", "fig-m", "fig-d"] and provenance.missing_files("ch", fresh / "prov") == []
    wall = json.loads(open(res["json"]).read())["wall_time_s"]
    assert provenance.results_log("ch", fresh / "prov") == {"computed": 1, "read": 0, "compute_s": wall}
    (fresh / "prov" / "ch" / "fig-a.drawn.nc").unlink()
    assert provenance.missing_files("ch", fresh / "prov") == [str(fresh / "prov" / "ch" / "fig-a.drawn.nc")]
    plt.close("all")


def test_nothing_written_without_the_build(fresh, monkeypatch):
    monkeypatch.delenv(provenance.CHAPTER_ENV)
    rec = provenance.figure("fig-a", draw(cache.cached(squares)({"n": 3})))
    assert rec["drawn"] is None and len(rec["results"]) == 1
    assert not (fresh / "prov").exists() or not any((fresh / "prov").glob("*.json"))
    plt.close("all")


def test_drawn_values_over_the_limit_are_thinned_and_said_so():
    ds = xr.Dataset({"a_x": ("a", np.arange(5000.0)), "b_x": ("b", np.arange(10.0))})
    assert provenance.reduce_to(ds, ds.nbytes) is ds
    out = provenance.reduce_to(ds, 10_000)
    assert out.nbytes <= 10_000 and out.sizes["b"] == 10 and "every 8-th point" in out.attrs["reduced"]
    np.testing.assert_array_equal(out.a_x.values, np.arange(0.0, 5000.0, 8))


def test_results_log_counts_distinct_results(tmp_path):
    log = tmp_path / "c.results.jsonl"
    lines = [{"function": "f", "path": "/r/a.nc", "computed": False, "wall_time_s": None},
             {"function": "f", "path": "/r/b.nc", "computed": True, "wall_time_s": 2.5},
             {"function": "f", "path": "/r/a.nc", "computed": False, "wall_time_s": None}]
    log.write_text("".join(json.dumps(e) + "\n" for e in lines))
    assert provenance.results_log("c", tmp_path) == {"computed": 1, "read": 1, "compute_s": 2.5}
    assert provenance.results_log("other", tmp_path) is None


def test_build_page_shows_the_record_machine_versions(tmp_path):
    (tmp_path / "build.json").write_text(json.dumps({"started": 0, "chapters_s": 75.0, "chapters": [
        {"name": "book/01_x", "state": "executed", "seconds": 61.2, "last_seconds": None, "reason": "not executed yet"},
        {"name": "book/02_y", "state": "cached", "seconds": None, "last_seconds": 30.0, "reason": ""}]}))
    (tmp_path / "01_x.results.jsonl").write_text(json.dumps({"function": "f", "path": "/a.nc", "computed": True,
                                                             "wall_time_s": 40.0}) + "\n")
    page = provenance.build_page(tmp_path)._repr_html_()
    assert "<td>book/01_x</td><td>executed (stale: not executed yet)</td><td>1:01</td><td>1</td><td>0</td><td>0:40</td>" in page
    assert "<td>book/02_y</td><td>from the jupyter cache</td><td>0:30 (when executed)</td><td>n/a</td>" in page
    for name in ("python", "jax", "jaxlib", "flax", "optax", "numpy", "xarray", "jupyter-book", "cpu", "memory",
                 "jax devices"):
        assert f"<td>{name}</td>" in page
    assert 'class="earlytrain-build-total">1:15 to execute' in page
    assert re.search(r"commit <code>([0-9a-f]{40}|unknown)", page)


def test_the_built_book_has_a_data_line_under_every_figure():
    """The repository's own build (``make book``), when there is one: every figure of every page has
    its data line, and every file it links exists and opens with xarray."""
    from pathlib import Path
    html = Path(provenance.REPO_ROOT) / "_build" / "html"
    chapters = sorted((Path(provenance.REPO_ROOT) / "book").glob("0*.md"))
    if not all((html / "book" / f"{c.stem}.html").is_file() for c in chapters):
        pytest.skip("the book is not built in this checkout (make book)")
    got = provenance.check_html(html)
    n = sum(len(re.findall(r"^```\{glue:figure\}", c.read_text(), re.M)) for c in chapters)
    assert got["figures"] >= n and got["files"] >= n  # at least its drawn values per figure


# ----------------------------------------------------------------------------- a tiny book
CHAPTER = """\
import json, os
import numpy as np, xarray as xr
import matplotlib.pyplot as plt
from earlytrain.book import provenance
from earlytrain.cache import cached

def squares(cfg):
    x = np.arange(cfg["n"], dtype=float)
    return xr.Dataset({"y": ("x", x ** 2)}, coords={"x": x})

def draw(ds):
    fig, ax = plt.subplots()
    ax.plot(ds.x.values, ds.y.values)
    return fig

res = cached(squares)({"n": 6})
fig = draw(res)
provenance.figure("sq-fig", fig)
plt.close(fig)
d = os.environ["EARLYTRAIN_CLAIMS"]
os.makedirs(d, exist_ok=True)
with open(os.path.join(d, "a.json"), "w") as f:
    json.dump({"chapter": "a", "claims": [{"id": "sq-claim", "figure": "fig-a-sq", "verdict": "reproduced"}]}, f)
"""


def test_tiny_book_has_data_lines_and_build_page(tmp_path):
    import jupytext
    import nbformat
    from test_build import build, dry_run, make_book, notebook

    nb = nbformat.reads(notebook(CHAPTER), as_version=4)
    nb.cells.append(nbformat.v4.new_markdown_cell("```{glue:figure} sq-fig\n:name: fig-a-sq\n\nSquares.\n```"))
    info = ("---\nearlytrain:\n  build_info: true\njupytext:\n  text_representation:\n    format_name: myst\n"
            "kernelspec:\n  display_name: Python 3\n  language: python\n  name: python3\n---\n\n# Build\n\n"
            "```{code-cell}\nfrom earlytrain.book import provenance\nprovenance.build_page()\n```\n")
    root, env = make_book(tmp_path, {"a": jupytext.writes(nb, fmt="md:myst"), "build_info": info})
    (root / "report.md").write_text("# Report\n\n<table><tr><td><code>sq-claim</code></td></tr></table>\n")
    with open(root / "_toc.yml", "a") as f:
        f.write("  - file: report\n")
    with open(root / "_config.yml", "a") as f:
        f.write("sphinx:\n  extra_extensions: [earlytrain.book.sphinxext]\n  config:\n    earlytrain_report_doc: report\n")
    r = build(root, env)
    assert r.returncode == 0, r.stdout + r.stderr
    html = root / "_build" / "html"
    got = provenance.check_html(html)
    assert got["figures"] == 1 and got["files"] == 3  # drawn values, the result's .nc and .json
    page = (html / "a.html").read_text()
    line = re.search(r'<p class="earlytrain-data">(.*?)</p>', page, re.S).group(1)
    assert "__main__.draw" in line and 'href="report.html#sq-claim"' in line and "squares" in line
    assert '<span id="sq-claim"></span><code>sq-claim</code>' in (html / "report.html").read_text()
    build_page = (html / "build_info.html").read_text()
    assert re.search(r"<td>a</td><td>executed \(stale: not executed yet\)</td><td>\d+:\d\d</td><td>1</td><td>0</td>", build_page)
    assert re.search(r'earlytrain-build-total">\d+ min \d+ s \(execution and rendering', build_page)
    assert "figure data: 3 files" in r.stdout + r.stderr

    r = build(root, env)  # the chapter from the jupyter cache: its manifest is still there
    assert r.returncode == 0, r.stdout + r.stderr
    assert "stale: a" not in r.stdout and "stale: build_info (executes in every build)" in r.stdout
    assert provenance.check_html(html)["figures"] == 1
    assert re.search(r"<td>a</td><td>from the jupyter cache</td>.*?<td>1</td><td>0</td>",
                     (html / "build_info.html").read_text())

    shutil.rmtree(root / "_build" / "provenance")
    assert dry_run(root, env)["a"][1].startswith("a (figures not recorded in")
