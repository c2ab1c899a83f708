"""Paired comparison of I/O paths with common random numbers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import sim
from sim.analysis.stats import paired, t_interval
from sim.experiment.compare import compare, on_path
from sim.experiment.run import run

SHORT = {"run.duration": "150ms", "run.warmup": "20ms"}


@pytest.fixture(scope="module")
def comparison() -> sim.results.result.Comparison:
    return compare(sim.load("scenarios/baseline.yaml", SHORT), ["routed", "direct"], 4)


def test_table_is_tidy_with_base_ratios_of_one(comparison: sim.results.result.Comparison) -> None:
    """One row per child, metric and path; the base path's paired ratio is exactly 1."""
    t = comparison.table
    assert set(t["path"]) == {"routed", "direct"}
    assert not t.duplicated(["partition", "metric", "path"]).any()
    base = t[t["path"] == "routed"]
    assert np.allclose(base["ratio_to_routed"], 1.0)
    assert np.allclose(base["diff_to_routed"], 0.0)
    assert (t["ci_low"] <= t["value"]).all()
    assert (t["value"] <= t["ci_high"]).all()


def test_every_io_child_runs_on_each_path(comparison: sim.results.result.Comparison) -> None:
    """Each path's run has every I/O child on that path, with identical arrivals."""
    for path, res in comparison.results.items():
        assert set(res.summary["io_path"]) == {path}
    a = comparison.results["routed"].requests
    b = comparison.results["direct"].requests
    key = ["replication", "partition", "id"]
    cols = [*key, "t_submit_us", "size_bytes"]
    m = a[cols].merge(b[cols], on=key)
    assert len(m) > 1000
    assert (m["t_submit_us_x"] == m["t_submit_us_y"]).all()
    assert (m["size_bytes_x"] == m["size_bytes_y"]).all()


def test_direct_is_faster_with_a_paired_interval_below_one(
    comparison: sim.results.result.Comparison,
) -> None:
    """On the baseline, direct/routed mean latency is below 1 with its whole interval."""
    t = comparison.table.set_index(["partition", "metric", "path"])
    for child in ("web-direct", "db-direct"):
        assert t.loc[(child, "mean_us", "direct"), "ratio_ci_high_to_routed"] < 1.0


def test_paired_interval_is_narrower_than_unpaired_at_equal_cost() -> None:
    """Common random numbers: the CI of the difference is narrower paired than with
    independent seeds for the two paths (same replications, same run length)."""
    scn = sim.load("scenarios/baseline.yaml", SHORT)
    reps = 5
    routed = run(on_path(scn, "routed"), reps, seed=1).replications
    direct_same = run(on_path(scn, "direct"), reps, seed=1).replications
    direct_other = run(on_path(scn, "direct"), reps, seed=2).replications
    # db: both paths draw the same device service times, so the two runs are strongly
    # correlated and pairing removes most of the noise; web: the routed mean's noise is
    # the parent's contention, which the direct run does not share: pairing cannot help
    # much there, and must not hurt
    for child, factor in (("db-direct", 0.5), ("web-direct", 1.1)):
        r = routed[routed["partition"] == child]["mean_us"].to_numpy()
        d_same = direct_same[direct_same["partition"] == child]["mean_us"].to_numpy()
        d_other = direct_other[direct_other["partition"] == child]["mean_us"].to_numpy()
        p = paired(r, d_same)
        paired_width = p["diff_ci_high"] - p["diff_ci_low"]
        # unpaired: difference of two independent means (Welch-free, equal n: SEs add)
        _, lo_r, hi_r = t_interval(r)
        _, lo_d, hi_d = t_interval(d_other)
        unpaired_width = np.hypot(hi_r - lo_r, hi_d - lo_d)
        assert paired_width < factor * unpaired_width, (child, paired_width, unpaired_width)


def test_paired_statistics_on_known_samples() -> None:
    """paired() gives the t-interval of the differences and of the ratios."""
    base = np.array([10.0, 12.0, 11.0, 13.0])
    other = base * 0.5
    p = paired(base, other)
    assert p["diff"] == pytest.approx(-5.75)
    assert p["ratio"] == pytest.approx(0.5)
    assert p["ratio_ci_low"] == pytest.approx(0.5)
    assert p["ratio_ci_high"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="same length"):
        paired(base, other[:2])


def test_sim_compare_returns_the_table() -> None:
    """sim.compare returns the comparison table as a DataFrame."""
    t = sim.compare(sim.load("scenarios/baseline.yaml", SHORT), ["routed", "native"], 2)
    assert isinstance(t, pd.DataFrame)
    assert {"ratio_to_routed", "ratio_ci_low_to_routed", "diff_to_routed"} <= set(t.columns)
    assert set(t["path"]) == {"routed", "native"}


def test_compare_rejects_bad_paths() -> None:
    """Unknown or repeated paths are refused before anything runs."""
    scn = sim.load("scenarios/baseline.yaml", SHORT)
    with pytest.raises(ValueError, match="unknown path"):
        compare(scn, ["routed", "warp"])
    with pytest.raises(ValueError, match="two different paths"):
        compare(scn, ["routed", "routed"])


def test_cli_compare_writes_its_directory(tmp_path: Path) -> None:
    """hvsim compare writes comparison.csv and a full result per path; bad paths exit 2."""
    out = tmp_path / "cmp"
    args = ["compare", "scenarios/baseline.yaml", "--out", str(out), "--replications", "2"]
    sets = ["--set", "run.duration=60ms", "--set", "run.warmup=10ms"]
    proc = subprocess.run([sys.executable, "-m", "sim.cli", *args, *sets], capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "direct/routed" in proc.stdout
    assert (out / "comparison.csv").is_file()
    assert (out / "routed" / "summary.csv").is_file()
    assert (out / "direct" / "requests.parquet").is_file()
    bad = subprocess.run(
        [sys.executable, "-m", "sim.cli", *args, "--paths", "routed,warp", *sets],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1
    assert "unknown path 'warp'" in bad.stderr
