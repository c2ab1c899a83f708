"""Open-loop arrival processes: the bursty two-state MMPP beside Poisson."""

from __future__ import annotations

import numpy as np
import pytest

import sim
from sim.analysis.stats import t_interval
from sim.model.workloads import mmpp_gaps
from sim.scenario import Burst, ScenarioError

SEEDS = range(8)


def _gaps(seed: int, n: int = 200_000, rate: float = 20_000.0) -> np.ndarray:
    g = mmpp_gaps(Burst(), rate, np.random.default_rng(seed))
    return np.array([g() for _ in range(n)])


def test_burst_rates_average_to_the_stream_rate() -> None:
    b = Burst(factor=4.0, length="20ms", between="60ms")
    high, low = b.rates(10_000.0)
    assert high == pytest.approx(4.0 * low)
    assert (high * b.length + low * b.between) / (b.length + b.between) == pytest.approx(10_000.0)


def test_mmpp_mean_gap_is_one_over_the_rate() -> None:
    """Across seeds, the 99.9 % interval of the mean gap holds 1/rate."""
    m, lo, hi = t_interval(np.array([_gaps(s).mean() for s in SEEDS]), 0.999)
    assert lo <= 50.0 <= hi, (m, lo, hi)
    assert hi - lo < 0.3 * 50.0  # narrow enough to catch a rate 15 % off


def test_mmpp_is_burstier_than_poisson() -> None:
    """A Poisson process has gaps with squared coefficient of variation 1; the MMPP's is
    larger: the whole 99.9 % interval over seeds lies above 1."""
    scv = [(x.std() / x.mean()) ** 2 for x in (_gaps(s) for s in SEEDS)]
    _, lo, _ = t_interval(np.array(scv), 0.999)
    assert lo > 1.0, scv


def _scenario(arrival: str) -> sim.Scenario:
    stream: dict[str, object] = {"op": "read", "size": "4KiB", "rate": "20k", "arrival": arrival}
    if arrival == "mmpp":  # bursts at 85k/s, within the drive's 100k/s: no backlog builds
        stream["burst"] = {"factor": 8, "length": "10ms", "between": "70ms"}
    return sim.scenario.from_dict(
        {
            "name": f"arrivals-{arrival}",
            "host": {"cores": 4},
            "devices": [{"name": "ssd", "type": "nvme", "channels": 8, "vfs": 2}],
            "children": [
                {
                    "name": "c",
                    "vcpus": 2,
                    "io_path": "direct",
                    "device": "ssd",
                    "streams": [stream],
                },
            ],
            "run": {"duration": "1s", "warmup": "50ms", "seed": 5},
        }
    )


def test_bursts_raise_the_tail_at_the_same_mean_load() -> None:
    """Same mean rate, same host: with bursts the p99 latency is higher (paired over
    replications, the 99.9 % interval of the difference is above 0), the throughput is
    the offered rate, and the analytic estimate says it does not hold."""
    bursty = sim.run(_scenario("mmpp"), replications=6)
    smooth = sim.run(_scenario("poisson"), replications=6)
    diff = bursty.replications["p99_us"].to_numpy() - smooth.replications["p99_us"].to_numpy()
    _, lo, _ = t_interval(diff, 0.999)
    assert lo > 0, diff
    thr = bursty.replications["throughput_rps"].to_numpy()
    m, tlo, thi = t_interval(thr, 0.999)
    assert tlo <= 20_000 * 1.02, (m, tlo, thi)
    assert thi >= 20_000 * 0.98, (m, tlo, thi)
    assert not bool(bursty.summary["analytic_holds"].iloc[0])


def test_burst_needs_mmpp_and_mmpp_needs_a_rate() -> None:
    scn = _scenario("poisson").to_dict()
    scn["children"][0]["streams"][0].pop("burst", None)
    scn["children"][0]["streams"][0]["burst"] = {"factor": 3}
    with pytest.raises(ScenarioError, match="'burst' goes with arrival: mmpp"):
        sim.scenario.from_dict(scn)
    scn = _scenario("mmpp").to_dict()
    scn["children"][0]["streams"][0].update({"rate": None, "outstanding": 4})
    with pytest.raises(ScenarioError, match="arrival: mmpp is open loop"):
        sim.scenario.from_dict(scn)
