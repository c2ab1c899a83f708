"""Statistics: confidence-interval coverage, MSER-5 warm-up detection, warnings."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as st

import sim
from sim.analysis.stats import mser5, t_interval
from sim.experiment.run import run
from sim.experiment.validate import load_case
from sim.scenario import from_dict

MM1 = load_case("scenarios/validation/mm1-mean.yaml")["scenario"]


def test_ci_of_mm1_mean_covers_theory_95_percent_of_the_time() -> None:
    """Over 48 independent studies of 5 replications, the 95 % CI of the M/M/1 mean
    response time covers the theoretical 100 µs as often as a 95 % interval should
    (within the 99.9 % binomial range)."""
    studies, reps = 48, 5
    scn = from_dict({**MM1, "run": {"duration": "300ms", "warmup": "30ms"}})
    covered = 0
    for seed in range(1, studies + 1):
        row = run(scn, replications=reps, seed=seed).summary.iloc[0]
        covered += row["mean_us_ci_low"] <= 100.0 <= row["mean_us_ci_high"]
    lo = st.binom.ppf(0.0005, studies, 0.95)
    assert lo <= covered <= studies, (covered, lo)


def test_t_interval_matches_scipy() -> None:
    """t_interval is the textbook Student-t interval."""
    x = np.array([1.0, 2.0, 4.0, 7.0])
    m, lo, hi = t_interval(x)
    ref = st.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=st.sem(x))
    assert (m, lo, hi) == pytest.approx((x.mean(), *ref))
    assert np.isnan(t_interval([3.0])[1])


@pytest.mark.parametrize("n", [2, 3, 5, 10, 30, 100, 1000])
@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_t_interval_half_width_is_scipy_stats_to_the_bit(n: int, confidence: float) -> None:
    """The quantile comes from scipy.special, not scipy.stats (whose import is slow): the
    same number, bit for bit."""
    x = np.linspace(1.0, 3.0, n) ** 2
    m, lo, hi = t_interval(x, confidence)
    half = float(st.t.ppf(0.5 + confidence / 2.0, n - 1) * x.std(ddof=1) / np.sqrt(n))
    assert (lo, hi) == (m - half, m + half)


def test_mser5_finds_a_planted_transient() -> None:
    """MSER-5 cuts a decaying initial transient at its end, within a few batches."""
    rng = np.random.default_rng(3)
    for length in (200, 800, 1500):
        transient = np.linspace(50, 0, length) + rng.normal(10, 1, length)
        x = np.concatenate([transient, rng.normal(10, 1, 6000)])
        d, found = mser5(x)
        assert found
        assert length * 0.7 <= d <= length + 50, (length, d)


def test_mser5_leaves_a_stationary_series_alone_and_rejects_a_trend() -> None:
    """No transient: nothing cut. A series that never settles: not found."""
    rng = np.random.default_rng(4)
    d, found = mser5(rng.exponential(10.0, 5000))
    assert found
    assert d < 250
    _, found = mser5(np.linspace(0.0, 100.0, 5000) + rng.normal(0, 1, 5000))
    assert not found
    assert mser5([1.0, 2.0]) == (0, False)


BURST = {
    "name": "burst",
    "host": {"cores": 2, "costs": {"vcpu_dispatch": "0us"}},
    "parent": {"vcpus": 1},
    "devices": [
        {
            "name": "ssd",
            "type": "nvme",
            "channels": 1,
            "read": {"dist": "exponential", "mean": "50us"},
        }
    ],
    "children": [
        {
            "name": "c",
            "vcpus": 1,
            "io_path": "native",
            "device": "ssd",
            "guest": {"submit_cost": "0us", "complete_cost": "0us"},
            # 400 requests at t = 0, then a think time that keeps the device 60 % busy
            "streams": [
                {
                    "op": "read",
                    "size": "1B",
                    "outstanding": 400,
                    "think": {"dist": "exponential", "mean": "33ms"},
                }
            ],
        }
    ],
    "run": {"duration": "1s", "warmup": "0us", "warmup_method": "mser5"},
}


def test_mser5_warmup_removes_the_start_up_burst() -> None:
    """With warmup_method: mser5 the requests queued by the start-up burst are dropped:
    the window starts after the burst and the mean falls to the steady-state level."""
    auto = run(from_dict(BURST), replications=2)
    fixed = run(from_dict({**BURST, "run": {**BURST["run"], "warmup_method": "fixed"}}), 2)
    a, f = auto.summary.iloc[0], fixed.summary.iloc[0]
    # 400 requests of 50 µs queued at once: the transient lasts about 20 ms
    assert 5_000 < a["warmup_us"] < 200_000
    assert f["warmup_us"] == 0.0
    assert f["mser_warmup_us"] == pytest.approx(a["mser_warmup_us"])
    assert a["mean_us"] < 0.5 * f["mean_us"]
    assert "MSER-5 puts the transient" in f["warnings"]


def test_warnings_name_saturation_and_wide_intervals() -> None:
    """An overloaded child is flagged saturated; few short replications flag wide CIs."""
    scn = sim.load(
        "scenarios/baseline.yaml",
        {
            "children[web-routed].streams[0].rate": "200k",
            "run.duration": "60ms",
            "run.warmup": "10ms",
        },
    )
    res = run(scn, replications=2)
    w = res.summary.set_index("partition")["warnings"]
    assert "saturated" in w["web-routed"]
    assert "of the offered load" in w["web-routed"]
    assert any("wide CI" in text for text in w)
    one = run(scn, replications=1).summary.set_index("partition")["warnings"]
    assert "one replication" in one["web-direct"]
    assert res.meta["warnings"]


def test_replication_means_are_pandas_means_to_the_bit() -> None:
    """The per-replication component means (taken from arrays, not frame selections) are
    pandas' ``Series.mean``: NaN skipped, NaN when none is left."""
    import pandas as pd

    from sim.results.tables import _mean

    rng = np.random.default_rng(7)
    for n in (1, 2, 7, 1000, 10_001):
        x = rng.gamma(2.0, 13.7, n)
        for share in (0.0, 0.3, 1.0):
            y = np.where(rng.random(n) < share, np.nan, x)
            want = float(pd.Series(y).mean())
            got = _mean(y)
            assert got == want or (np.isnan(got) and np.isnan(want)), (n, share)
    assert np.isnan(_mean(np.array([])))
