"""The pages as a reader sees them (issue 19): offline math, folded analysis cells, download
buttons, exercises with hidden solutions, checked in the built HTML and in headless Chromium.

The full book takes about 25 minutes to build, so this builds a tiny book with the book's own
_config.yml (offline MathJax, sphinx-exercise, the .ipynb download, the buttons) as a user builds
it (scripts/build_book.py): one MyST chapter with math, a parameters cell, a folded analysis cell,
a glued figure, a data download link, and an exercise whose solution quotes a glued value and
links the figure. `scripts/browser_check.py _build/html` runs the same browser check on the full
book after `make book`.

The browser test needs Debian's Chromium (`apt-get install chromium`, done by `make test`'s
set-up, scripts/setup_browser.sh) and skips, saying so, where it is absent.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = REPO / "scripts"
sys.path.insert(0, str(SCRIPTS))
import browser_check  # noqa: E402

CHAPTER = r"""---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---

# A tiny chapter on $c_{loss}$

The loss catapults when $c > 2$, and the constants are ordered,

$$c_{loss} \le c_{sharp} \le c_{max}.$$

```{code-cell}
:tags: [parameters]

width = 64  # the interface stays visible
```

```{code-cell}
:tags: [hide-input]

import matplotlib.pyplot as plt
from myst_nb import glue
fig, ax = plt.subplots(figsize=(3, 2))
ax.plot([0, 1, 2], [1.0, 2.0, 4.0])
glue("fig-tiny", fig, display=False)
glue("tiny-slope", f"{2.0 * width / 64:.1f}", display=False)
plt.close(fig)
print("the analysis prints below its folded input")
```

```{glue:figure} fig-tiny
:name: fig-tiny

A figure whose data {download}`download here <data/tiny.json>`.
```

## Exercises

```{exercise} Double the width
:label: ex-tiny-width

Predict, then test with `make rerun` and `width = 128`: does the slope change?
```

```{solution} ex-tiny-width
:class: dropdown

The book's run shows a slope of {glue:text}`tiny-slope` ({numref}`fig-tiny`).
```
"""


def _config() -> str:
    """The book's _config.yml, with the tiny book's sources in place of the book's."""
    cfg = yaml.safe_load((REPO / "_config.yml").read_text())
    cfg["title"] = "tiny"
    cfg["exclude_patterns"] = ["_build", "_offline", "scripts", "data", "**.ipynb_checkpoints"]
    cfg["execute"]["timeout"] = 300
    return yaml.safe_dump(cfg, sort_keys=False)


@pytest.fixture(scope="module")
def tiny_book(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tiny") / "bk"
    root.mkdir()
    (root / "_config.yml").write_text(_config())
    (root / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n  - file: ch\n  - file: notes\n")
    (root / "notes.md").write_text("# Notes\n\nNo math of its own; the sidebar's chapter title has some.\n")
    (root / "intro.md").write_text("# Tiny book\n\nInline math $\\lambda^H_0$ on a plain page.\n")
    (root / "ch.md").write_text(CHAPTER)
    (root / "data").mkdir()
    (root / "data" / "tiny.json").write_text('{"c_loss": [2.1, 2.4]}\n')
    mathjax = REPO / "_offline" / "_static" / "mathjax"
    if (mathjax / "tex-mml-chtml.js").exists():  # fetched by make data
        shutil.copytree(REPO / "_offline", root / "_offline", symlinks=False)
    else:
        subprocess.run(["bash", str(SCRIPTS / "fetch_static.sh"), str(root / "_offline" / "_static" / "mathjax")],
                       check=True, timeout=600)
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'lib'}{os.pathsep}{SCRIPTS}",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "EARLYTRAIN_RESULTS": str(root / "results")}
    r = subprocess.run([sys.executable, str(SCRIPTS / "build_book.py"), str(root)], env=env,
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    return root / "_build" / "html"


def test_math_is_served_by_the_book(tiny_book):
    page = (tiny_book / "ch.html").read_text()
    src = re.findall(r'<script[^>]*src="([^"]*tex-mml-chtml\.js)[^"]*"', page)
    assert src == ["_static/mathjax/tex-mml-chtml.js"], src
    assert "cdn.jsdelivr" not in page and "mathjax@3" not in page
    js = tiny_book / "_static" / "mathjax"
    assert (js / "tex-mml-chtml.js").stat().st_size > 500_000
    assert list((js / "output" / "chtml" / "fonts" / "woff-v2").glob("*.woff")), "the fonts MathJax loads"
    # Jupyter Book adds every .js of the root _static folder to every page: MathJax must not be there
    assert len(re.findall(r"<script[^>]*_static/mathjax/", page)) == 1


def test_analysis_cells_fold_and_the_parameters_cell_does_not(tiny_book):
    page = (tiny_book / "ch.html").read_text()
    cells = re.findall(r'<div class="cell([^"]*)"', page)
    assert any("tag_parameters" in c and "tag_hide-input" not in c for c in cells), cells
    assert any("tag_hide-input" in c for c in cells), cells


def test_download_buttons_offer_source_and_notebook(tiny_book):
    page = (tiny_book / "ch.html").read_text()
    assert "_sources/ch.md" in page and "_sources/ch.ipynb" in page
    import nbformat
    nb = nbformat.read(tiny_book / "_sources" / "ch.ipynb", as_version=4)
    tags = [c.metadata.get("tags", []) for c in nb.cells if c.cell_type == "code"]
    assert ["parameters"] in tags, "papermill finds the parameters cell"
    assert any(o.get("output_type") for c in nb.cells if c.cell_type == "code" for o in c.outputs), \
        "the executed notebook, with its outputs"
    # launch buttons are off by default: no Colab/Binder links, no repository button
    assert "colab.research.google.com" not in page and "mybinder" not in page


def test_solution_is_a_dropdown_quoting_a_glued_value(tiny_book):
    page = (tiny_book / "ch.html").read_text()
    sol = re.search(r'<div class="solution dropdown admonition"[^>]*>(.*?)</div>', page, re.S)
    assert sol, "the solution is a dropdown (hidden until toggled)"
    assert re.search(r'slope of <span class="pasted-text">2\.0</span>', sol.group(1)), sol.group(1)
    assert 'href="#fig-tiny"' in sol.group(1), "the solution links the figure"


@pytest.mark.skipif(browser_check.find_chromium() is None,
                    reason="headless Chromium not installed (apt-get install chromium; make test's "
                           "set-up does it: scripts/setup_browser.sh)")
def test_every_page_in_headless_chromium(tiny_book, tmp_path):
    results = {r.page: r for r in browser_check.check(tiny_book)}
    assert set(results) == {"intro.html", "ch.html", "notes.html"}  # index.html only redirects
    assert {p: r.problems for p, r in results.items() if r.problems} == {}
    ch = results["ch.html"]
    assert ch.math >= 2 and results["intro.html"].math >= 1, "the formulas were typeset"
    assert results["notes.html"].math >= 1, "MathJax on a page without math: the sidebar's titles"
    assert ch.images >= 1 and ch.solutions == 1
    assert ch.links >= 3, "pages, the download button's files and the data file were followed"

    # the same check fails a copy whose math cannot load and whose figure and data file are gone
    broken = tmp_path / "html"
    shutil.copytree(tiny_book, broken)
    shutil.rmtree(broken / "_static" / "mathjax")
    for f in list((broken / "_images").iterdir()) + list((broken / "_downloads").rglob("tiny.json")):
        f.unlink()
    problems = " | ".join(browser_check.check(broken, pages=["ch.html"])[0].problems)
    assert "MathJax did not load" in problems and "raw TeX" in problems
    assert "image did not load" in problems and "tiny.json answers 404" in problems
    assert "console" in problems, "the failed loads are console errors"
