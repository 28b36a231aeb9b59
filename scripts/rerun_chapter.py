"""Re-run one chapter with new parameters (papermill + a YAML file) and rebuild the book with it.

Usage: python scripts/rerun_chapter.py CHAPTER PARAMS.yaml
  e.g. python scripts/rerun_chapter.py 01_phase_diagram book/params/01_phase_diagram/paper.yaml

0. Every key of the YAML must be a parameter the chapter declares (earlytrain.params; the
   chapter checks it again in its kernel, so plain papermill fails the same way).
1. The chapter's source, book/CHAPTER.md (a MyST Markdown notebook), is converted by jupytext to
   _runs/CHAPTER.input.ipynb (code cells and their tags, the 'parameters' one included, as they are).
2. papermill executes it with the YAML's values injected after its 'parameters' cell
   -> _runs/CHAPTER.ipynb (executed, with outputs). By hand, the same two steps are
       jupytext --to ipynb -o ch.ipynb book/CHAPTER.md
       papermill ch.ipynb out.ipynb -f PARAMS.yaml --cwd book
3. A copy of the book is assembled in _runs/book/ in which that chapter is the executed
   notebook, marked not to be re-executed; the other chapters are re-used from the library
   cache (results/), so only what changed is computed.
4. The book is built there: open _runs/book/_build/html/index.html. Its jupyter cache starts as
   a copy of the main book's (_build/.jupyter_cache), so the other chapters are executed again
   only if they are stale (scripts/bookexec.py).

Claims (earlytrain.claims): the copy has its own claims directory, _runs/book/_build/claims. It
starts as a copy of the main book's (the other chapters' rows), papermill's kernel records the
re-run chapter's claims into it (EARLYTRAIN_CLAIMS), and the build then re-executes the report,
whose claims changed: the report of the copy shows the re-run chapter's rows.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import bookexec
import jaxcache
import jupytext
import nbformat
import yaml
from earlytrain.errors import ConfigError
from earlytrain.params import check_notebook

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = Path(__file__).resolve().parent


def main(chapter: str, params: str, root: Path = ROOT) -> int:
    root = Path(root)
    chapter = Path(chapter).stem
    src = bookexec.source_of(root, f"book/{chapter}")
    if src is None:
        names = sorted({p.stem for p in (root / "book").glob("[0-9]*.*") if bookexec.is_notebook(p)})
        print(f"CHAPTER: no notebook book/{chapter}.md; expected one of {names}")
        return 2
    params_path = Path(params).resolve()
    if not params_path.exists():
        print(f"PARAMS: no such YAML file: {params}")
        return 2
    try:  # a name the chapter does not declare fails here, before a kernel starts (and in the kernel)
        check_notebook(src, yaml.safe_load(params_path.read_text()) or {})
    except ConfigError as err:
        print(f"PARAMS: {params}: {err}")
        return 2
    runs = root / "_runs"
    out = runs / f"{chapter}.ipynb"
    runs.mkdir(exist_ok=True)
    notebook = runs / f"{chapter}.input.ipynb"  # what papermill runs: the chapter as .ipynb
    jupytext.write(jupytext.read(src), notebook, fmt="ipynb")
    book = runs / "book"
    claims_main, claims_runs = bookexec.claims_dir(root), (book / "_build" / "claims").resolve()
    shutil.rmtree(claims_runs, ignore_errors=True)  # the other chapters' rows: the main book's
    claims_runs.mkdir(parents=True)
    for f in claims_main.glob("*.json") if claims_main.is_dir() and claims_main != claims_runs else []:
        shutil.copy(f, claims_runs / f.name)
    (claims_runs / f"{chapter}.json").unlink(missing_ok=True)  # a failed run leaves no old rows
    bindir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}",
           bookexec.CLAIMS_ENV: str(claims_runs)}
    jaxcache.enable(env)
    rc = subprocess.call([str(bindir / "papermill"), str(notebook), str(out), "-f", str(params_path),
                          "--cwd", str(root / "book"), "-k", "python3"], env=env)
    if rc != 0:
        print(f"papermill failed for {chapter} with {params}; the executed notebook is {out}")
        return rc
    if book.exists():
        shutil.rmtree(book / "book", ignore_errors=True)
    (book / "book").mkdir(parents=True, exist_ok=True)
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(root / name, book / name)
    if (root / "_offline").is_dir() and not (book / "_offline").exists():  # html_extra_path: MathJax
        (book / "_offline").symlink_to(root / "_offline")
    for item in (root / "book").iterdir():
        if item.name not in {f"{chapter}{s}" for s in bookexec.NOTEBOOK_SUFFIXES}:
            (book / "book" / item.name).symlink_to(item)
    nb = nbformat.read(str(out), as_version=4)  # the executed chapter replaces its source
    nb.metadata["mystnb"] = {"execution_mode": "off"}  # keep papermill's outputs as they are
    nbformat.write(nb, str(book / "book" / f"{chapter}.ipynb"))
    main_cache, runs_cache = bookexec.cache_path(root), bookexec.cache_path(book)
    if main_cache.is_dir() and not runs_cache.exists():  # records match by code cells, not path
        shutil.copytree(main_cache, runs_cache)
    return subprocess.call([sys.executable, str(SCRIPTS / "build_book.py"), str(book)], env=env)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__)
        sys.exit(2)
    sys.exit(main(*sys.argv[1:]))
