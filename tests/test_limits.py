"""Licence and edition limits (host.max_children, host.edition) in the loader and in
``capacity --vary children``; a direct capacity never counts children that fell back to
routed for want of a VF (docs/design.md §6, Capacity)."""

from __future__ import annotations

from pathlib import Path

import pytest

import sim
from sim.cli import main
from sim.experiment.capacity import count_limits, search
from sim.experiment.compare import on_path
from sim.scenario.source import replace


def _short() -> sim.Scenario:
    scn = sim.load("scenarios/capacity.yaml")
    return replace(scn, {"run.duration": "60ms", "run.warmup": "10ms", "run.replications": 2})


@pytest.mark.parametrize(
    ("setting", "count", "says"),
    [
        ("host.max_children=4", 5, "host.max_children = 4 allows at most 4"),
        ("host.edition=windows-server-2008-enterprise", 5, "(4 children) allows at most 4"),
        ("host.edition=windows-server-2008-standard", 2, "allows at most 1"),
    ],
)
def test_the_loader_refuses_more_children_than_the_limit(
    setting: str, count: int, says: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """One line naming the file and the field, exit status 2, nothing written."""
    out = tmp_path / "out"
    args = [
        "run",
        "scenarios/capacity.yaml",
        "--set",
        setting,
        "--set",
        f"children[0].count={count}",
    ]
    code = main([*args, "--out", str(out), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1, err
    assert "children[web].count" in err, err
    assert says in err, err
    assert not out.exists()


def test_the_limit_allows_up_to_it() -> None:
    """Datacenter has no limit; max_children and the edition: the smaller binds."""
    scn = sim.load("scenarios/capacity.yaml")
    assert scn.host.child_limit is None
    both = replace(scn, {"host.edition": "windows-server-2008-enterprise", "host.max_children": 6})
    assert both.host.child_limit == 4
    assert replace(scn, {"children[0].count": 4, "host.max_children": 4}).host.child_limit == 4
    dc = replace(scn, {"host.edition": "windows-server-2008-datacenter", "children[0].count": 40})
    assert dc.host.child_limit is None


def test_count_limits_finds_where_the_vfs_run_out() -> None:
    """capacity.yaml's NIC has 8 VFs: the ninth direct child falls back; routed, none does."""
    scn = sim.load("scenarios/capacity.yaml")
    most, what, vf_at, why = count_limits(on_path(scn, "direct"), "web")
    assert (most, what, vf_at) == (4096, "", 9)
    assert "all 8 VFs of nic0" in why
    assert count_limits(on_path(scn, "routed"), "web")[2] == 0
    limited = replace(scn, {"host.max_children": 4})
    assert count_limits(on_path(limited, "direct"), "web")[:3] == (4, "host.max_children = 4", 0)


def test_capacity_never_answers_more_than_max_children() -> None:
    """With max_children: 4 and an SLO every count meets, both paths answer 4, the
    licence binding, and no point beyond 4 is simulated."""
    scn = replace(_short(), {"host.max_children": 4})
    cap = search(scn, "p99<=1ms", vary="children", paths=["routed", "direct"])
    for _, row in cap.table.iterrows():
        assert (row["capacity"], row["capacity_high"]) == (4, 5), row.to_dict()
        assert row["binding_resource"] == "licence"
        assert "host.max_children = 4" in row["note"]
    assert cap.points["children"].max() <= 4


def test_direct_capacity_never_counts_fallbacks() -> None:
    """The NIC has 8 VFs: direct answers 8 (not more children of which some run routed),
    names the VFs as binding and how many would fall back at 9; every point it simulated
    ran all its children direct."""
    cap = search(_short(), "p99<=1ms", vary="children", paths=["direct"])
    row = cap.table.iloc[0]
    assert row["capacity"] == 8
    assert row["capacity_high"] == 9
    assert row["binding_resource"] == "VFs"
    assert row["fallbacks"] == 0
    assert row["fallbacks_beyond"] == 1
    assert "1 would fall back to routed" in row["note"]
    assert (cap.points["io_path"] == "direct").all()


def test_capacity_under_a_degraded_state_names_the_failure_that_binds() -> None:
    """Direct, with the SLO required while the child's VF is revoked (it runs routed the
    whole run): the load is bound by the routed fallback, well below what the VF carries;
    the answer names vf_revoke, and the point above it met the SLO without the failure."""
    scn = _short()
    cap = search(scn, "p99<=150us", paths=["direct"], under=["vf_revoke"], max_points=6,
                 resolution=0.2)  # fmt: skip
    row = cap.table.iloc[0]
    assert row["binding_failure"] == "vf_revoke"
    assert "under vf_revoke" in row["note"]
    assert 1.0 <= row["capacity"] < 4.0  # the VF alone carries some 11x (docs/design.md)
    above = cap.points[cap.points["load_factor"] == row["capacity_high"]]
    assert above["reason"].str.contains("under vf_revoke").all()
    assert above["meets"].all()  # each child met it in the normal run
    assert cap.meta["under"] == ["vf_revoke"]


def test_a_degraded_state_that_cannot_apply_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["capacity", "scenarios/capacity.yaml", "--slo", "p99<=1ms", "--paths",
                 "routed", "--under", "vf_revoke", "--quiet"])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err == "error: capacity: --under vf_revoke: no child holds a VF here"
