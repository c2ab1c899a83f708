"""The event loop of :class:`sim.model.env.SimEnv`: SimPy's ``run`` with ``step`` inline
gives the same events in the same order, the same stop and the same crash."""

from __future__ import annotations

from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import pytest
import simpy

import sim
from sim.model.env import SimEnv, Task
from sim.model.host import Host

BASELINE = Path(__file__).resolve().parent.parent / "scenarios" / "baseline.yaml"


def _both(body: Callable[[simpy.Environment], Any]) -> tuple[Any, Any]:
    """``body`` run on a SimEnv with its loop and with SimPy's ``run``."""
    scn = sim.load(BASELINE)
    ours = body(SimEnv(scn, 1))
    env = SimEnv(scn, 1)
    env.run = simpy.Environment.run.__get__(env)  # type: ignore[method-assign]
    return ours, body(env)


def test_same_trace_stop_and_value() -> None:
    def body(env: simpy.Environment) -> Any:
        trace: list[tuple[float, str]] = []

        def proc(name: str, d: float) -> Generator[simpy.Event, Any, str]:
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
        return at3, got, trace, env.now, env.run(until=a)

    ours, theirs = _both(body)
    assert ours == theirs
    assert ours[0][0] == 3.0
    assert ours[1] == "a"


def test_failed_event_crashes_the_run() -> None:
    def body(env: simpy.Environment) -> str:
        def bad() -> Generator[simpy.Event, Any, None]:
            yield env.timeout(1)
            raise KeyError("boom")

        env.process(bad())
        with pytest.raises(KeyError) as err:
            env.run(until=5)
        return repr(err.value)

    ours, theirs = _both(body)
    assert ours == theirs


def test_model_identical_to_simpy_loop() -> None:
    """The baseline host, 20 ms: every record and account the same under both loops."""

    def body(env: simpy.Environment) -> Any:
        assert isinstance(env, SimEnv)
        scn = sim.load(BASELINE, {"run.duration": "20ms", "run.warmup": "0us"})
        env.scenario = scn
        host = Host(env)
        host.start()
        env.run(until=scn.run.duration)
        data = host.collect(0, 0.0)
        return [list(map(tuple, s.done)) for s in data.streams], dict(env.counters)

    ours, theirs = _both(body)
    assert ours == theirs
    assert sum(len(s) for s in ours[0]) > 100


def test_now_follows_the_clock_in_run_and_step() -> None:
    """``now`` is a plain attribute: equal to SimPy's clock in callbacks, after ``run``
    and after each ``step``."""
    env = SimEnv(sim.load(BASELINE), 1)
    seen: list[tuple[float, float]] = []

    def proc() -> Generator[simpy.Event, Any, None]:
        for d in (0.5, 2.0, 0.25):
            yield env.timeout(d)
            seen.append((env.now, env._now))

    env.process(proc())
    env.step()  # the process starts at 0
    assert env.now == env._now == 0.0
    env.step()
    assert env.now == env._now == 0.5
    env.run(until=2.0)
    assert env.now == env._now == 2.0
    env.run()
    assert seen == [(0.5, 0.5), (2.5, 2.5), (2.75, 2.75)]
    assert env.now == 2.75


def test_event_classes_bound_once() -> None:
    """The inherited event classes are bound to the environment itself (no descriptor
    call per use), and ``timeout`` builds SimPy's ``Timeout`` as SimPy does."""
    env = SimEnv(sim.load(BASELINE), 1)
    for name in ("process", "event", "all_of", "any_of"):
        assert name in vars(env)
    t = env.timeout(1.0, "v")
    assert type(t) is simpy.Timeout
    assert (t.env, t.callbacks, t.value, t._delay, t.triggered) == (env, [], "v", 1.0, True)
    assert env.peek() == 1.0
    with pytest.raises(ValueError, match="Negative delay"):
        env.timeout(-1.0)
    assert isinstance(env.event(), simpy.Event)


def _walker(
    env: simpy.Environment, trace: list[tuple[float, str]], name: str, d: float
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
