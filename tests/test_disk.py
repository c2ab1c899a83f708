"""Rotating disks: seek, rotation and transfer; queue reordering; RAID-0 spindles."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

import sim
from sim.scenario import ScenarioError, from_dict
from sim.scenario.hardware import Disk

SEEDS = (1, 2, 3)


def scenario(disk: dict[str, Any], seed: int, **stream: Any) -> dict[str, Any]:
    return {
        "name": "disk",
        "devices": [{"name": "sd", "type": "disk", **disk}],
        "children": [
            {
                "name": "c",
                "vcpus": 1,
                "io_path": "native",
                "device": "sd",
                "streams": [{"op": "read", "size": "4KiB", **stream}],
            }
        ],
        "run": {"duration": "1.5s", "warmup": "0.1s", "seed": seed, "replications": 1},
    }


def run(disk: dict[str, Any], seed: int, **stream: Any) -> Any:
    return sim.run(from_dict(scenario(disk, seed, **stream), source="test"))


def service_samples(disk: dict[str, Any]) -> np.ndarray:
    """Device service times of one command at a time (no queue), over several seeds."""
    out = []
    for seed in SEEDS:
        r = run(disk, seed, outstanding=1)
        ok = r.requests[r.requests["in_window"] & (r.requests["state"] == "completed")]
        out.append(ok["device_service_us"].to_numpy())
    return np.concatenate(out)


def test_seek_curve() -> None:
    """No seek costs nothing; a seek grows with the square root of its distance."""
    d = Disk(name="sd", type="disk")
    assert d.seek_time(0) == 0
    assert d.seek_time(1e-12) == pytest.approx(d.track_to_track, abs=0.01)
    assert d.seek_time(1.0) == pytest.approx(d.full_stroke)
    assert d.seek_time(0.25) - d.track_to_track == pytest.approx(
        (d.full_stroke - d.track_to_track) / 2
    )


@pytest.mark.parametrize("span", [0.01, 0.25, 1.0])
def test_service_matches_seek_rotation_and_transfer(span: float) -> None:
    """In arrival order, one at a time, the mean service is the closed form of a seek
    between two uniform positions, half a revolution and the transfer (within 4 standard
    errors of the pooled samples)."""
    disk = {"scheduling": "fifo", "span": span}
    x = service_samples(disk)
    spec = Disk(name="sd", type="disk", span=span)
    mean, var = spec.positioning_moments()
    expected = mean + spec.transfer_time(4096)
    assert x.var() == pytest.approx(var, rel=0.25)
    assert abs(x.mean() - expected) < 4 * math.sqrt(var / len(x))


def test_latency_grows_with_seek_distance() -> None:
    """The wider the data's extent on the disk, the longer the seeks and the latency."""
    means = [service_samples({"scheduling": "fifo", "span": s}).mean() for s in (0.01, 0.1, 1.0)]
    assert means[0] < means[1] < means[2]


def test_queue_reordering_lowers_latency_and_raises_throughput() -> None:
    """With 16 commands outstanding, shortest-seek-first serves more per second with less
    latency than arrival order, on every seed; with one outstanding they are the same."""
    for seed in SEEDS:
        fifo = run({"scheduling": "fifo"}, seed, outstanding=16).summary.iloc[0]
        sstf = run({"scheduling": "sstf"}, seed, outstanding=16).summary.iloc[0]
        assert sstf["mean_us"] < 0.8 * fifo["mean_us"]
        assert sstf["throughput_rps"] > 1.25 * fifo["throughput_rps"]
        assert sstf["device_service_us"] < fifo["device_service_us"]
    one = [
        run({"scheduling": s}, 1, outstanding=1).summary.iloc[0]["mean_us"]
        for s in ("fifo", "sstf")
    ]
    assert one[0] == one[1]


def test_raid_spindles_serve_in_parallel() -> None:
    """Four striped spindles carry well over twice the random reads of one."""
    one = run({"spindles": 1}, 1, outstanding=32).summary.iloc[0]["throughput_rps"]
    four = run({"spindles": 4}, 1, outstanding=32).summary.iloc[0]["throughput_rps"]
    assert four > 2.5 * one


def test_queue_depth_holds_the_rest_on_the_host() -> None:
    """Commands beyond the drive's queue depth wait on the host and are counted; a deeper
    queue gives the drive more to reorder."""
    shallow = run({"queue_depth": 4}, 1, outstanding=16)
    counters = shallow.counters.set_index("counter")["count"]
    assert counters["sd.queue_full"] > 0
    deep = run({"queue_depth": 16}, 1, outstanding=16)
    assert "sd.queue_full" not in set(deep.counters["counter"])
    rate = [r.summary.iloc[0]["throughput_rps"] for r in (shallow, deep)]
    assert rate[1] > rate[0]


def test_a_reset_fails_waiting_commands_and_they_are_retried() -> None:
    """A device reset fails the commands queued in the spindle; the guest retries them."""
    data = scenario({}, 1, outstanding=8)
    data["faults"] = [{"kind": "device_reset", "target": "sd", "at": "0.5s", "duration": "10ms"}]
    r = sim.run(from_dict(data, source="test"))
    assert (r.requests["attempts"] > 1).sum() >= 7
    assert (r.requests["state"] == "completed").sum() > 100


@pytest.mark.parametrize(
    ("disk", "message"),
    [
        ({"vfs": 1}, "less than or equal to 0"),
        ({"track_to_track": "8ms"}, "full_stroke must be at least track_to_track"),
        ({"span": 0}, "greater than 0"),
    ],
)
def test_bad_disks_are_refused(disk: dict[str, Any], message: str) -> None:
    """Impossible disk settings are one-line errors naming the field."""
    with pytest.raises(ScenarioError, match=message):
        from_dict(scenario(disk, 1, rate="10"), source="test")
