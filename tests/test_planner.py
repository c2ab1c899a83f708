"""What planners read: throughput under overload, percentiles, warnings carried into
studies."""

from __future__ import annotations

import numpy as np
import pytest

from sim.experiment.run import run
from sim.scenario import loads

# a routed NIC child offered far more than a 1-vCPU parent can carry
OVERLOAD = """
name: overload
host: {cores: 4}
parent: {vcpus: 1}
devices:
  - {name: nic, type: nic, vfs: 2}
children:
  - name: web
    vcpus: 2
    io_path: routed
    device: nic
    streams:
      - {op: send, size: 1500B, rate: 400k}
run: {duration: 30ms, warmup: 5ms, seed: 3, replications: 2}
"""


@pytest.mark.parametrize("seed", [3, 4])
def test_throughput_is_completions_in_the_window(seed: int) -> None:
    scn = loads(OVERLOAD, overrides={"run.seed": seed})
    res = run(scn)
    req = res.requests
    reps = res.replications
    for _, row in reps.iterrows():
        mine = req[(req["replication"] == row["replication"]) & (req["partition"] == "web")]
        cut, end = float(row["warmup_us"]), scn.run.duration
        t = mine["t_complete_us"]
        done = mine[(mine["state"] == "completed") & (t >= cut) & (t <= end)]
        window_s = (end - cut) / 1e6
        assert row["throughput_rps"] == pytest.approx(len(done) / window_s, rel=1e-12)
        bits = float(done["size_bytes"].sum()) * 8
        assert row["throughput_bps"] == pytest.approx(bits / window_s, rel=1e-12)
        sub = mine[(mine["t_submit_us"] >= cut) & (mine["t_submit_us"] <= end)]
        assert row["offered_rps"] == pytest.approx(len(sub) / window_s, rel=1e-12)
        # overloaded: far fewer completions than submissions, and more completions than
        # the latency sample (requests submitted in the window and completed by the end)
        assert row["completion_share"] < 0.9
        assert len(done) > row["requests"]
    s = res.summary.iloc[0]
    assert s["throughput_rps"] == pytest.approx(reps["throughput_rps"].mean())
    assert "saturated" in s["warnings"]


def test_throughput_matches_offered_below_saturation() -> None:
    scn = loads(OVERLOAD, overrides={"children[web].streams[0].rate": "5k"})
    s = run(scn).summary.iloc[0]
    assert s["completion_share"] == pytest.approx(1.0, abs=0.02)
    assert s["throughput_rps"] == pytest.approx(s["offered_rps"], rel=0.03)
    assert np.isfinite(s["mean_us"])
