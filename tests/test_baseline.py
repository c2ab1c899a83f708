"""The baseline study: direct beats routed, and the components say why."""

from __future__ import annotations

import pandas as pd
import pytest

import sim
from sim.experiment.run import run
from sim.scenario import replace

SHORT = {"run.duration": "600ms", "run.warmup": "100ms"}


@pytest.fixture(scope="module")
def paired() -> dict[str, pd.DataFrame]:
    """Each direct child of the baseline, as is and switched to routed (same streams)."""
    base = sim.load("scenarios/baseline.yaml", SHORT)
    as_is = run(base, replications=2).summary.set_index("partition")
    switched = replace(
        base,
        {f"children[{c.name}].io_path": "routed" for c in base.children if c.io_path == "direct"},
    )
    routed = run(switched, replications=2).summary.set_index("partition")
    return {"direct": as_is, "routed": routed}


@pytest.mark.parametrize("child", ["web-direct", "db-direct"])
def test_direct_has_lower_mean_and_p99_than_routed(
    paired: dict[str, pd.DataFrame], child: str
) -> None:
    """Same child, same arrivals, sizes and service times: direct is faster, mean and p99."""
    d, r = paired["direct"].loc[child], paired["routed"].loc[child]
    assert d["io_path"] == "direct"
    assert r["io_path"] == "routed"
    assert d["mean_us"] < r["mean_us"]
    assert d["p99_us"] < r["p99_us"]
    assert d["throughput_rps"] == pytest.approx(r["throughput_rps"], rel=0.02)


@pytest.mark.parametrize("child", ["web-direct", "db-direct"])
def test_components_explain_the_difference(paired: dict[str, pd.DataFrame], child: str) -> None:
    """The routed path's extra time is parent CPU, ring waits and signalling; direct pays
    only IOMMU misses (posted interrupts: no exits)."""
    d, r = paired["direct"].loc[child], paired["routed"].loc[child]
    gap = r["mean_us"] - d["mean_us"]
    parent_side = sum(
        r[f"{c}_us"] for c in ("parent_cpu", "parent_queue", "ring_wait", "interrupt")
    )
    assert parent_side > 0.8 * gap
    assert r["parent_cpu_us"] > 5.0
    assert d["parent_cpu_us"] == 0.0
    assert d["interrupt_us"] == 0.0
    assert d["iommu_us"] > 0.0
    assert d["device_service_us"] == pytest.approx(r["device_service_us"], rel=0.01)
