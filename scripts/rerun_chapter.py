"""Re-run one chapter with new parameters (papermill + a YAML file) and rebuild the book with it.

Usage: python scripts/rerun_chapter.py [--yes] CHAPTER PARAMS.yaml
  e.g. python scripts/rerun_chapter.py 01_phase_diagram book/params/01_phase_diagram/paper.yaml

0. Every key of the YAML must be a parameter the chapter declares (earlytrain.book.params; the
   chapter checks it again in its kernel, so plain papermill fails the same way).
   Then the cost is estimated before anything computes: the chapter's configuration (its code
   cells up to the one that calls ``check_injected()``, with the YAML's values injected after
   the parameters cell, then the ``name = ...Config(...)`` statements of its later cells) is run
   in this process, and every sweep configuration it builds (a
   ``SweepConfig``, ``SaturationConfig``, ``ConnectivityConfig`` or a uv sweep's) is costed by
   ``earlytrain.estimate`` (points, cached points, runs, Hessian-vector products or uv map steps,
   and a time from a short calibration on the device in use). A run estimated over an hour (ASK_OVER_S)
   asks before it starts, unless ``--yes`` (``make rerun ... YES=1``); without a terminal to
   ask on, it does not start. Configurations of other kinds are named as not estimated.
1. The chapter's source, book/CHAPTER.md (a MyST Markdown notebook), is converted by jupytext to
   _runs/CHAPTER.input.ipynb (code cells and their tags, the 'parameters' one included, as they are).
2. papermill executes it with the YAML's values injected after its 'parameters' cell
   -> _runs/CHAPTER.ipynb (executed, with outputs), with ``--log-output``: the console shows
   each cell as it starts and what the kernel prints, the sweeps' progress bars included
   (points done / to do, cached points, elapsed time, ETA). By hand, the same two steps are
       jupytext --to ipynb -o ch.ipynb book/CHAPTER.md
       papermill ch.ipynb out.ipynb -f PARAMS.yaml --cwd book
3. A copy of the book is assembled in _runs/book/ in which that chapter is the executed
   notebook, marked not to be re-executed; the other chapters are re-used from the library
   cache (results/), so only what changed is computed. The copy has its own cost file
   (book/params/costs.json, refreshed by its build), so the source tree's committed one is never
   written by a re-run.
4. The book is built there: open _runs/book/_build/html/index.html. Its jupyter cache starts as
   a copy of the main book's (_build/.jupyter_cache), so the other chapters are executed again
   only if they are stale (scripts/bookexec.py).

Claims (earlytrain.book.claims): the copy has its own claims directory, _runs/book/_build/claims. It
starts as a copy of the main book's (the other chapters' rows), papermill's kernel records the
re-run chapter's claims into it (EARLYTRAIN_CLAIMS), and the build then re-executes the report,
whose claims changed: the report of the copy shows the re-run chapter's rows. Its figure
manifests (earlytrain.book.provenance, _runs/book/_build/provenance) likewise start as the main book's,
and papermill's kernel records the re-run chapter's, so every figure keeps its data line.
"""
from __future__ import annotations

import ast
import contextlib
import io
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
from earlytrain.book.params import check_notebook

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = Path(__file__).resolve().parent
ASK_OVER_S = 3600  # a run estimated longer asks before it starts (unless --yes)
UNBUILT = "__unbuilt_configurations__"  # chapter_namespace: later configurations it could not build


def configuration_cells(src: Path) -> tuple[list[str], int] | None:
    """The chapter's code cells up to the one calling ``check_injected()`` (its configuration),
    and the index of its parameters cell among them; None if it has no such cells."""
    found = _cells(src)
    return None if found is None else (found[0], found[1])


def _cells(src: Path):
    nb = jupytext.read(src)
    code = [c for c in nb.cells if c.cell_type == "code"]
    tags = [set(c.metadata.get("tags", [])) for c in code]
    i_par = next((i for i, t in enumerate(tags) if "parameters" in t), None)
    i_cfg = next((i for i, c in enumerate(code) if "check_injected(" in c.source), None)
    if i_par is None or i_cfg is None or i_cfg < i_par:
        return None
    return [c.source for c in code[:i_cfg + 1]], i_par, [c.source for c in code[i_cfg + 1:]]


def later_configurations(cells: list[str]) -> list[ast.Assign]:
    """The statements ``name = <...>Config(...)`` at the top level of the chapter's later cells
    (a sweep set up next to the cell that runs it): building a configuration only validates it,
    so the estimate can build it before anything runs."""
    found = []
    for cell in cells:
        try:
            tree = ast.parse(cell)
        except SyntaxError:  # a cell with IPython magics: nothing to take from it
            continue
        for stmt in tree.body:
            if (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)
                    and isinstance(stmt.value, ast.Call)):
                func = stmt.value.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if name.endswith("Config"):
                    found.append(stmt)
    return found


def chapter_namespace(src: Path, values: dict) -> dict | None:
    """Run the chapter's configuration cells with ``values`` injected after its parameters cell,
    in this process (no claims recorded, output discarded), then build the configurations its
    later cells set up (``later_configurations``; those that need what earlier cells compute are
    listed under UNBUILT); their globals, or None."""
    found = _cells(src)
    if found is None:
        return None
    cells, i_par, later = found
    ns: dict = {"__name__": "__chapter__", UNBUILT: []}
    saved_env, saved_cwd = os.environ.pop(bookexec.CLAIMS_ENV, None), os.getcwd()
    os.environ.setdefault("MPLBACKEND", "Agg")
    try:
        os.chdir(src.parent)  # where the chapter runs (papermill --cwd book)
        with contextlib.redirect_stdout(io.StringIO()):
            for i, cell in enumerate(cells):
                exec(compile(cell, f"<{src.name} code cell {i + 1}>", "exec"), ns)
                if i == i_par:
                    ns.update(values)
            for stmt in later_configurations(later):
                try:
                    exec(compile(ast.Module([stmt], []), f"<{src.name}: {stmt.targets[0].id}>", "exec"), ns)
                except ConfigError:
                    raise
                except Exception:  # noqa: BLE001  (it needs what earlier cells compute)
                    ns[UNBUILT].append(stmt.targets[0].id)
    finally:
        os.chdir(saved_cwd)
        if saved_env is not None:
            os.environ[bookexec.CLAIMS_ENV] = saved_env
    return ns


def estimate_module():
    from earlytrain import estimate
    return estimate


def estimate_cost(src: Path, values: dict) -> float | None:
    """Print the estimated cost of the chapter's sweeps with ``values``; the seconds, or None if
    nothing could be estimated. A ConfigError (a bad value) propagates: it is the user's."""
    estimate = estimate_module()
    print(f"Estimating the cost of {src.stem} with these parameters (a short calibration on this device) ...",
          flush=True)
    try:
        ns = chapter_namespace(src, values)
    except ConfigError:
        raise
    except Exception as err:  # noqa: BLE001  (the estimate must not stop a run the kernel may manage)
        print(f"  no estimate: its configuration cells failed here ({type(err).__name__}: {err})")
        return None
    if ns is None:
        print("  no estimate: no configuration cell (a cell calling check_injected()) after the parameters")
        return None
    configs = estimate.sweep_configs(ns)
    total = 0.0
    for name, cfg in configs.items():
        cost = estimate.cost_of(cfg, name)
        print(str(cost), flush=True)
        total += cost.seconds
    others = estimate.other_configs(ns)
    if others:
        print("  not estimated: " + ", ".join(others))
    if ns.get(UNBUILT):
        print("  not estimated (set up from what the chapter computes first): " + ", ".join(ns[UNBUILT]))
    if not configs:
        print("  no estimate: the configuration builds no sweep configuration that earlytrain.estimate costs")
        return None
    print(f"Estimated total for these sweeps: about {estimate.fmt_seconds(total)} "
          f"(the chapter's other cells come on top)", flush=True)
    return total


def confirm(seconds: float | None, yes: bool, ask=input) -> bool:
    """Whether to start: always under ``yes`` or ASK_OVER_S; else ask on a terminal."""
    from earlytrain.estimate import fmt_seconds
    if yes or seconds is None or seconds <= ASK_OVER_S:
        return True
    if not sys.stdin.isatty():
        print(f"Not started: estimated about {fmt_seconds(seconds)}, over {ASK_OVER_S // 3600} h, and there "
              "is no terminal to ask on; start it with YES=1 (make rerun ... YES=1, or --yes)")
        return False
    try:
        answer = ask(f"Estimated about {fmt_seconds(seconds)}. Start it? [y/N] ")
    except EOFError:
        answer = ""
    if answer.strip().lower() in ("y", "yes"):
        return True
    print("Not started (YES=1 starts it without asking)")
    return False


def assemble_book(root: Path, book: Path, chapter: str, executed: Path) -> None:
    """The copy of the book in ``book`` (step 3 of the module docstring): the configuration files
    copied, ``book/`` mirrored by symlinks to the source tree's items, except that the re-run
    chapter is the ``executed`` notebook (not to be re-executed), and that the cost file
    (``bookexec.COSTS_FILE``, which the copy's build refreshes with its own times) is a copy in
    real directories: a symlinked ``book/params`` would let the re-run's build write the source
    tree's committed costs."""
    root, book = Path(root), Path(book)
    if book.exists():
        shutil.rmtree(book / "book", ignore_errors=True)
    (book / "book").mkdir(parents=True, exist_ok=True)
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(root / name, book / name)
    if (root / "_offline").is_dir() and not (book / "_offline").exists():  # html_extra_path: MathJax
        (book / "_offline").symlink_to(root / "_offline")
    costs = Path(bookexec.COSTS_FILE)  # relative to the root: book/params/costs.json
    real_dirs = {costs.parents[i] for i in range(len(costs.parents) - 1)} - {Path("book")}

    def mirror(rel: Path) -> None:  # rel: a directory of the source tree, made real in the copy
        for item in (root / rel).iterdir():
            name = rel / item.name
            if rel == Path("book") and item.name in {f"{chapter}{s}" for s in bookexec.NOTEBOOK_SUFFIXES}:
                continue
            if name in real_dirs and item.is_dir():
                (book / name).mkdir()
                mirror(name)
            elif name == costs:
                shutil.copy(item, book / name)
            else:
                (book / name).symlink_to(item.absolute())
    mirror(Path("book"))
    nb = nbformat.read(str(executed), as_version=4)  # the executed chapter replaces its source
    nb.metadata["mystnb"] = {"execution_mode": "off"}  # keep papermill's outputs as they are
    nbformat.write(nb, str(book / "book" / f"{chapter}.ipynb"))


def main(chapter: str, params: str, root: Path = ROOT, yes: bool = True) -> int:
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
    values = yaml.safe_load(params_path.read_text()) or {}
    try:  # a name the chapter does not declare fails here, before a kernel starts (and in the kernel)
        check_notebook(src, values)
    except ConfigError as err:
        print(f"PARAMS: {params}: {err}")
        return 2
    if not yes or os.environ.get("EARLYTRAIN_ESTIMATE", "1") != "0":
        try:
            seconds = estimate_cost(src, values)
        except ConfigError as err:
            print(f"PARAMS: {params}: {err}")
            return 2
        if not confirm(seconds, yes):
            return 3
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
    prov_main, prov_runs = bookexec.provenance_dir(root), (book / "_build" / "provenance").resolve()
    shutil.rmtree(prov_runs, ignore_errors=True)  # the other chapters' figure manifests: the main book's
    prov_runs.mkdir(parents=True)
    for f in prov_main.glob("*.json*") if prov_main.is_dir() and prov_main != prov_runs else []:
        shutil.copy(f, prov_runs / f.name)
    for f in (prov_runs / f"{chapter}.json", prov_runs / f"{chapter}.results.jsonl"):
        f.unlink(missing_ok=True)
    bindir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}",
           bookexec.CLAIMS_ENV: str(claims_runs), bookexec.PROV_ENV: str(prov_runs), "EARLYTRAIN_CHAPTER": chapter,
           "EARLYTRAIN_RESULTS_LOG": str(prov_runs / f"{chapter}.results.jsonl")}
    jaxcache.enable(env)
    rc = subprocess.call([str(bindir / "papermill"), str(notebook), str(out), "-f", str(params_path),
                          "--cwd", str(root / "book"), "-k", "python3", "--log-output", "--no-progress-bar"],
                         env=env)
    if rc != 0:
        print(f"papermill failed for {chapter} with {params}; the executed notebook is {out}")
        return rc
    assemble_book(root, book, chapter, out)
    main_cache, runs_cache = bookexec.cache_path(root), bookexec.cache_path(book)
    if main_cache.is_dir() and not runs_cache.exists():  # records match by code cells, not path
        shutil.copytree(main_cache, runs_cache)
    return subprocess.call([sys.executable, str(SCRIPTS / "build_book.py"), str(book)], env=env)


if __name__ == "__main__":
    args = sys.argv[1:]
    yes = "--yes" in args
    args = [a for a in args if a != "--yes"]
    if len(args) != 2:
        print(__doc__)
        sys.exit(2)
    sys.exit(main(*args, yes=yes))
