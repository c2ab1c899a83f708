"""Queueing building blocks of the analytic estimate: the first two moments of a service
(:class:`Moments`) and of functions of a request's size, and single stations — an M/G/1
vCPU whose first service after an idle spell carries a set-up (Welch 1964), an M/G/1 NIC
port, an M/G/c NVMe drive (Allen–Cunneen, with Erlang C)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.scenario.distributions import QUANTILE_POINTS, Distribution

SIZE_POINTS = QUANTILE_POINTS
"""Equal-probability points a continuous size distribution is integrated over."""


# ---------------------------------------------------------------------------------------
# Moments
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Moments:
    """Mean and variance of a sum of independent terms (µs, µs²)."""

    mean: float = 0.0
    var: float = 0.0

    def __add__(self, other: Moments) -> Moments:
        return Moments(self.mean + other.mean, self.var + other.var)

    @property
    def second(self) -> float:
        return self.var + self.mean * self.mean


def dist_moments(d: Distribution, times: int = 1) -> Moments:
    """``times`` independent draws of ``d``, summed."""
    return Moments(times * d.mean, times * d.variance)


def segmented(d: Distribution, seg: Moments) -> Moments:
    """A cost paid once per segment (independent draws), for a random number of segments
    with mean and variance ``seg``: Wald's identity and the law of total variance."""
    return Moments(seg.mean * d.mean, seg.mean * d.variance + seg.var * d.mean**2)


def const(x: float) -> Moments:
    return Moments(x, 0.0)


def bernoulli(p: float, x: float) -> Moments:
    """``x`` with probability ``p``, else 0."""
    return Moments(p * x, p * (1.0 - p) * x * x)


def size_points(d: Distribution) -> tuple[np.ndarray, np.ndarray]:
    """Sizes (whole bytes, at least 1, as the simulation draws them) and their
    probabilities: exact for constant and empirical sizes, the midpoints of
    :data:`SIZE_POINTS` equal-probability bins of the quantile function otherwise."""
    p = d.params
    if d.name == "constant":
        return np.array([max(1.0, round(p["value"]))]), np.array([1.0])
    if d.name == "empirical":
        v = np.maximum(np.rint(np.asarray(p["values"], dtype=float)), 1.0)
        return v, np.asarray(p["probs"], dtype=float)
    import scipy.stats as st

    q = (np.arange(SIZE_POINTS) + 0.5) / SIZE_POINTS
    if d.name == "exponential":
        x = st.expon(scale=p["mean"]).ppf(q)
    elif d.name == "gamma":
        shape = 1.0 / p["cv"] ** 2
        x = st.gamma(shape, scale=p["mean"] / shape).ppf(q)
    elif d.name == "lognormal":
        s2 = math.log1p(p["cv"] ** 2)
        x = st.lognorm(math.sqrt(s2), scale=math.exp(math.log(p["mean"]) - s2 / 2)).ppf(q)
    elif d.name == "uniform":
        x = p["low"] + q * (p["high"] - p["low"])
    else:
        frozen = getattr(st, p["scipy_name"])(**p["scipy_params"])
        x = np.maximum(frozen.ppf(q) * p["scale"], 0.0)
    return np.maximum(np.rint(x), 1.0), np.full(SIZE_POINTS, 1.0 / SIZE_POINTS)


def each_size(f: Callable[[float], float]) -> Callable[[np.ndarray], np.ndarray]:
    """A function of one size (the scenario's physics, written once in its specs) applied
    to every size point."""
    return lambda xs: np.fromiter((f(float(x)) for x in xs), dtype=float, count=len(xs))


def of_size(sizes: np.ndarray, probs: np.ndarray, f: Any) -> Moments:
    """Moments of ``f(size)`` over a size distribution."""
    y = np.asarray(f(sizes), dtype=float)
    m = float(np.dot(probs, y))
    return Moments(m, max(float(np.dot(probs, (y - m) ** 2)), 0.0))


# ---------------------------------------------------------------------------------------
# Stations
# ---------------------------------------------------------------------------------------
@dataclass
class Station:
    """A queue of the network: a vCPU, a NIC port, an NVMe drive's channels."""

    name: str
    resource: str  # what a planner buys more of: "parent vCPUs", "device nvme0", ...
    kind: str  # vcpu | port | channels
    servers: int = 1
    setup: float = 0.0  # world switch paid by the visit that finds it idle
    lam: float = 0.0  # visits per µs
    work: float = 0.0  # Σ rate × E[S]
    second: float = 0.0  # Σ rate × E[S²]
    bound_work: float = 0.0  # Σ rate × (mandatory part of E[S])
    # solved
    utilization: float = 0.0
    p_idle: float = 1.0
    wait: float = 0.0

    def add(self, rate: float, service: Moments, mandatory: float) -> None:
        self.lam += rate
        self.work += rate * service.mean
        self.second += rate * service.second
        self.bound_work += rate * mandatory

    def solve(self) -> None:
        lam, c = self.lam, self.servers
        if lam <= 0.0:
            self.utilization, self.p_idle, self.wait = 0.0, 1.0, 0.0
            return
        es, es2 = self.work / lam, self.second / lam
        rho = self.work / c
        if rho >= 1.0:
            self.utilization, self.p_idle, self.wait = 1.0, 0.0, math.inf
            return
        if c == 1:
            d = self.setup
            p0 = (1.0 - rho) / (1.0 + lam * d)
            s0 = es2 + 2.0 * d * es + d * d
            self.wait = lam * (p0 * s0 + (1.0 - p0) * es2) / (2.0 * (1.0 - rho))
            self.p_idle = p0
            self.utilization = 1.0 - p0
            return
        a = self.work  # offered load in servers
        cs2 = es2 / (es * es) - 1.0 if es > 0 else 0.0
        self.wait = erlang_c(c, a) * (1.0 + cs2) / 2.0 / (c / es - lam) if es > 0 else 0.0
        self.p_idle = 1.0
        self.utilization = rho

    @property
    def bound_utilization(self) -> float:
        return self.bound_work / self.servers


def erlang_c(c: int, a: float) -> float:
    """Probability of waiting in an M/M/c with offered load ``a`` < c (stable recursion)."""
    b = 1.0
    for k in range(1, c + 1):  # Erlang B by recursion
        b = a * b / (k + a * b)
    rho = a / c
    return b / (1.0 - rho + rho * b)
