"""The boot timeline parser: initcall_debug lines with printk times and init's VCOMP-TRACE lines (data cases),
its bounds, and the text, JSON and SVG renderings (deterministic)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from composer.cli.debug import write_timeline
from composer.cli.main import main
from composer.debug import timeline
from composer.debug.timeline import Span, parse, render_svg, render_text
from tests.unit.test_json_output import check, run

LOG = """\
SeaBIOS (version 1.16.2-debian-1.16.2-1)
[    0.000000] Linux version 6.1.0-28-amd64
[    0.101000] calling  init_hw_perf_events+0x0/0x6b0 @ 1
[    0.101655] initcall init_hw_perf_events+0x0/0x6b0 returned 0 after 655 usecs
[    0.200000] calling  pci_subsys_init+0x0/0x70 @ 1
[    0.210000] calling  nested_one+0x0/0x10 @ 1
[    0.210100] initcall nested_one+0x0/0x10 returned -19 after 100 usecs
[    0.450000] initcall pci_subsys_init+0x0/0x70 returned 0 after 250000 usecs
[    0.500000] initcall lonely+0x0/0x10 returned 0 after 20000 usecs
[    1.900000] Run /init as init process
VCOMP-BOOT: init started (veridian 1, kernel 6.1.0-28-amd64, arch x86_64)
VCOMP-TRACE: 2.01 init-start
VCOMP-TRACE: 2.50 service-start sshd
VCOMP-TRACE: 2.52 service-start web
[sshd] Server listening on 0.0.0.0 port 22.
VCOMP-SERVICE: up sshd
VCOMP-TRACE: 3.25 service-up sshd
VCOMP-TRACE: 4.00 service-failed web
VCOMP-TRACE: 4.10 service-start stuck
[    5.000000] random: crng init done
VCOMP-TRACE: 5.50 checks
VCOMP-TRACE: 5.60 ready
VCOMP-TRACE: 9.99 init-start
"""


def test_initcalls_services_and_stages() -> None:
    t = parse(LOG.splitlines())
    calls = {s.name: s for s in t.of("initcall")}
    assert calls["init_hw_perf_events"] == Span(kind="initcall", name="init_hw_perf_events", start=0.101,
                                                end=0.101655, status="ok")
    assert calls["pci_subsys_init"].start == 0.2 and abs(calls["pci_subsys_init"].seconds - 0.25) < 1e-9
    assert calls["nested_one"].status == "returned -19"
    assert abs(calls["lonely"].start - 0.48) < 1e-9     # no 'calling' line: start = end - duration
    services = {s.name: s for s in t.of("service")}
    assert (services["sshd"].start, services["sshd"].end, services["sshd"].status) == (2.5, 3.25, "ok")
    assert services["web"].status == "failed" and services["stuck"].status == "pending"
    assert t.events == {"init-start": 2.01, "checks": 5.5, "ready": 5.6}   # the first init-start (stage 1) counts
    assert t.kernel_seconds == 2.01
    assert [s.start for s in t.spans] == sorted(s.start for s in t.spans)


def test_a_log_without_trace_lines() -> None:
    t = parse(["[    0.5] hello", "VCOMP-BOOT: ready"])
    assert t.spans == () and t.events == {} and t.kernel_seconds == 0.5
    assert "boot with vcomp boot --trace" in render_text(parse(["no kernel times"]))


def test_hostile_lines_are_bounded() -> None:
    long = "x" * 5000
    lines = [f"VCOMP-TRACE: 1.0 service-start {long[:150]}", f"VCOMP-TRACE: 1.5 service-up {long[:150]}",
             f"[ 1.0] calling  {long} @ 1", "VCOMP-TRACE: 99999999999999 ready", "VCOMP-TRACE: 1.0 Ready",
             "VCOMP-TRACE: nan ready", "[ 1.0] initcall a+0x0 returned 0 after 99999999999999999 usecs"]
    t = parse(lines)
    assert [len(s.name) for s in t.spans] == [timeline.MAX_NAME]
    assert t.events == {}


def test_spans_over_the_bound_are_counted_not_kept() -> None:
    n = timeline.MAX_SPANS + 5
    t = parse(f"[ 0.{i:06d}] initcall f{i}+0x0/0x1 returned 0 after 1 usecs" for i in range(n))
    assert len(t.spans) == timeline.MAX_SPANS and t.dropped == 5
    assert "5 more spans not kept" in render_text(t)


def test_renderings_are_deterministic_and_well_formed() -> None:
    t = parse(LOG.splitlines())
    text = render_text(t)
    assert "kernel: 2.010 s until init" in text and "sshd (ok)" in text and "web (failed)" in text
    assert text.index("pci_subsys_init") < text.index("lonely") < text.index("init_hw_perf_events")  # slowest first
    svg = render_svg(t)
    assert svg == render_svg(parse(LOG.splitlines()))
    root = ET.fromstring(svg)
    titles = [e.text or "" for e in root.iter("{http://www.w3.org/2000/svg}title")]
    assert any(x.startswith("sshd: 0.750000 s") for x in titles)
    doc = t.to_dict()
    assert json.loads(json.dumps(doc)) == doc and list(doc["events"]) == ["init-start", "checks", "ready"]  # type: ignore[call-overload]


def test_the_verb_writes_its_schema(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "x86_64-disk-uefi.log"
    log.write_text(LOG)
    doc = check(run(["debug", "timeline", str(log), "--json", "--svg", str(tmp_path / "t.svg")], capsys),
                "debug-timeline")
    assert doc["events"]["ready"] == 5.6 and (tmp_path / "t.svg").read_text().startswith("<svg")
    assert "sshd" in write_timeline(log)
    assert json.loads((tmp_path / "x86_64-disk-uefi.timeline.json").read_text())["spans"] == doc["spans"]
    assert main(["debug", "timeline", str(tmp_path / "missing.log")]) == 1
    assert "cannot read console log" in capsys.readouterr().err


def test_the_profile_debug_block_goes_into_the_built_command_line(tmp_path: Path) -> None:
    from composer.compose.build import kernel_cmdline
    from composer.profile.load import load_profile
    from tests.conftest import REPO
    text = (REPO / "profiles" / "minimal.yaml").read_text()
    (tmp_path / "trust").mkdir()
    trust = REPO / "profiles" / "trust" / "sample-root.json"
    (tmp_path / "trust" / "sample-root.json").write_bytes(trust.read_bytes())
    plain = tmp_path / "plain.yaml"
    plain.write_text(text)
    assert kernel_cmdline(load_profile(plain), "ttyS0") == "console=ttyS0 quiet"
    aided = tmp_path / "aided.yaml"
    aided.write_text(text.replace("init: init\n", "init: init\ndebug: {cores: true, trace: true}\n"))
    profile = load_profile(aided)
    assert kernel_cmdline(profile, "ttyS0") == f"console=ttyS0 quiet vcomp.cores=1 {timeline.KERNEL_ARGS}"
    assert profile.to_dict()["debug"] == {"cores": True, "trace": True}
    assert "debug" not in load_profile(plain).to_dict()
