"""``make rerun`` as a new user meets it: papermill reads every chapter's parameters cell without
a warning, the sweep's cost is estimated before it computes (``earlytrain.estimate``), and a run
estimated over an hour asks first (scripts/rerun_chapter.py)."""
from __future__ import annotations

import logging
from pathlib import Path

import pytest

from earlytrain.book import params

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


# ----------------------------------------------------------------------------- the cost estimate
def _cfg(**kw):
    from earlytrain import sweep
    base = dict(dataset="mnist", depths=[2], widths=[8, 16], seeds=[1, 2], n_train=256, n_measure=64,
                batch_size=64, num_steps=4, T1=4, x_max=3.0, x_step=0.5, sharpness_iters=6)
    return sweep.from_params(**{**base, **kw})


@pytest.mark.parametrize("search, per_seed", [("grid", 7), ("bisect", 5), ("coarse_to_fine", 7)])
def test_counts_bound_what_critical_point_spends(search, per_seed, tmp_path, monkeypatch):
    """The counted runs and products are upper bounds of what critical_point records."""
    from earlytrain import estimate, sweep
    monkeypatch.setenv("EARLYTRAIN_RESULTS", str(tmp_path))
    cfg = _cfg(search=search, widths=[8], stride=2)
    p = estimate.count_point(cfg, 2, 8)
    assert p.loss_runs == 2 * min(7, 2 * per_seed if search != "grid" else 7)
    assert p.sharpness_runs == 2 * per_seed
    ds = sweep.critical_point(cfg)
    assert ds.attrs["n_loss_runs"] <= p.loss_runs
    assert ds.attrs["n_sharpness_runs"] <= p.sharpness_runs
    spent = ds.attrs["n_sharpness_matvecs"] + int(ds.lambda0_matvecs.sum())
    assert spent <= p.matvecs_max
    assert p.steps == (p.loss_runs + p.sharpness_runs) * cfg.train.num_steps


def test_c_sharp_max_width_drops_the_sharpness_runs():
    from earlytrain import estimate
    cfg = _cfg(c_sharp_max_width=8)
    assert estimate.count_point(cfg, 2, 8).sharpness_runs > 0
    wide = estimate.count_point(cfg, 2, 16)
    assert wide.sharpness_runs == 0 and wide.matvecs_max == 2 * 2 * cfg.train.sharpness_iters  # lambda_0 only


def test_estimate_calibrates_scales_with_size_and_skips_cached_points(tmp_path, monkeypatch):
    from earlytrain import cache, estimate, sweep
    monkeypatch.setenv("EARLYTRAIN_RESULTS", str(tmp_path))
    cfg = _cfg()
    cost = estimate.phase_sweep_cost(cfg, "cfg")
    small, large = cost.points
    assert cost.calibration is not None and (cost.calibration.depth, cost.calibration.width) == (2, 8)
    assert large.params > small.params and large.seconds > small.seconds > 0
    assert cost.seconds == pytest.approx(small.seconds + large.seconds)
    text = str(cost)
    assert "2 points" in text and "0 cached" in text and "time on cpu" in text
    cache.cached(sweep.critical_point, name="sweep.critical_point")(cfg.replace(widths=(8,)))  # compute one
    again = estimate.phase_sweep_cost(cfg, "cfg", calibration=cost.calibration)
    assert [p.cached for p in again.points] == [True, False]
    assert again.points[0].seconds == 0 and again.seconds == pytest.approx(large.seconds)
    assert "1 cached" in str(again)


def test_fmt_seconds():
    from earlytrain.estimate import fmt_seconds
    assert [fmt_seconds(s) for s in (42, 720, 3 * 3600 + 20 * 60, 2.5 * 86400)] == \
        ["42 s", "12 min", "3 h 20 min", "2.5 days"]


# ----------------------------------------------------------------------------- make rerun asks first
def _rerun():
    import rerun_chapter
    return rerun_chapter


def _rerun_paper_preset_without_terminal(monkeypatch, capsys, chapter):
    """``make rerun`` of ``chapter``'s paper preset, no YES=1 and no terminal, with a fake
    calibration and the chapter's start recorded instead of run: (exit code, start calls, stdout)."""
    rr = _rerun()
    monkeypatch.setattr(rr.estimate_module(), "calibrate", lambda cfg: _fake_calibration())
    calls = []
    monkeypatch.setattr(rr.subprocess, "call", lambda *a, **k: calls.append(a) or 0)
    monkeypatch.setattr(rr.sys.stdin, "isatty", lambda: False, raising=False)
    rc = rr.main(chapter, str(ROOT / f"book/params/{chapter}/paper.yaml"), yes=False)
    return rc, calls, capsys.readouterr().out


def test_rerun_estimates_the_paper_preset_and_does_not_start_it_unasked(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("EARLYTRAIN_RESULTS", str(tmp_path))  # the estimate does not depend on what is cached here
    """Chapter 01's paper preset: its two sweeps are costed from the chapter's own configuration
    cells, and without a terminal (and without YES=1) nothing starts."""
    rc, calls, out = _rerun_paper_preset_without_terminal(monkeypatch, capsys, "01_phase_diagram")
    assert rc == 3 and not calls, "not started"
    assert "cfg_width: phase sweep on mnist (fcn), 4 points" in out
    assert "cfg_depth: phase sweep on fashion_mnist (fcn), 12 points" in out
    assert "Not started: estimated about" in out and "YES=1" in out


def _fake_calibration():
    from earlytrain.estimate import Calibration
    return Calibration("cpu (test)", 1000, 8, 256, step_s=1e-3, step_examples=512, eval_s=1e-4, eval_examples=512,
                       hvp_s=2e-3, linearize_s=1e-3, compile_s=1.0, wall_s=0.0)


def test_confirm_asks_only_over_an_hour(monkeypatch):
    rr = _rerun()
    monkeypatch.setattr(rr.sys.stdin, "isatty", lambda: True, raising=False)
    asked = []
    answer = lambda reply: lambda prompt: asked.append(prompt) or reply  # noqa: E731
    assert rr.confirm(1800.0, False, ask=answer("n")) and not asked, "under an hour: no question"
    assert rr.confirm(None, False, ask=answer("n")) and not asked, "no estimate: no question"
    assert rr.confirm(7200.0, True, ask=answer("n")) and not asked, "YES=1: no question"
    assert rr.confirm(7200.0, False, ask=answer("y")) and "2 h 00 min" in asked[-1]
    assert not rr.confirm(7200.0, False, ask=answer(""))


# ----------------------------------------------------------------------------- the sweep's progress
CALLS = []


def _point(cfg):
    import xarray as xr
    CALLS.append(cfg["i"])
    return xr.Dataset({"v": ((), float(cfg["i"]))})


def test_in_process_progress_counts_cached_points_apart(tmp_path, monkeypatch, capsys):
    """make rerun's console shows each sweep's bar (papermill --log-output): its count starts at
    the cached points, which it names, and only the others are computed."""
    from earlytrain import cache, cluster
    monkeypatch.setenv("EARLYTRAIN_RESULTS", str(tmp_path))
    fn = cache.cached(_point, name="test.point")
    CALLS.clear()
    first = cluster.run_points(fn, [({"i": i},) for i in (0, 1)], ["0", "1"], "demo sweep")
    assert CALLS == [0, 1] and [float(d.v) for d in first] == [0.0, 1.0]
    capsys.readouterr()
    out = cluster.run_points(fn, [({"i": i},) for i in (0, 1, 2)], ["0", "1", "2"], "demo sweep")
    assert CALLS == [0, 1, 2], "the cached points are read, not computed"
    assert [float(d.v) for d in out] == [0.0, 1.0, 2.0]
    bar = capsys.readouterr().err
    assert "demo sweep" in bar and "3/3" in bar and "2 cached" in bar


def test_rerun_estimates_a_saturation_chapter_and_names_what_it_cannot(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("EARLYTRAIN_RESULTS", str(tmp_path))  # nothing cached: a built book's results would count as done
    rr = _rerun()
    est = rr.estimate_module()
    monkeypatch.setattr(est, "calibrate", lambda cfg: _fake_calibration())
    seconds = rr.estimate_cost(ROOT / "book" / "05_intermediate_saturation.md", {})
    out = capsys.readouterr().out
    assert seconds and seconds > 0 and "cfg: saturation sweep on mnist (fcn)" in out
    rr.estimate_cost(ROOT / "book" / "03_catapult_chaos.md", {})
    out = capsys.readouterr().out
    assert "not estimated: gen_cfg (GeneralisationConfig)" in out  # what estimate does not cost, named
    assert "needs" not in out or "bif_cfg" in out


def test_rerun_estimates_the_connectivity_paper_preset_and_does_not_start_it_unasked(monkeypatch, capsys, tmp_path):
    """Chapter 04's paper preset: its connectivity sweep (the phase sweep and the barrier search,
    counted once though the chapter also holds the phase sweep's config) is costed, with a fake
    calibration, and without a terminal (and without YES=1) nothing starts."""
    monkeypatch.setenv("EARLYTRAIN_RESULTS", str(tmp_path))
    rc, calls, out = _rerun_paper_preset_without_terminal(monkeypatch, capsys, "04_loss_connectivity")
    est = _rerun().estimate_module()
    assert rc == 3 and not calls, "not started"
    assert "cfg (its phase sweep): phase sweep on mnist (fcn), 4 points" in out
    assert "cfg (barrier search): barrier search on mnist (fcn), 4 points" in out
    assert "Not started: estimated about" in out and "YES=1" in out
    # the barrier search: at most a loss search's runs per seed, each with n_tau evaluations
    from earlytrain.analyses import connectivity
    ccfg = connectivity.from_params(dataset="mnist", depths=[8], widths=[256], seeds=[1, 2], search="grid",
                                    x_max=2.0, x_step=0.5)
    costs = est.connectivity_cost(ccfg, "c", calibration=_fake_calibration(), cached=False)
    phase, barrier = costs
    p = barrier.points[0]
    assert p.loss_runs == 2 * 5 and p.extra_evals == p.loss_runs * ccfg.n_tau and p.sharpness_runs == 0
    assert costs.seconds == phase.seconds + barrier.seconds > phase.seconds > 0


def _fake_uv_calibration():
    from earlytrain.estimate import UVCalibration
    return UVCalibration("cpu (test)", step_s=1e-8, compile_s=1.0, runs=4096, steps=200, wall_s=0.0)


def test_uv_sweeps_are_estimated_from_their_map_steps(monkeypatch, capsys):
    """The uv sweeps of chapters 02 and 03 are costed (runs x map steps x a calibrated step, plus
    compiles): counts checked against each sweep's plan, the time against its calibration, and
    the chapters' consoles name them instead of "not estimated"."""
    from earlytrain import estimate
    from earlytrain.uv import phases as uv_phases
    early = uv_phases.EarlyConfig(widths=(2, 4), n_init=8, x_min=0.0, x_max=1.0, x_step=0.25, steps=10, refine=5)
    cal = _fake_uv_calibration()
    c = estimate.uv_cost(early, "early", cal)
    assert c.runs == [2 * 8 * 5 + 7 * 8 * 5] * 2 and c.run_steps == [r * 10 for r in c.runs] and c.compiles == 8
    assert c.seconds == pytest.approx(sum(c.run_steps) * 1e-8 + 8 * 1.0)
    assert estimate.uv_cost(early.replace(refine=0), "e", cal).compiles == 1
    cat = estimate.uv_cost(uv_phases.CatapultConfig(widths=(16,), ks=(2.5, 3.0), n_init=4, steps=50), "cat", cal)
    assert cat.run_steps == [4 * 2 * 50]
    sat = estimate.uv_cost(uv_phases.UVSaturationConfig(widths=(4, 16, 64), n_init=4, x_min=0.0, x_max=1.0,
                                                      x_step=0.5, steps=20, window=5), "sat", cal)
    assert sat.run_steps == [4 * 3 * 20] * 3
    bif = estimate.uv_cost(uv_phases.BifurcationConfig(n_lr=10, steps=30, keep=5), "bif", cal)
    assert bif.run_steps == [300] and "bifurcation" in str(bif)
    real = estimate.calibrate_uv()  # the calibration itself runs and gives a positive time per step
    assert real.step_s > 0 and real.runs * real.steps > 0
    rr = _rerun()
    monkeypatch.setattr(rr.estimate_module(), "calibrate_uv", _fake_uv_calibration)
    seconds = rr.estimate_cost(ROOT / "book" / "02_uv_model.md", {})
    out = capsys.readouterr().out
    assert seconds and seconds > 0
    assert "cfg: uv early phase diagram" in out and "sat_cfg: uv saturation sweep" in out
    assert "not estimated" not in out


def test_saturation_counts_follow_its_plan():
    from earlytrain import estimate
    from earlytrain.analyses import saturation
    scfg = saturation.from_params(dataset="mnist", depths=[2], widths=[8], seeds=[1, 2], n_train=256, n_measure=64,
                                  batch_size=64, x_min=-1.0, x_max=3.0, x_step=0.5, sharpness_iters=6, K_tau=20.0)
    groups = saturation.plan(scfg)
    (p,) = estimate.saturation_cost(scfg, calibration=None, cached=False).points
    pad = max(len(g["idx"]) for g in groups)  # every group is padded to the largest (saturation_point)
    assert p.sharpness_runs == 2 * pad * len(groups)
    assert p.steps == sum(2 * pad * int(g["steps"][-1]) for g in groups)
    assert p.measurements == 2 + sum(2 * pad * len(g["steps"]) for g in groups)
    assert p.matvecs_max == 2 * 2 * 6 + (p.measurements - 2) * 6


def test_eta_weights_points_by_their_size(monkeypatch):
    from earlytrain.analyses import saturation
    from earlytrain import sweep, work
    small, large = (sweep.from_params(dataset="mnist", depths=[4], widths=[w], seeds=[1, 2]) for w in (64, 1024))
    ws, wl = work.point_work(small), work.point_work(large)
    assert wl > 10 * ws > 0, "16x the width: far more work"
    assert work.point_work({"cfg": small, "c": [1.0, 2.0]}) > 0
    sat = [work.point_work(saturation.SaturationConfig(sweep=c)) for c in (small, large)]
    assert sat[1] > 10 * sat[0] > 0, "a saturation point: its work follows its network's size"
    assert work.point_work(object()) is None
    t = [100.0]
    monkeypatch.setattr(work.time, "perf_counter", lambda: t[0])
    eta = work.Eta([small, large], [True, True])
    assert eta.text() == "", "nothing done yet: no ETA"
    t[0] += 60.0
    eta.finished(0)
    assert eta.text() == f"ETA {work.fmt_seconds(60.0 * wl / ws)} (by point size)"
    assert work.Eta([small, object()], [True, True]).works is None, "a point of unknown size: no ETA"


# ----------------------------------------------------------------------------- the re-run's own copy
def test_the_rerun_copy_refreshes_its_own_costs_not_the_source_trees(tmp_path):
    """make rerun builds a copy of the book whose build refreshes ``book/params/costs.json``
    (bookexec.refresh_costs): that must write the copy's file, never the source tree's committed
    one. Catches: a symlinked ``book/params`` (or costs file) in the copy."""
    import json
    import bookexec
    import nbformat
    rr = _rerun()
    root = tmp_path / "root"
    (root / "book" / "params" / "01_x").mkdir(parents=True)
    for name in ("_config.yml", "_toc.yml"):
        (root / name).write_text("")
    costs = root / bookexec.COSTS_FILE
    costs.write_text(json.dumps({"seconds": {"book/01_x": 100, "book/02_y": 50}}) + "\n")
    committed = costs.read_text()
    (root / "book" / "params" / "01_x" / "quick.yaml").write_text("n: 1\n")
    (root / "book" / "01_x.md").write_text("# one\n")
    (root / "book" / "02_y.md").write_text("# two\n")
    executed = tmp_path / "01_x.ipynb"
    nbformat.write(nbformat.v4.new_notebook(), str(executed))
    book = tmp_path / "runs" / "book"
    rr.assemble_book(root, book, "01_x", executed)
    assert not (book / "book" / "01_x.md").exists() and (book / "book" / "01_x.ipynb").is_file()
    assert (book / "book" / "02_y.md").is_symlink()  # the other chapters: the source tree's
    assert (book / "book" / "params" / "01_x" / "quick.yaml").read_text() == "n: 1\n"  # presets: readable
    assert not (book / "book" / "params").is_symlink() and not (book / bookexec.COSTS_FILE).is_symlink()
    ch = bookexec.Chapter(book / "book" / "02_y.md", "book/02_y", {}, seconds=500.0)
    assert bookexec.refresh_costs(book, [ch], compiles_cold=True) == ["book/02_y"]
    assert costs.read_text() == committed, "the source tree's committed costs were written"
    assert bookexec.read_costs(book)["book/02_y"] == 500
    rr.assemble_book(root, book, "01_x", executed)  # assembled again over an existing copy
    assert costs.read_text() == committed and bookexec.read_costs(book)["book/02_y"] == 50
