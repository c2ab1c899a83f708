"""Names of the host's components, from one scheme (docs/design.md §2, Names).

A component's name is its dotted path in the component tree, a member of a list with its
index in brackets; the scenario's own names (child instances, devices) are the scopes:

=================================  ==========================================
``parent``, ``parent.vcpu[0]``     the parent partition and its vCPUs
``web-1``, ``web-1.vcpu[2]``       a child instance and its vCPUs
``nic0``, ``nic0.pf``, ``nic0.vf[3]``  a device and its functions
``vmbus.web-1.nic0``, ``…[1]``     a routed child's channel to a device (sub-channel 1)
``vmbus.web-1.nic0.out`` / ``.in`` the channel's rings (requests / completions)
=================================  ==========================================

A component's counters are named ``COMPONENT.what`` (``nic0.vf[3].completions``,
``nic0.queue_full``); counters of the whole host are bare (``exits.hypercall``,
``interrupts``). The tables (``cpu.csv``, ``sched.csv``, ``resources.csv``,
``counters.csv``, ``occupancy.csv``) and the analytic estimate's stations use these names.

The random stream of a source is keyed ``SCOPE/what`` (:func:`rng_key`), where SCOPE is
``child.NAME``, ``parent.vsp`` or ``parent.driver``: these keys decide every random number
a scenario draws (docs/design.md §3.6), so they are frozen — a new name for a component
never moves its stream.
"""

from __future__ import annotations

RESERVED = {"parent": "the parent partition", "vmbus": "VMBus channels"}
"""Scopes of the scheme that no child or device may be named, and what they name."""


def vcpu(owner: str, index: int) -> str:
    """vCPU ``index`` of the partition ``owner`` (``parent`` or a child instance)."""
    return f"{owner}.vcpu[{index}]"


def function(device: str, vf: int | None) -> str:
    """The device function: ``DEVICE.pf`` (the parent's, the hypervisor's or bare
    metal's driver) or ``DEVICE.vf[k]``."""
    return f"{device}.pf" if vf is None else f"{device}.vf[{vf}]"


def channel(child: str, device: str, index: int = 0) -> str:
    """A routed child's VMBus channel to ``device``: the primary, or sub-channel ``index``."""
    base = f"vmbus.{child}.{device}"
    return base if index == 0 else f"{base}[{index}]"


def ring(channel_name: str, outbound: bool) -> str:
    """One of a channel's two rings: ``.out`` (requests) or ``.in`` (completions)."""
    return f"{channel_name}.{'out' if outbound else 'in'}"


def metric(component: str, what: str) -> str:
    """The counter ``what`` of ``component``."""
    return f"{component}.{what}"


def rng_key(scope: str, *what: str) -> str:
    """The key of a random stream: its scope (``child.NAME``, ``parent.vsp``, …) and what
    it draws, joined by ``/`` (frozen: the module docstring)."""
    return "/".join((scope, *what))


def child_scope(child: str) -> str:
    """The random streams' scope of a child instance."""
    return f"child.{child}"
