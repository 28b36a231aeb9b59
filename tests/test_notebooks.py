"""Every chapter is a MyST Markdown notebook (book/NN_*.md, jupytext's myst format: text, no
outputs; the book computes them when it is built) with one `parameters` cell, its two presets and
its place in _toc.yml. Running each chapter with its `quick.yaml` preset (papermill, after jupytext
converts it) and checking what the run says is tests/test_book_content.py's."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

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


def test_toc_reads_the_chapters_in_their_numbered_order():
    """The reading order (_toc.yml) follows the chapters' numbers: a reader of chapter 08 has read 07."""
    import yaml
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [c["file"] for part in toc["parts"] for c in part["chapters"]]
    numbered = [f for f in files if f.split("/")[-1][:2].isdigit()]
    assert numbered == sorted(numbered) == [f"book/{p.stem}" for p in CHAPTERS]
