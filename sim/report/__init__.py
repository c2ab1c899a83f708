"""Plots of results (:mod:`sim.report.plots`): functions that take the tidy frames and
return matplotlib figures, for notebooks and scripts. The HTML report (``hvsim report``)
is not part of this version."""

from sim.report.plots import cpu_breakdown, latency_breakdown, latency_cdf, metric_vs_load

__all__ = ["cpu_breakdown", "latency_breakdown", "latency_cdf", "metric_vs_load"]
