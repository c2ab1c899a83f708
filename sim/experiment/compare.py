"""Comparing paths: the same scenario run once per I/O path with every I/O child switched
to it, with common random numbers (replication ``r`` of every path sees the same
arrivals, sizes and device service times), so that differences are measured paired."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from sim.experiment.run import run
from sim.results.result import Comparison
from sim.results.tables import comparison_frame
from sim.scenario.schema import Scenario
from sim.scenario.source import replace
from sim.scenario.workload import IO_PATHS


def on_path(scenario: Scenario, path: str) -> Scenario:
    """``scenario`` with every child that does I/O switched to ``path``."""
    overrides: dict[str, Any] = {}
    for i, c in enumerate(scenario.children):
        if c.device is not None:
            overrides[f"children[{i}].io_path"] = path
            if path != "direct":
                overrides[f"children[{i}].vf"] = None
    return replace(scenario, overrides, source=f"path {path}")


def check_paths(paths: Sequence[str]) -> None:
    """``ValueError`` (one line) unless ``paths`` are two or more different I/O paths."""
    bad = [p for p in paths if p not in IO_PATHS]
    if bad:
        raise ValueError(f"unknown path '{bad[0]}' (paths: {', '.join(IO_PATHS)})")
    if len(paths) < 2 or len(set(paths)) != len(paths):
        raise ValueError("compare needs at least two different paths")


def compare(
    scenario: Scenario,
    paths: Sequence[str] = ("routed", "direct"),
    replications: int | None = None,
    seed: int | None = None,
    progress: Callable[[float], None] | None = None,
    workers: int = 1,
) -> Comparison:
    """Run ``scenario`` once per I/O path with common random numbers; the first path is the
    base of the paired differences and ratios. ``progress``: as for :func:`run`, over every
    path; each path's replications run in up to ``workers`` processes
    (:func:`sim.experiment.run.replicate`)."""
    paths = list(paths)
    check_paths(paths)
    t0 = time.perf_counter()
    results = {p: run(on_path(scenario, p), replications, seed, progress, workers) for p in paths}
    table = comparison_frame(results, paths[0])
    first = results[paths[0]]
    meta = {
        "scenario": scenario.name,
        "paths": paths,
        "base": paths[0],
        "seed": first.meta["seed"],
        "replications": first.meta["replications"],
        "replication_seeds": first.meta.get("replication_seeds", []),
        "wall_s": round(time.perf_counter() - t0, 3),
        "versions": first.meta["versions"],
        "common_random_numbers": True,
    }
    return Comparison(scenario, paths, results, table, meta)
