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

The event loop (docs/design.md §8, Speed): :meth:`SimEnv.run` is SimPy's ``run`` with its
``step`` written inline, so that an event costs no method call of its own, and ``now`` is
a plain attribute kept equal to SimPy's clock, not a property called at every read; the
event classes (``event``, ``process``...) are bound to the instance once, and
``timeout`` builds SimPy's ``Timeout`` with its constructor and ``schedule`` inline. It pops the
same heap in the same order and treats a stop, an empty schedule and a failed event as
SimPy does; the events processed, and so every result, are the same.

:class:`Task` runs a generator nobody waits for (an open-loop request's walk) as SimPy
runs a process, started by the same urgent event and resumed by the same callbacks, but
with its end handed to a function at once instead of a process event scheduled for nobody.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Generator
from heapq import heappop, heappush
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import simpy
from simpy.core import EmptySchedule, StopSimulation
from simpy.events import NORMAL, URGENT, Event, EventPriority, Timeout

from sim.scenario import names

if TYPE_CHECKING:
    from sim.scenario.schema import Scenario


_new_timeout = object.__new__


class Task:
    """A generator driven by the event loop as SimPy drives a ``Process``, for work nobody
    waits for: a request's walk in an open loop.

    It starts as a process starts, by an urgent event (same time, priority and place in
    the heap; the task itself stands for that event), and is resumed by the events it
    yields exactly as a process is; when the generator returns, ``done(arg)`` runs at
    once. A process would instead schedule its own end as one more event, which nobody
    waits for; leaving it out moves no other event (heap order is by time, priority, then
    creation order). An exception that escapes the generator fails the run as a failed
    process does: a failed event is scheduled and :meth:`SimEnv.run` raises a copy of it.

    ``at_once``: the caller knows its start event would be the very next event processed
    (it is the last thing done by the only callback of a normal-priority event: any
    urgent event at this time would have been processed before that event), so the
    first step runs now, without the event: the same steps in the same order."""

    __slots__ = ("_arg", "_done", "_env", "_gen", "_ok", "_value", "callbacks")

    def __init__(
        self,
        env: SimEnv,
        gen: Generator[Event, Any, Any],
        done: Callable[[Any], None],
        arg: Any,
        at_once: bool = False,
    ) -> None:
        self._env = env
        self._gen = gen
        self._done = done
        self._arg = arg
        # the task is its own start event (the loop reads an event's callbacks, _ok and
        # _value only): scheduled as SimPy schedules a process's Initialize
        self._ok = True
        self._value = None
        if at_once:
            self.callbacks: list[Callable[[Any], None]] | None = None  # as once processed
            self(self)
        else:
            self.callbacks = [self]
            heappush(env._queue, (env._now, URGENT, next(env._eid), self))  # type: ignore[misc]

    def __call__(self, event: Any) -> None:
        """SimPy's ``Process._resume``: send the event's value (or throw its failure) into
        the generator until it yields an event still pending, which calls the task back
        (the task itself is the callback: no bound method made per yield, and no
        reference cycle that would keep a finished walk alive until a garbage
        collection). ``event`` is a SimPy event, or the task itself as its start event."""
        gen = self._gen
        while True:
            try:
                if event._ok:
                    event = gen.send(event._value)
                else:
                    event._defused = True
                    exc = type(event._value)(*event._value.args)
                    exc.__cause__ = event._value
                    event = gen.throw(exc)
            except StopIteration:
                self._done(self._arg)
                return
            except BaseException as e:
                env = self._env
                failed = _new_timeout(Event)
                failed.env = env
                failed.callbacks = []
                failed._ok = False
                tb = e.__traceback__
                e.__traceback__ = tb.tb_next if tb else None
                failed._value = e
                env.schedule(failed)
                return
            callbacks = event.callbacks
            if callbacks is not None:
                callbacks.append(self)
                return


def stream_seed(root_seed: int, replication: int, key: str) -> np.random.SeedSequence:
    """The seed sequence of the stream called ``key`` in one replication."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    words = tuple(int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4))
    return np.random.SeedSequence(entropy=root_seed, spawn_key=(replication, *words))


class SimEnv(simpy.Environment):
    """A SimPy environment in µs with the scenario, RNG streams and counters attached."""

    now: float = 0.0
    """The simulation time: a plain attribute set with SimPy's ``_now`` as each event is
    taken off the heap (SimPy's is a property: a call per read, dozens per request)."""

    def __init__(self, scenario: Scenario, seed: int, replication: int = 0) -> None:
        super().__init__(initial_time=0.0)
        self.now = self._now
        # SimPy binds its event classes to the instance only for names in the instance's
        # own class; bind the inherited ones too, or each env.event(...) goes through a
        # descriptor call that builds a bound method
        for name in ("process", "event", "all_of", "any_of"):
            setattr(self, name, getattr(self, name))
        self.scenario = scenario
        self.seed = seed
        self.replication = replication
        self.counters: Counter[str] = Counter()
        self._keys: set[str] = set()

    def timeout(self, delay: float = 0, value: Any = None) -> Timeout:
        """SimPy's ``Timeout(env, delay, value)`` with its constructor and ``schedule``
        inline: the same event, the same heap entry (time, priority, next id)."""
        if delay < 0:
            raise ValueError(f"Negative delay {delay}")
        ev = _new_timeout(Timeout)
        ev.env = self
        ev.callbacks = []
        ev._value = value
        ev._delay = delay
        ev._ok = True
        heappush(self._queue, (self._now + delay, NORMAL, next(self._eid), ev))
        return ev

    def rng(self, scope: str, *what: str) -> np.random.Generator:
        """A new generator for the stochastic source ``what`` of ``scope``, keyed
        :func:`sim.scenario.names.rng_key` (each key used once)."""
        key = names.rng_key(scope, *what)
        if key in self._keys:
            raise ValueError(f"RNG stream '{key}' requested twice")
        self._keys.add(key)
        return np.random.default_rng(stream_seed(self.seed, self.replication, key))

    def step(self) -> None:
        """SimPy's ``step``, with :attr:`now` set to the time of the event it processes."""
        queue = self._queue
        if queue:
            self.now = queue[0][0]
        super().step()

    def run(self, until: float | Event | None = None) -> Any:
        """SimPy's ``Environment.run`` with the step of each event inline (same order,
        same stop at ``until``, same crash on a failed event nobody defused)."""
        if until is not None:
            if not isinstance(until, Event):
                at = until if isinstance(until, int) else float(until)
                if at <= self._now:
                    raise ValueError(
                        f"until ({at}) must be greater than the current simulation time"
                    )
                until = Event(self)
                until._ok = True
                until._value = None
                self.schedule(until, URGENT, at - self._now)
            elif cast(Any, until).callbacks is None:  # processed (callbacks typed as a list)
                return until.value
            assert until.callbacks is not None
            until.callbacks.append(StopSimulation.callback)
        queue = self._queue
        try:
            while True:
                if not queue:
                    raise EmptySchedule
                t, _, _, event = heappop(queue)
                self._now = self.now = t
                callbacks, event.callbacks = event.callbacks, None  # type: ignore[assignment]
                assert callbacks is not None
                try:
                    for callback in callbacks:
                        callback(event)
                except StopSimulation:
                    event.callbacks = callbacks[callbacks.index(callback) + 1 :]
                    self.schedule(event, EventPriority(-1))
                    raise
                if not event._ok and not hasattr(event, "_defused"):
                    exc = type(event._value)(*event._value.args)
                    exc.__cause__ = event._value
                    raise exc
        except StopSimulation as exc:
            return exc.args[0]
        except EmptySchedule:
            if until is not None:
                assert not until.triggered
                raise RuntimeError(
                    f'No scheduled events left but "until" event was not triggered: {until}'
                ) from None
        return None
