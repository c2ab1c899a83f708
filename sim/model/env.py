"""The simulation environment: one object owns the run-wide context.

:class:`SimEnv` is the environment SimPy's events and processes run on, with its clock in
**microseconds**, and carries the resolved scenario, the replication index, the RNG
streams and the run's counters. Components reach these through the environment they were
given, never through module globals, so several simulations can live in one process (a
notebook, a test) without touching each other.

Randomness (docs/design.md §3.6): every stochastic source draws from its own
``numpy.random.Generator``, spawned from the root ``SeedSequence`` by a stable key such as
``child.web-1/stream.0/arrivals``. The key is hashed with SHA-256 (not Python's salted
``hash``), so the same key gives the same stream in every process. Adding a component or
switching a child's I/O path therefore never shifts another source: runs that differ only
in the path see identical arrivals and sizes (common random numbers).

The event loop (docs/design.md §8, Speed): :class:`SimEnv` is not a subclass of
``simpy.Environment`` but offers what SimPy's events and processes use of one, so that,
compiled, it is a native object: ``now``, the heap and the event counter are read and
set by the model's compiled code as fields, not looked up in dictionaries, and ``now``
is a plain attribute, not a property. :class:`Hold` does a ``Timeout``'s work in the same
way. The loop pops the same heap entries SimPy would make, ``(time, priority, id,
event)`` with ids counted from 0, in the same order, and treats a stop, an empty
schedule and a failed event as SimPy does; the events processed, and so every result,
are the same as on ``simpy.Environment``.

:class:`Task` runs a generator nobody waits for (an open-loop request's walk) as SimPy
runs a process, started by the same urgent event and resumed by the same callbacks, but
with its end handed to a function at once instead of a process event scheduled for nobody.
"""

from __future__ import annotations

import functools
import hashlib
import heapq
from collections import Counter
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any, Final, cast

import numpy as np
import simpy
from simpy.core import EmptySchedule, StopSimulation
from simpy.events import Event

from sim.scenario import names

if TYPE_CHECKING:
    from sim.scenario.schema import Scenario


_new = object.__new__

# Final: the compiled model reads them as C constants, not from the module's dictionary
URGENT: Final = 0
"""SimPy's priority of an event processed before the normal ones due at its time."""
NORMAL: Final = 1
"""SimPy's priority of most events (``simpy.events.NORMAL``)."""
heappush: Final = heapq.heappush
heappop: Final = heapq.heappop

CACHED = 1024
"""Results kept per cached scenario method (:meth:`SimEnv.cached`): sizes seen in a run
are usually a handful, and a miss costs only the method's own call."""


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
        gen: Generator[Waitable, Any, Any],
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
            env.push(env.now, URGENT, self)

    def __call__(self, event: Any) -> None:
        """SimPy's ``Process._resume``: send the event's value (or throw its failure) into
        the generator until it yields an event still pending, which calls the task back
        (the task itself is the callback: no bound method made per yield, and no
        reference cycle that would keep a finished walk alive until a garbage
        collection). ``event`` is a SimPy event, or the task itself as its start event."""
        gen = self._gen
        while True:
            try:
                # a Hold never fails: a type check, not a look-up of its _ok (the Hold
                # branches here and in SimEnv._process: routed ≈ 5 % faster compiled)
                if isinstance(event, Hold) or event._ok:
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
                failed = _new(Event)
                failed.env = cast(Any, env)
                failed.callbacks = []
                failed._ok = False
                tb = e.__traceback__
                e.__traceback__ = tb.tb_next if tb else None
                failed._value = e
                env.schedule(failed)
                return
            if isinstance(event, Hold):  # compiled: native reads
                hold_callbacks = event.callbacks
                if hold_callbacks is not None:
                    hold_callbacks.append(self)
                    return
                continue
            callbacks = event.callbacks
            if callbacks is not None:
                callbacks.append(self)
                return


def stream_seed(root_seed: int, replication: int, key: str) -> np.random.SeedSequence:
    """The seed sequence of the stream called ``key`` in one replication."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    words = tuple(int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4))
    return np.random.SeedSequence(entropy=root_seed, spawn_key=(replication, *words))


class Hold:
    """A timeout: the event a process yields to let simulated time pass (a work item, a
    wire time, an inter-arrival gap).

    It plays SimPy's ``Timeout``'s part with the attributes SimPy's processes and the
    loop read (``callbacks``, ``_ok``, ``_value``) and its properties (``triggered``,
    ``processed``, ``ok``, ``value``, ``delay``), as a native object when the model is
    compiled: no instance dictionary to build and no dictionary look-up per read. It
    never fails. Scheduled when made (:meth:`SimEnv.timeout`), or later by its owner
    (:meth:`SimEnv.hold_until`, which a vCPU's reused work-item timeout goes through)."""

    def __init__(self, env: SimEnv, delay: float, value: Any = None) -> None:
        self.env = env
        self.callbacks: list[Callable[[Any], None]] | None = []
        self._ok = True
        self._value = value
        self._delay = delay

    @property
    def triggered(self) -> bool:
        return True

    @property
    def processed(self) -> bool:
        return self.callbacks is None

    @property
    def ok(self) -> bool:
        return True

    @property
    def value(self) -> Any:
        return self._value

    @property
    def delay(self) -> float:
        return self._delay

    def __repr__(self) -> str:
        return f"<Hold({self._delay}) object at {id(self):#x}>"


Waitable = Event | Hold
"""What a model process yields: a SimPy event or a :class:`Hold`."""


class SimEnv:
    """The environment of one simulation: SimPy's, in µs, with the scenario, RNG streams
    and counters attached.

    SimPy's events and processes run on it unchanged: it offers what they use of an
    environment (``schedule``, ``now``, ``active_process``, ``_active_proc``) and the
    usual ``event``, ``process``, ``timeout``, ``all_of``, ``any_of``, ``peek``, ``step``
    and ``run``. The event heap holds SimPy's entries, ``(time, priority, id, event)``,
    ids counted from 0 as SimPy counts them: the same events come off it in the same
    order as from ``simpy.Environment``."""

    def __init__(self, scenario: Scenario, seed: int, replication: int = 0) -> None:
        self.now = 0.0
        """The simulation time, a plain attribute (SimPy's is a property)."""
        self._queue: list[tuple[float, int, int, Any]] = []
        self._eid = 0
        self._active_proc: simpy.Process | None = None
        self.scenario = scenario
        self.seed = seed
        self.replication = replication
        self.counters: Counter[str] = Counter()
        self._keys: set[str] = set()
        self._cached: dict[tuple[int, str], Callable[..., Any]] = {}

    @property
    def _now(self) -> float:
        return self.now

    @property
    def active_process(self) -> simpy.Process | None:
        """The process running now, as SimPy's environment says it."""
        return self._active_proc

    def schedule(self, event: Any, priority: int = NORMAL, delay: float = 0) -> None:
        """Put ``event`` on the heap ``delay`` from now: SimPy's ``schedule``."""
        self.push(self.now + delay, priority, event)

    def push(self, at: float, priority: int, event: Any) -> None:
        """Put ``event`` on the heap at time ``at`` with the next id."""
        eid = self._eid
        self._eid = eid + 1
        heappush(self._queue, (at, priority, eid, event))

    def hold_until(self, at: float, ev: Hold) -> None:
        """Schedule ``ev`` (processed or new) to fire at ``at``, pending again."""
        ev.callbacks = []
        ev._delay = at - self.now
        self.push(at, NORMAL, ev)

    def event(self) -> simpy.Event:
        return simpy.Event(cast(Any, self))

    def process(self, generator: Generator[Any, Any, Any]) -> simpy.Process:
        return simpy.Process(cast(Any, self), generator)

    def all_of(self, events: list[Any]) -> simpy.events.AllOf:
        return simpy.events.AllOf(cast(Any, self), events)

    def any_of(self, events: list[Any]) -> simpy.events.AnyOf:
        return simpy.events.AnyOf(cast(Any, self), events)

    def timeout(self, delay: float = 0, value: Any = None) -> Hold:
        """A :class:`Hold` of ``delay`` µs, scheduled as SimPy schedules a ``Timeout``:
        the same heap entry (time, priority, next id)."""
        if delay < 0:
            raise ValueError(f"Negative delay {delay}")
        ev = Hold(self, delay, value)
        self.push(self.now + delay, NORMAL, ev)
        return ev

    def after(self, delay: float, callback: Callable[[Any], None]) -> Hold:
        """``callback(hold)`` in ``delay`` µs: a :meth:`timeout` with it as its callback."""
        ev = self.timeout(delay)
        ev.callbacks = [callback]
        return ev

    def cached(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn``, a pure method of the scenario (a size's pages, a payload's ring bytes,
        transfer time...), with its latest :data:`CACHED` results kept (``functools``'
        LRU cache: a hit is one look-up made in C, no Python frame), one cache per
        scenario object and method for the whole run."""
        key = (id(getattr(fn, "__self__", None)), getattr(fn, "__name__", repr(fn)))
        got = self._cached.get(key)
        if got is None:
            got = self._cached[key] = functools.lru_cache(maxsize=CACHED)(fn)
        return got

    def rng(self, scope: str, *what: str) -> np.random.Generator:
        """A new generator for the stochastic source ``what`` of ``scope``, keyed
        :func:`sim.scenario.names.rng_key` (each key used once)."""
        key = names.rng_key(scope, *what)
        if key in self._keys:
            raise ValueError(f"RNG stream '{key}' requested twice")
        self._keys.add(key)
        return np.random.default_rng(stream_seed(self.seed, self.replication, key))

    def peek(self) -> float:
        """The time of the next event; infinity if there is none."""
        return self._queue[0][0] if self._queue else float("inf")

    def step(self) -> None:
        """Process the next event: SimPy's ``step``."""
        if not self._queue:
            raise EmptySchedule
        self._process(heappop(self._queue))

    def _process(self, entry: tuple[float, int, int, Any]) -> None:
        """The callbacks of one event taken off the heap, as SimPy's ``step`` runs them."""
        t, _, _, event = entry
        self.now = t
        callbacks: Any
        # the same reads either way; narrowed to a Hold, compiled, native ones (most events)
        if isinstance(event, Hold):
            callbacks = event.callbacks
            event.callbacks = None
        else:
            callbacks = event.callbacks
            event.callbacks = None
        try:
            for callback in callbacks:
                callback(event)
        except StopSimulation:
            event.callbacks = callbacks[callbacks.index(callback) + 1 :]
            self.schedule(event, -1)
            raise
        if not event._ok and not hasattr(event, "_defused"):
            exc = type(event._value)(*event._value.args)
            exc.__cause__ = event._value
            raise exc

    def run(self, until: Any = None) -> Any:
        """SimPy's ``Environment.run``: until a time, an event, or the heap's end (same
        order, same stop at ``until``, same crash on a failed event nobody defused)."""
        if until is not None:
            if isinstance(until, (int, float)):
                at = until if isinstance(until, int) else float(until)
                if at <= self.now:
                    raise ValueError(
                        f"until ({at}) must be greater than the current simulation time"
                    )
                stop = simpy.Event(cast(Any, self))
                stop._ok = True
                stop._value = None
                self.schedule(stop, URGENT, at - self.now)
                until = stop
            elif until.callbacks is None:  # processed
                return until.value
            until.callbacks.append(StopSimulation.callback)
        queue = self._queue
        try:
            while True:
                if not queue:
                    raise EmptySchedule
                self._process(heappop(queue))
        except StopSimulation as exc:
            return exc.args[0]
        except EmptySchedule:
            if until is not None:
                assert not until.triggered
                raise RuntimeError(
                    f'No scheduled events left but "until" event was not triggered: {until}'
                ) from None
        return None
