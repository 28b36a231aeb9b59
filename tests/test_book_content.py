"""What the book says, not only that it runs.

Without compute (every chapter, book/NN_*.md, and any chapter added later):

* every ``{glue}`` key a chapter's text uses (roles ``{glue}``, ``{glue:text}``, ... and directives
  ``{glue:figure}``, ...) is defined by a ``glue(...)`` call in that chapter's code (a literal key,
  an f-string pattern, or a key of a literal table the call's loop runs over);
* every value of the chapter's defaults, ``quick.yaml`` and ``paper.yaml`` passes the library's
  validation: the chapter's code up to its configuration cell runs with the preset's values, as
  papermill injects them (``sweep.from_params``, ``connectivity.from_params``, ... validate; no
  sweep runs), and so does every later statement that only builds a config from parameters
  (``uv.phases.EarlyConfig(...)``). That every key is a parameter is tests/test_params.py's.

With compute (``notebook`` marker): each chapter runs once with its ``quick.yaml`` (papermill, after
jupytext converts it, as ``make rerun`` runs it); that one execution is checked for

* every claim the chapter tests recorded, in order, with every field valid (earlytrain.book.claims);
* every glue key its text uses glued by the run (exact, where the static check reads code);
* chapter 02's exact checks (closed-form top eigenvalue vs the dense Hessian, GD on (u, v) vs the
  function-space map) below the tolerance its claim states.
"""
from __future__ import annotations

import ast
import builtins
import json
import os
import re
import sys
from pathlib import Path

import pytest
import yaml

from earlytrain.book import params

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"
CHAPTERS = sorted(BOOK.glob("[0-9][0-9]_*.md"))
ids = [p.stem for p in CHAPTERS]


def code_cells(nb) -> list[str]:
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]


# ----------------------------------------------------------------------------- glue keys
GLUE_ROLE = re.compile(r"\{glue(?::(any|text|md|math|figure))?:?\}`([^`]+)`")
GLUE_DIRECTIVE = re.compile(r"^\s*(?:`{3,}|:{3,})\{glue(?::\w+)?\}[ \t]+(\S+)", re.M)


def glue_uses(nb) -> set[str]:
    """The glue keys the markdown cells use (``{glue:text}`key:.2f``` gives ``key``)."""
    used = set()
    for cell in nb["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        text = "".join(cell["source"])
        for kind, body in GLUE_ROLE.findall(text):
            key = body.strip()
            if kind == "text" and ":" in key.split("::")[-1]:
                key = key.rsplit(":", 1)[0]  # {glue:text}`key:format`
            used.add(key)
        used.update(GLUE_DIRECTIVE.findall(text))
    return used


def _pattern(node: ast.expr) -> str | None:
    """A regex for a key expression: a string literal exactly, an f-string with each field as .+"""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return re.escape(node.value)
    if isinstance(node, ast.JoinedStr):
        return "".join(re.escape(v.value) if isinstance(v, ast.Constant) else ".+" for v in node.values)
    return None


def glue_definitions(nb) -> list[str]:
    """Regexes of the keys the code cells glue: ``glue("k", ...)``, ``glue(f"k-{x}", ...)``,
    ``provenance.figure("k", fig)`` (a figure with its data line); a key
    held in a variable (``for key, v in (("a", 1), ...): glue(key, v)``) may be any string
    literal of the statement that binds it (the loop's table)."""
    out = []
    for src in code_cells(nb):
        try:
            tree = ast.parse("\n".join("" if re.match(r"\s*[%!]", ln) else ln for ln in src.splitlines()))
        except SyntaxError:
            continue
        loops = [n for n in ast.walk(tree) if isinstance(n, (ast.For, ast.comprehension))]
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and node.args and
                    getattr(node.func, "id", getattr(node.func, "attr", None)) in ("glue", "figure")):
                continue
            p = _pattern(node.args[0])
            if p is not None:
                out.append(p)
                continue
            names = {n.id for n in ast.walk(node.args[0]) if isinstance(n, ast.Name)}
            for loop in loops:
                if names & {n.id for n in ast.walk(loop.target) if isinstance(n, ast.Name)}:
                    out += [re.escape(c.value) for c in ast.walk(loop.iter)
                            if isinstance(c, ast.Constant) and isinstance(c.value, str)]
                    out += [p for c in ast.walk(loop.iter) if isinstance(c, ast.JoinedStr)
                            for p in [_pattern(c)] if p]
    return out


def undefined_keys(nb) -> list[str]:
    defs = [re.compile(p) for p in glue_definitions(nb)]
    return sorted(k for k in glue_uses(nb) if "::" not in k and not any(d.fullmatch(k) for d in defs))


def test_glue_scanners_on_a_synthetic_chapter():
    md = lambda s: {"cell_type": "markdown", "source": s}
    code = lambda s: {"cell_type": "code", "source": s}
    nb = {"cells": [
        md("A {glue:text}`a-val:.2f`, {glue}`b`, {glue:}`c-1` and {glue:text}`missing`.\n\n"
           "```{glue:figure} fig-x\n:name: fig-x\n```\n\n:::{glue:figure} fig-y\n:::\n"),
        code('glue("a-val", 1.0, display=False)\nglue("b", 2)\nfor k in (1, 2):\n    glue(f"c-{k}", k)\n'
             'for key, v in (("fig-x", 1), ("fig-z", 2)):\n    glue(key, v, display=False)\n'
             '%matplotlib inline\nmyst_nb.glue("fig-y", 0)'),
    ]}
    assert glue_uses(nb) == {"a-val", "b", "c-1", "missing", "fig-x", "fig-y"}
    assert undefined_keys(nb) == ["missing"]


@pytest.mark.parametrize("nb_path", CHAPTERS, ids=ids)
def test_every_glue_key_used_is_glued(nb_path):
    nb = params.read_notebook(nb_path)
    assert glue_uses(nb), "the chapter's text shows computed values"
    missing = undefined_keys(nb)
    assert not missing, f"{nb_path.name} uses glue keys no glue call defines: {missing}"


# ----------------------------------------------------------------------------- preset values
CONFIG_CALL = re.compile(r"(Config|from_params)$")


def _builds_a_config(stmt: ast.stmt) -> bool:
    """``name = <...>.XConfig(...)`` or ``name = <...>.from_params(...)``."""
    if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)
            and isinstance(stmt.value, ast.Call)):
        return False
    f = stmt.value.func
    return bool(CONFIG_CALL.search(getattr(f, "attr", getattr(f, "id", ""))))


def validate(nb_path: Path, values: dict) -> list[str]:
    """Run the chapter's code up to its configuration cell with ``values`` injected after its
    parameters cell, then each later statement that only builds a config from what is bound;
    returns the names of the configs built (a bad value raises the library's ConfigError)."""
    cells = [c for c in params.read_notebook(nb_path)["cells"] if c["cell_type"] == "code"]
    code = ["".join(c["source"]) for c in cells]
    i = [k for k, c in enumerate(cells) if "parameters" in c["metadata"].get("tags", [])][0]
    ns: dict = {"__name__": "chapter"}  # compiled as a kernel runs it (dont_inherit: not under
    # this file's `from __future__ import annotations`, which turns a chapter's dataclass fields
    # into strings that dataclasses look up in a module "chapter" that does not exist)
    for src in code[:i + 1]:
        exec(compile(src, f"{nb_path.name}", "exec", dont_inherit=True), ns)
    ns.update(values)  # papermill's injected cell
    built = []
    before = set(ns)
    exec(compile(code[i + 1], f"{nb_path.name}", "exec", dont_inherit=True), ns)  # the configuration cell
    is_config = lambda v: "Config" in type(v).__name__ or (
        isinstance(v, dict) and bool(v) and all("Config" in type(x).__name__ for x in v.values()))
    built += [k for k in ns if k not in before and is_config(ns[k])]
    for src in code[i + 2:]:
        for stmt in ast.parse(src).body:
            if not _builds_a_config(stmt):
                continue
            loads = {n.id for n in ast.walk(stmt.value) if isinstance(n, ast.Name)}
            if loads - set(ns) - set(dir(builtins)):
                continue  # needs something the chapter computes first
            exec(compile(ast.Module([stmt], []), f"{nb_path.name}", "exec", dont_inherit=True), ns)
            built.append(stmt.targets[0].id)
    return built


@pytest.mark.parametrize("preset", ["defaults", "quick", "paper"])
@pytest.mark.parametrize("nb_path", CHAPTERS, ids=ids)
def test_preset_values_pass_the_library_validation(nb_path, preset, tmp_path, monkeypatch):
    import matplotlib
    matplotlib.use("Agg")
    monkeypatch.setenv("EARLYTRAIN_CLAIMS", str(tmp_path / "claims"))
    monkeypatch.setenv("EARLYTRAIN_RESULTS", str(tmp_path / "results"))
    monkeypatch.chdir(BOOK)  # where the chapters run
    values = {} if preset == "defaults" else \
        yaml.safe_load((BOOK / "params" / nb_path.stem / f"{preset}.yaml").read_text()) or {}
    built = validate(nb_path, values)
    assert built, "at least one config is built from the parameters without compute"
    assert not (tmp_path / "results").exists(), "nothing was computed"


def test_validate_catches_a_bad_value(tmp_path, monkeypatch):
    from earlytrain.errors import ConfigError
    monkeypatch.setenv("EARLYTRAIN_CLAIMS", str(tmp_path / "claims"))
    monkeypatch.chdir(BOOK)
    uv_chapter = BOOK / "02_uv_model.md"  # its configs are built after the configuration cell
    assert {"cfg", "sat_cfg"} <= set(validate(uv_chapter, {}))
    with pytest.raises(ConfigError):
        validate(uv_chapter, {"n_init": -3})
    with pytest.raises(ConfigError):
        validate(BOOK / "01_phase_diagram.md", {"batch_size": 0})


# ----------------------------------------------------------------------------- executed quick presets
@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """``executed(nb_path)`` -> (executed notebook, claims dir): each chapter's quick preset run
    once by papermill in this module, whichever tests ask for it."""
    import jupytext
    import papermill as pm
    runs: dict[str, tuple] = {}

    def run(nb_path: Path):
        if nb_path.stem not in runs:
            tmp = tmp_path_factory.mktemp(nb_path.stem)
            env = {"EARLYTRAIN_RESULTS": str(tmp / "results"), "EARLYTRAIN_CLAIMS": str(tmp / "claims"),
                   "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
            saved = {k: os.environ.get(k) for k in env}
            os.environ.update(env)
            try:
                params_ = yaml.safe_load((BOOK / "params" / nb_path.stem / "quick.yaml").read_text())
                src, out = tmp / f"{nb_path.stem}.input.ipynb", tmp / f"{nb_path.stem}.ipynb"
                jupytext.write(jupytext.read(nb_path), src, fmt="ipynb")  # as make rerun runs it
                pm.execute_notebook(str(src), str(out), parameters=params_, cwd=str(BOOK),
                                    kernel_name="python3", progress_bar=False)
            finally:
                for k, v in saved.items():
                    os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
            runs[nb_path.stem] = (json.loads(out.read_text()), tmp / "claims")
        return runs[nb_path.stem]
    return run


def outputs(nb):
    return [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]


@pytest.mark.notebook
@pytest.mark.parametrize("nb_path", CHAPTERS, ids=ids)
def test_quick_preset_runs_and_records_valid_claims(nb_path, executed):
    from earlytrain.book import claims
    nb, claims_dir = executed(nb_path)
    assert [c for c in nb["cells"] if "injected-parameters" in c["metadata"].get("tags", [])], "the preset"
    assert not [o for o in outputs(nb) if o.get("output_type") == "error"]
    recorded = claims.load(claims_dir)
    if not claims.claims_of(nb_path.stem):  # a page beyond the paper (10_your_own_model): none
        assert recorded == {}, "a chapter without registered claims records none"
        return
    assert list(recorded) == [nb_path.stem], "the chapter records its claims under its own name"
    records = recorded[nb_path.stem]["records"]
    assert [r.id for r in records] == [c.id for c in claims.claims_of(nb_path.stem)], "every claim, in order"
    problems = [p for r in records for p in r.problems()]
    assert not problems, problems
    assert recorded[nb_path.stem]["scale"]


@pytest.mark.notebook
@pytest.mark.parametrize("nb_path", CHAPTERS, ids=ids)
def test_quick_preset_glues_every_key_its_text_uses(nb_path, executed):
    nb, _ = executed(nb_path)
    glued = {o["metadata"]["scrapbook"]["name"] for o in outputs(nb) if "scrapbook" in o.get("metadata", {})}
    missing = sorted(k for k in glue_uses(nb) if "::" not in k and k not in glued)
    assert not missing, f"the quick run of {nb_path.name} glues none of {missing}"
    figures = [k for k in glue_uses(nb) if any(k == o["metadata"]["scrapbook"]["name"] and any(
        m.endswith("image/png") for m in o.get("data", {})) for o in outputs(nb) if "scrapbook" in o.get("metadata", {}))]
    assert figures, "its figures are glued as images"


@pytest.mark.notebook
def test_uv_exact_checks_below_their_stated_tolerance(executed):
    """Chapter 02: |closed form - dense eigvalsh| and max |lambda_GD - lambda_map| (float64) are
    below the 1e-10 that claim uv-exact states, in the chapter's own quick run."""
    from earlytrain.book import claims
    tol = 1e-10
    assert f"{tol:g}" in claims.REGISTRY["uv-exact"].rule, "the tolerance is the claim's"
    nb, claims_dir = executed(BOOK / "02_uv_model.md")
    rec = {r.id: r for r in claims.load(claims_dir)["02_uv_model"]["records"]}["uv-exact"]
    assert set(rec.measured) == {"closed form", "map"}
    assert all(0 <= v < tol for v in rec.measured.values()), rec.measured
    assert rec.verdict == "reproduced"
    glued = {o["metadata"]["scrapbook"]["name"]: o["data"] for o in outputs(nb) if "scrapbook" in o.get("metadata", {})}
    for key in ("uv-err-top", "uv-err-map"):  # the numbers the page prints are the same
        text = next(v for m, v in glued[key].items() if m.endswith("text/plain"))
        assert float("".join(text)) < tol, (key, text)
