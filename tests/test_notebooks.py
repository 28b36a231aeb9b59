"""Every chapter runs end to end through papermill with its tiny `quick.yaml` preset and records
every claim it tests with valid fields (earlytrain.claims), and the committed notebooks carry no
outputs (the book computes them when it is built)."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted((ROOT / "book").glob("[0-9][0-9]_*.ipynb"))


@pytest.mark.parametrize("nb_path", CHAPTERS, ids=lambda p: p.stem)
def test_committed_notebook_is_clean_and_parameterised(nb_path):
    nb = json.loads(nb_path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert not any(c.get("outputs") for c in code), "commit notebooks without outputs"
    assert not any(c.get("execution_count") for c in code), "commit notebooks without execution counts"
    tagged = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters'"
    assert (ROOT / "book" / "params" / nb_path.stem / "quick.yaml").exists()
    assert (ROOT / "book" / "params" / nb_path.stem / "paper.yaml").exists()
    toc = (ROOT / "_toc.yml").read_text()
    assert f"book/{nb_path.stem}" in toc, "every chapter is in _toc.yml"


@pytest.mark.notebook
@pytest.mark.parametrize("nb_path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_runs_with_quick_preset(nb_path, tmp_path, monkeypatch):
    import papermill as pm
    monkeypatch.setenv("EARLYTRAIN_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("EARLYTRAIN_CLAIMS", str(tmp_path / "claims"))
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    params = yaml.safe_load((ROOT / "book" / "params" / nb_path.stem / "quick.yaml").read_text())
    out = tmp_path / nb_path.name
    pm.execute_notebook(str(nb_path), str(out), parameters=params, cwd=str(ROOT / "book"),
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
