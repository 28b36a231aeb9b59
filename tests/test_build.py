"""The book build (scripts/build_book.py, scripts/bookexec.py) is never stale and reports failures.

A tiny book of two chapters is built against a *copy* of the earlytrain package, first on
PYTHONPATH, so the test can edit the library: chapter `a` imports `earlytrain.uv.model` and
`earlytrain.book.plotting.style`, chapter `b` only `earlytrain.book.plotting`. Builds run as a user runs
them (`python scripts/build_book.py ROOT`); `bookexec.py --dry-run` says what a build would execute.
Chapters `a` and `bad` are MyST Markdown notebooks (.md, as the book's chapters are), the others
.ipynb (as `make rerun`'s executed chapter is).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = REPO / "scripts"

CONFIG = """\
title: tiny
author: test
only_build_toc_files: true
exclude_patterns: [_build, "**.ipynb_checkpoints"]
execute:
  execute_notebooks: cache
  timeout: 120
  allow_errors: false
  stderr_output: remove
"""


def notebook(*cells: str, params: str | None = None, mode: str | None = None) -> str:
    def code(src, tags=()):
        return {"cell_type": "code", "execution_count": None, "metadata": {"tags": list(tags)},
                "outputs": [], "source": src}
    cs = [{"cell_type": "markdown", "metadata": {}, "source": "# Chapter"}]
    if params is not None:
        cs.append(code(params, ["parameters"]))
    cs += [code(c) for c in cells]
    for i, c in enumerate(cs):
        c["id"] = f"cell{i}"
    meta = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}}
    if mode:
        meta["mystnb"] = {"execution_mode": mode}  # as make rerun marks its chapter
    return json.dumps({"cells": cs, "nbformat": 4, "nbformat_minor": 5, "metadata": meta})


def myst(nb_json: str) -> str:
    """A notebook (JSON text) as a MyST Markdown notebook, as `jupytext --to myst` writes it."""
    import jupytext
    import nbformat
    return jupytext.writes(nbformat.reads(nb_json, as_version=4), fmt="md:myst")


def make_book(tmp: Path, chapters: dict[str, str]) -> tuple[Path, dict]:
    lib = tmp / "lib"
    shutil.copytree(REPO / "lib" / "earlytrain", lib / "earlytrain",
                    ignore=shutil.ignore_patterns("__pycache__"))
    root = tmp / "bk"
    root.mkdir()
    (root / "_config.yml").write_text(CONFIG)
    (root / "intro.md").write_text("# Tiny book\n")
    (root / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n"
                                   + "".join(f"  - file: {n}\n" for n in chapters))
    for name, text in chapters.items():  # MyST text starts with its front matter
        (root / f"{name}.{'md' if text.startswith('---') else 'ipynb'}").write_text(text)
    env = {**os.environ, "PYTHONPATH": f"{lib}{os.pathsep}{SCRIPTS}",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "EARLYTRAIN_RESULTS": str(tmp / "results")}
    return root, env


def build(root: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPTS / "build_book.py"), str(root)], env=env,
                          capture_output=True, text=True, timeout=600)


def dry_run(root: Path, env: dict) -> dict:
    out = subprocess.run([sys.executable, str(SCRIPTS / "bookexec.py"), str(root), "--dry-run"],
                         env=env, capture_output=True, text=True, timeout=120, check=True).stdout
    states = {}
    for line in out.splitlines():
        state, _, rest = line.partition(": ")
        states[rest.split(" ")[0]] = (state, rest)
    return states


def page(root: Path, name: str) -> str:
    return (root / "_build" / "html" / f"{name}.html").read_text()


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_notebook_imports_and_library():
    sys.path.insert(0, str(SCRIPTS))
    import nbformat
    import bookexec
    nb = nbformat.reads(notebook("import numpy as np\n%matplotlib inline\nfrom earlytrain.uv import model as uv\nfrom earlytrain import cache\n",
                                 "from earlytrain.book.plotting import use_style\nimport earlytrain.uv.phases\n"),
                        as_version=4)
    assert bookexec.notebook_imports(nb) == {"__init__", "uv.__init__", "uv.model", "cache", "book.plotting.__init__", "uv.phases"}
    lib = bookexec.library_of(nb)
    assert {"uv.model", "errors", "uv.phases", "cache", "book.plotting.style", "book.plotting.diagram"} <= set(lib)
    assert "sweep" not in lib and "train" not in lib


def test_rebuild_is_cached_and_never_stale(tmp_path):
    root, env = make_book(tmp_path, {
        "a": myst(notebook("from earlytrain.uv import model as uv\nfrom earlytrain.book.plotting.style import PHASE_COLORS\n"
                           "print('divergent colour', PHASE_COLORS['divergent'])")),
        "b": notebook("from earlytrain.book import plotting\nprint('phase colours', len(plotting.PHASE_COLORS))"),
        "manual": notebook("from earlytrain.uv import model as uv\nraise SystemExit('must not run')", mode="off"),
    })
    lib = tmp_path / "lib" / "earlytrain"

    r = build(root, env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "stale: a (not executed yet)" in r.stdout and "done " in r.stdout
    assert "Executing notebook" not in r.stdout + r.stderr, "jupyter-book executed nothing itself"
    assert "divergent colour #d9d9d9" in page(root, "a")
    assert "SystemExit: must not run" not in page(root, "manual"), "execution_mode off is respected"

    r = build(root, env)  # nothing changed: nothing executed, pages from the cache
    assert r.returncode == 0, r.stdout + r.stderr
    assert "stale:" not in r.stdout and "cached: a, b" in r.stdout and "running" not in r.stdout
    assert "Executing notebook" not in r.stdout + r.stderr

    edit(lib / "analyses" / "connectivity.py", '"""', '"""An edit outside both chapters\' import closures.\n')
    unchanged = {"a": "cached", "b": "cached", "manual": "not executed by the cache"}
    assert {k: v[0] for k, v in dry_run(root, env).items()} == unchanged

    edit(lib / "uv" / "model.py", '"""', '"""An edit inside chapter a\'s closure.\n')
    states = dry_run(root, env)
    assert states["a"] == ("stale", "a (library changed: uv.model)") and states["b"][0] == "cached"

    edit(lib / "book" / "plotting" / "style.py", '"divergent": "#d9d9d9"', '"divergent": "#ff0000"')
    states = dry_run(root, env)
    assert states["a"] == ("stale", "a (library changed: book.plotting.style, uv.model)")
    assert states["b"] == ("stale", "b (library changed: book.plotting.style)")
    r = build(root, env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "divergent colour #ff0000" in page(root, "a")

    assert {k: v[0] for k, v in dry_run(root, env).items()} == unchanged

    # the .md chapter is keyed on its code cells as myst-nb reads them: its prose is not, its code is
    edit(root / "a.md", "# Chapter", "# Chapter a, retitled")
    assert {k: v[0] for k, v in dry_run(root, env).items()} == unchanged
    edit(root / "a.md", "print('divergent colour'", "print('the divergent colour'")
    assert dry_run(root, env)["a"] == ("stale", "a (notebook changed)")


def test_failing_chapter_is_reported(tmp_path):
    root, env = make_book(tmp_path, {
        "good": notebook("print('fine')"),
        "bad": myst(notebook("x = 1", "def f(v):\n    return 1 / (v - 1)\nf(x)", params="x = 1")),
    })
    r = build(root, env)
    out = r.stdout + r.stderr
    assert r.returncode != 0
    assert "FAILED CHAPTER: bad.md" in out
    assert "Parameters it ran with:\nx = 1" in out
    assert "Failing cell: code cell 3 of 3" in out
    assert "return 1 / (v - 1)" in out and "ZeroDivisionError" in out  # the cell and the traceback
    assert "fine" in page(root, "good"), "the other chapter is still built"
    assert out.count("Executing notebook") == 0, "the failed chapter is not executed twice"


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
