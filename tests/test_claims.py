"""earlytrain.claims: the check functions on synthetic results, the registry, records and the
report (no training)."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from earlytrain import claims
from earlytrain.claims import VERDICTS, Check


# ----------------------------------------------------------------------------- check functions
def test_near():
    assert claims.near(2.3, 2.0, 0.5, 1.0).verdict == "reproduced"
    assert claims.near(2.9, 2.0, 0.5, 1.0).verdict == "partly"
    assert claims.near(3.5, 2.0, 0.5, 1.0).verdict == "not reproduced"
    assert claims.near(3.5, 2.0, 0.5).verdict == "not reproduced"
    assert claims.near(float("nan"), 2.0, 0.5).verdict == "not at this scale"
    assert claims.near(None, 2.0, 0.5).verdict == "not at this scale"
    assert claims.near(4.3, 4.0, 0.1, relative=True).verdict == "reproduced"   # 0.3 <= 0.4
    assert claims.near(4.5, 4.0, 0.1, relative=True).verdict == "not reproduced"
    assert "<=" in claims.near(2.3, 2.0, 0.5).detail


def test_within_and_at_least():
    assert claims.within(12.0, 8, 18, (6, 24)).verdict == "reproduced"
    assert claims.within(20.0, 8, 18, (6, 24)).verdict == "partly"
    assert claims.within(30.0, 8, 18, (6, 24)).verdict == "not reproduced"
    assert claims.within(float("nan"), 8, 18).verdict == "not at this scale"
    assert claims.at_least(1.0, 0.99, 0.9).verdict == "reproduced"
    assert claims.at_least(0.95, 0.99, 0.9).verdict == "partly"
    assert claims.at_least(0.5, 0.99, 0.9).verdict == "not reproduced"


def test_ordered():
    assert claims.ordered(1.0, 2.0).verdict == "reproduced"
    assert claims.ordered(2.0, 2.0).verdict == "reproduced"
    assert claims.ordered(2.0, 2.0, strict=True).verdict == "not reproduced"
    assert claims.ordered(3.0, 2.0).verdict == "not reproduced"
    assert claims.ordered(float("nan"), 2.0).verdict == "not at this scale"


def test_fraction_true():
    mask = np.array([True] * 9 + [False])
    assert claims.fraction_true(mask, 0.9, 0.5).verdict == "reproduced"
    assert claims.fraction_true(mask, 0.95, 0.5).verdict == "partly"
    assert claims.fraction_true(mask, 0.95, None).verdict == "not reproduced"
    # entries that are not valid do not count either way
    valid = np.array([True] * 5 + [False] * 5)
    assert claims.fraction_true(mask, 1.0, None, valid=valid).verdict == "reproduced"
    assert claims.fraction_true(mask, 0.9, valid=np.zeros(10, bool)).verdict == "not at this scale"
    assert "9 of 10" in claims.fraction_true(mask, 0.9).detail


def test_trend():
    x = [1 / 1024, 1 / 256, 1 / 64, 1 / 16]
    assert claims.trend(x, [2.0, 2.5, 4.0, 9.0], +1).verdict == "reproduced"
    assert claims.trend(x, [2.0, 3.0, 2.8, 9.0], +1).verdict == "partly"       # one step down, slope up
    assert claims.trend(x, [9.0, 4.0, 2.5, 2.0], +1).verdict == "not reproduced"
    assert claims.trend(x, [9.0, 4.0, 2.5, 2.0], -1).verdict == "reproduced"
    # the order of the inputs does not matter (sorted by x)
    assert claims.trend(x[::-1], [9.0, 4.0, 2.5, 2.0], +1).verdict == "reproduced"
    # NaN points are dropped; fewer than min_points finite: not at this scale
    assert claims.trend(x, [2.0, np.nan, np.nan, 9.0], +1).verdict == "not at this scale"
    assert claims.trend(x, [2.0, np.nan, np.nan, 9.0], +1, min_points=2).verdict == "reproduced"
    assert claims.trend(x, [2.0, 2.0, 2.0, 2.0], +1).verdict == "not reproduced"  # flat is not a rise


def test_all_of_and_holds():
    r, p, n, s = (Check(v, v) for v in VERDICTS)
    assert claims.all_of(r, r).verdict == "reproduced"
    assert claims.all_of(r, p).verdict == "partly"
    assert claims.all_of(r, n).verdict == "partly"
    assert claims.all_of(n, n).verdict == "not reproduced"
    assert claims.all_of(r, s).verdict == "not at this scale"
    assert claims.all_of(n, s).verdict == "not reproduced"
    assert claims.holds(True, "x").verdict == "reproduced"
    assert claims.holds(False, "x").verdict == "not reproduced"
    assert claims.holds(None, "x").verdict == "not at this scale"
    with pytest.raises(ValueError):
        Check("maybe", "")


# ----------------------------------------------------------------------------- registry
def test_registry_fields():
    assert 25 <= len(claims.REGISTRY) <= 55  # 43 of chapters 01-08, 7 of 09 (robustness)
    for c in claims.REGISTRY.values():
        assert c.paper in claims.PAPERS
        for f in ("where", "statement", "quantity", "expected", "rule", "figure", "preset"):
            assert isinstance(getattr(c, f), str) and getattr(c, f).strip(), (c.id, f)
        assert c.chapter[:2].isdigit()
    chapters = {c.chapter for c in claims.REGISTRY.values()}
    assert len(chapters) == 9
    for p in ("kb", "uv", "catapult"):
        assert any(c.paper == p for c in claims.REGISTRY.values())


def test_figure_labels_exist_in_chapters():
    from pathlib import Path
    book = Path(__file__).resolve().parent.parent / "book"
    for c in claims.REGISTRY.values():
        text = (book / f"{c.chapter}.md").read_text()
        assert f":name: {c.figure}" in text, (c.id, c.figure)


# ----------------------------------------------------------------------------- records
@pytest.fixture
def claims_dir(tmp_path, monkeypatch):
    monkeypatch.setenv(claims.ENV, str(tmp_path / "claims"))
    yield tmp_path / "claims"
    claims._STATE.clear()


def test_record_writes_valid_file(claims_dir):
    ch = "01_phase_diagram"
    claims.start(ch, "tiny")
    assert json.loads((claims_dir / f"{ch}.json").read_text())["claims"] == []
    r = claims.record(ch, "kb-closs-wide", measured=np.float32(2.2), spread=0.1)
    assert r.verdict == "reproduced" and r.problems() == []
    x = 1 / np.array([32, 64, 128])
    claims.record(ch, "kb-closs-width", measured={"w=32": 9.0, "w=64": 4.0, "w=128": 2.5}, x=x)
    claims.record(ch, "kb-csharp-width", measured={"w=32": np.nan, "w=64": np.nan, "w=128": np.nan}, x=x)
    data = json.loads((claims_dir / f"{ch}.json").read_text())  # strict JSON: NaN is null
    assert [c["id"] for c in data["claims"]] == ["kb-closs-wide", "kb-closs-width", "kb-csharp-width"]
    loaded = claims.load(claims_dir)[ch]["records"]
    assert [r.verdict for r in loaded] == ["reproduced", "reproduced", "not at this scale"]
    assert all(r.problems() == [] for r in loaded)
    assert loaded[1].measured == {"w=32": 9.0, "w=64": 4.0, "w=128": 2.5}
    # a new run of the chapter starts afresh: the old records go
    claims.start(ch, "again")
    assert claims.load(claims_dir)[ch]["records"] == [] and claims.load(claims_dir)[ch]["scale"] == "again"


def test_out_of_regime_failure_is_not_at_this_scale(claims_dir):
    ch = "07_architectures"
    claims.start(ch, "tiny")
    x = [1 / 2, 1 / 4, 1 / 8]
    bad = {"w=2": 2.0, "w=4": 3.0, "w=8": 9.0}  # falls with 1/w
    r = claims.record(ch, "kb-myrtle-closs", measured=bad, x=x, in_regime=False, regime_note="d/w > 1/16")
    assert r.verdict == "not at this scale" and "d/w > 1/16" in r.detail
    r = claims.record(ch, "kb-myrtle-closs", measured=bad, x=x)
    assert r.verdict == "not reproduced"
    good = {"w=2": 9.0, "w=4": 3.0, "w=8": 2.0}
    r = claims.record(ch, "kb-myrtle-closs", measured=good, x=x, in_regime=False, regime_note="d/w > 1/16")
    assert r.verdict == "reproduced", "a success outside the regime stands"


def test_record_rejects_wrong_use(claims_dir):
    with pytest.raises(RuntimeError):
        claims.record("02_uv_model", "uv-exact", measured={"closed form": 0.0, "map": 0.0})
    claims.start("02_uv_model", "tiny")
    with pytest.raises(KeyError):
        claims.record("02_uv_model", "no-such-claim", measured=1.0)
    with pytest.raises(ValueError):
        claims.record("02_uv_model", "kb-closs-wide", measured=1.0)
    with pytest.raises(ValueError):
        claims.start("99_nothing", "tiny")


def test_problems_catch_invalid_records(claims_dir):
    claims.start("03_catapult_chaos", "tiny")
    r = claims.record("03_catapult_chaos", "cat-fcn-cmax", measured=64.0, censored=True)
    assert r.verdict == "not at this scale" and r.problems() == []
    r.verdict = "reproduced"
    r.measured = None
    assert any("nothing finite" in p for p in r.problems())
    r.verdict = "maybe"
    assert any("verdict" in p for p in r.problems())


def test_without_env_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.delenv(claims.ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    claims.start("05_intermediate_saturation", "tiny")
    claims.record("05_intermediate_saturation", "kb-ccrit", measured={"w=64": 2.0, "w=128": 2.4}, x_step=0.25)
    assert claims.records("05_intermediate_saturation")[0].verdict == "partly"  # 2.4 is 1.07 steps from 2
    assert not list(tmp_path.rglob("*.json"))
    claims._STATE.clear()


def test_report_and_show(claims_dir):
    claims.start("08_four_regimes", "FCN d = 4, w = 128")
    claims.record("08_four_regimes", "cohen-eos", measured={"mean": 0.975, "above": 0.0})
    claims.record("08_four_regimes", "kb-four-regimes",
                  measured={"saturation": 3.0, "sharpening": 40.0, "edge of stability": float("nan")})
    html = str(claims.report(claims_dir))
    assert "08_four_regimes" in html and "FCN d = 4, w = 128" in html
    assert 'href="08_four_regimes.html#fig-reg-eos"' in html
    assert "partly" in html and "not at this scale" in html
    assert "cohen-eos-loss" in html, "a registered claim not recorded is listed"
    assert "01_phase_diagram" in html and "recorded no claims" in html
    shown = str(claims.show("08_four_regimes"))
    assert 'href="#fig-reg-four"' in shown and "Not recorded: cohen-eos-loss" in shown
    df = claims.summary(claims_dir)
    assert set(df.claim) == {"kb-four-regimes", "cohen-eos"}
    assert set(df.verdict) <= set(VERDICTS)


def test_eos_rule():
    c = claims.REGISTRY["cohen-eos"].check
    assert c({"mean": 1.005, "above": 0.4}).verdict == "reproduced"
    assert c({"mean": 0.975, "above": 0.0}).verdict == "partly"          # hovers just below 2/eta
    assert c({"mean": 0.90, "above": 0.0}).verdict == "not reproduced"
    assert c({"mean": math.nan, "above": math.nan}).verdict == "not at this scale"


# ----------------------------------------------------------------------------- chapter 09 (App. C, J, K)
def test_same_diagram_rule():
    c = claims.REGISTRY["kb-ntp-same"].check
    assert c({"c_loss w=64": 0.2, "c_max w=128": -0.45}).verdict == "reproduced"
    r = c({"c_loss w=64": 0.2, "c_max w=128": -0.8})
    assert r.verdict == "partly" and "c_max w=128" in r.detail        # judged on the largest |ratio|
    assert c({"c_loss w=64": 0.2, "c_sharp w=64": 1.5}).verdict == "not reproduced"
    assert c({"c_loss w=64": math.nan}).verdict == "not at this scale"
    assert c(math.nan).verdict == "not at this scale"                    # no width in the regime
    for tag in ("bias", "batch"):
        assert claims.REGISTRY[f"kb-{tag}-same"].check({"c_loss w=64": 0.7}).verdict == "partly"


def test_robustness_chapter_records(claims_dir):
    ch = "09_robustness"
    assert [c.id for c in claims.claims_of(ch)] == [
        "kb-ntp-closs-width", "kb-ntp-same", "kb-bias-closs-width", "kb-bias-same",
        "kb-batch-closs-width", "kb-batch-same", "kb-robust-order"]
    claims.start(ch, "tiny")
    x = 1 / np.array([32, 64, 128])
    rising = {"w=32": 20.0, "w=64": 8.0, "w=128": 4.5}
    assert claims.record(ch, "kb-ntp-closs-width", rising, x=x).verdict == "reproduced"
    assert claims.record(ch, "kb-bias-closs-width", {"w=32": 4.0, "w=64": 8.0, "w=128": 9.0},
                         x=x).verdict == "not reproduced"
    assert claims.record(ch, "kb-batch-closs-width", {"w=32": 20.0, "w=64": np.nan, "w=128": 4.5},
                         x=x).verdict == "not at this scale"              # 2 finite widths of 3 needed
    r = claims.record(ch, "kb-ntp-same", {"c_loss w=64": 0.1, "c_max w=128": 0.3},
                      spread={"c_loss w=64": 0.2, "c_max w=128": 0.1})
    assert r.verdict == "reproduced"
    r = claims.record(ch, "kb-bias-same", float("nan"), regime_note="no width with d/w <= 1/16")
    assert r.verdict == "not at this scale" and "1/16" in r.detail
    ordered = np.array([True, True, True, False, False])
    valid = np.array([True, True, True, True, False])
    r = claims.record(ch, "kb-robust-order", 0.75, ordered=ordered, valid=valid)
    assert r.verdict == "partly" and "3 of 4" in r.detail
    loaded = claims.load(claims_dir)[ch]["records"]
    assert len(loaded) == 6 and all(rec.problems() == [] for rec in loaded)
