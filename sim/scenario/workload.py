"""The children of a scenario and what they do: paths, devices, guests' costs, I/O
streams (open or closed loop, op mix, sizes, arrivals, replayed traces, rate profiles) and
CPU load. A stream's trace file is read and checked here, while the scenario is validated
(:mod:`sim.scenario.traces`), relative to the scenario file's folder."""

from __future__ import annotations

import itertools
import math
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import pydantic
from pydantic import BeforeValidator, Field, PrivateAttr, ValidationInfo

from sim.scenario import distributions, traces, units
from sim.scenario.errors import ScenarioError
from sim.scenario.fields import (
    CAP_HELP,
    MEMORY_RATE,
    PIN_HELP,
    REQUEST_SIZE,
    WEIGHT_HELP,
    Bitrate,
    Cap,
    CostDist,
    Model,
    Name,
    Rate,
    SizeDist,
    Time,
    TimeDist,
    Weight,
    field,
)
from sim.scenario.reader import quote, resolve_inside

# ---------------------------------------------------------------------------------------
# Children and workloads
# ---------------------------------------------------------------------------------------
IoPath = Literal["routed", "direct", "native", "hypervisor", "emulated"]
IO_PATHS: tuple[str, ...] = typing.get_args(IoPath)


def _op_mix(value: Any) -> Any:
    if value is None:  # filled from a trace's op column, else refused (Stream._one_loop)
        return {}
    if isinstance(value, str):
        return {value: 1.0}
    if isinstance(value, Mapping):
        out: dict[str, float] = {}
        for k, w in value.items():
            if not isinstance(k, str):
                raise ValueError(f"op names must be strings, got {units.show(k)}")
            try:
                weight = float(w) if isinstance(w, int | float) and not isinstance(w, bool) else 0.0
            except OverflowError:  # an integer beyond any float
                weight = math.inf
            if not (math.isfinite(weight) and weight > 0):
                shown = units.show(w)
                raise ValueError(f"weight of op {quote(k)} must be a positive number, got {shown}")
            out[k] = weight
        if not out:
            raise ValueError("op mix is empty")
        return out
    shown = units.show(value)
    raise ValueError(f"op must be a name or a mapping of names to weights, got {shown}")


class Burst(Model):
    """Bursts of a Markov-modulated Poisson process (``arrival: mmpp``): arrivals alternate
    between a high and a low Poisson rate, each held for an exponential time (two-state
    MMPP; Heffes & Lucantoni, IEEE JSAC 1986). The stream's ``rate`` stays the mean."""

    factor: float = field(
        10.0, gt=1.0, le=1e6, description="High rate over low rate during a burst."
    )
    length: Time = field("10ms", gt=0, le=3.6e9, description="Mean length of a burst.")
    between: Time = field(
        "90ms", gt=0, le=3.6e9, description="Mean time from the end of a burst to the next."
    )

    def rates(self, mean: float) -> tuple[float, float]:
        """(high, low) rates whose time average is ``mean``."""
        low = mean * (self.length + self.between) / (self.factor * self.length + self.between)
        return self.factor * low, low


class Trace(Model):
    """A trace replayed by a stream (``arrival: trace``): its arrivals, and its ops and
    sizes when it has those columns (:mod:`sim.scenario.traces` for the format). The
    file is read when the scenario is loaded, relative to the scenario file's folder and
    inside its tree (unless --allow-outside)."""

    file: str = field(
        min_length=1,
        max_length=4096,
        description="CSV or Parquet file with columns timestamp and optionally op, size, "
        "relative to the scenario file.",
    )
    time_unit: Literal["ns", "us", "ms", "s"] | None = field(
        None, description="Unit of the timestamps when the header does not give it."
    )
    size_unit: Literal["B", "sectors", "kB", "KiB", "MB", "MiB"] | None = field(
        None, description="Unit of the sizes when the header does not give it; default B."
    )
    scale: float = field(
        1.0,
        gt=0,
        le=1e6,
        allow_inf_nan=False,
        description="Replay at this times the trace's load: its gaps are divided by it.",
    )
    start: Time = field(
        0.0, ge=0, description="Start of the window replayed, from the first timestamp."
    )
    end: Time | None = field(
        None,
        gt=0,
        description="End of the window replayed, from the first timestamp; default: the "
        "last request and one mean gap more (so a loop keeps the trace's rate).",
    )
    loop: bool = field(
        False, description="Replay the window again and again; else the stream stops at its end."
    )
    offset: Literal["none", "random"] = field(
        "none",
        description="random: each replication starts at its own uniform point of the "
        "window (wrapping round), so replications differ; none: at its start.",
    )
    _data: traces.TraceData | None = PrivateAttr(None)
    _plan: tuple[np.ndarray, np.ndarray | None, np.ndarray | None, float] | None = PrivateAttr(None)

    _origin: tuple[str | None, bool, bool] = PrivateAttr((None, False, True))

    def __eq__(self, other: object) -> bool:  # the file's fields and contents, not its arrays
        if not isinstance(other, Trace):
            return NotImplemented
        mine, theirs = self._data, other._data
        return self.model_dump() == other.model_dump() and (
            mine is None or theirs is None or mine.sha256 == theirs.sha256
        )

    __hash__ = Model.__hash__

    @property
    def origin(self) -> tuple[str | None, bool, bool]:
        """(folder it was read relative to, allow_outside, read at all)."""
        return self._origin

    @pydantic.model_validator(mode="after")
    def _read(self, info: ValidationInfo) -> Trace:
        ctx = info.context if isinstance(info.context, dict) else {}
        if self.end is not None and self.end <= self.start:
            raise ValueError("'end' must be after 'start'")
        base = ctx.get("base")
        outside = bool(ctx.get("allow_outside", False))
        self._origin = (None if base is None else str(base), outside, ctx.get("read_traces", True))
        if not ctx.get("read_traces", True):
            return self
        if base is None and not Path(self.file).is_absolute():
            raise ValueError(
                "a trace file is found relative to the scenario file: load the scenario from "
                "its file (hvsim run FILE, sim.load(FILE)), or give an absolute path"
            )
        try:
            where = (
                resolve_inside(
                    self.file,
                    Path(base),
                    str(ctx.get("file", "")),
                    "trace.file",
                    bool(ctx.get("allow_outside", False)),
                )
                if base is not None
                else Path(self.file)
            )
            data = traces.read_trace(where, self.time_unit, self.size_unit, file=self.file)
        except ScenarioError as exc:
            raise ValueError(exc.message if exc.path else str(exc)) from None
        self._data = data
        self._plan = self._schedule(data)
        return self

    def _schedule(
        self, data: traces.TraceData
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, float]:
        t = data.t_us - data.t_us[0]
        n = len(t)
        end = self.end if self.end is not None else (t[-1] + t[-1] / (n - 1) if n > 1 else 0.0)
        lo = int(np.searchsorted(t, self.start, side="left"))
        hi = int(np.searchsorted(t, end, side="left")) if self.end is not None else n
        if hi <= lo:
            raise ValueError(f"{self.file}: no request in the window from 'start' to 'end'")
        period = (end - self.start) / self.scale
        if period <= 0:
            if self.loop or self.offset == "random":
                raise ValueError(
                    f"{self.file}: its requests all arrive at once: a loop or an offset needs "
                    "a window ('end')"
                )
            period = 0.0
        times = (t[lo:hi] - self.start) / self.scale
        op = data.op[lo:hi] if data.op is not None else None
        size = data.size[lo:hi] if data.size is not None else None
        return times, op, size, period

    @property
    def data(self) -> traces.TraceData:
        """The trace as read (:class:`~sim.scenario.traces.TraceData`)."""
        if self._data is None:
            raise ValueError(f"trace {self.file!r} was not read (scenario loaded without traces)")
        return self._data

    def plan(self) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, float]:
        """What is replayed: arrival times (µs from the window's start, scaled), op
        indices and sizes of those requests (None without the column), and the window's
        length once scaled (µs; the period of a loop)."""
        if self._plan is None:
            self._plan = self._schedule(self.data)
        return self._plan

    def arrivals(self, duration: float) -> float:
        """Requests replayed in the first ``duration`` µs (with a random offset, their
        expected number)."""
        times, _, _, period = self.plan()
        n = len(times)
        if period <= 0:
            return float(n)
        if self.offset == "random":
            return n * (duration / period if self.loop else min(duration / period, 1.0))
        whole = math.floor(duration / period) if self.loop else 0
        left = duration - whole * period
        return float(n * whole + np.searchsorted(times, left, side="left"))

    @property
    def rate(self) -> float:
        """Mean requests per second replayed (per window)."""
        times, _, _, period = self.plan()
        return len(times) * 1e6 / period if period > 0 else 0.0


class ProfilePoint(Model):
    """From time ``at`` on (until the next point), the rate is multiplied by ``factor``."""

    at: Time = field(ge=0, description="Start of this step, from the start of the run.")
    factor: float = field(ge=0, le=1e6, allow_inf_nan=False, description="Rate multiplier.")


class Profile(Model):
    """Load over time: the arrival process runs on a clock that goes ``factor`` times as
    fast as simulated time (a time change, so any arrival process follows it: Poisson
    becomes a non-homogeneous Poisson process, a trace is replayed faster and slower).
    Either steps (``points``) or a daily curve (``daily``: 24 hourly factors, the day
    lasting ``period``), repeated every ``period`` when one is given."""

    points: list[ProfilePoint] | None = field(
        None, description="Steps [{at: 0s, factor: 1}, {at: 2s, factor: 3}]: the first at 0."
    )
    daily: list[Annotated[float, Field(ge=0, le=1e6, allow_inf_nan=False)]] | None = field(
        None,
        min_length=24,
        max_length=24,
        description="24 factors, one for each hour of the day (the day lasts 'period').",
    )
    period: Time | None = field(
        None,
        gt=0,
        description="Repeat the profile every period; with daily, the length of a day "
        "(default 24h; a shorter one compresses the day into the run).",
    )

    @pydantic.model_validator(mode="after")
    def _one_form(self) -> Profile:
        if (self.points is None) == (self.daily is None):
            raise ValueError("give either 'points' or 'daily'")
        if self.points is not None:
            if not self.points or self.points[0].at != 0:
                raise ValueError("the first of 'points' is at 0s")
            ats = [p.at for p in self.points]
            if any(b <= a for a, b in itertools.pairwise(ats)):
                raise ValueError("'points' must be in increasing time order")
            if self.period is not None and ats[-1] >= self.period:
                raise ValueError("every point must be within the 'period'")
        _, factors, period = self.steps()
        if not any(f > 0 for f in factors):
            raise ValueError("every factor is 0: nothing would ever arrive")
        if period is None and factors[-1] == 0:
            raise ValueError(
                "the last factor is 0 and does not repeat: nothing would arrive after it"
            )
        return self

    def steps(self) -> tuple[list[float], list[float], float | None]:
        """Step starts (µs), their factors, and the period (µs; None: the last step lasts)."""
        if self.daily is not None:
            day = self.period if self.period is not None else 24 * 3600e6
            return [h * day / 24 for h in range(24)], list(self.daily), day
        assert self.points is not None
        return [p.at for p in self.points], [p.factor for p in self.points], self.period

    def integral(self, t: float) -> float:
        """∫₀ᵗ factor(s) ds (µs): the arrival process's own clock at simulated time ``t``."""
        starts, factors, period = self.steps()
        ends = [*starts[1:], period if period is not None else math.inf]
        per = sum(f * (e - s) for s, e, f in zip(starts, ends, factors, strict=True))
        whole = 0.0
        if period is not None:
            k = math.floor(t / period)
            whole, t = k * per, t - k * period
        part = sum(
            f * max(0.0, min(t, e) - s) for s, e, f in zip(starts, ends, factors, strict=True)
        )
        return whole + part


class RemotePeer(Model):
    """A peer on another host, across the wire: the child's port, a switch, the peer's
    own port (as fast as the child's, store and forward), and the peer's response time.
    A send to it completes when its reply has come back in on the child's port."""

    switch_latency: Time = field(
        "1us",
        ge=0,
        le=1e9,
        description="The switch's forwarding latency, each way. Assumed default: a "
        "cut-through 10/25 GbE data-centre switch forwards in 0.3-1 µs.",
    )
    response: TimeDist = field(
        "0us",
        description="The peer's response time: from the request's last byte in to the "
        "reply's first byte out (its stack and application).",
    )
    reply_size: Annotated[SizeDist, REQUEST_SIZE] = field(
        "1B",
        description="Size of the reply (a size or a distribution): it crosses the peer's "
        "port and then the child's receive wire, behind the frames arriving there.",
    )


class Peer(Model):
    """Where a send stream's requests go and their replies come from: ``remote`` (another
    host across the wire) or ``child`` (another child on the same host: through the
    parent's virtual switch, or VF to VF in the NIC)."""

    remote: RemotePeer | None = field(None, description="A peer on another host.")
    child: Name | None = field(
        None,
        description="Another child on the same host (its instance name): both routed "
        "(through the parent's virtual switch), both direct (a hairpin in the NIC's "
        "embedded switch), or one of each (the routed side's channel hop to the parent's "
        "driver and a hairpin between the PF and the VF, each way).",
    )
    response: TimeDist | None = field(
        None,
        description="With child: the peer child's response time, from the request in its "
        "guest to its reply submitted (default 0). A remote peer's is under 'remote'.",
    )
    reply_size: Annotated[SizeDist, REQUEST_SIZE] | None = field(
        None,
        description="With child: size of the peer child's reply (default 1 B). A remote "
        "peer's is under 'remote'.",
    )

    @pydantic.model_validator(mode="after")
    def _one(self) -> Peer:
        if (self.remote is None) == (self.child is None):
            raise ValueError("give one of 'remote' (another host) or 'child' (this host)")
        if self.remote is not None and (self.response is not None or self.reply_size is not None):
            raise ValueError("a remote peer's 'response' and 'reply_size' go under 'remote'")
        return self


class Stream(Model):
    """One workload stream of a child: open loop (rate) or closed loop (outstanding)."""

    op: Annotated[dict[str, float], BeforeValidator(_op_mix)] = field(
        None,
        description="An op name (read, write for NVMe; send, receive for a NIC) or a mix "
        "{read: 0.7, write: 0.3}. Required, but for a trace with an op column (the mix "
        "is then the trace's).",
        json_schema_extra={"type": ["string", "object"]},
    )
    size: Annotated[SizeDist, REQUEST_SIZE] = field(
        "4KiB",
        description="Request size: a size or a distribution. A continuous distribution "
        "(exponential, gamma, lognormal, uniform, scipy) may draw below 1 B: its draws are "
        "rounded to whole bytes, at least 1 B.",
    )
    arrival: Literal["poisson", "deterministic", "mmpp", "trace"] = field(
        "poisson",
        description="Open-loop arrival process (with rate): poisson, deterministic, or "
        "mmpp (bursts, see 'burst'); or trace (the arrivals of 'trace', without rate).",
    )
    trace: Trace | None = field(None, description="With arrival: trace, the trace replayed.")
    profile: Profile | None = field(
        None,
        description="Open loop: the rate over time (steps or a daily curve), for any "
        "arrival process.",
    )
    burst: Burst | None = field(
        None,
        description="With arrival: mmpp, the bursts (default: factor 10, 10 ms long, 90 ms "
        "between).",
    )
    rate: Rate | None = field(None, gt=0, description="Open loop: requests per second.")
    outstanding: int | None = field(
        None, ge=1, le=100_000, description="Closed loop: requests kept in flight."
    )
    think: TimeDist = field("0us", description="Closed loop: think time between requests.")
    vcpu: int | None = field(
        None,
        ge=0,
        le=1023,
        description="Issuing vCPU; default: round robin over the child's vCPUs.",
    )
    device: Name | None = field(
        None,
        description="The device this stream uses (a child with a NIC and a disk, two "
        "NICs); default: the child's 'device'. Each device the child uses gets its own "
        "path of the child's io_path (routed: its own channels; direct: a VF of that "
        "device).",
    )
    peer: Peer | None = field(
        None,
        description="Request-response: the peer each send goes to and whose reply "
        "completes it (NIC send streams only). Latency is then the round trip; one_way_us "
        "is the time to the peer's port, network_us and peer_us its wire/switch and "
        "response parts (docs/design.md, peers).",
    )

    @pydantic.model_validator(mode="after")
    def _one_loop(self) -> Stream:
        if self.arrival == "trace" or self.trace is not None:
            self._from_trace()
        elif (self.rate is None) == (self.outstanding is None):
            raise ValueError("give either 'rate' (open loop) or 'outstanding' (closed loop)")
        if not self.op:
            raise ValueError("give 'op': an op name or a mix")
        if self.profile is not None and self.outstanding is not None:
            raise ValueError("'profile' shapes open-loop arrivals: a closed-loop stream has none")
        if self.burst is not None and self.arrival != "mmpp":
            raise ValueError("'burst' goes with arrival: mmpp")
        if self.arrival == "mmpp" and self.rate is None:
            raise ValueError("arrival: mmpp is open loop: it needs a 'rate'")
        if self.peer is not None and set(self.op) != {"send"}:
            raise ValueError(
                "a 'peer' answers sends: the stream's op must be send (a receive comes "
                "from the wire without a request)"
            )
        return self

    def _from_trace(self) -> None:
        if self.trace is None:
            raise ValueError("arrival: trace needs a 'trace' (its file)")
        if self.arrival != "trace":
            raise ValueError("'trace' goes with arrival: trace")
        if self.rate is not None or self.outstanding is not None:
            raise ValueError("a trace gives the arrivals: no 'rate' nor 'outstanding'")
        if self.trace._data is None:  # not read (results read back): as written
            return
        data = self.trace.data
        _, op, size, _ = self.trace.plan()
        if op is not None:
            counts = np.bincount(op, minlength=len(data.ops))
            mix = {o: float(c) for o, c in zip(data.ops, counts, strict=True) if c}
            if self.op and not _same_mix(self.op, mix):
                raise ValueError(
                    f"the ops come from the trace's op column ({_shares(mix)}): leave 'op' out"
                )
            object.__setattr__(self, "op", mix)
        if size is not None:
            values, counts = np.unique(size, return_counts=True)
            dist = distributions.Distribution(
                "size",
                "empirical",
                {
                    "values": [float(v) for v in values],
                    "weights": [float(c) for c in counts],
                    "probs": counts / counts.sum(),
                },
            )
            if "size" in self.model_fields_set and self.size.to_spec() != dist.to_spec():
                raise ValueError("the sizes come from the trace's size column: leave 'size' out")
            object.__setattr__(self, "size", dist)

    @property
    def closed(self) -> bool:
        return self.outstanding is not None

    def offered(self, duration: float) -> float | None:
        """Mean requests per second issued over a run of ``duration`` µs (open loop; None
        for a closed-loop stream, or a trace not read)."""
        if self.trace is not None:
            if self.trace._data is None:  # not read (a result's scenario): unknown
                return None
            return self.trace.arrivals(duration) * 1e6 / duration if duration > 0 else 0.0
        if self.rate is None:
            return None
        if self.profile is None or duration <= 0:
            return self.rate
        return self.rate * self.profile.integral(duration) / duration


def _same_mix(a: Mapping[str, float], b: Mapping[str, float]) -> bool:
    if set(a) != set(b):
        return False
    ta, tb = sum(a.values()), sum(b.values())
    return all(abs(a[k] / ta - b[k] / tb) <= 1e-9 for k in a)


def _shares(mix: Mapping[str, float]) -> str:
    total = sum(mix.values())
    return ", ".join(f"{k} {v / total:.3g}" for k, v in mix.items())


class Guest(Model):
    """The child's own I/O driver costs (VSC on the routed path, VF driver on direct)."""

    submit_cost: CostDist = field("2us", description="Guest driver CPU per request. Assumed.")
    complete_cost: CostDist = field(
        "2us",
        description="Guest CPU per completion (interrupt handler), and per received "
        "message (per frame without LRO). Assumed.",
    )
    syscalls_per_request: int = field(
        1,
        ge=0,
        le=1000,
        description="Guest system calls per request (the application's send/receive or "
        "read/write), each costing host.cpu_virtualization.syscall. Assumed: one.",
    )
    privileged_ops_per_request: int = field(
        2,
        ge=0,
        le=1000,
        description="Privileged operations of the guest kernel per request, each costing "
        "host.cpu_virtualization.privileged_op. Assumed: an interrupt-priority raise and "
        "lower around the driver's ring update.",
    )
    page_table_updates_per_request: int = field(
        1,
        ge=0,
        le=1000,
        description="Guest page-table writes per request, each costing "
        "host.cpu_virtualization.page_table_update (shadow paging). Assumed: one (the "
        "request's buffer mapped or a page fault filled).",
    )

    packet_cost: CostDist = field(
        "0us",
        description="NIC streams: the protocol stack's CPU per packet it handles (TCP/IP "
        "and socket layer, beside the driver's per-request costs): per segment sent "
        "(one with TSO, and on the routed, hypervisor and emulated paths, whose virtual "
        "NICs take whole requests) and per unit received (one with LRO). 0 (default): "
        "not modelled. Era figures are in the docs (docs/design.md, stack costs).",
    )
    copy_bandwidth: Annotated[Bitrate, MEMORY_RATE] | None = field(
        None,
        description="NIC streams: rate at which the stack copies the payload between the "
        "user's buffer and its own (copy from user on send, to user on receive), on the "
        "issuing vCPU for sends and the completing one for receives. None (default): no "
        "copy modelled.",
    )

    @property
    def has_stack(self) -> bool:
        """Whether the protocol stack's costs are modelled (a per-packet cost or a copy)."""
        return self.packet_cost.mean > 0.0 or self.copy_bandwidth is not None

    def copy_cost(self, size: float) -> float:
        """CPU to copy ``size`` bytes between user and kernel (0 without a rate)."""
        return size * (8e6 / self.copy_bandwidth) if self.copy_bandwidth else 0.0


class VirtualNic(Model):
    """Offloads the routed child's synthetic NIC (netvsc; Xen netfront) offers its guest,
    independent of the physical port's ``tso`` and ``lro`` (see :mod:`sim.model.iopaths`)."""

    tso: bool = field(
        True,
        description="Virtual TSO/GSO: true (default, as before): the guest hands the "
        "synthetic NIC whole requests; false: its stack cuts each send into ceil(size / "
        "mtu) segments (the device's MTU), each a packet of its own through the guest "
        "driver, the channel's rings and the VSP. Linux netvsc offers TSO to its guest "
        "(NETIF_F_TSO, read); Xen netfront since Menon et al., USENIX ATC 2006.",
    )
    lro: bool = field(
        True,
        description="Virtual receive coalescing (RSC/GRO on the synthetic NIC): true "
        "(default, as before): the VSP hands a received message to the guest as one "
        "packet; false: one packet per MTU frame, each through the VSP, the inbound ring "
        "and the guest's receive processing. Hyper-V vRSC, netvsc NDIS_OFFLOAD "
        "rsc_ip4 (read).",
    )


class CpuLoad(Model):
    """CPU-bound work on a child's vCPUs, competing with I/O for the LPs.

    Each vCPU alternates bursts of ``busy`` µs of work (CPU time, not wall time) and
    ``idle`` wall-clock gaps. Without ``busy`` the vCPU is always runnable."""

    busy: TimeDist | None = field(
        None, description="CPU work per burst; default: endless (always runnable)."
    )
    idle: TimeDist = field("0us", description="Wall time between bursts.")
    vcpus: list[Annotated[int, Field(ge=0, le=1023)]] | None = field(
        None, description="vCPUs that run the load; default: all."
    )


class GuestTimer(Model):
    """The guest kernel's timer tick on each vCPU (see :mod:`sim.model.periodic`).

    Each tick is a work item on the vCPU: the timer's delivery (an exit unless interrupts
    are posted, and its EOI), the guest re-arming its LAPIC timer (an exit,
    ``host.costs.timer_arm_exit``) and the guest's tick handler (``handler_cost``). A tick
    that finds its vCPU blocked wakes it (a wake-up and a world switch) and leaves it to
    halt again (``host.costs.halt_exit``)."""

    mode: Literal["off", "periodic", "tickless"] = field(
        "off",
        description="off: no tick modelled (ticks are folded into the other costs, as "
        "before). periodic: every vCPU ticks at hz, idle or not (Linux without NO_HZ, "
        "Windows' HAL timer). tickless: a vCPU ticks at hz only while it has work; an idle "
        "one takes none (Linux CONFIG_NO_HZ_IDLE, Documentation/timers/no_hz.rst, read).",
    )
    hz: int = field(
        250,
        ge=1,
        le=10_000,
        description="Ticks per second per vCPU. Linux CONFIG_HZ 100/250/1000 (2.6.0-2.6.13 "
        "1000, later 250 by default); Windows 64-100 (VMware KB 1005802, 'Determining and "
        "changing the rate of timer interrupts a guest operating system requests', read).",
    )
    handler_cost: CostDist = field(
        "1us",
        description="Guest CPU of one tick's handler (timekeeping, scheduler tick, "
        "expired timers). Assumed: a few thousand cycles.",
    )


class Emulated(Model):
    """The emulated device of a child on io_path emulated (an e1000 NIC, an IDE
    controller): what its driver's register accesses cost (see :mod:`sim.model.iopaths`)."""

    exits_per_request: int = field(
        4,
        ge=1,
        le=1000,
        description="Register accesses (MMIO/PIO) per request, each an exit to the device "
        "model (host.costs.device_model_exit on the child's vCPU, access_cost on the "
        "parent's), all taken when the request is submitted, the completion handler's "
        "(interrupt-cause read, unmask) included. Assumed: an e1000 transmit takes a tail "
        "write, an interrupt-cause read and an unmask; an IDE DMA command several more.",
    )
    access_cost: CostDist = field(
        "1us",
        description="Device-model CPU per register access, on the parent vCPU serving "
        "the child (decode, emulated device state). Assumed.",
    )


class IoPolicy(Model):
    """What the child's guest does about I/O that does not complete (see :mod:`sim.model.faults`):
    its command timer, its retries, and whether it waits for a failed parent."""

    timeout: Time = field(
        "30s",
        gt=0,
        description="Command timeout: an attempt not completed this long after it was "
        "submitted fails ('timeout') and is retried. Linux sd default, "
        "/sys/block/*/device/timeout (drivers/scsi/sd.h SD_TIMEOUT = 30 s, read); Linux "
        "storvsc sets 180 s on Hyper-V's synthetic disks (storvsc_timeout, read). Used "
        "with on_parent_failure: timeout.",
    )
    retries: int = field(
        5,
        ge=0,
        le=1000,
        description="Attempts after the first that a failed request gets (timeout, device "
        "reset) before it fails for good ('retries exhausted'). Linux sd SD_MAX_RETRIES = "
        "5 (drivers/scsi/sd.h, read).",
    )
    on_parent_failure: Literal["timeout", "wait"] = field(
        "timeout",
        description="timeout: the command timer runs; requests a crashed parent lost "
        "time out and are retried. wait: no command timer; the guest waits, and resubmits "
        "what a crashed parent lost when the parent comes back (its channels are offered "
        "again). Assumed: Linux keeps its command timer armed.",
    )


class Child(Model):
    """A child partition (or ``count`` identical ones, named NAME-1 … NAME-count)."""

    name: Name
    count: int = field(1, ge=1, le=4096)
    vcpus: int = field(2, ge=1, le=1024)
    weight: Weight = field(256, description=WEIGHT_HELP)
    cap: Cap = field(0.0, description=CAP_HELP)
    pin: list[Annotated[int, Field(ge=0, le=1023)]] | None = field(None, description=PIN_HELP)
    io_path: IoPath = field(
        "routed",
        description="How its I/O reaches the device (sim.model.iopaths): routed (VMBus, the "
        "parent's VSP), direct (a VF; routed when none is free), hypervisor (the "
        "hypervisor's own I/O stack), emulated (a device model in the parent), native.",
    )
    device: Name | None = field(None, description="The device its streams use.")
    vf: int | None = field(
        None,
        ge=0,
        le=4095,
        description="VF index to assign (direct); default: the next free VF.",
    )
    irq_vcpu: int | None = field(
        None,
        ge=0,
        le=1023,
        description="vCPU that takes completions; default: the issuing vCPU.",
    )
    iommu: Literal["static", "strict", "deferred"] | None = field(
        None,
        description="Direct: how its guest maps its DMA, its own translation domain's "
        "mode (static: no virtual IOMMU; strict, deferred: through a virtual IOMMU, "
        "host.iommu describes the costs); default: host.iommu.mode.",
    )
    guest: Guest = field({})
    vnic: VirtualNic | None = field(
        None,
        description="Routed children on a NIC: the synthetic NIC's own offloads (tso, "
        "lro); default: both on.",
    )
    emulated: Emulated = field({})
    io_policy: IoPolicy = field({})
    streams: list[Stream] = field([], description="I/O workload streams.")
    cpu_load: CpuLoad | None = field(None, description="CPU-bound background work.")
    timer: GuestTimer = field({}, description="The guest's timer tick (default off).")

    def iommu_mode(self, host_mode: str) -> str:
        """The mode of its direct translation domain: its own, else the host's
        ``host.iommu.mode`` (``host_mode``)."""
        return self.iommu if self.iommu is not None else host_mode

    def device_of(self, stream: Stream) -> str | None:
        """The device ``stream`` (one of its streams) uses: its own, else the child's."""
        return stream.device if stream.device is not None else self.device

    @property
    def devices_used(self) -> list[str]:
        """Every device its streams use, its own ``device`` first, then in stream order."""
        out = [self.device] if self.device is not None else []
        for s in self.streams:
            d = self.device_of(s)
            if d is not None and d not in out:
                out.append(d)
        return out
