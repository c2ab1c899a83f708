"""A request in flight and the records it leaves.

:class:`Request` is one attempt of an I/O request: its identity, timestamps and latency
components (``c``, indexed as :data:`sim.model.metrics.COMPONENTS`); a :data:`Record` is
what a finished or abandoned request leaves behind. :class:`AbortError` stops the walk of
an attempt that is over; :class:`ConservationError` is raised when requests were lost or
counted twice (a defect of the model, never of the input).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sim.model.errors import AbortError, ConservationError
from sim.model.hypervisor import VCpu
from sim.model.metrics import COMPONENT_COLUMNS, COMPONENTS, RETRY

__all__ = ["REQUEST_FIELDS", "AbortError", "ConservationError", "Record", "Request"]

_N_COMPONENTS = len(COMPONENTS)


class Request:
    """One attempt of an I/O request in flight: its identity, timestamps and latency
    components (every request has one attempt unless faults are scheduled)."""

    # set only where used (sim.model.faults): t_attempt and path by the tolerant serving, at by
    # a device while the attempt is in it, epoch by the parent's paths
    at: Any  # the device holding the attempt (a sim.model.devices.Device), or None
    epoch: int
    path: Any  # the path the attempt takes (a sim.model.iopaths.Path)
    t_attempt: float
    __slots__ = (
        "at",
        "attempt",
        "c",
        "dead",
        "done_vcpu",
        "epoch",
        "flow",
        "id",
        "op",
        "path",
        "peer",
        "receive",
        "service",
        "size",
        "t_attempt",
        "t_submit",
        "trip",
        "vcpu",
        "vf",
    )

    def __init__(
        self,
        rid: int,
        op: int,
        size: int,
        t_submit: float,
        vcpu: VCpu,
        done_vcpu: VCpu,
        service: Callable[[], float],
        vf: int | None = None,
        receive: bool = False,
        peer: Any = None,
    ) -> None:
        self.id = rid
        self.op = op
        self.size = size
        self.t_submit = t_submit
        self.vcpu = vcpu
        self.done_vcpu = done_vcpu
        self.service = service
        self.vf = vf  # the device function it goes through: VF index, None for the PF
        self.receive = receive  # a message arriving from the wire (NIC receive)
        # request-response: the remote peer (a sim.model.devices.RemotePeer) whose reply
        # completes it, and (network, peer, one-way) times once the reply is back
        self.peer = peer
        self.trip: tuple[float, float, float] | None = None
        self.c = [0.0] * _N_COMPONENTS
        self.attempt = 1
        self.dead = False  # given up: its walk stops at the next check (AbortError)
        self.flow = 0  # its member port on a team: its flow's or its turn's (NicDevice.member)

    def record(self, t_end: float) -> Record:
        """The request's :data:`Record`, ended (completed or failed) at ``t_end``."""
        return (self.id, self.op, self.size, self.vcpu.index, self.t_submit, t_end, *self.c)

    def again(self, now: float, vf: int | None) -> Request:
        """The next attempt of this request, sent ``now`` through function ``vf``."""
        nxt = Request(
            self.id, self.op, self.size, self.t_submit, self.vcpu, self.done_vcpu,
            self.service, vf, self.receive, self.peer,
        )  # fmt: skip
        nxt.flow = self.flow
        nxt.attempt = self.attempt + 1
        nxt.c[RETRY] = now - self.t_submit
        return nxt


Record = tuple[Any, ...]
"""What a request leaves behind: its :data:`REQUEST_FIELDS`, in order (a transient tuple,
added at once to its stream's float64 columns, :class:`sim.model.records.RequestLog`)."""

REQUEST_FIELDS: tuple[str, ...] = (
    "id", "op", "size_bytes", "vcpu", "t_submit_us", "t_complete_us", *COMPONENT_COLUMNS,
)  # fmt: skip
"""The fields of a request :data:`Record`: its id in its stream, the index of its op in the
stream's ops, its size, the index of its vCPU, when it was submitted and when it ended
(NaN while in flight), and its latency components (:data:`COMPONENT_COLUMNS`)."""
