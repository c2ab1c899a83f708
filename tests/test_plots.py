"""Plots: each returns a figure whose content matches the frames it was given."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

import sim
from sim.experiment.run import run
from sim.model.metrics import COMPONENTS
from sim.report import (
    cpu_breakdown,
    latency_breakdown,
    latency_cdf,
    metric_vs_load,
    occupancy,
)


@pytest.fixture(scope="module")
def result() -> sim.Result:
    scn = sim.load("scenarios/baseline.yaml", {"run.duration": "60ms", "run.warmup": "10ms"})
    return run(scn, replications=2)


def test_latency_cdf_has_one_line_per_child_and_path(result: sim.Result) -> None:
    """One CDF per child and path, on a log latency axis, reaching 1."""
    fig = latency_cdf(result.requests)
    ax = fig.axes[0]
    assert isinstance(fig, Figure)
    assert len(ax.lines) == 4
    assert ax.get_xscale() == "log"
    assert "µs" in ax.get_xlabel()
    for line in ax.lines:
        assert line.get_ydata()[-1] == pytest.approx(1.0)
    only = latency_cdf(result.requests, ["web-direct"])
    assert len(only.axes[0].lines) == 1


def test_latency_breakdown_bars_add_up_to_the_mean(result: sim.Result) -> None:
    """The stacked components of each (horizontal) bar add up to that child's mean
    latency."""
    fig = latency_breakdown(result.summary)
    ax = fig.axes[0]
    ends: dict[float, float] = {}
    for patch in ax.patches:
        y = round(patch.get_y(), 6)
        ends[y] = max(ends.get(y, 0.0), patch.get_x() + patch.get_width())
    lengths = [ends[y] for y in sorted(ends)]
    np.testing.assert_allclose(lengths, result.summary["mean_us"], rtol=1e-9)
    assert "µs" in ax.get_xlabel()
    assert {t.get_text() for t in ax.get_legend().get_texts()} <= set(COMPONENTS)


def test_cpu_breakdown_totals_match_the_cpu_table(result: sim.Result) -> None:
    """Each partition's bar is its CPU time in ms; idle is drawn for the host."""
    fig = cpu_breakdown(result.cpu)
    ax = fig.axes[0]
    total_ms = sum(p.get_width() for p in ax.patches)
    assert total_ms == pytest.approx(result.cpu["busy_us"].sum() / 1e3)
    busy_only = cpu_breakdown(result.cpu, include_idle=False)
    labels = {t.get_text() for t in busy_only.axes[0].get_legend().get_texts()}
    assert "idle" not in labels
    assert "ms" in ax.get_xlabel()


def test_metric_vs_load_draws_means_and_ci_bands() -> None:
    """Per child and path: the mean over replications at each point, and its CI band."""
    rows = []
    for i, rate in enumerate([10_000, 20_000, 40_000]):
        for rep, noise in enumerate((0.9, 1.1)):
            for path, base in (("routed", 50.0), ("direct", 10.0)):
                rows.append({"point_index": i, "rate": rate, "replication": rep,
                             "partition": f"web-{path}", "io_path": path,
                             "p99_us": base * (i + 1) * noise})  # fmt: skip
    frame = pd.DataFrame(rows)
    fig = metric_vs_load(frame, "rate", "p99_us", slo=100.0)
    ax = fig.axes[0]
    lines = [ln for ln in ax.lines if ln.get_label().startswith("web")]
    assert len(lines) == 2
    routed = next(ln for ln in lines if "routed" in ln.get_label())
    np.testing.assert_allclose(routed.get_ydata(), [50.0, 100.0, 150.0])
    np.testing.assert_allclose(routed.get_xdata(), [10_000, 20_000, 40_000])
    assert len(ax.collections) == 2  # the two CI bands
    assert any("SLO" in ln.get_label() for ln in ax.lines)
    assert ax.get_yscale() == "log"
    with pytest.raises(ValueError, match="not a column"):
        metric_vs_load(frame, "nope")


def test_figures_render_to_png(result: sim.Result, tmp_path: Path) -> None:
    """Every figure renders to a non-trivial PNG without a display."""
    for name, fig in (
        ("cdf", latency_cdf(result.requests)),
        ("breakdown", latency_breakdown(result.summary)),
        ("cpu", cpu_breakdown(result.cpu)),
    ):
        out = tmp_path / f"{name}.png"
        fig.savefig(out, dpi=80)
        assert out.stat().st_size > 5_000


def test_cdf_of_many_requests_is_thinned_but_keeps_its_shape() -> None:
    """Past CDF_POINTS requests a line is drawn through quantiles: far fewer points, the
    same median, the largest value kept, and the tail (the last 1 %) in full detail."""
    from sim.report.plots import CDF_POINTS

    rng = np.random.default_rng(3)
    lat = rng.lognormal(3.0, 0.8, 200_000)
    frame = pd.DataFrame({"partition": "a", "io_path": "routed", "latency_us": lat,
                          "in_window": True})  # fmt: skip
    line = latency_cdf(frame).axes[0].lines[0]
    x, y = np.asarray(line.get_xdata()), np.asarray(line.get_ydata())
    assert len(x) < 2 * CDF_POINTS
    assert x[-1] == lat.max()
    assert y[-1] == 1.0
    assert np.interp(0.5, y, x) == pytest.approx(np.median(lat), rel=0.01)
    assert np.interp(0.999, y, x) == pytest.approx(np.quantile(lat, 0.999), rel=0.01)
    assert (y > 0.99).sum() > 100


def test_occupancy_plots_each_ring_and_device_queue(result: sim.Result) -> None:
    """One line per ring (top) and per device queue (bottom), means over replications,
    over the whole run; the warm-up is shaded."""
    trace = result.occupancy
    fig = occupancy(trace, warmup_us=10_000)
    rings, queues = fig.axes
    ring_names = trace.loc[trace["quantity"] == "bytes", "resource"].unique()
    dev_names = trace.loc[trace["quantity"] == "queue", "resource"].unique()
    assert sorted(ln.get_label() for ln in rings.lines) == sorted(ring_names)
    assert sorted(ln.get_label() for ln in queues.lines) == sorted(dev_names)
    first = trace[(trace["resource"] == dev_names[0]) & (trace["quantity"] == "queue")]
    expected = first.groupby("time_us")["value"].mean()
    line = next(ln for ln in queues.lines if ln.get_label() == dev_names[0])
    assert np.allclose(line.get_ydata(), expected.to_numpy())
    assert np.allclose(line.get_xdata(), expected.index.to_numpy() / 1e3)
    assert "ms" in queues.get_xlabel()
    assert len(rings.patches) == 1  # the shaded warm-up
    assert "bytes" in rings.get_ylabel() or "KiB" in rings.get_ylabel()


def test_occupancy_shows_rings_as_a_share_of_their_capacity(result: sim.Result) -> None:
    """Given the ring size, the top panel is per cent full: bytes × 100 / capacity."""
    trace = result.occupancy
    ring = result.scenario.parent.vmbus.ring_size
    rings = occupancy(trace, warmup_us=10_000, ring_bytes=ring).axes[0]
    name = trace.loc[trace["quantity"] == "bytes", "resource"].iloc[0]
    got = next(ln for ln in rings.lines if ln.get_label() == name).get_ydata()
    sel = trace[(trace["resource"] == name) & (trace["quantity"] == "bytes")]
    assert np.allclose(got, sel.groupby("time_us")["value"].mean().to_numpy() * 100 / ring)
    assert "%" in rings.get_ylabel()
    assert "512 KiB" in rings.get_ylabel()


def test_every_thing_a_figure_colours_has_its_own_colour() -> None:
    """Each component, CPU category, path and fault kind the model knows has a colour of
    its own (never the fallback grey), distinct within its kind."""
    from sim.model.metrics import CATEGORIES
    from sim.report.palette import (
        CATEGORY_COLORS,
        COMPONENT_COLORS,
        FAULT_COLORS,
        PATH_COLORS,
    )
    from sim.scenario import IO_PATHS
    from sim.scenario.schema import FAULT_KINDS

    for names, table in ((COMPONENTS, COMPONENT_COLORS), ((*CATEGORIES, "idle"), CATEGORY_COLORS),
                         (IO_PATHS, PATH_COLORS), (FAULT_KINDS, FAULT_COLORS)):  # fmt: skip
        assert set(names) <= set(table), set(names) - set(table)
        assert len({table[n].lower() for n in names}) == len(names)
