"""``make rerun`` as a new user meets it: papermill reads every chapter's parameters cell without
a warning, the sweep's cost is estimated before it computes (``earlytrain.estimate``), and a run
estimated over an hour asks first (scripts/rerun_chapter.py)."""
from __future__ import annotations

import logging
from pathlib import Path

import pytest

from earlytrain import params

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted(p.stem for p in (ROOT / "book").glob("0*.md"))


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_papermill_parses_every_parameters_cell_without_a_warning(chapter, caplog):
    from papermill.translators import PythonTranslator
    nb = params.read_notebook(ROOT / "book" / f"{chapter}.md")
    cell = next(c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", []))
    with caplog.at_level(logging.WARNING, logger="papermill"):
        found = PythonTranslator.inspect(cell)
    assert not [r.getMessage() for r in caplog.records], "papermill cannot parse these lines"
    # every declared parameter is found, with its comment as help (no comment swallowed a value)
    assert [p.name for p in found] == params.declared_names(params.parameters_source(nb))
    assert all(p.help for p in found), [p.name for p in found if not p.help]
