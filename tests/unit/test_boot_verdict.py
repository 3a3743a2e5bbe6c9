"""Boots that fail fast: the verdict state machine fed console text line by line (with a fake clock), the
watch on a real (fake-QEMU) process, the progress lines and JUnit without escape sequences."""

from __future__ import annotations

import argparse
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

import pytest

from composer.boot.machine import Watch, watch
from composer.boot.session import Case, junit, plain_text
from composer.boot.verdict import GRACE, GRACE_CAP, Seen, Verdict

SMOKE = ["VCOMP-BOOT: init started", "VCOMP-MODULE: ok virtio_blk", "VCOMP-CHECK: PASS 10-rootfs",
         "VCOMP-CHECK: FAIL 50-must-fail (exit 7)", "    this check fails on purpose", "VCOMP-CHECK: PASS 50-nano",
         "VCOMP-CHECKS: done pass=2 fail=1", "VCOMP-BOOT: ready", "VCOMP-BOOT: powering off"]


def feed(v: Verdict, lines: Sequence[str], *, at: float = 0.0, step: float = 0.1) -> tuple[list[Seen], float]:
    """Feed lines one every ``step`` seconds; returns what each meant and the time of the last one; stops
    feeding (like the watch) as soon as the verdict says done."""
    seen = []
    for line in lines:
        seen.append(v.feed(line, at))
        if v.done(at):
            break
        at += step
    return seen, at


def test_a_passing_run_stops_at_its_last_expected_line_as_before() -> None:
    v = Verdict.of([["init started", "CHECKS: done"]])
    seen, _ = feed(v, ["noise", "VCOMP-BOOT: init started", "VCOMP-CHECKS: done pass=1 fail=0",
                       "VCOMP-BOOT: ready", "after"])
    assert [s.line for s in seen][-1] == "VCOMP-BOOT: ready", "ready is always expected last"
    assert v.met and not v.certain and v.missing() == () and v.failures == []


def test_ready_with_an_expected_line_missing_fails_after_a_quiet_grace_not_at_the_timeout() -> None:
    v = Verdict.of([["init started", "NEVER PRINTED"]])
    _, at = feed(v, ["VCOMP-BOOT: init started", "VCOMP-BOOT: ready"])
    assert v.certain and not v.done(at), "late lines get a grace period"
    assert not v.done(at + GRACE - 0.5)
    v.feed("a late line", at + GRACE - 0.5)
    assert not v.done(at + GRACE), "each new line restarts the quiet period"
    assert v.done(at + 2 * GRACE)
    assert v.missing() == ("NEVER PRINTED",)


def test_a_chatty_console_is_cut_off_at_the_cap() -> None:
    v = Verdict.of([["NEVER PRINTED"]])
    v.feed("VCOMP-BOOT: ready", 10.0)
    for t in range(11, 10 + int(GRACE_CAP)):
        v.feed(f"log line at {t}", float(t))
        assert not v.done(float(t))
    assert v.done(10.0 + GRACE_CAP)


def test_a_late_expected_line_within_the_grace_still_passes() -> None:
    v = Verdict.of([["VCOMP-BOOT: ready", "VCOMP-BOOT: powering off"]])
    feed(v, ["VCOMP-BOOT: ready"])
    assert v.certain and not v.done(1.0)
    v.feed("VCOMP-BOOT: powering off", 1.0)
    assert v.done(1.0) and v.missing() == () and v.failures == []


def test_an_unexpected_failed_check_fails_now_and_collects_the_rest_until_the_shell() -> None:
    v = Verdict.of([["init started", "CHECKS: done", "ready", "SERVICE UP"]])
    seen, at = feed(v, ["VCOMP-BOOT: init started", "VCOMP-CHECK: FAIL 20-disk (exit 1)", "    no disk"])
    assert v.certain and v.failures == ["VCOMP-CHECK: FAIL 20-disk (exit 1)"] and seen[1].failure
    assert not v.done(at), "the remaining checks' lines are still collected"
    v.feed("VCOMP-CHECKS: done pass=0 fail=1", at + 1)
    v.feed("VCOMP-BOOT: ready", at + 1)
    v.feed("VCOMP-BOOT: starting shell", at + 1)
    assert v.done(at + 1), "init's shell prints nothing more: stop at once"
    assert v.missing() == ("SERVICE UP",)


@pytest.mark.parametrize("line", ["[    1.2] Kernel panic - not syncing: Attempted to kill init! exitcode=0x100",
                                  "VCOMP-BOOT: FAIL cannot mount root /dev/vda2",
                                  "VCOMP-MODULE: FAIL virtio_blk"])
def test_a_panic_an_init_failure_or_a_module_failure_is_certain_at_once(line: str) -> None:
    v = Verdict.of([["init started", "ready"]])
    feed(v, ["VCOMP-BOOT: init started", line])
    assert v.certain and v.failures == [line] and not v.ready
    assert v.done(0.1 + GRACE)


def test_a_failure_the_test_expects_does_not_end_the_boot_early() -> None:
    v = Verdict.of([SMOKE[:4] + SMOKE[5:]])
    seen, _ = feed(v, SMOKE, step=1.0)
    assert len(seen) == len(SMOKE), "the watch goes on to the last expected line"
    assert v.missing() == () and v.failures == ["VCOMP-CHECK: FAIL 50-must-fail (exit 7)"]
    assert v.certain_at == 7.0, "expected, so not fatal (only ready with 'powering off' to come starts the grace); " \
                                "still a failure of the case (watch.failures)"


def test_each_test_is_matched_in_its_own_order() -> None:
    v = Verdict.of([["A", "B"], ["B2", "A2"]])
    feed(v, ["A", "B2", "A2", "B", "VCOMP-BOOT: ready"])
    assert v.met, "two tests' lines interleave freely; each is in order"
    w = Verdict.of([["B", "A"]])
    feed(w, ["A", "B", "VCOMP-BOOT: ready"])
    assert w.missing() == ("A",)


def test_a_plain_list_is_one_test() -> None:
    v = Verdict.of(["B", "A"])
    feed(v, ["A", "B", "VCOMP-BOOT: ready"])
    assert v.groups == (("B", "A"), ("VCOMP-BOOT: ready",)) and v.missing() == ("A",)


def test_what_a_line_meant_is_what_the_progress_shows() -> None:
    v = Verdict.of([["hello from my service", "CHECKS: done"]])
    my, noise, marker, fail = (v.feed(s, 0.0) for s in ["my: hello from my service", "random kernel line",
                                                         "VCOMP-NET: disabled", "VCOMP-CHECK: FAIL x (exit 1)"])
    assert my.notable and my.expected == "hello from my service" and (my.index, my.total) == (1, 3)
    assert not noise.notable and marker.notable and marker.expected is None
    assert fail.notable and fail.failure


def _fake_qemu(script: str) -> list[str]:
    return [sys.executable, "-c", script]


def test_the_watch_ends_seconds_after_ready_when_a_line_is_missing(tmp_path: Path) -> None:
    """A console that says ready and then idles (init's shell without the marker) ends after the grace."""
    script = "import sys,time\nprint('VCOMP-BOOT: init started');print('VCOMP-BOOT: ready');sys.stdout.flush()\n" \
             "time.sleep(60)"
    start = time.monotonic()
    w = watch(_fake_qemu(script), [["init started", "NEVER PRINTED"]], timeout=60, log_path=tmp_path / "c.log",
              grace=0.5)
    assert time.monotonic() - start < 10 and not w.timed_out
    assert w.missing == ("NEVER PRINTED",) and not w.passed
    assert (tmp_path / "c.log").read_text() == "VCOMP-BOOT: init started\nVCOMP-BOOT: ready\n"


def test_the_watch_shows_each_line_as_it_comes(tmp_path: Path) -> None:
    shown: list[Seen] = []
    script = "print('boot noise'); print('my app: listening'); print('VCOMP-BOOT: ready')"
    w = watch(_fake_qemu(script), [["listening"]], timeout=30, log_path=tmp_path / "c.log", echo=shown.append)
    assert w.passed and [s.line for s in shown if s.notable] == ["my app: listening", "VCOMP-BOOT: ready"]


def test_the_boot_progress_prints_expected_lines_and_failures(capsys: pytest.CaptureFixture[str]) -> None:
    from composer.cli.image import _echo
    show = _echo(argparse.Namespace())
    v = Verdict.of([["listening"]])
    for line in ["noise", "my app: \x1b[1;32mlistening\x1b[0m", "VCOMP-CHECK: FAIL x (exit 1)", "VCOMP-NET: up"]:
        show(v.feed(line, 0.0))
    assert capsys.readouterr().out.splitlines() == ["   [1/2] my app: listening",
                                                    "   !     VCOMP-CHECK: FAIL x (exit 1)",
                                                    "         VCOMP-NET: up"]


CONSOLE = ("BdsDxe: loading Boot0001 \x1b[2J\x1b[01;01H\x1b[=3h\x1b[2J\x1b[01;01HBooting\x00\r\n"
           "\x1b[0m\x1b[1;32m[  OK  ]\x1b[0m Started \x1b[0;1;39mmy.service\x1b[0m.\x07\n"
           "\x1b]0;title\x07VCOMP-CHECK: FAIL x (exit 1)\x1b(B\x1b[m\x7f\x1b")


def test_junit_strips_escape_sequences_and_control_characters() -> None:
    w = Watch(log=CONSOLE, returncode=0, timed_out=False, seconds=1.0, missing=(),
              failures=("VCOMP-CHECK: FAIL x (exit 1)\x1b[0m",))
    case = Case(arch="x86_64", output="iso", firmware="uefi", test="boots", expect=("a",), watch=w, missing=())
    xml = junit([case], "suite")
    root = ET.fromstring(xml)
    out = root.findtext("testcase/system-out") or ""
    assert out.strip().splitlines() == ["BdsDxe: loading Boot0001 Booting", "[  OK  ] Started my.service.",
                                        "VCOMP-CHECK: FAIL x (exit 1)"]
    failure = root.find("testcase/failure")
    assert failure is not None and failure.get("message") == "failure on the console: VCOMP-CHECK: FAIL x (exit 1)"
    assert b"?[" not in xml and b"\x1b" not in xml and b"[2J" not in xml and b"[01;01H" not in xml


def test_plain_text_keeps_text_tabs_and_newlines() -> None:
    assert plain_text("a\tb\nc \u00e9\u2713") == "a\tb\nc \u00e9\u2713"
    assert plain_text("\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\ end\nnext") == "link end\nnext"


@pytest.mark.parametrize(("log", "timed_out", "reason"), [
    ("VCOMP-BOOT: init started\nVCOMP-BOOT: ready", False, "init was ready without: 'NEVER'"),
    ("VCOMP-BOOT: init started", True, "timed out before: 'NEVER'"),
    ("VCOMP-BOOT: init started", False, "QEMU exited (0) before: 'NEVER'")])
def test_a_failure_says_why(log: str, timed_out: bool, reason: str) -> None:
    w = Watch(log=log, returncode=0, timed_out=timed_out, seconds=1.0, missing=("NEVER",))
    case = Case(arch="x86_64", output="iso", firmware="uefi", test="t", expect=("NEVER",), watch=w,
                missing=("NEVER",))
    assert case.reason() == reason


REFUSED = ['BdsDxe: failed to load Boot0001 "UEFI QEMU DVD-ROM QM00005 " from PciRoot(0x0): Not Found',
           'BdsDxe: loading Boot0002 "UEFI Misc Device" from PciRoot(0x0)/Pci(0x2,0x0)',
           'BdsDxe: failed to load Boot0002 "UEFI Misc Device" from PciRoot(0x0)/Pci(0x2,0x0): Access Denied',
           ">>Start PXE over IPv4.", "  PXE-E16: No valid offer received."]


def test_a_secure_boot_refusal_is_a_certain_failure_that_ends_the_boot_after_the_grace() -> None:
    v = Verdict.of([["VCOMP-BOOT: init started"]])
    seen, at = feed(v, REFUSED)
    assert [s.failure for s in seen] == [False, False, True, False, False], "only the refusal is a failure"
    assert v.certain and not v.done(at)
    assert v.done(at + GRACE), "the firmware's network boot attempts do not keep a refused boot alive"
