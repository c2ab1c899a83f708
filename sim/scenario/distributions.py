"""Probability distributions for costs, service times, sizes and think times.

A scenario writes a random quantity either as a plain value (``"5us"``, ``"4KiB"``: a
constant) or as a mapping naming a distribution::

    {dist: exponential, mean: 80us}
    {dist: gamma, mean: 80us, cv: 0.5}          # cv = standard deviation / mean
    {dist: lognormal, mean: 4KiB, cv: 1.2}
    {dist: uniform, low: 10us, high: 30us}
    {dist: empirical, values: [512B, 4KiB, 64KiB], weights: [0.5, 0.3, 0.2]}
    {dist: scipy, name: weibull_min, params: {c: 1.5}, scale: 20us}

Values are parsed with the field's unit (time → µs, size → bytes) once, at load. A
:class:`Distribution` validates its parameters, knows its mean and variance (so tests can
hold samples against theory, and the analytic estimate can use them) and hands out a
sampler (:data:`Draw`) bound to one ``numpy.random.Generator``. Samplers draw in blocks: one
vectorised call per :data:`BLOCK` values instead of one NumPy call per request, which is
what makes random costs affordable on the simulation's hot path. Block drawing consumes the
generator in the same order on every run, so results stay reproducible.

Sizes are rounded to whole bytes (at least 1); times are non-negative floats.

What a draw costs: the built-in distributions draw through NumPy, some tens of
nanoseconds a value; a scipy one may take far longer (``studentized_range`` integrates
numerically: some 50 ms a value). :func:`draw_seconds` and :func:`quantile_seconds` time
a distribution's draws and quantiles once per process on a small sample (1, 8, 64, 512
values while that stays within :data:`MEASURE_SECONDS`; one call waited for at most
:data:`MEASURE_CAP`), with a generator of their own: the work budget
(:mod:`sim.scenario.budget`) counts them, and nothing a run computes depends on them.
A scipy distribution's mean and variance are computed once per parameters, too.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import numpy as np

from sim.scenario import units

Kind = Literal["time", "size"]

BLOCK = 1024
"""Values drawn per vectorised call of a sampler."""

QUANTILE_POINTS = 2048
"""Equal-probability points at which a continuous size distribution's quantile function
is read when it is integrated over (the analytic estimate, :mod:`sim.analysis.queueing`)."""

_KINDS = ("constant", "exponential", "gamma", "lognormal", "uniform", "empirical", "scipy")

CV_RANGE = (1e-6, 1e6)
"""Coefficients of variation a gamma or lognormal may have: a gamma's shape is 1 / cv², and
beyond this range it leaves the numbers a float holds (a constant has no variation)."""


def _parser(kind: Kind, clock_ghz: float | None = None) -> Callable[[Any], float]:
    if kind == "time":
        return lambda v: units.parse_time(v, clock_ghz=clock_ghz)
    return lambda v: float(units.parse_size(v))


def _format(kind: Kind, value: float) -> str:
    if kind == "time":
        return units.exact_time(value)
    return units.exact_size(round(value))


@dataclass(frozen=True)
class Distribution:
    """A validated distribution of a non-negative quantity in internal units."""

    kind: Kind
    name: str
    params: Mapping[str, Any] = field(default_factory=dict)

    # -- moments --------------------------------------------------------------------------
    @property
    def mean(self) -> float:
        """Expected value, in internal units."""
        p = self.params
        match self.name:
            case "constant":
                return float(p["value"])
            case "exponential" | "gamma" | "lognormal":
                return float(p["mean"])
            case "uniform":
                return (p["low"] + p["high"]) / 2.0
            case "empirical":
                return float(np.dot(p["values"], p["probs"]))
            case _:
                return _scipy_moments(p["scipy_name"], _items(p["scipy_params"]))[0] * p["scale"]

    @property
    def variance(self) -> float:
        """Variance, in internal units squared."""
        p = self.params
        match self.name:
            case "constant":
                return 0.0
            # products, not ** 2: a float product overflows to inf, a power raises
            case "exponential":
                return float(p["mean"]) * float(p["mean"])
            case "gamma" | "lognormal":
                sd = p["cv"] * p["mean"]
                return sd * sd
            case "uniform":
                width = p["high"] - p["low"]
                return width * width / 12.0
            case "empirical":
                v, q = np.asarray(p["values"]), np.asarray(p["probs"])
                m = float(np.dot(v, q))
                return float(np.dot((v - m) ** 2, q))
            case _:
                var = _scipy_moments(p["scipy_name"], _items(p["scipy_params"]))[1]
                return var * p["scale"] ** 2

    @property
    def largest(self) -> float:
        """The largest value it can give, in internal units; inf when unbounded."""
        p = self.params
        match self.name:
            case "constant":
                return float(p["value"])
            case "uniform":
                return float(p["high"])
            case "empirical":
                return float(max(p["values"]))
            case _:
                return math.inf

    @property
    def scv(self) -> float:
        """Squared coefficient of variation (variance / mean²); 0 for a zero mean."""
        m = self.mean
        return self.variance / (m * m) if m > 0 else 0.0

    @property
    def is_constant(self) -> bool:
        """True when every draw gives the same value."""
        return self.name == "constant"

    # -- sampling -------------------------------------------------------------------------
    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` independent draws as a float array (sizes already rounded)."""
        p = self.params
        match self.name:
            case "constant":
                out = np.full(n, float(p["value"]))
            case "exponential":
                out = rng.exponential(p["mean"], n)
            case "gamma":
                shape = 1.0 / p["cv"] ** 2
                out = rng.gamma(shape, p["mean"] / shape, n)
            case "lognormal":
                sigma2 = math.log1p(p["cv"] ** 2)
                mu = math.log(p["mean"]) - sigma2 / 2.0
                out = rng.lognormal(mu, math.sqrt(sigma2), n)
            case "uniform":
                out = rng.uniform(p["low"], p["high"], n)
            case "empirical":
                out = rng.choice(np.asarray(p["values"], dtype=float), size=n, p=p["probs"])
            case _:
                out = _frozen_scipy(p).rvs(size=n, random_state=rng) * p["scale"]
                out = np.maximum(np.asarray(out, dtype=float), 0.0)
        if self.kind == "size":
            out = np.maximum(np.rint(out), 1.0)
        return out

    def sampler(self, rng: np.random.Generator) -> Draw:
        """A one-at-a-time sampler drawing from ``rng`` in blocks of :data:`BLOCK`: the
        ``__next__`` of an endless chain of blocks, each one vectorised :meth:`draw`
        (called from C: no Python frame per draw, one per block), or for a constant
        ``itertools.repeat(value).__next__`` (a size rounded as :meth:`draw` rounds it).
        The draws are those of :meth:`draw` on the same generator, in the same order."""
        if self.is_constant:
            value = float(self.draw(rng, 1)[0]) if self.kind == "size" else self.mean
            return itertools.repeat(value).__next__
        blocks = iter(functools.partial(self._block, rng), None)  # a list is never None
        return itertools.chain.from_iterable(blocks).__next__

    def _block(self, rng: np.random.Generator) -> list[float]:
        return cast(list[float], self.draw(rng, BLOCK).tolist())

    # -- round trip -----------------------------------------------------------------------
    def to_spec(self) -> str | dict[str, Any]:
        """The scenario-file form of this distribution (unit strings)."""
        p = self.params
        fmt = lambda v: _format(self.kind, v)  # noqa: E731
        match self.name:
            case "constant":
                return fmt(p["value"])
            case "exponential":
                return {"dist": "exponential", "mean": fmt(p["mean"])}
            case "gamma" | "lognormal":
                return {"dist": self.name, "mean": fmt(p["mean"]), "cv": p["cv"]}
            case "uniform":
                return {"dist": "uniform", "low": fmt(p["low"]), "high": fmt(p["high"])}
            case "empirical":
                return {
                    "dist": "empirical",
                    "values": [fmt(v) for v in p["values"]],
                    # as given: the probabilities would not load back to themselves
                    "weights": list(p.get("weights", p["probs"])),
                }
            case _:
                return {
                    "dist": "scipy",
                    "name": p["scipy_name"],
                    "params": dict(p["scipy_params"]),
                    "scale": fmt(p["scale"]),
                }

    def describe(self) -> str:
        """Short human-readable form, e.g. ``gamma(mean=80us, cv=0.5)``."""
        spec = self.to_spec()
        if isinstance(spec, str):
            return spec
        rest = ", ".join(f"{k}={v}" for k, v in spec.items() if k != "dist")
        return f"{spec['dist']}({rest})"


Draw = Callable[[], float]
"""A sampler: each call the next draw (:meth:`Distribution.sampler`)."""


def constant(value: float, kind: Kind = "time") -> Distribution:
    """A distribution that always gives ``value`` (internal units)."""
    return Distribution(kind, "constant", {"value": float(value)})


def _frozen_scipy(p: Mapping[str, Any]) -> Any:
    import scipy.stats

    return getattr(scipy.stats, p["scipy_name"])(**p["scipy_params"])


def _items(params: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted(params.items()))


@functools.lru_cache(maxsize=256)
def _scipy_moments(name: str, items: tuple[tuple[str, Any], ...]) -> tuple[float, float]:
    """(mean, variance) of scipy.stats.NAME(**items), unscaled: some integrate numerically
    (seconds for ``studentized_range``), so once per parameters."""
    frozen = _frozen_scipy({"scipy_name": name, "scipy_params": dict(items)})
    return float(frozen.mean()), float(frozen.var())


# -- what a draw costs ---------------------------------------------------------------------
MEASURE_SECONDS = 0.05
"""Wall time a measurement of one distribution's draws (or quantiles) aims to take: it
stops growing its sample (1, 8, 64, 512 values) before the next would go past this."""

MEASURE_CAP = 2.0
"""Longest a measurement waits for one call: a call not done by then is taken to cost
this (a lower bound), and left to finish on its own."""

_COSTS: dict[tuple[Any, ...], float] = {}


def draw_seconds(dist: Distribution) -> float:
    """Wall seconds one value of ``dist`` takes to draw, about: 0 for the built-in
    distributions (vectorised NumPy, within what a simulated request costs), measured once
    per process for a scipy one (module docstring)."""
    if dist.name != "scipy":
        return 0.0
    return _cost(dist, "draw", lambda rng, n: dist.draw(rng, n))


def quantile_seconds(dist: Distribution) -> float:
    """Wall seconds one quantile of ``dist`` takes (the analytic estimate integrates a
    scipy size distribution over its quantiles), like :func:`draw_seconds`."""
    if dist.name != "scipy":
        return 0.0
    frozen = _frozen_scipy(dist.params)
    return _cost(dist, "ppf", lambda rng, n: frozen.ppf((np.arange(n) + 0.5) / n))


def _cost(dist: Distribution, what: str, call: Callable[[Any, int], object]) -> float:
    p = dist.params
    key = (what, dist.kind, p["scipy_name"], _items(p["scipy_params"]))
    if key not in _COSTS:
        _COSTS[key] = _measure(call)
    return _COSTS[key]


def _measure(call: Callable[[Any, int], object]) -> float:
    """Seconds per value of ``call(rng, n)``, from its largest sample (module docstring)."""
    rng = np.random.default_rng(0)  # its own: a simulation's generators are not touched
    per = _timed(lambda: call(rng, 1), MEASURE_CAP)
    if per >= MEASURE_CAP:
        return per
    again = _timed(lambda: call(rng, 1), MEASURE_CAP)  # the first call may pay for set-up
    spent, per, n = per + again, min(per, again), 8
    while n <= BLOCK and spent + per * n <= MEASURE_SECONDS:
        took = _timed(lambda n=n: call(rng, n), MEASURE_CAP)  # type: ignore[misc]
        spent += took
        per = took / n
        n *= 8
    return per


def _timed(work: Callable[[], object], cap: float) -> float:
    """Seconds ``work()`` took, or ``cap`` if it is not done within ``cap`` seconds."""
    done = threading.Event()
    took = [cap]

    def target() -> None:
        t0 = time.perf_counter()
        with contextlib.suppress(Exception):  # a run will say what is wrong with it
            work()
        took[0] = time.perf_counter() - t0
        done.set()

    threading.Thread(target=target, name="hvsim-draw-cost", daemon=True).start()
    return took[0] if done.wait(cap) else cap


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        hint = ""
        if isinstance(value, str) and _looks_numeric(value):
            hint = " (a string: YAML reads 1e-3 as text; write 1.0e-3 or 0.001)"
        raise ValueError(f"'{name}' must be a number, got {units.show(value)}{hint}")
    try:
        return float(value)
    except OverflowError:  # an integer beyond any float
        return math.inf


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _positive(name: str, value: Any) -> float:
    x = _number(name, value)
    if not math.isfinite(x) or x <= 0:
        raise ValueError(f"'{name}' must be a positive finite number, got {units.show(value)}")
    return x


def parse(raw: Any, kind: Kind, clock_ghz: float | None = None) -> Distribution:
    """Build a :class:`Distribution` from its scenario form; ``ValueError`` if invalid.

    ``clock_ghz`` converts times given in cycles."""
    if isinstance(raw, Distribution):
        return raw
    conv = _parser(kind, clock_ghz)
    if not isinstance(raw, Mapping):
        return constant(conv(raw), kind)
    spec = dict(raw)
    name = spec.pop("dist", None)
    if name not in _KINDS:
        raise ValueError(f"'dist' must be one of {', '.join(_KINDS)}; got {units.show(name)}")
    allowed = {
        "constant": {"value"},
        "exponential": {"mean"},
        "gamma": {"mean", "cv"},
        "lognormal": {"mean", "cv"},
        "uniform": {"low", "high"},
        "empirical": {"values", "weights"},
        "scipy": {"name", "params", "scale"},
    }[name]
    required = allowed - (
        {"weights", "params", "scale"} if name in ("empirical", "scipy") else set()
    )
    unknown = [k for k in spec if k not in allowed]  # any YAML key: 1, null, a line of text
    if unknown:
        first = unknown[:3]
        plain = [isinstance(k, str) and k.isidentifier() and len(k) <= 40 for k in first]
        shown = ", ".join(k if ok else units.show(k) for k, ok in zip(first, plain, strict=True))
        shown += ", ..." if len(unknown) > 3 else ""
        raise ValueError(f"{name} takes {', '.join(sorted(allowed))}; unknown: {shown}")
    missing = sorted(required - set(spec))
    if missing:
        raise ValueError(f"{name} needs {', '.join(missing)}")

    params: dict[str, Any] = {}
    if name == "constant":
        params["value"] = conv(spec["value"])
    elif name in ("exponential", "gamma", "lognormal"):
        params["mean"] = conv(spec["mean"])
        if params["mean"] <= 0:
            raise ValueError(f"{name} needs a positive mean")
        if name != "exponential":
            params["cv"] = cv = _positive("cv", spec["cv"])
            low, high = CV_RANGE
            if not low <= cv <= high:
                raise ValueError(
                    f"'cv' must be between {low:g} and {high:g}, got {units.show(spec['cv'])}"
                )
    elif name == "uniform":
        lo, hi = conv(spec["low"]), conv(spec["high"])
        if hi < lo:
            raise ValueError("uniform needs low <= high")
        params.update(low=lo, high=hi)
    elif name == "empirical":
        values = spec["values"]
        if not isinstance(values, list) or not values:
            raise ValueError("empirical 'values' must be a non-empty list")
        vals = [conv(v) for v in values]
        weights = spec.get("weights", [1.0] * len(vals))
        if not isinstance(weights, list) or len(weights) != len(vals):
            raise ValueError("empirical 'weights' must be a list as long as 'values'")
        given = tuple(_positive("weights[]", x) for x in weights)
        w, total = list(given), sum(given)
        if not math.isfinite(total):  # two weights of 1e308 add up to inf
            top = max(w)
            w = [x / top for x in w]
            total = sum(w)
        params.update(values=tuple(vals), probs=tuple(x / total for x in w), weights=given)
    else:
        params.update(_parse_scipy(spec, conv))
    return Distribution(kind, name, params)


def _parse_scipy(spec: Mapping[str, Any], conv: Callable[[Any], float]) -> dict[str, Any]:
    import scipy.stats

    sname = spec["name"]
    obj = getattr(scipy.stats, sname, None) if isinstance(sname, str) else None
    if not isinstance(obj, scipy.stats.rv_continuous | scipy.stats.rv_discrete):
        raise ValueError(f"{units.show(sname)} is not a scipy.stats distribution")
    sparams = spec.get("params", {})
    if not isinstance(sparams, Mapping) or not all(isinstance(k, str) for k in sparams):
        raise ValueError("scipy 'params' must be a mapping of parameter names to numbers")
    allowed = [p.strip() for p in (obj.shapes or "").split(",") if p.strip()] + ["loc"]
    for k in sparams:
        if k == "scale":
            raise ValueError("give 'scale' beside 'params', with a unit (e.g. scale: 20us)")
        if k not in allowed:
            raise ValueError(
                f"scipy.stats.{sname} has no parameter {units.show(k)} "
                f"(it takes {', '.join(allowed)})"
            )
    clean = {}
    for k, v in sparams.items():
        try:
            x = float(v) if isinstance(v, int | float) and not isinstance(v, bool) else math.nan
        except OverflowError:  # an integer beyond any float
            x = math.inf
        if not math.isfinite(x):
            raise ValueError(f"scipy parameter '{k}' must be a finite number")
        clean[k] = x
    scale = conv(spec["scale"]) if "scale" in spec else 1.0
    try:
        frozen = obj(**clean)
        mean, var = _scipy_moments(sname, _items(clean))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"scipy.stats.{sname}: {exc}") from None
    if math.isnan(mean) or math.isnan(var):
        raise ValueError(f"scipy.stats.{sname}: parameters {clean} are outside its domain")
    if not (math.isfinite(mean) and math.isfinite(var)) or mean < 0:
        raise ValueError(f"scipy.stats.{sname} with {clean} has no finite non-negative mean")
    if float(frozen.support()[0]) < 0:
        raise ValueError(f"scipy.stats.{sname} with {clean} takes negative values")
    return {"scipy_name": sname, "scipy_params": clean, "scale": scale}


def json_schema(kind: Kind) -> dict[str, Any]:
    """JSON Schema of a distribution field (for ``hvsim schema``)."""
    unit = "a time such as '5us'" if kind == "time" else "a size such as '4KiB'"
    quantity = {"type": ["string", "number"], "description": unit}
    return {
        "description": f"A constant ({unit}) or a distribution mapping.",
        "oneOf": [
            quantity,
            {
                "type": "object",
                "required": ["dist"],
                "properties": {
                    "dist": {"enum": list(_KINDS)},
                    "value": quantity,
                    "mean": quantity,
                    "cv": {"type": "number", "exclusiveMinimum": 0},
                    "low": quantity,
                    "high": quantity,
                    "values": {"type": "array", "items": quantity},
                    "weights": {"type": "array", "items": {"type": "number"}},
                    "name": {"type": "string"},
                    "params": {"type": "object"},
                    "scale": quantity,
                },
                "additionalProperties": False,
            },
        ],
    }
