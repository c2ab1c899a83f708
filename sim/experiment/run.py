"""Running a scenario: ``R`` replications (replication ``r`` draws every stream from the
root seed with ``r`` in its spawn key, so replications are independent and the whole is
reproducible), then their tables (:func:`sim.results.tables.tabulate`).

Replications can run in a pool of ``workers`` processes (:func:`replicate`): each draws
only from its own spawn key, and their records are put together in replication order,
so the result is identical to a serial run's, whatever the number of workers."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed

from sim.model.host import simulate
from sim.model.records import RunData
from sim.results.result import Result
from sim.results.tables import tabulate
from sim.scenario.schema import Scenario


def cores() -> int:
    """The cores this process may run on (the default number of workers of the CLI)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def replicate(
    scenario: Scenario,
    replications: int,
    root: int,
    workers: int = 1,
    progress: Callable[[float], None] | None = None,
) -> list[RunData]:
    """The records of replications 0 … ``replications`` − 1, in that order, simulated in
    up to ``workers`` processes, at most one per replication and per core (serially in
    this one for 1). ``progress`` (if given) is called with increments of simulated µs:
    by slices of each replication when serial, by whole replications as they end when
    in processes."""
    if workers < 1:
        raise ValueError("workers must be at least 1")
    workers = min(workers, replications, cores())
    if workers <= 1:
        return [simulate(scenario, r, root, progress) for r in range(replications)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(simulate, scenario, r, root) for r in range(replications)]
        if progress is not None:
            for f in as_completed(futures):
                f.result()
                progress(float(scenario.run.duration))
        return [f.result() for f in futures]


def run(
    scenario: Scenario,
    replications: int | None = None,
    seed: int | None = None,
    progress: Callable[[float], None] | None = None,
    workers: int = 1,
) -> Result:
    """Simulate ``scenario`` ``replications`` times (default: the scenario's) in up to
    ``workers`` processes → :class:`Result` (the same for any number of workers);
    ``progress`` (if given) is called with the simulated µs done as the replications go
    (``replications × run.duration`` in all), results unchanged."""
    reps = scenario.run.replications if replications is None else replications
    if reps < 1:
        raise ValueError("replications must be at least 1")
    root = scenario.run.seed if seed is None else seed
    t0 = time.perf_counter()
    runs = replicate(scenario, reps, root, workers, progress)
    wall = time.perf_counter() - t0
    return tabulate(scenario, runs, root, wall)
