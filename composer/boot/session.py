"""Boot tests of built outputs: which boots to run, each evaluated against the profile's boot tests, JUnit.

One boot per cell (output, medium, firmware: :mod:`composer.boot.matrix`); every boot test that applies to the
output (``boot-tests[].outputs``, all outputs when absent) is checked against that boot's console log: its
``expect`` lines in order, init ready, and no failure marker (``VCOMP-CHECK: FAIL``, ``VCOMP-MODULE: FAIL``,
``VCOMP-BOOT: FAIL``, a kernel panic).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from composer.arch import get_arch
from composer.boot import reach as reach_
from composer.boot.forward import Forward
from composer.boot.machine import MEDIA, Boot, Watch, command, match_in_order, watch
from composer.boot.matrix import media_of
from composer.boot.reach import Outcome
from composer.boot.verdict import READY, Seen
from composer.errors import UserError
from composer.image.outputs import OUTPUT_TYPES

DEFAULT_EXPECT = ("VCOMP-BOOT: init started", "VCOMP-CHECKS: done", "VCOMP-BOOT: ready")
DEFAULT_TIMEOUT = 300


@dataclass(frozen=True, slots=True, kw_only=True)
class Case:
    """One boot test evaluated on one boot."""

    arch: str
    output: str
    firmware: str
    test: str
    expect: tuple[str, ...]
    watch: Watch
    missing: tuple[str, ...]
    checks: tuple[Outcome, ...] = ()
    medium: str = ""  # cdrom | disk | kernel ("": not recorded)

    @property
    def passed(self) -> bool:
        return not self.missing and not self.watch.failures and all(c.passed for c in self.checks)

    @property
    def checks_failed_only(self) -> bool:
        """The console said what was expected; a host check failed."""
        return not self.missing and not self.watch.failures and not self.passed

    @property
    def cell(self) -> str:
        """ARCH/OUTPUT/MEDIUM/FIRMWARE: the boot matrix's cell (:class:`composer.boot.matrix.Cell`)."""
        return "/".join(p for p in (self.arch, self.output, self.medium, self.firmware) if p)

    @property
    def id(self) -> str:
        return f"{self.cell}/{self.test}"

    def reason(self) -> str:
        if self.watch.failures:
            return "failure on the console: " + "; ".join(self.watch.failures[:5])
        if self.checks_failed_only:
            return "host check failed: " + "; ".join(f"{c.check}: {c.reason}" for c in self.checks if not c.passed)
        missing = ", ".join(repr(m) for m in self.missing)
        if self.watch.timed_out:
            return f"timed out before: {missing}"
        if any(READY in line for line in self.watch.log.splitlines()):
            return f"init was ready without: {missing}"
        return f"QEMU exited ({self.watch.returncode}) before: {missing}"

    def to_dict(self) -> dict[str, Any]:
        """What ``vcomp boot|test --json`` reports of one boot test (pure; the console is in the log file)."""
        return {"id": self.id, "cell": self.cell, "arch": self.arch, "output": self.output, "medium": self.medium,
                "firmware": self.firmware, "test": self.test, "expect": list(self.expect), "passed": self.passed,
                "reason": None if self.passed else self.reason(), "missing": list(self.missing),
                "failures": list(self.watch.failures), "timed_out": self.watch.timed_out,
                "seconds": round(self.watch.seconds, 1), "checks": [c.to_dict() for c in self.checks]}


def tests_for(manifest: Mapping[str, Any], output: str) -> list[dict[str, Any]]:
    tests = [t for t in manifest.get("boot-tests", []) if output in t.get("outputs", [output])]
    return tests or [{"name": "boots", "expect": list(DEFAULT_EXPECT), "timeout": DEFAULT_TIMEOUT}]


def product(manifest: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    for o in manifest["outputs"]:
        if o["name"] == name:
            return o  # type: ignore[no-any-return]
    names = ", ".join(o["name"] for o in manifest["outputs"])
    raise UserError(f"no output '{name}' in this image", hint=f"outputs: {names}")


def boot_spec(manifest: Mapping[str, Any], directory: Path, output: str, firmware: str, work: Path,
              medium: str = "", secure_boot: Path | None = None) -> Boot:
    """How to boot ``output`` with ``firmware`` on ``medium`` ("": the output's own medium, its first)."""
    o = product(manifest, output)
    media = o["boot"].get("media", "")
    if media not in MEDIA:  # a UKI or a root tar is a part of an image, not a medium
        raise UserError(f"output '{output}' ({o['type']}) is not bootable on its own",
                        hint="boot the iso, disk or initramfs output (an ESP/UKI goes on a disk)")
    if medium and medium not in media_of(o):
        raise UserError(f"output '{output}' ({o['type']}) for {manifest['arch']} does not boot as a {medium}",
                        hint=f"it boots as: {', '.join(media_of(o))} (a hybrid ISO also as a disk)")
    media = medium or media
    fw = "none" if media == "kernel" else firmware or (o["firmware"][0] if o["firmware"] else "none")
    if media != "kernel" and fw not in o["firmware"]:
        raise UserError(f"output '{output}' for {manifest['arch']} cannot boot with {fw} firmware",
                        hint=f"it boots with: {', '.join(o['firmware'])}")
    return Boot(arch=get_arch(manifest["arch"]), files=tuple(directory / f["path"] for f in o["files"]), media=media,
                firmware=fw, work=work, format=o["boot"].get("format", "raw"), cmdline=o["boot"].get("cmdline", ""),
                hardware=hardware_of(manifest, output), secure_boot=secure_boot)


def cmdline_settable(spec: Boot) -> bool:
    """Whether a boot gives the kernel its command line (a direct kernel boot); a disk's or an ISO's is built in
    (the profile's ``kernel.cmdline``)."""
    return spec.media == "kernel"


def with_cmdline(spec: Boot, extra: str) -> Boot:
    """``spec`` with ``extra`` appended to the kernel command line where the boot gives it, else unchanged."""
    if not extra or not cmdline_settable(spec):
        return spec
    return replace(spec, cmdline=f"{spec.cmdline} {extra}".strip())


def enforced_certificate(manifest: Mapping[str, Any], directory: Path, firmware: str) -> Path | None:
    """How ``vcomp test`` and ``vcomp reconcile`` boot a build signed for Secure Boot: UEFI boots with its
    certificate enrolled and Secure Boot enforced, where the architecture's firmware has it (else None)."""
    if firmware != "uefi" or "secure-boot" not in manifest or get_arch(manifest["arch"]).secure_boot is None:
        return None
    return secure_boot_certificate(manifest, directory, None)


def secure_boot_certificate(manifest: Mapping[str, Any], directory: Path, given: Path | None) -> Path:
    """The certificate ``vcomp boot --secure-boot`` enrolls: ``given``, else the one the build wrote beside the
    outputs (the profile's ``secure-boot.certificate``)."""
    if given is not None:
        return given
    recorded = manifest.get("secure-boot", {}).get("certificate")
    if not isinstance(recorded, str) or "/" in recorded:
        raise UserError(f"{directory}: this build is not signed for Secure Boot (its profile has no secure-boot key)",
                        hint="add secure-boot: {key: ..., certificate: ...} to the profile and rebuild, or pass "
                             "--secure-boot-cert FILE to enroll another certificate")
    return directory / recorded


def hardware_of(manifest: Mapping[str, Any], output: str) -> tuple[str, ...]:
    """The virtual hardware one boot of ``output`` attaches: the union of its boot tests' ``hardware``
    (composer.hardware; the names are checked again when the QEMU command is made)."""
    return tuple(sorted({str(h) for t in tests_for(manifest, output) for h in t.get("hardware", [])}))


@dataclass(frozen=True, slots=True, kw_only=True)
class Reach:
    """How a boot is reached from the host: ports the user forwards (allocated: ``vcomp boot --forward``),
    where the ssh checks' relative ``key:`` paths start (the profile's directory), and a key that replaces
    theirs (``vcomp boot --ssh-key``)."""

    forwards: tuple[Forward, ...] = ()
    keys: Path = Path(".")
    ssh_key: Path | None = None


def log_name(arch: str, output: str, medium: str, firmware: str, primary: str) -> str:
    """A boot's console log file: ARCH-OUTPUT-FIRMWARE.log on the output's own medium (as always), with the
    medium named on another one (ARCH-OUTPUT-MEDIUM-FIRMWARE.log: a hybrid ISO booted as a disk)."""
    return f"{arch}-{output}-{firmware}.log" if medium == primary else f"{arch}-{output}-{medium}-{firmware}.log"


def run_boot(manifest: Mapping[str, Any], directory: Path, output: str, firmware: str, *, logs: Path,
             expect: Sequence[str] = (), timeout: float | None = None,
             echo: Callable[[Seen], None] | None = None, medium: str = "", reach: Reach = Reach(),
             secure_boot: Path | None = None, reboots: bool = False, cmdline: str = "") -> list[Case]:
    """Boot one output with one firmware on one medium ("": its own) and evaluate its boot tests (or
    ``expect`` when given); ``echo`` sees each console line as it comes (:class:`composer.boot.verdict.Seen`).
    The tests' host checks run through ports of 127.0.0.1 forwarded for them (:mod:`composer.boot.reach`).
    ``cmdline``: kernel arguments added where the boot gives the command line (:func:`with_cmdline`)."""
    spec = with_cmdline(boot_spec(manifest, directory, output, firmware, logs, medium, secure_boot), cmdline)
    tests: list[dict[str, Any]] = ([{"name": "expect", "expect": list(expect), "timeout": timeout or DEFAULT_TIMEOUT}]
                                   if expect else tests_for(manifest, output))
    wanted = [tuple(t["expect"]) for t in tests]
    limit = timeout or max(int(t.get("timeout", DEFAULT_TIMEOUT)) for t in tests)
    primary = product(manifest, output)["boot"].get("media", "")
    name = log_name(manifest["arch"], output, spec.media, spec.firmware, primary).removesuffix(".log")
    checks = [reach_.checks_of(t) for t in tests]
    ready = reach_.setup(checks, forwards=reach.forwards, keys=reach.keys, ssh_key=reach.ssh_key, work=logs, name=name)
    try:
        w = watch(command(spec, forwards=ready.forwards, reboots=reboots), wanted, timeout=limit,
                  log_path=logs / f"{name}.log", echo=echo, probe=ready.probes, ready_ends=not reboots)
    finally:
        ready.cleanup()
    lines = w.log.splitlines()
    return [Case(arch=manifest["arch"], output=output, firmware=spec.firmware, test=t["name"], medium=spec.media,
                 expect=tuple(t["expect"]), watch=w, missing=match_in_order(lines, t["expect"]),
                 checks=ready.probes.results(i) if ready.probes is not None else ())
            for i, t in enumerate(tests)]


def boots_of(manifest: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Every (output, firmware) booted on the output's own medium: the outputs whose type's registry row says
    it is booted on its own (a direct kernel boot has no firmware: "none"). `vcomp test` boots every cell
    of the matrix (:func:`composer.boot.matrix.cells_of`), other media too."""
    out = []
    for o in manifest["outputs"]:
        kind = OUTPUT_TYPES.get(o["type"])
        if kind is None or not kind.tested:
            continue
        media = o["boot"].get("media", "")
        if media == "kernel":
            out.append((o["name"], "none"))
        elif media in MEDIA:
            out += [(o["name"], fw) for fw in o["firmware"]]
    return out


# ANSI/VT escape sequences (firmware clears the screen, moves the cursor, sets colours): CSI (ESC [ or the
# 8-bit CSI), OSC/DCS/SOS/PM/APC strings ended by BEL or ST, and the two- and three-byte ESC forms.
_ESCAPES = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"              # CSI ... final byte: colours, cursor, erase
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d-\x9f])[^\x07\x1b\x9c\n]*(?:\x07|\x1b\\|\x9c)?"  # OSC/DCS/... strings
    r"|\x1b[ -/]*[0-~]"                               # ESC ( B, ESC 7, ESC c, ...
    r"|\x1b")                                         # a lone ESC at the end of a line
# What is left that XML 1.0 forbids or a report should not carry: C0 controls but tab and newline, DEL, C1
# controls, non-characters.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ufffe\uffff]")


def plain_text(text: str) -> str:
    """Console text as a report shows it: escape sequences stripped (not replaced), other control
    characters removed (a carriage return ends nothing: it is dropped); valid XML 1.0 character data."""
    return _CONTROL.sub("", _ESCAPES.sub("", text))


def junit(cases: Sequence[Case], suite: str) -> bytes:
    root = ET.Element("testsuite", name=suite, tests=str(len(cases)),
                      failures=str(sum(not c.passed for c in cases)),
                      time=f"{sum(c.watch.seconds for c in cases):.1f}")
    for c in cases:
        cell = ".".join(p for p in (c.arch, c.output, c.medium, c.firmware) if p)
        tc = ET.SubElement(root, "testcase", classname=f"{suite}.{cell}", name=c.test,
                           time=f"{c.watch.seconds:.1f}")
        if not c.passed:
            f = ET.SubElement(tc, "failure", message=plain_text(c.reason()))
            f.text = plain_text(c.watch.tail(40))
        out = ET.SubElement(tc, "system-out")
        checks = "".join(f"host check {o.check}: {'PASS' if o.passed else 'FAIL: ' + o.reason}\n" for o in c.checks)
        out.text = plain_text(checks + c.watch.tail(200))
    ET.indent(root)
    text: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return text + b"\n"
