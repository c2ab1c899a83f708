"""The event loop of :class:`sim.model.env.SimEnv` against ``simpy.Environment``: the same
events in the same order, the same stop and the same crash; the whole model's records
the same on either."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import pytest
import simpy

import sim
from sim.model.env import Hold, SimEnv, Task

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT / "scenarios" / "baseline.yaml"


def _both(body: Callable[[Any], Any]) -> tuple[Any, Any]:
    """``body`` run on a SimEnv and on SimPy's own environment."""
    return body(SimEnv(sim.load(BASELINE), 1)), body(simpy.Environment())


def _mix(env: Any) -> Any:
    """Processes waiting on timeouts, on each other, on events succeeded and failed by
    others, on conditions, and an interrupt; ties at equal times throughout."""
    trace: list[tuple[float, str]] = []

    def worker(name: str, d: float) -> Generator[Any, Any, str]:
        for i in range(4):
            yield env.timeout(d)
            trace.append((env.now, f"{name}.{i}"))
        return name

    gate = env.event()

    def waiter(name: str) -> Generator[Any, Any, None]:
        try:
            v = yield gate
            trace.append((env.now, f"{name} got {v}"))
        except KeyError as e:
            trace.append((env.now, f"{name} caught {e}"))

    def opener() -> Generator[Any, Any, None]:
        yield env.timeout(1.0)
        gate.succeed("open")
        bad = env.event()
        env.process(failing_waiter(bad))
        yield env.timeout(0.0)
        bad.fail(KeyError("x"))

    def failing_waiter(bad: Any) -> Generator[Any, Any, None]:
        try:
            yield bad
        except KeyError:
            trace.append((env.now, "bad caught"))

    def sleeper() -> Generator[Any, Any, None]:
        try:
            yield env.timeout(10.0)
        except simpy.Interrupt as i:
            trace.append((env.now, f"interrupted {i.cause}"))

    a = env.process(worker("a", 0.5))
    b = env.process(worker("b", 1.0))
    for n in ("w1", "w2"):
        env.process(waiter(n))
    env.process(opener())
    s = env.process(sleeper())

    def joiner() -> Generator[Any, Any, None]:
        got = yield env.all_of([a, b])
        trace.append((env.now, f"all {sorted(got.values())}"))
        first = yield env.any_of([env.timeout(0.25, "t"), env.timeout(0.5, "u")])
        trace.append((env.now, f"any {list(first.values())}"))
        s.interrupt("stop")

    env.process(joiner())
    env.run()
    return trace, env.now


def test_same_trace_on_a_mix_of_simpy_events() -> None:
    ours, theirs = _both(_mix)
    assert ours == theirs
    assert len(ours[0]) > 12


def test_same_trace_stop_and_value() -> None:
    def body(env: Any) -> Any:
        trace: list[tuple[float, str]] = []

        def proc(name: str, d: float) -> Generator[Any, Any, str]:
            for _ in range(5):
                yield env.timeout(d)
                trace.append((env.now, name))
            return name

        a = env.process(proc("a", 1.5))
        env.process(proc("b", 1.0))
        env.run(until=3.0)  # a number: stops before the events at 3.0
        at3 = (env.now, list(trace))
        got = env.run(until=a)  # an event: its value
        env.run()  # empty schedule: returns
        with pytest.raises(ValueError, match="greater than"):
            env.run(until=env.now)
        return at3, got, trace, env.now, env.run(until=a), env.peek()

    ours, theirs = _both(body)
    assert ours == theirs
    assert ours[0][0] == 3.0
    assert ours[1] == "a"


def test_failed_event_crashes_the_run() -> None:
    def body(env: Any) -> str:
        def bad() -> Generator[Any, Any, None]:
            yield env.timeout(1)
            raise KeyError("boom")

        env.process(bad())
        with pytest.raises(KeyError) as err:
            env.run(until=5)
        return repr(err.value)

    ours, theirs = _both(body)
    assert ours == theirs


_ON_SIMPY = textwrap.dedent(
    """
    import json, sys
    from collections import Counter
    from heapq import heappush
    import simpy
    from simpy.events import NORMAL
    import sim
    from sim.model.env import SimEnv
    from sim.model.host import Host

    class OnSimPy(simpy.Environment):
        # the model's environment interface on SimPy's own environment
        def __init__(self, scenario, seed, replication=0):
            super().__init__()
            self.scenario, self.seed, self.replication = scenario, seed, replication
            self.counters, self._keys, self._cached = Counter(), set(), {}
        rng = SimEnv.rng
        cached = SimEnv.cached
        def push(self, at, priority, event):
            heappush(self._queue, (at, priority, next(self._eid), event))
        def hold_until(self, at, ev):
            ev.callbacks = []
            ev._delay = at - self.now
            self.push(at, NORMAL, ev)
        def after(self, delay, callback):
            ev = self.timeout(delay)
            ev.callbacks.append(callback)
            return ev

    def records(env):
        scn = sim.load(sys.argv[1], {"run.duration": "20ms", "run.warmup": "0us"})
        env.scenario = scn
        host = Host(env)
        host.start()
        env.run(until=scn.run.duration)
        data = host.collect(0, 0.0)
        return [list(map(list, s.done)) for s in data.streams], dict(env.counters)

    scn = sim.load(sys.argv[1])
    print(json.dumps([records(SimEnv(scn, 1)), records(OnSimPy(scn, 1))]))
    """
)


def test_model_identical_on_simpy_environment() -> None:
    """The baseline host, 20 ms, interpreted: every record and counter the same on SimEnv
    and on ``simpy.Environment`` with SimPy's own timeouts."""
    env = {**os.environ, "HVSIM_PURE": "1"}
    out = subprocess.run(
        [sys.executable, "-c", _ON_SIMPY, str(BASELINE)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    ours, theirs = json.loads(out.stdout)
    assert ours == theirs
    assert sum(len(s) for s in ours[0]) > 100


def test_now_follows_the_clock_in_run_and_step() -> None:
    """``now`` is a plain attribute, the clock: in callbacks, after ``run`` and after
    each ``step``."""
    env = SimEnv(sim.load(BASELINE), 1)
    seen: list[float] = []

    def proc() -> Generator[Any, Any, None]:
        for d in (0.5, 2.0, 0.25):
            yield env.timeout(d)
            seen.append(env.now)

    env.process(proc())
    env.step()  # the process starts at 0
    assert env.now == env._now == 0.0
    env.step()
    assert env.now == env._now == 0.5
    env.run(until=2.0)
    assert env.now == 2.0
    env.run()
    assert seen == [0.5, 2.5, 2.75]
    assert env.now == 2.75
    with pytest.raises(simpy.core.EmptySchedule):
        env.step()


def test_hold_is_a_timeout() -> None:
    """``timeout`` makes a :class:`Hold` that says what SimPy's ``Timeout`` says, on the
    heap as SimPy puts one; ``after`` calls back; a reused hold is pending again."""
    env = SimEnv(sim.load(BASELINE), 1)
    t = env.timeout(1.0, "v")
    assert type(t) is Hold
    assert (t.env, t.callbacks, t.value, t.delay, t.triggered, t.ok, t.processed) == (
        env,
        [],
        "v",
        1.0,
        True,
        True,
        False,
    )
    assert env.peek() == 1.0
    with pytest.raises(ValueError, match="Negative delay"):
        env.timeout(-1.0)
    assert isinstance(env.event(), simpy.Event)
    called: list[float] = []
    env.after(0.5, lambda ev: called.append(env.now))
    env.run()
    assert called == [0.5]
    assert t.processed
    env.hold_until(3.0, t)
    assert not t.processed
    assert (t.delay, env.peek()) == (2.0, 3.0)


def _walker(
    env: Any, trace: list[tuple[float, str]], name: str, d: float
) -> Generator[simpy.Event, Any, None]:
    """A walk: timeouts, an event already processed, one that fails and is caught."""
    yield env.timeout(d)
    trace.append((env.now, f"{name}.1"))
    done = env.timeout(0)
    yield env.timeout(d)
    yield done  # processed already: resumes at once
    trace.append((env.now, f"{name}.2"))
    bad = env.event()
    bad.fail(KeyError(name))
    try:
        yield bad
    except KeyError:
        trace.append((env.now, f"{name}.caught"))
    yield env.timeout(0)
    trace.append((env.now, f"{name}.3"))


def test_task_runs_like_a_process() -> None:
    """A Task interleaves with other work exactly as a process would, ties included, and
    hands its end to its function at once."""

    def run(task: bool) -> tuple[list[tuple[float, str]], list[tuple[float, str]]]:
        env = SimEnv(sim.load(BASELINE), 1)
        trace: list[tuple[float, str]] = []
        ended: list[tuple[float, str]] = []

        def starter() -> Generator[simpy.Event, Any, None]:
            for i, d in enumerate((1.0, 0.5, 1.0)):
                yield env.timeout(0.5)
                name = f"w{i}"
                if task:
                    walk = _walker(env, trace, name, d)
                    Task(env, walk, lambda n: ended.append((env.now, n)), name)
                else:
                    env.process(_walker(env, trace, name, d))
                trace.append((env.now, f"started {name}"))

        env.process(starter())
        env.process(_walker(env, trace, "other", 1.0))
        env.run(until=10)
        return trace, ended

    tasks, procs = run(True), run(False)
    assert tasks[0] == procs[0]
    assert [n for _, n in tasks[1]] == ["w1", "w0", "w2"]  # in the order they ended
    assert tasks[1][0] == (2.0, "w1")
    assert procs[1] == []


def test_task_failure_crashes_the_run_as_a_process() -> None:
    """An exception escaping a Task's generator ends the run as a failed process does."""

    def boom(env: simpy.Environment) -> Generator[simpy.Event, Any, None]:
        yield env.timeout(1)
        raise KeyError("boom")

    env = SimEnv(sim.load(BASELINE), 1)
    Task(env, boom(env), lambda _a: None, None)
    with pytest.raises(KeyError) as err:
        env.run(until=5)
    assert repr(err.value) == "KeyError('boom')"
    assert env.now == 1


def test_task_at_once_as_a_scheduled_start() -> None:
    """A Task started at once by the only callback of an arrival timeout, after timing the
    next arrival, runs the same steps in the same order as one started by its event and
    as a process, ties with other work included."""

    def run(how: str) -> list[tuple[float, str]]:
        env = SimEnv(sim.load(BASELINE), 1)
        trace: list[tuple[float, str]] = []
        n = [0]

        def arrival(_ev: simpy.Event) -> None:
            name = f"w{n[0]}"
            d = (0.5, 1.0, 0.25)[n[0] % 3]  # ends on later arrivals' times: ties
            n[0] += 1
            trace.append((env.now, f"arrive {name}"))
            env.timeout(0.5).callbacks.append(arrival)
            if how == "process":
                env.process(_walker(env, trace, name, d))
            else:
                done = lambda a: trace.append((env.now, f"done {a}"))  # noqa: E731
                Task(env, _walker(env, trace, name, d), done, name, at_once=how == "at once")

        env.timeout(0.5).callbacks.append(arrival)
        env.process(_walker(env, trace, "other", 0.5))
        env.run(until=6)
        return trace

    at_once, scheduled, process = run("at once"), run("scheduled"), run("process")
    steps = [t for t in at_once if not t[1].startswith("done")]
    assert steps == [t for t in scheduled if not t[1].startswith("done")]
    assert steps == process
    assert len(steps) > 40


def test_constants_agree_with_simpy_and_the_component_list() -> None:
    """The compiled model's constants: SimPy's priorities and the components' indices."""
    from simpy.events import NORMAL as SIMPY_NORMAL
    from simpy.events import URGENT as SIMPY_URGENT

    from sim.model import env as env_module
    from sim.model import metrics

    assert (env_module.URGENT, env_module.NORMAL) == (SIMPY_URGENT, SIMPY_NORMAL)
    names = [c.upper() for c in metrics.COMPONENTS]
    assert [getattr(metrics, n) for n in names] == list(range(len(names)))
