"""Plots and reports of results.

:mod:`sim.report.plots` has the plot functions (tidy frames in, matplotlib figures out),
for notebooks and scripts; :mod:`sim.report.html` writes the self-contained
``report.html`` of a run, a comparison or a sweep (``hvsim report DIR``).
"""

from sim.report.plots import (
    cpu_breakdown,
    latency_breakdown,
    latency_cdf,
    metric_vs_load,
    occupancy,
)

__all__ = ["cpu_breakdown", "latency_breakdown", "latency_cdf", "metric_vs_load", "occupancy"]
