"""Mean value analysis of closed queueing networks, with open classes beside them
(:mod:`sim.analysis.analytic` solves its closed loops with it, docs/design.md §6).

A closed class ``c`` has ``users[c]`` customers, each cycling through a pure delay
``delay[c]`` (think time plus the path's delays) and the queueing stations ``k`` where it
demands ``demand[c, k]`` µs per cycle. Open classes load station ``k`` with utilisation
``open_util[k]`` (in servers) and slow every closed visit there by 1/(1 − their load per
server): the mixed-network treatment of Lazowska, Zahorjan, Graham and Sevcik,
*Quantitative System Performance* (1984), ch. 7.

* :func:`schweitzer` is the approximate MVA of Schweitzer (1979) and Bard (1979): the
  queue a class-``c`` customer finds at ``k`` on arrival is the whole queue less
  ``1/users[c]`` of its own class's, solved by fixed point; each sweep is
  O(classes × stations). A station of ``servers[k]`` > 1 is Seidmann's approximation
  (Seidmann, Schweitzer and Shalev-Oren, *Performance Evaluation* 7, 1987): a queue of
  demand D/c followed by a delay of D(c − 1)/c.
* :func:`exact` is the exact multi-class MVA recursion (Reiser and Lavenberg, *JACM* 27,
  1980) over every population vector: exponential single-server FCFS stations, cost
  Π(N_c + 1); for checking the approximation on small networks.
"""

from __future__ import annotations

import itertools

import numpy as np


def _inflation(open_util: np.ndarray, servers: np.ndarray) -> np.ndarray:
    """1/(1 − open load per server) per station; inf where the open classes saturate it."""
    per_server = open_util / servers
    with np.errstate(divide="ignore"):
        return np.where(per_server < 1.0, 1.0 / np.maximum(1.0 - per_server, 1e-300), np.inf)


def schweitzer(
    demand: np.ndarray,
    users: np.ndarray,
    delay: np.ndarray,
    open_util: np.ndarray | None = None,
    servers: np.ndarray | None = None,
    start: np.ndarray | None = None,
    tol: float = 1e-12,
    max_sweeps: int = 100_000,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Throughput per class (per µs), residence time per class and station (µs per
    cycle, the Seidmann delay part included) and customers per class and station, by
    Schweitzer–Bard approximate MVA; ``start`` (customers per class and station, e.g. a
    previous solution's) is where the iteration starts. Each sweep touches only the
    stations a class visits: O(classes × stations visited)."""
    demand = np.asarray(demand, dtype=float)
    n_cls, n_st = demand.shape
    users = np.asarray(users, dtype=float)
    delay = np.asarray(delay, dtype=float)
    servers = np.ones(n_st) if servers is None else np.asarray(servers, dtype=float)
    open_util = np.zeros(n_st) if open_util is None else np.asarray(open_util, dtype=float)
    inflate = _inflation(open_util, servers)
    queue_d = demand / servers
    extra = demand - queue_d  # Seidmann's delay part of a multi-server station
    fixed = delay + extra.sum(axis=1)
    blocked = ((demand > 0) & np.isinf(inflate)).any(axis=1)
    x = np.zeros(n_cls)
    resid = np.zeros((n_cls, n_st))
    customers = np.zeros((n_cls, n_st))
    live = np.flatnonzero((users > 0) & ~blocked)
    if not len(live):
        return x, resid, customers
    # the stations each live class visits, padded with a station n_st of no demand
    visits = queue_d[live] > 0
    width = max(int(visits.sum(axis=1).max()), 1)
    idx = np.full((len(live), width), n_st)
    for row, cols in enumerate(visits):
        on = np.flatnonzero(cols)
        idx[row, : len(on)] = on
    padded = np.concatenate([queue_d[live], np.zeros((len(live), 1))], axis=1)
    d = np.take_along_axis(padded, idx, axis=1)
    slow = np.append(np.where(np.isinf(inflate), 0.0, inflate), 0.0)[idx]
    n = users[live]
    z = fixed[live]
    if start is not None:
        q = np.take_along_axis(
            np.concatenate([np.asarray(start, dtype=float)[live], np.zeros((len(live), 1))], 1),
            idx,
            axis=1,
        )
    else:
        total = d.sum(axis=1)
        q = n[:, None] * np.divide(
            d, total[:, None], out=np.zeros_like(d), where=total[:, None] > 0
        )
    for _ in range(max_sweeps):
        at = np.bincount(idx.ravel(), weights=q.ravel(), minlength=n_st + 1)
        seen = at[idx] - q / n[:, None]
        r = d * (1.0 + seen) * slow
        xs = n / (z + r.sum(axis=1))
        q_new = xs[:, None] * r
        done = np.max(np.abs(q_new - q)) <= tol * (1.0 + np.max(q_new))
        q = q_new
        if done:
            break
    x[live] = xs
    rows = np.repeat(live, width)
    cols = idx.ravel()
    keep = cols < n_st
    np.add.at(resid, (rows[keep], cols[keep]), r.ravel()[keep])
    np.add.at(customers, (rows[keep], cols[keep]), q.ravel()[keep])
    resid[live] += extra[live]
    return x, resid, customers


def exact(
    demand: np.ndarray,
    users: np.ndarray,
    delay: np.ndarray,
    open_util: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Throughput per class and residence times at the full population by the exact MVA
    recursion (single-server stations; integer populations)."""
    demand = np.asarray(demand, dtype=float)
    n_cls, n_st = demand.shape
    pop = tuple(int(u) for u in users)
    delay = np.asarray(delay, dtype=float)
    ones = np.ones(n_st)
    open_util = np.zeros(n_st) if open_util is None else np.asarray(open_util, dtype=float)
    inflate = _inflation(open_util, ones)
    queues: dict[tuple[int, ...], np.ndarray] = {}
    x = np.zeros(n_cls)
    resid = np.zeros((n_cls, n_st))
    for vec in itertools.product(*(range(p + 1) for p in pop)):
        if sum(vec) == 0:
            queues[vec] = np.zeros(n_st)
            continue
        x = np.zeros(n_cls)
        resid = np.zeros((n_cls, n_st))
        for c in range(n_cls):
            if vec[c] == 0:
                continue
            less = tuple(v - (i == c) for i, v in enumerate(vec))
            resid[c] = demand[c] * (1.0 + queues[less]) * inflate
            x[c] = vec[c] / (delay[c] + resid[c].sum())
        queues[vec] = (x[:, None] * resid).sum(axis=0)
    return x, resid
