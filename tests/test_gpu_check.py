"""``make gpu-check`` (bench/gpu_check.py) on this CPU: the reduced path, shrunk to seconds
(``--scale tiny``, one quick test instead of the numerics tests), writes a report that says it is
reduced, lists the device and versions, and computes its point with the engine's counts."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_gpu_check_reduced_cpu_path_writes_its_report(tmp_path):
    out = tmp_path / "report.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "lib"), os.environ.get("PYTHONPATH", "")])}
    node = "tests/test_scheduling.py::test_makespan_simulates_the_first_free_worker"
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_check.py"), "--scale", "tiny", "--tests", node,
                        "--out", str(out)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "CPU only: a REDUCED check" in r.stdout
    rep = json.loads(out.read_text())
    assert rep["reduced"] is True and rep["ok"] is True and rep["environment"]["backend"] == "cpu"
    assert rep["environment"]["jax"] and rep["environment"]["devices"][0]["platform"] == "cpu"
    assert [t["passed"] for t in rep["tests"]] == [True] and rep["tests"][0]["node"] == node
    book = rep["points"]["book"]
    assert book["status"] == "computed" and book["estimate"]["seconds"] > 0
    res = book["result"]
    # the engine's counts stay within the estimate's bounds, and the constants are on the grid
    assert 0 < res["loss_runs"] <= book["estimate"]["loss_runs_max"]
    assert res["sharpness_runs"] <= book["estimate"]["sharpness_runs_max"]
    # the batch sizes the point ran with are recorded (all measurement examples in one product here)
    assert res["hvp_chunk"] == book["params"].get("n_measure", res["hvp_chunk"]) and res["c_chunk"] >= 1
    assert len(res["c_max"]) == len(book["params"]["seeds"]) and all(v is None or v > 0 for v in res["c_max"])
    for name in ("paper01", "myrtle"):
        assert rep["points"][name]["status"].startswith("estimated only")
        assert rep["points"][name]["estimate"]["matvecs_max"] > 0
    assert rep["points"]["myrtle"]["params"]["arch"] == "myrtle"
