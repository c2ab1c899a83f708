"""What the user wrote → a checked :class:`Scenario` (and where its I/O runs).

A scenario keeps hardware (``host``, ``devices``: :mod:`~sim.scenario.hardware`),
deployment (``parent``, ``children`` with their ``io_path``) and behaviour (``streams``:
:mod:`~sim.scenario.workload`) apart, and writes units out (``"30ms"``, ``"4KiB"``,
``"25Gbps"``, ``"2600cycles"``: :mod:`~sim.scenario.units`). Loading
(:mod:`~sim.scenario.source`) reads the file safely (:mod:`~sim.scenario.reader`), puts
the ``preset`` it names under it (:mod:`~sim.scenario.presets`), applies ``--set``
overrides, validates the schema (:mod:`~sim.scenario.schema`), the rules across fields
(:mod:`~sim.scenario.checks`) and the work budget (:mod:`~sim.scenario.budget`). Every
error is a :class:`ScenarioError` of one line.
"""

from sim.scenario.budget import budget_problem, work_estimate
from sim.scenario.errors import ScenarioError
from sim.scenario.fields import DEFAULT_CLOCK_GHZ, DEFAULT_REQUEST_BUDGET, MAX_FILE_BYTES
from sim.scenario.hardware import Disk, Host, Iommu, Nic, Nvme, Parent
from sim.scenario.reader import MAX_ALIASED, compose
from sim.scenario.schema import PARENT_FAULTS, Fault, Run, Scenario, json_schema
from sim.scenario.source import apply_override, from_dict, load, loads, parse_assignment, replace
from sim.scenario.workload import IO_PATHS, Burst, Child, Stream

__all__ = [
    "DEFAULT_CLOCK_GHZ",
    "DEFAULT_REQUEST_BUDGET",
    "IO_PATHS",
    "MAX_ALIASED",
    "MAX_FILE_BYTES",
    "PARENT_FAULTS",
    "Burst",
    "Child",
    "Disk",
    "Fault",
    "Host",
    "Iommu",
    "Nic",
    "Nvme",
    "Parent",
    "Run",
    "Scenario",
    "ScenarioError",
    "Stream",
    "apply_override",
    "budget_problem",
    "compose",
    "from_dict",
    "json_schema",
    "load",
    "loads",
    "parse_assignment",
    "replace",
    "work_estimate",
]
