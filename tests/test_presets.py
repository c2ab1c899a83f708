"""Presets: platform profiles under a scenario, each value with its source."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

import sim
from sim.cli import main
from sim.experiment.study import make_sweep
from sim.report.provenance import describe, provenance
from sim.scenario import ScenarioError, from_dict, presets

REPO = Path(__file__).resolve().parents[1]
NAMES = ["esx-2.5", "esx-3", "hyperv-2008", "hyperv-2019", "kvm-virtio", "xen-3"]
SHORT_RUN = {"duration": "50ms", "warmup": "10ms", "seed": 3, "replications": 1}
WEB = {
    "name": "web",
    "io_path": "direct",
    "device": "nic0",
    "streams": [{"op": "send", "rate": "1k"}],
}


DISK_ERA = ("esx-2.5", "esx-3", "hyperv-2008", "xen-3")  # storage on rotating disks, disk0


def baseline_children(preset: str = "") -> list[dict[str, Any]]:
    """The baseline's children; under a preset whose storage is a disk, on that disk."""
    data = yaml.safe_load((REPO / "scenarios" / "baseline.yaml").read_text(encoding="utf-8"))
    children = list(data["children"])
    if preset in DISK_ERA:  # the database tier at what an array of the era's disks carries
        children = [
            {**c, "device": "disk0", "streams": [{**c["streams"][0], "rate": "100"}]}
            if c["device"] == "nvme0"
            else c
            for c in children
        ]
    return children


def scenario_text(preset: str, extra: str = "") -> str:
    return (
        f"name: t\npreset: {preset}\n{extra}"
        "children:\n"
        "  - {name: web, io_path: direct, device: nic0, streams: [{op: send, rate: 1k}]}\n"
        "run: {duration: 50ms, warmup: 10ms}\n"
    )


def test_the_presets_are_there() -> None:
    """The package holds the presets, each loading with a description and values."""
    assert presets.names() == NAMES
    for name in NAMES:
        p = presets.load(name)
        assert p.name == name
        assert p.description
        assert p.entries
        assert p.calibrated_on == ()  # none is fitted to a validation figure yet
        storage = "disk0" if name in DISK_ERA else "nvme0"
        console = {"nic1": "nic"} if name == "esx-2.5" else {}  # the service console's NIC
        assert {d.name: d.type for d in p.devices} == {
            "nic0": "nic",
            storage: storage[:-1],
            **console,
        }


@pytest.mark.parametrize("name", NAMES)
def test_every_value_has_a_source_of_the_reference_kinds(name: str) -> None:
    """Every value is assumed or cites a reference with its tag (read, quoted, derived)."""
    for e in presets.load(name).entries:
        tagged = e.source.endswith(("(read)", "(quoted)", "(derived)"))
        assert "assumed" in e.source or tagged, (e.path, e.source)


@pytest.mark.parametrize("name", NAMES)
def test_every_preset_runs_the_baseline_workload_and_round_trips(name: str, tmp_path: Path) -> None:
    """The baseline's children run under every preset; without VFs, direct children fall
    back to routed; the resolved scenario keeps preset and sources and loads back as is."""
    data = {"name": f"baseline-{name}", "preset": name, "children": baseline_children(name)}
    scn = from_dict({**data, "run": SHORT_RUN}, source="test")
    res = sim.run(scn)
    s = res.summary.set_index("partition")
    assert list(s.index) == ["web-routed", "web-direct", "db-routed", "db-direct"]
    assert (s["requests"] > 0).all()
    stack = scn.host.io_stack
    storage = "disk0" if name in DISK_ERA else "nvme0"
    for child, device in (("web-direct", "nic0"), ("db-direct", storage)):
        no_vfs = scn.device(device).vfs == 0
        fallback = "hypervisor" if stack == "hypervisor" else "routed"
        assert s.loc[child, "io_path"] == (fallback if no_vfs else "direct")
        assert bool(s.loc[child, "fallback"]) == no_vfs
    assert name.startswith("esx") == (stack == "hypervisor")  # the vmkernel's own stack
    assert (name in ("hyperv-2019", "kvm-virtio")) == (scn.device("nic0").vfs > 0)
    res.save(tmp_path / "out")
    resolved = tmp_path / "out" / "scenario.resolved.yaml"
    raw = yaml.safe_load(resolved.read_text(encoding="utf-8"))
    assert raw["preset"] == name
    assert raw["sources"] == scn.sources
    assert scn.sources
    back = sim.load(resolved)
    assert back == scn
    assert back.to_dict() == scn.to_dict()


def test_preset_values_fill_in_what_the_scenario_leaves(
    write_scenario: Callable[..., Path],
) -> None:
    """A preset sets host, parent and devices; the scenario needs only its children."""
    scn = sim.load(write_scenario(scenario_text("xen-3")))
    assert scn.preset == "xen-3"
    assert scn.host.posted_interrupts is False
    assert scn.host.scheduler.root == "floating"
    assert scn.parent.vmbus.copy_threshold == 0
    assert scn.parent.vmbus.ring_size == 4096
    assert [d.name for d in scn.devices] == ["nic0", "disk0"]
    assert scn.device("nic0").line_rate == 1e9
    assert scn.sources["parent.vmbus.ring_size"] == "Xen ring macros (derived)"
    assert scn.sources["devices[nic0].vfs"] == "assumed"
    # a field the preset leaves alone keeps the schema's default, and has no preset source
    assert scn.host.cores == 16
    assert "host.cores" not in scn.sources


def test_override_order_is_preset_then_file_then_set(
    write_scenario: Callable[..., Path],
) -> None:
    """preset < scenario file < --set, field by field; only kept preset values have sources."""
    path = write_scenario(
        scenario_text(
            "hyperv-2019",
            "host: {posted_interrupts: false}\n"
            "devices:\n  - {name: nic0, line_rate: 10Gbps, vfs: 4}\n",
        )
    )
    scn = sim.load(path, {"devices[nic0].vfs": 2, "devices[nvme0].channels": 4})
    nic, nvme = scn.device("nic0"), scn.device("nvme0")
    assert scn.host.posted_interrupts is False  # file over preset
    assert nic.line_rate == 10e9  # file over preset
    assert nic.vfs == 2  # --set over file over preset
    assert nvme.vfs == 16
    assert nvme.channels == 4
    assert scn.host.iommu.mode == "static"  # preset, untouched
    assert "host.posted_interrupts" not in scn.sources
    assert "devices[nic0].line_rate" not in scn.sources
    assert "devices[nic0].vfs" not in scn.sources
    assert scn.sources["devices[nvme0].vfs"] == "assumed"
    assert "Documentation/virt/hyperv/vpci.rst" in scn.sources["host.iommu.mode"]
    # --set also wins over a value the file did not give
    assert sim.load(path, {"host.iommu.mode": "strict"}).host.iommu.mode == "strict"
    # a value the file sets equal to the preset's is the preset's, with its source
    same = sim.load(path, {"devices[nic0].line_rate": "25Gbps"})
    assert same.sources["devices[nic0].line_rate"] == "assumed"


def test_set_can_choose_the_preset(write_scenario: Callable[..., Path]) -> None:
    """--set preset=NAME picks the preset before its values go in."""
    path = write_scenario(scenario_text("hyperv-2019"))
    scn = sim.load(path, {"preset": "hyperv-2008"})
    assert scn.preset == "hyperv-2008"
    assert scn.device("nic0").vfs == 0
    assert scn.host.posted_interrupts is False


def test_devices_merge_by_name(write_scenario: Callable[..., Path]) -> None:
    """Same name: fields override (type may be left out); another type replaces the
    device; new names come after the preset's devices."""
    path = write_scenario(
        scenario_text(
            "hyperv-2008",
            "devices:\n"
            "  - {name: extra, type: nic, line_rate: 40Gbps}\n"
            "  - {name: disk0, type: nic, line_rate: 10Gbps}\n"
            "  - {name: nic0, mtu: 9000B}\n",
        )
    )
    scn = sim.load(path)
    assert [(d.name, d.type) for d in scn.devices] == [
        ("nic0", "nic"),
        ("disk0", "nic"),
        ("extra", "nic"),
    ]
    assert scn.device("nic0").mtu == 9000
    assert scn.device("nic0").line_rate == 1e9
    assert scn.device("disk0").vfs == 8  # the replacement has the schema's defaults
    assert not any(k.startswith("devices[disk0]") for k in scn.sources)


def test_scenario_errors_stay_on_the_scenario_file_and_its_lines(
    write_scenario: Callable[..., Path],
) -> None:
    """An error in the scenario's own device entry keeps its file and line after merging."""
    path = write_scenario(
        scenario_text("hyperv-2019", "devices:\n  - {name: extra, type: nic, mtu: lots}\n")
    )
    with pytest.raises(ScenarioError) as info:
        sim.load(path)
    assert info.value.file == str(path)
    assert info.value.line == 4
    assert info.value.path == "devices[extra].mtu"
    # and a direct child asking for a VF the preset's device does not have
    bad_vf = write_scenario(
        "name: t\npreset: xen-3\nchildren:\n"
        "  - {name: web, io_path: direct, vf: 0, device: nic0, streams: [{op: send, rate: 1k}]}\n"
    )
    with pytest.raises(ScenarioError, match=r":4: children\[web\]\.vf: .*has no VFs"):
        sim.load(bad_vf)


def test_unknown_preset_names_the_field_and_lists_the_presets(
    write_scenario: Callable[..., Path],
) -> None:
    """An unknown preset is an error on 'preset', at its line, listing the known ones."""
    path = write_scenario(scenario_text("hyperv-2000"))
    with pytest.raises(ScenarioError) as info:
        sim.load(path)
    exc = info.value
    assert (exc.file, exc.line, exc.path) == (str(path), 2, "preset")
    assert "no preset named 'hyperv-2000'" in str(exc)
    assert "presets: esx-2.5, esx-3, hyperv-2008, hyperv-2019, kvm-virtio, xen-3" in str(exc)
    with pytest.raises(ScenarioError, match=r"^--set: preset: no preset named 'nope'"):
        sim.load(write_scenario(scenario_text("xen-3"), "b.yaml"), {"preset": "nope"})
    with pytest.raises(ScenarioError, match=r"preset: .*no preset named 5"):
        from_dict({"name": "t", "preset": 5, "children": [WEB]})


def broken(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str) -> Path:
    """A preset directory holding ``bad.yaml`` with ``body`` under a valid header."""
    monkeypatch.setattr(presets, "DIRECTORY", tmp_path)
    path = tmp_path / "bad.yaml"
    path.write_text(
        "name: bad\ndescription: a broken preset\ncalibrated_on: []\n"
        "devices: {nic0: nic}\nset:\n" + body,
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize(
    ("body", "line", "path", "message"),
    [
        ("  host.cores: {value: 0, source: assumed}\n", 6, "host.cores", "greater than or equal"),
        ("  devices[nic0].line_rate: {value: fast, source: assumed}\n", 6,
         "devices[nic0].line_rate", "fast"),
        ("  host.cores: {value: 8, source: assumed}\n  host.scheduler.polcy: {value: credit}\n",
         7, "set.host.scheduler.polcy", "did you mean 'policy'"),
        ("  host.cores: {value: 8}\n", 6, "set.host.cores", "needs a 'source'"),
        ("  children[web].vcpus: {value: 8, source: assumed}\n", 6, "set.children[web].vcpus",
         "children and run belong to scenarios"),
        ("  devices[nvme0].vfs: {value: 0, source: assumed}\n", 6, "set.devices[nvme0].vfs",
         "not in the preset's devices"),
        ("  host.scheduler: {value: {policy: fair}, source: assumed}\n", 6,
         "set.host.scheduler", "one field of 'scheduler' at a time"),
    ],
)  # fmt: skip
def test_a_preset_error_points_at_the_preset_file(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    body: str,
    line: int,
    path: str,
    message: str,
) -> None:
    """A preset's own error is reported against the preset file and its line, even when
    the scenario overrides the bad value."""
    preset_file = broken(tmp_path, monkeypatch, body)
    scenario = tmp_path / "s.yaml"
    scenario.write_text(
        "name: s\npreset: bad\nhost: {cores: 8}\n"
        "devices: [{name: nic0, line_rate: 10Gbps}]\n"
        "children:\n  - {name: web, device: nic0, streams: [{op: send, rate: 1k}]}\n",
        encoding="utf-8",
    )
    with pytest.raises(ScenarioError) as info:
        sim.load(scenario)
    exc = info.value
    assert Path(exc.file).resolve() == preset_file.resolve()
    assert (exc.line, exc.path) == (line, path)
    assert message in exc.message


def test_preset_file_format_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Unknown top-level keys and a name that is not the file's are reported with lines."""
    path = broken(tmp_path, monkeypatch, "  host.cores: {value: 8, source: assumed}\nsorce: x\n")
    with pytest.raises(ScenarioError, match=r"bad\.yaml:7: sorce: unknown key"):
        presets.load("bad")
    path.write_text(path.read_text().replace("name: bad", "name: good").replace("sorce: x\n", ""))
    with pytest.raises(ScenarioError, match=r"bad\.yaml:1: name: must be the file's name 'bad'"):
        presets.load("bad")


def test_provenance_shows_the_preset_and_its_sources(
    write_scenario: Callable[..., Path],
) -> None:
    """Provenance: preset values say 'preset NAME' with the preset's source; a value the
    scenario overrode says 'scenario'; the rest stay 'default'."""
    path = write_scenario(scenario_text("hyperv-2008", "devices: [{name: disk0, spindles: 2}]\n"))
    prov = provenance(sim.load(path)).set_index("parameter")
    rate = prov.loc["devices[nic0].line_rate"]
    assert (rate["value"], rate["set_by"], rate["source"]) == ("1Gbps", "preset hyperv-2008",
                                                               "assumed")  # fmt: skip
    assert bool(rate["assumed"])
    policy = prov.loc["host.scheduler.policy"]
    assert policy["set_by"] == "preset hyperv-2008"
    assert policy["source"] == 'Windows Server docs, "Hyper-V scheduler types" (read)'
    assert not policy["assumed"]
    assert prov.loc["devices[disk0].spindles", "set_by"] == "scenario"
    assert prov.loc["host.costs.hypercall", "set_by"] == "preset hyperv-2008"
    assert prov.loc["host.costs.device_model_exit", "set_by"] == "default"
    assert "Dall et al." in prov.loc["host.costs.device_model_exit", "source"]
    text = dict(describe(sim.load(path)))
    assert text["preset hyperv-2008"].startswith("Hyper-V (Windows Server 2008)")


def test_a_sweep_over_a_preset_scenario_keeps_the_sources_it_does_not_vary() -> None:
    """Sweep points re-resolve the preset: a swept preset value loses its preset source."""
    base = {"name": "b", "preset": "hyperv-2019", "children": [WEB], "run": SHORT_RUN}
    sweep = make_sweep({"study": "s", "scenario": base, "grid": {"devices[nic0].line_rate":
                                                               ["25Gbps", "10Gbps"]}})  # fmt: skip
    same, other = (p.scenario for p in sweep.points)
    assert "devices[nic0].line_rate" in same.sources
    assert "devices[nic0].line_rate" not in other.sources
    assert other.sources["host.iommu.mode"] == same.sources["host.iommu.mode"]


def test_cli_lists_and_shows_presets(capsys: pytest.CaptureFixture[str]) -> None:
    """hvsim presets lists name and description; hvsim presets NAME every value and source."""
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    for name in NAMES:
        line = next(x for x in out.splitlines() if x.startswith(name + " "))
        assert presets.load(name).description in line
    assert main(["presets", "xen-3"]) == 0
    out = capsys.readouterr().out
    assert "calibrated on: nothing yet" in out
    for e in presets.load("xen-3").entries:
        row = next(x for x in out.splitlines() if x.startswith(e.path + " "))
        assert e.source in row
        assert presets.value_text(e.value) in row
    assert "notes: Storage is two striped rotating disks" in out
    assert main(["presets", "xen3"]) == 2
    err = capsys.readouterr().err
    assert "did you mean 'xen-3'" in err
    assert "hyperv-2019" in err


def test_presets_diff_shows_each_differing_value_with_both_sources(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """hvsim presets --diff A B lists every field either sets that differs, with values and
    sources of both sides; a field one side leaves shows the schema default."""
    a, b = presets.load("xen-3"), presets.load("hyperv-2019")
    devices, rows = presets.diff(a, b)
    assert devices == [("disk0", "disk", "-"), ("nvme0", "-", "nvme")]
    by_path = {r.path: r for r in rows}
    ring = by_path["parent.vmbus.ring_size"]
    assert (ring.a_value, ring.b_value) == ("4KiB", "512KiB")
    assert ring.a_source == "Xen ring macros (derived)"
    iommu = by_path["host.iommu.mode"]  # only hyperv-2019 sets it
    assert (iommu.a_value, iommu.a_source) == ("static", presets.DEFAULT_SOURCE)
    assert "devices[nic0].line_rate" in by_path
    same = presets.diff(a, a)
    assert same == ([], [])
    assert main(["presets", "--diff", "xen-3", "hyperv-2019"]) == 0
    out = capsys.readouterr().out
    assert f"{len(rows)} values differ" in out
    line = next(x for x in out.splitlines() if x.startswith("parent.vmbus.ring_size "))
    assert "4KiB" in line
    assert "512KiB" in line
    assert "hv_netvsc" in line
    assert main(["presets", "--diff", "xen-3", "xen4"]) == 2
    assert "no preset named 'xen4'" in capsys.readouterr().err
    assert main(["presets", "xen-3", "--diff", "xen-3", "esx-3"]) == 2
