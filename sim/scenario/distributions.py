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
:class:`Sampler` bound to one ``numpy.random.Generator``. Samplers draw in blocks: one
vectorised call per :data:`BLOCK` values instead of one NumPy call per request, which is
what makes random costs affordable on the simulation's hot path. Block drawing consumes the
generator in the same order on every run, so results stay reproducible.

Sizes are rounded to whole bytes (at least 1); times are non-negative floats.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from sim.scenario import units

Kind = Literal["time", "size"]

BLOCK = 1024
"""Values drawn per vectorised call of a sampler."""

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
                return float(_frozen_scipy(p).mean()) * p["scale"]

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
                return float(_frozen_scipy(p).var()) * p["scale"] ** 2

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

    def sampler(self, rng: np.random.Generator) -> Sampler:
        """A one-at-a-time sampler drawing from ``rng`` in blocks."""
        return Sampler(self, rng)

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


class Sampler:
    """Hands out draws of one distribution one at a time, refilling in blocks."""

    __slots__ = ("_block", "_dist", "_i", "_rng", "constant")

    def __init__(self, dist: Distribution, rng: np.random.Generator) -> None:
        self._dist = dist
        self._rng = rng
        self._block: list[float] = []
        self._i = 0
        self.constant: float | None = None
        if dist.is_constant:  # same value and rounding as draw() would give
            self.constant = float(dist.draw(rng, 1)[0]) if dist.kind == "size" else dist.mean

    def __call__(self) -> float:
        """The next draw."""
        if self.constant is not None:
            return self.constant
        i = self._i
        if i >= len(self._block):
            self._block = self._dist.draw(self._rng, BLOCK).tolist()
            i = 0
        self._i = i + 1
        return self._block[i]


def constant(value: float, kind: Kind = "time") -> Distribution:
    """A distribution that always gives ``value`` (internal units)."""
    return Distribution(kind, "constant", {"value": float(value)})


def _frozen_scipy(p: Mapping[str, Any]) -> Any:
    import scipy.stats

    return getattr(scipy.stats, p["scipy_name"])(**p["scipy_params"])


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
        mean, var = float(frozen.mean()), float(frozen.var())
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
