"""Every chapter is a MyST Markdown notebook (book/NN_*.md, jupytext's myst format: text, no
outputs; the book computes them when it is built) with one `parameters` cell, and runs end to end
through papermill (after jupytext converts it to .ipynb) with its tiny `quick.yaml` preset,
recording every claim it tests with valid fields (earlytrain.claims)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted((ROOT / "book").glob("[0-9][0-9]_*.md"))


def test_chapters_are_text():
    """Every page of the book is MyST Markdown: no .ipynb in book/ (in git or on disk)."""
    assert CHAPTERS and (ROOT / "book" / "report.md").is_file()
    tracked = subprocess.run(["git", "ls-files", "book"], cwd=ROOT, capture_output=True, text=True).stdout
    assert not [f for f in tracked.split() if f.endswith(".ipynb")]
    assert not list((ROOT / "book").glob("*.ipynb"))
    assert not (ROOT / "scripts" / "make_nb_01.py").exists(), "chapter 01 is text like the others"


@pytest.mark.parametrize("nb_path", CHAPTERS + [ROOT / "book" / "report.md"], ids=lambda p: p.stem)
def test_chapter_is_a_myst_notebook_and_parameterised(nb_path):
    import jupytext
    from myst_nb.core.read import is_myst_markdown_notebook
    text = nb_path.read_text()
    assert is_myst_markdown_notebook(text), "a MyST notebook (jupytext front matter), which myst-nb executes"
    nb = jupytext.read(nb_path)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code
    assert "```{code-cell}" in text
    if nb_path.stem == "report":
        assert nb.metadata.get("earlytrain") == {"report": True}, "bookexec runs the report last"
        return
    tagged = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters'"
    assert (ROOT / "book" / "params" / nb_path.stem / "quick.yaml").exists()
    assert (ROOT / "book" / "params" / nb_path.stem / "paper.yaml").exists()
    toc = (ROOT / "_toc.yml").read_text()
    assert f"book/{nb_path.stem}" in toc, "every chapter is in _toc.yml"


@pytest.mark.notebook
@pytest.mark.parametrize("nb_path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_runs_with_quick_preset(nb_path, tmp_path, monkeypatch):
    import jupytext
    import papermill as pm
    monkeypatch.setenv("EARLYTRAIN_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("EARLYTRAIN_CLAIMS", str(tmp_path / "claims"))
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    params = yaml.safe_load((ROOT / "book" / "params" / nb_path.stem / "quick.yaml").read_text())
    src, out = tmp_path / f"{nb_path.stem}.input.ipynb", tmp_path / f"{nb_path.stem}.ipynb"
    jupytext.write(jupytext.read(nb_path), src, fmt="ipynb")  # as make rerun runs it
    pm.execute_notebook(str(src), str(out), parameters=params, cwd=str(ROOT / "book"),
                        kernel_name="python3", progress_bar=False)
    executed = json.loads(out.read_text())
    injected = [c for c in executed["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    assert injected, "papermill injected the preset"
    errors = [o for c in executed["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    images = [o for c in executed["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])
              if "image/png" in o.get("data", {})]
    # glue(..., display=False) keeps figures in the notebook's metadata-bearing outputs
    glued = [o for c in executed["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])
             if "application/papermill.record/image/png" in o.get("data", {})
             or o.get("metadata", {}).get("scrapbook")]
    assert images or glued or any("glue" in "".join(c["source"]) for c in executed["cells"])
    # the content: every claim the chapter tests is recorded, with every field valid
    from earlytrain import claims
    recorded = claims.load(tmp_path / "claims")
    assert list(recorded) == [nb_path.stem], "the chapter records its claims under its own name"
    records = recorded[nb_path.stem]["records"]
    assert [r.id for r in records] == [c.id for c in claims.claims_of(nb_path.stem)], "every claim, in order"
    problems = [p for r in records for p in r.problems()]
    assert not problems, problems
    assert recorded[nb_path.stem]["scale"]
