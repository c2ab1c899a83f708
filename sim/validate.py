"""Validation of the model against queueing theory (``hvsim validate``).

Each case is a YAML file under ``scenarios/validation/``::

    case: M/M/1 response time at the device
    theory: pk                # which closed form gives the expected value
    metric: mean_us           # what is compared
    replications: 10
    scenario: {...}           # a reduced scenario, run through the real model

The expected value is computed **from the case's own scenario** (arrival rate, service
distribution's mean and variance, number of servers), so changing a parameter changes the
expectation, and a wrong model cannot pass by a lucky constant. Reduced scenarios isolate
one mechanism: ``native`` children with zero guest costs put every µs of latency in the
device; a child whose completions go to another vCPU (``irq_vcpu``) makes a three-station
tandem (submitting vCPU → device → completing vCPU).

Theories
    ``pk``      M/G/1 by Pollaczek–Khinchine: W = E[S] + λE[S²] / (2(1−ρ)) (M/M/1 and
                M/D/1 are special cases).
    ``mm1_p``   M/M/1 response-time percentile: the response time is exponential with
                rate μ−λ, so its p-quantile is −ln(1−p)/(μ−λ).
    ``mmc``     M/M/c by Erlang C: W = C(c, λ/μ)/(cμ−λ) + 1/μ.
    ``tandem``  Jackson tandem of M/M/1 stations: W = Σ 1/(μᵢ−λ).
    ``little``  Little's law at the device: the time-average number of requests in the
                device (level monitor) equals the measured throughput × the measured mean
                time in the device (tallies): two independent measurements.
    ``utilization``  device utilisation = λE[S]/c.

Pass rule
    Each replication gives one estimate; across R replications the estimate's standard
    error is s/√R. A case passes when |simulated − expected| ≤ t(0.999, R−1)·s/√R plus a
    small allowance for the finite-horizon bias of a run that starts empty (``bias``,
    default 1 % of the expected value). The 99.9 % quantile makes a correct model fail a
    given case about once in a thousand seeds, not once in twenty.
"""

from __future__ import annotations

import glob
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as _st

from sim.experiment import tabulate
from sim.model import simulate
from sim.scenario import Nvme, Scenario, ScenarioError, compose, from_dict

CASES_GLOB = "scenarios/validation/*.yaml"
CONFIDENCE = 0.999
_KEYS = {"case", "theory", "metric", "replications", "bias", "quantile", "scenario"}


def _device_parts(scn: Scenario) -> tuple[float, float, float, int]:
    """(λ per µs, E[S] µs, E[S²] µs², servers) of the single stream's device."""
    child = scn.children[0]
    stream = child.streams[0]
    assert stream.rate is not None
    lam = stream.rate / 1e6
    dev = scn.device(child.device)
    if dev.type != "nvme":
        raise ValueError("theory cases use an NVMe device")
    op = next(iter(stream.op))
    dist = dev.read if op == "read" else dev.write
    size = stream.size.mean
    transfer = size * 8e6 * dev.channels / dev.bandwidth
    mean = dist.mean + transfer
    return lam, mean, dist.variance + mean * mean, dev.channels


def _pk(scn: Scenario, _q: float) -> float:
    lam, es, es2, c = _device_parts(scn)
    if c != 1:
        raise ValueError("pk needs a single-channel device")
    rho = lam * es
    return es + lam * es2 / (2.0 * (1.0 - rho))


def _mm1_p(scn: Scenario, q: float) -> float:
    lam, es, _, _ = _device_parts(scn)
    return -math.log(1.0 - q) / (1.0 / es - lam)


def _mmc(scn: Scenario, _q: float) -> float:
    lam, es, _, c = _device_parts(scn)
    a = lam * es
    rho = a / c
    terms = sum(a**k / math.factorial(k) for k in range(c))
    last = a**c / (math.factorial(c) * (1.0 - rho))
    erlang_c = last / (terms + last)
    return erlang_c / (c / es - lam) + es


def _tandem(scn: Scenario, _q: float) -> float:
    lam, es, _, _ = _device_parts(scn)
    g = scn.children[0].guest
    means = (g.submit_cost.mean, es, g.complete_cost.mean)
    if min(means) <= 0:
        raise ValueError("tandem needs positive guest submit and complete costs")
    return sum(1.0 / (1.0 / m - lam) for m in means)


def _utilization(scn: Scenario, _q: float) -> float:
    lam, es, _, c = _device_parts(scn)
    return lam * es / c


THEORIES: dict[str, Callable[[Scenario, float], float]] = {
    "pk": _pk,
    "mm1_p": _mm1_p,
    "mmc": _mmc,
    "tandem": _tandem,
    "utilization": _utilization,
}
METRICS = ("mean_us", "p50_us", "p90_us", "p99_us", "p999_us", "throughput_rps")


def _measure(scn: Scenario, theory: str, metric: str, replication: int) -> tuple[float, float]:
    """(simulated, expected-or-NaN) of one replication."""
    data = simulate(scn, replication, scn.run.seed)
    res = tabulate(scn, [data], scn.run.seed, data.wall_s)
    dev = scn.children[0].device
    if theory == "utilization":
        row = res.resources[res.resources["resource"] == dev].iloc[0]
        return float(row["utilization"]), math.nan
    if theory == "little":
        req = res.requests[res.requests["in_window"]]
        row = res.resources[res.resources["resource"] == dev].iloc[0]
        spec = scn.device(dev)
        channels = spec.channels if isinstance(spec, Nvme) else 1
        in_device = float(row["utilization"]) * channels + float(row["mean_level"])
        window_s = (scn.run.duration - scn.run.warmup) / 1e6
        lam = len(req) / window_s / 1e6
        w = float((req["device_queue"] + req["device_service"] + req["iommu"]).mean())
        return in_device, lam * w
    return float(res.summary.iloc[0][metric]), math.nan


def run_case(spec: dict[str, Any], file: str, replications: int | None = None) -> dict[str, Any]:
    """Run one validation case; a row of the validation table."""
    unknown = set(spec) - _KEYS
    if unknown:
        raise ScenarioError(file, sorted(unknown)[0], "unknown key in a validation case")
    theory = spec.get("theory")
    if theory not in (*THEORIES, "little"):
        raise ScenarioError(file, "theory", f"must be one of {', '.join([*THEORIES, 'little'])}")
    metric = spec.get("metric", "mean_us")
    if theory not in ("little", "utilization") and metric not in METRICS:
        raise ScenarioError(file, "metric", f"must be one of {', '.join(METRICS)}")
    scn = from_dict(spec.get("scenario"), source=file)
    if theory in THEORIES:
        try:  # the case's theory must apply to its scenario before anything runs
            THEORIES[theory](scn, float(spec.get("quantile", 0.99)))
        except (ValueError, ZeroDivisionError, AssertionError) as exc:
            raise ScenarioError(file, "theory", f"{theory} does not apply: {exc}") from None
    reps = int(replications or spec.get("replications", 10))
    q = float(spec.get("quantile", 0.99))
    bias = float(spec.get("bias", 0.01))
    sims, exps = zip(*(_measure(scn, theory, metric, r) for r in range(reps)), strict=True)
    x = np.asarray(sims)
    expected = float(np.mean(exps)) if theory == "little" else THEORIES[theory](scn, q)
    simulated = float(x.mean())
    se = float(x.std(ddof=1) / math.sqrt(reps)) if reps > 1 else math.inf
    half = float(_st.t.ppf(0.5 + CONFIDENCE / 2, reps - 1)) * se if reps > 1 else math.inf
    tol = half + bias * abs(expected)
    return {
        "case": spec.get("case", Path(file).stem),
        "theory": theory,
        "metric": "L (requests in device)"
        if theory == "little"
        else ("utilization" if theory == "utilization" else metric),
        "expected": expected,
        "simulated": simulated,
        "ci": 1.96 * se if reps > 1 else math.nan,
        "tolerance": tol,
        "replications": reps,
        "pass": bool(abs(simulated - expected) <= tol),
        "file": file,
    }


def load_case(file: str) -> dict[str, Any]:
    """Read a case file safely."""
    try:
        text = Path(file).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError(file, "", "no such file") from None
    spec, _ = compose(text, file)
    if not isinstance(spec, dict) or not isinstance(spec.get("scenario"), dict):
        raise ScenarioError(file, "scenario", "a validation case needs a 'scenario' mapping")
    return spec


def validate(cases: Sequence[str] | None = None, replications: int | None = None) -> pd.DataFrame:
    """Run the validation cases (default: every file under ``scenarios/validation``)."""
    files = list(cases) if cases else sorted(glob.glob(CASES_GLOB))
    if not files:
        raise ScenarioError(CASES_GLOB, "", "no validation cases found")
    rows = [run_case(load_case(f), f, replications) for f in files]
    return pd.DataFrame(rows)


def format_table(table: pd.DataFrame) -> str:
    """The validation table as text."""
    lines = [
        f"{'case':44} {'expected':>10} {'simulated':>10} {'±ci95':>8} {'tol':>8}  pass",
        "-" * 92,
    ]
    for _, r in table.iterrows():
        lines.append(
            f"{str(r['case'])[:44]:44} {r['expected']:10.4g} {r['simulated']:10.4g} "
            f"{r['ci']:8.3g} {r['tolerance']:8.3g}  {'yes' if r['pass'] else 'NO'}"
        )
    n_pass = int(table["pass"].sum())
    lines.append(f"\n{n_pass} of {len(table)} cases pass")
    return "\n".join(lines)
