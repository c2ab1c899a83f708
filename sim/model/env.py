"""The simulation environment: one object owns the run-wide context.

:class:`SimEnv` is a ``simpy.Environment`` whose clock is in **microseconds** and which
carries the resolved scenario, the replication index, the RNG streams and the run's
counters. Components reach these through the environment they were given, never through
module globals, so several simulations can live in one process (a notebook, a test)
without touching each other.

Randomness (docs/design.md §3.6): every stochastic source draws from its own
``numpy.random.Generator``, spawned from the root ``SeedSequence`` by a stable key such as
``child.web-1/stream.0/arrivals``. The key is hashed with SHA-256 (not Python's salted
``hash``), so the same key gives the same stream in every process. Adding a component or
switching a child's I/O path therefore never shifts another source: runs that differ only
in the path see identical arrivals and sizes (common random numbers).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from typing import TYPE_CHECKING

import numpy as np
import simpy

from sim.scenario import names

if TYPE_CHECKING:
    from sim.scenario.schema import Scenario


def stream_seed(root_seed: int, replication: int, key: str) -> np.random.SeedSequence:
    """The seed sequence of the stream called ``key`` in one replication."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    words = tuple(int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4))
    return np.random.SeedSequence(entropy=root_seed, spawn_key=(replication, *words))


class SimEnv(simpy.Environment):
    """A SimPy environment in µs with the scenario, RNG streams and counters attached."""

    def __init__(self, scenario: Scenario, seed: int, replication: int = 0) -> None:
        super().__init__(initial_time=0.0)
        self.scenario = scenario
        self.seed = seed
        self.replication = replication
        self.counters: Counter[str] = Counter()
        self._keys: set[str] = set()

    def rng(self, scope: str, *what: str) -> np.random.Generator:
        """A new generator for the stochastic source ``what`` of ``scope``, keyed
        :func:`sim.scenario.names.rng_key` (each key used once)."""
        key = names.rng_key(scope, *what)
        if key in self._keys:
            raise ValueError(f"RNG stream '{key}' requested twice")
        self._keys.add(key)
        return np.random.default_rng(stream_seed(self.seed, self.replication, key))
