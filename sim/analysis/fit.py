"""Fitting a stream to a measured trace (``hvsim fit``, :func:`sim.fit`; docs/design.md §3.4).

From a checked trace (:class:`~sim.scenario.traces.TraceData`) it estimates what a
scenario's stream needs:

* **rate**: (n - 1) gaps over the span (maximum likelihood for a Poisson process);
* **op mix**: the share of each op;
* **sizes**: the empirical distribution itself when the trace has at most
  :data:`MAX_EMPIRICAL` distinct sizes (block traces: a few sizes); else the best of
  lognormal, gamma and exponential by maximum likelihood, with its Kolmogorov-Smirnov
  distance and p-value (``KS_LEVEL``: a family whose p-value is below it is rejected, and
  the empirical distribution of :data:`MAX_EMPIRICAL` quantiles is given instead);
* **burstiness**: the gaps are tested against the exponential (Kolmogorov-Smirnov with
  the mean estimated from them, Lilliefors' correction not applied: conservative toward
  Poisson, Lilliefors, JASA 62, 1967). When Poisson is rejected at ``KS_LEVEL`` and the
  gaps vary more than exponential ones (cv > 1), a two-state MMPP is fitted: arrivals are
  counted in windows of about :data:`WINDOW_ARRIVALS` mean gaps, a two-component Poisson
  mixture fitted to the counts (EM) classifies each window high or low, and the rates are
  re-estimated from the windows inside runs of one state (away from state changes, where a
  window holds both); the burst length and the time between bursts are the mean runs of
  high and low windows. Gaps less variable than exponential (cv < 1) are reported as
  ``deterministic`` when cv < 0.1, else Poisson is kept with the warning in the notes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.stats

from sim.scenario import units
from sim.scenario.traces import TraceData

MAX_EMPIRICAL = 64
"""Most distinct sizes kept as an empirical distribution."""
KS_LEVEL = 0.01
"""Significance level of the Kolmogorov-Smirnov tests (sizes, Poisson gaps)."""
WINDOW_ARRIVALS = 20
"""Mean arrivals per counting window of the MMPP fit."""


@dataclass
class Fit:
    """A fitted stream: :meth:`stream` is the scenario's stream section."""

    requests: int
    span_s: float
    rate: float
    ops: dict[str, float]
    size: dict[str, Any] | str | None
    size_test: str
    arrival: str
    burst: dict[str, Any] | None
    gap_test: str
    notes: list[str] = field(default_factory=list)
    size_family: str = ""
    size_params: dict[str, float] = field(default_factory=dict)

    def stream(self) -> dict[str, Any]:
        """The stream section (plain data, unit strings) to paste into a scenario."""
        out: dict[str, Any] = {}
        if self.ops:
            out["op"] = (
                next(iter(self.ops))
                if len(self.ops) == 1
                else {k: round(v, 4) for k, v in self.ops.items()}
            )
        if self.size is not None:
            out["size"] = self.size
        out["rate"] = units.exact_rate(round(self.rate, 1))
        out["arrival"] = self.arrival
        if self.burst is not None:
            out["burst"] = self.burst
        return out

    def yaml(self) -> str:
        """The stream section as YAML, with the tests as comments."""
        import yaml

        body = yaml.safe_dump([self.stream()], sort_keys=False, default_flow_style=None)
        head = [
            f"# fitted to {self.requests:,} requests over {self.span_s:.6g} s",
            f"# sizes: {self.size_test}",
            f"# arrivals: {self.gap_test}",
            *(f"# note: {n}" for n in self.notes),
        ]
        return "\n".join(head) + "\n" + body


def _sizes(size: np.ndarray) -> tuple[dict[str, Any] | str, str, str, dict[str, float]]:
    values, counts = np.unique(size, return_counts=True)
    if len(values) == 1:
        return units.exact_size(int(values[0])), "one size", "constant", {}
    if len(values) <= MAX_EMPIRICAL:
        spec = {
            "dist": "empirical",
            "values": [units.exact_size(int(v)) for v in values],
            "weights": [int(c) for c in counts],
        }
        return spec, f"empirical ({len(values)} distinct sizes, exact)", "empirical", {}
    x = size.astype(float)
    mean = float(x.mean())
    cv = float(x.std() / mean)
    best: tuple[float, str, Any, dict[str, Any], dict[str, float]] | None = None
    for name in ("lognormal", "gamma", "exponential"):
        if name == "lognormal":
            s, _, scale = scipy.stats.lognorm.fit(x, floc=0)
            frozen = scipy.stats.lognorm(s, scale=scale)
        elif name == "gamma":
            a, _, scale = scipy.stats.gamma.fit(x, floc=0)
            frozen = scipy.stats.gamma(a, scale=scale)
        else:
            frozen = scipy.stats.expon(scale=mean)
        m, var = (float(v) for v in frozen.stats("mv"))
        ks = scipy.stats.kstest(x, frozen.cdf)
        fcv = math.sqrt(var) / m
        fam: dict[str, Any] = {"dist": name, "mean": units.exact_size(round(m))}
        if name != "exponential":
            fam["cv"] = round(fcv, 4)
        if best is None or ks.pvalue > best[0]:
            best = (float(ks.pvalue), name, ks, fam, {"mean": m, "cv": fcv})
    assert best is not None
    p, name, ks, spec, params = best
    if p >= KS_LEVEL:
        return (
            spec,
            f"{name}, KS D={ks.statistic:.4f}, p={p:.3g} (kept at {KS_LEVEL})",
            name,
            params,
        )
    qs = np.unique(np.quantile(x, (np.arange(MAX_EMPIRICAL) + 0.5) / MAX_EMPIRICAL).round())
    emp = {"dist": "empirical", "values": [units.exact_size(int(v)) for v in qs]}
    test = (
        f"no family fits (best {name}, KS D={ks.statistic:.4f}, p={p:.3g} < {KS_LEVEL}): "
        f"empirical of {len(qs)} quantiles (mean {mean:.0f} B, cv {cv:.3g})"
    )
    return emp, test, "empirical", {}


def _poisson_mixture(k: np.ndarray) -> tuple[float, float, np.ndarray]:
    """EM for a two-component Poisson mixture of counts ``k``: (low, high, P(high | k))."""
    lo, hi = float(np.quantile(k, 0.25)) + 0.5, float(np.quantile(k, 0.9)) + 1.0
    w = 0.5
    post = np.zeros(len(k))
    for _ in range(200):
        la = np.log(w) + scipy.stats.poisson.logpmf(k, hi)
        lb = np.log(1 - w) + scipy.stats.poisson.logpmf(k, lo)
        post = 1.0 / (1.0 + np.exp(np.clip(lb - la, -700, 700)))
        w = float(np.clip(post.mean(), 1e-6, 1 - 1e-6))
        new_hi = float((post * k).sum() / max(post.sum(), 1e-12))
        new_lo = float(((1 - post) * k).sum() / max((1 - post).sum(), 1e-12))
        if abs(new_hi - hi) < 1e-9 and abs(new_lo - lo) < 1e-9:
            break
        hi, lo = max(new_hi, 1e-9), max(new_lo, 1e-9)
    return lo, hi, post


def _runs(state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start indices and lengths of the runs of equal values."""
    change = np.flatnonzero(np.diff(state)) + 1
    starts = np.concatenate(([0], change))
    ends = np.concatenate((change, [len(state)]))
    return starts, ends - starts


def _mmpp(t: np.ndarray, rate: float) -> tuple[dict[str, Any], str] | None:
    width = WINDOW_ARRIVALS * 1e6 / rate  # µs
    edges = np.arange(t[0], t[-1] + width, width)
    if len(edges) < 20:
        return None
    k = np.histogram(t, edges)[0][:-1] if len(edges) > 21 else np.histogram(t, edges)[0]
    lo, hi, post = _poisson_mixture(k.astype(float))
    if hi <= lo * 1.5:
        return None
    state = (post > 0.5).astype(int)
    starts, lengths = _runs(state)
    inner = np.zeros(len(k), dtype=bool)  # windows not next to a state change
    for s0, n in zip(starts, lengths, strict=True):
        if n > 2:
            inner[s0 + 1 : s0 + n - 1] = True
    high_in, low_in = inner & (state == 1), inner & (state == 0)
    if high_in.any() and low_in.any():
        hi, lo = float(k[high_in].mean()), float(k[low_in].mean())
    kinds = state[starts]
    runs_hi = lengths[kinds == 1][1:-1] if len(lengths) > 2 else lengths[kinds == 1]
    runs_lo = lengths[kinds == 0][1:-1] if len(lengths) > 2 else lengths[kinds == 0]
    if not len(runs_hi) or not len(runs_lo) or lo <= 0:
        return None
    burst = {
        "factor": round(hi / lo, 3),
        "length": units.exact_time(round(float(runs_hi.mean()) * width, 1)),
        "between": units.exact_time(round(float(runs_lo.mean()) * width, 1)),
    }
    how = (
        f"windows of {units.exact_time(round(width, 1))}: high {hi / width * 1e6:.4g}/s, "
        f"low {lo / width * 1e6:.4g}/s, {len(runs_hi)} bursts"
    )
    return burst, how


def fit(data: TraceData) -> Fit:
    """Fit a stream to ``data`` (see the module docstring)."""
    n = len(data)
    if n < 3:
        raise ValueError(f"a trace of {n} request(s) is too short to fit (3 at least)")
    t = data.t_us
    span = float(t[-1] - t[0])
    if span <= 0:
        raise ValueError("every request arrives at the same time: no rate to fit")
    rate = (n - 1) * 1e6 / span
    ops = {k: round(v, 6) for k, v in data.op_mix().items()}
    notes: list[str] = []
    if data.size is not None:
        size, size_test, family, params = _sizes(data.size)
    else:
        size, size_test, family, params = None, "no size column", "", {}
    gaps = np.diff(t)
    mean_gap = float(gaps.mean())
    cv = float(gaps.std() / mean_gap) if mean_gap > 0 else 0.0
    ks = scipy.stats.kstest(gaps, scipy.stats.expon(scale=mean_gap).cdf)
    gap_test = f"gaps: cv {cv:.3g}, KS against exponential D={ks.statistic:.4f}, p={ks.pvalue:.3g}"
    arrival, burst = "poisson", None
    if ks.pvalue >= KS_LEVEL:
        gap_test += f": Poisson kept at {KS_LEVEL}"
    elif cv < 0.1:
        arrival = "deterministic"
        gap_test += ": Poisson rejected; nearly constant gaps: deterministic"
    elif cv > 1.0:
        got = _mmpp(t, rate)
        if got is None:
            gap_test += ": Poisson rejected, no two-state MMPP found; Poisson kept"
            notes.append("bursty arrivals that a two-state MMPP does not describe")
        else:
            arrival, (burst, how) = "mmpp", got
            gap_test += f": Poisson rejected; two-state MMPP ({how})"
    else:
        gap_test += ": Poisson rejected, gaps less variable than exponential; Poisson kept"
        notes.append("smoother than Poisson arrivals: latency will be overestimated")
    return Fit(
        n,
        span / 1e6,
        rate,
        ops,
        size,
        size_test,
        arrival,
        burst,
        gap_test,
        notes,
        family,
        params,
    )
