"""Reference point of the speed benchmark: a minimal SimPy open tandem queue.

This is the baseline that the project's model is compared against: the same number of
stations, written the usual way: a process per request and a Resource per station. It is
what a SimPy tutorial teaches, with no tricks:

* a Poisson source process spawns ONE process per request (``env.process(customer(...))``);
* every station is ONE ``simpy.Resource(capacity=1)``;
* each customer walks the stations in order, doing
  ``with station.request() as req: yield req; yield env.timeout(service)``;
* interarrival and service times are exponential, drawn one at a time with
  ``rng.expovariate(1 / mean)`` from ``random.Random(seed)`` (the usual idiom, and faster
  per draw than NumPy's generator called for one value);
* latencies are appended to a plain Python list.

Time is in microseconds. The arrival rate is ``utilization / mean_service_us`` and every
station has the same mean service time, so each station runs at ``utilization``. The source
stops after ``requests`` arrivals and the run ends when the event queue empties, i.e. when
every request has completed. Only ``env.run()`` is timed.

:func:`run_heap_tandem` is the same tandem on a hand-written event loop (a ``heapq`` of
departures, a FIFO per station, no processes, no SimPy): the ceiling of what pure Python
does with these events, printed beside the model by ``speed.py``.

Sanity check: one station is an M/M/1 queue with mean latency
``mean_service_us / (1 - utilization)`` (10 µs at the defaults); ``k`` stations form a
Jackson tandem with ``k`` times that.

Run it from the project root::

    python benchmarks/simpy_tandem.py                     # 5 stations, 50000 requests, 5 runs
    python benchmarks/simpy_tandem.py --stations 1 --requests 200000
    python benchmarks/simpy_tandem.py --stations 7 --repeat 3 --json
"""

from __future__ import annotations

import argparse
import heapq
import json
import random
import statistics
import time
from collections import deque
from collections.abc import Generator
from typing import Any

import simpy


def _check(stations: int, requests: int, utilization: float) -> None:
    if stations < 1:
        raise ValueError("stations must be >= 1")
    if requests < 1:
        raise ValueError("requests must be >= 1")
    if not 0.0 < utilization < 1.0:
        raise ValueError("utilization must be in (0, 1)")


def _result(latencies: list[float], wall_s: float, events: int) -> dict[str, float]:
    """What a run returns: completed requests, wall time, their rate, mean latency and
    events processed."""
    n = len(latencies)
    return {
        "requests": float(n),
        "wall_s": wall_s,
        "requests_per_s": n / wall_s,
        "mean_latency_us": sum(latencies) / n,
        "events": float(events),
    }


def run_tandem(
    stations: int,
    requests: int,
    *,
    utilization: float = 0.5,
    mean_service_us: float = 5.0,
    seed: int = 1,
) -> dict[str, float]:
    """Simulate ``requests`` requests through ``stations`` FIFO single-server stations.

    Returns ``requests`` (completed), ``wall_s`` (seconds spent in ``env.run``),
    ``requests_per_s``, ``mean_latency_us`` and ``events`` (SimPy events processed).
    """
    _check(stations, requests, utilization)

    rng = random.Random(seed)
    env = simpy.Environment()
    servers = [simpy.Resource(env, capacity=1) for _ in range(stations)]
    mean_interarrival_us = mean_service_us / utilization
    latencies: list[float] = []

    def customer() -> Generator[simpy.events.Event, Any, None]:
        arrived = env.now
        for station in servers:
            with station.request() as req:
                yield req
                yield env.timeout(rng.expovariate(1.0 / mean_service_us))
        latencies.append(env.now - arrived)

    def source() -> Generator[simpy.events.Event, Any, None]:
        for _ in range(requests):
            env.process(customer())
            yield env.timeout(rng.expovariate(1.0 / mean_interarrival_us))

    env.process(source())
    start = time.perf_counter()
    env.run()  # no `until`: runs until the event queue is empty
    wall_s = time.perf_counter() - start

    # Every scheduled event has been processed once the queue is empty; SimPy numbers the
    # scheduled events with an itertools.count, so its next value is the total.
    events = next(env._eid)

    return _result(latencies, wall_s, events)


def run_heap_tandem(
    stations: int,
    requests: int,
    *,
    utilization: float = 0.5,
    mean_service_us: float = 5.0,
    seed: int = 1,
) -> dict[str, float]:
    """The same tandem as :func:`run_tandem` on a hand-written event loop: a heap of
    arrivals and departures, a FIFO and a busy flag per station, the same draws. Returns
    the same keys (``events``: heap entries processed)."""
    _check(stations, requests, utilization)
    rng = random.Random(seed)
    rate_a, rate_s = utilization / mean_service_us, 1.0 / mean_service_us
    heap: list[tuple[float, int, int, int]] = []  # (time, seq, station or -1, customer)
    waiting = [deque() for _ in range(stations)]  # type: ignore[var-annotated]
    busy = [False] * stations
    arrived: list[float] = []
    latencies: list[float] = []
    seq = 0
    heapq.heappush(heap, (rng.expovariate(rate_a), 0, -1, 0))
    start = time.perf_counter()
    events = 0
    while heap:
        now, _, where, cust = heapq.heappop(heap)
        events += 1
        if where < 0:  # an arrival from outside; the next one is drawn now
            arrived.append(now)
            if len(arrived) < requests:
                seq += 1
                heapq.heappush(heap, (now + rng.expovariate(rate_a), seq, -1, len(arrived)))
            nxt = 0
        else:  # a departure from station `where`: it takes its next customer
            if waiting[where]:
                seq += 1
                heapq.heappush(heap, (now + rng.expovariate(rate_s), seq, where,
                                      waiting[where].popleft()))  # fmt: skip
            else:
                busy[where] = False
            nxt = where + 1
        if nxt == stations:
            latencies.append(now - arrived[cust])
        elif busy[nxt]:
            waiting[nxt].append(cust)
        else:
            busy[nxt] = True
            seq += 1
            heapq.heappush(heap, (now + rng.expovariate(rate_s), seq, nxt, cust))
    wall_s = time.perf_counter() - start
    return _result(latencies, wall_s, events)


def main() -> None:
    """Command-line entry point: repeat runs with seeds 1..repeat and report the median."""
    parser = argparse.ArgumentParser(
        description="SimPy tandem-queue baseline: a process per request, a Resource per station."
    )
    parser.add_argument("--stations", type=int, default=5, help="number of stations (default 5)")
    parser.add_argument(
        "--requests", type=int, default=50000, help="requests per run (default 50000)"
    )
    parser.add_argument(
        "--repeat", type=int, default=5, help="runs, with seeds 1..repeat (default 5)"
    )
    parser.add_argument(
        "--utilization", type=float, default=0.5, help="utilization of each station (default 0.5)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be >= 1")

    runs = [
        run_tandem(args.stations, args.requests, utilization=args.utilization, seed=seed)
        for seed in range(1, args.repeat + 1)
    ]
    rates = [r["requests_per_s"] for r in runs]
    median = statistics.median(rates)
    low, high = min(rates), max(rates)

    if args.json:
        print(
            json.dumps(
                {
                    "model": "simpy_tandem",
                    "stations": args.stations,
                    "requests": args.requests,
                    "repeat": args.repeat,
                    "utilization": args.utilization,
                    "requests_per_s_median": median,
                    "requests_per_s_min": low,
                    "requests_per_s_max": high,
                    "mean_latency_us": statistics.fmean(r["mean_latency_us"] for r in runs),
                    "events_per_run": statistics.fmean(r["events"] for r in runs),
                    "runs": runs,
                }
            )
        )
    else:
        noun = "station" if args.stations == 1 else "stations"
        print(
            f"simpy tandem, {args.stations} {noun}: {median:,.0f} requests/s "
            f"(median of {args.repeat}; min {low:,.0f}, max {high:,.0f})"
        )


if __name__ == "__main__":
    main()
