"""When a boot's verdict is certain: a pure state machine fed the console line by line (and the clock).

A boot test passes when each test's ``expect`` lines appear in order, init says ``VCOMP-BOOT: ready``, and
no failure marker appears. The watch stops:

* at once when every expectation is met (a passing run stops exactly where it always did);
* soon after the verdict is certain to be a failure: init said ``ready`` (or ``powering off``/``starting
  shell``) and an expected line is still missing, a check or module failed (``VCOMP-CHECK: FAIL``,
  ``VCOMP-MODULE: FAIL``), a service failed (``VCOMP-SERVICE: failed``), init failed (``VCOMP-BOOT: FAIL``),
  the kernel panicked or init exited.

"Soon" is a grace period for late lines (the remaining checks, a panic's trace): the watch goes on while the
console keeps talking and stops once it has been quiet for :data:`GRACE` seconds, once init starts its shell
(nothing else will come), or :data:`GRACE_CAP` seconds after the verdict at the latest. A failure marker the
test itself expects (a test of the failure path) is still a failure but does not end the boot early.

No I/O here: :class:`Verdict` is fed ``(line, now)`` and asked ``done(now)``; :mod:`composer.boot.machine`
drives it from QEMU's console.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

READY = "VCOMP-BOOT: ready"
FAILURE_PREFIXES = ("VCOMP-BOOT: FAIL", "VCOMP-CHECK: FAIL", "VCOMP-MODULE: FAIL", "VCOMP-SERVICE: failed")
# the kernel's, and UEFI's when every boot option failed
FATAL_TEXT = ("Kernel panic", "Attempted to kill init", "BdsDxe: No bootable option or device was found")
# UEFI (EDK2's boot manager) refused to load or start an image: Secure Boot did not verify it
# (docs/verified-boot.md); it would go on to network boot and never come back to the disk
FIRMWARE_REFUSAL = ("BdsDxe: failed to ", (": Access Denied", ": Security Violation"))
AFTER_READY = ("VCOMP-BOOT: powering off", "VCOMP-BOOT: starting shell")  # init's last words
SILENT_AFTER = "VCOMP-BOOT: starting shell"  # an interactive shell: nothing more will be printed
GRACE = 5.0       # seconds of console silence after a certain failure before the watch stops
GRACE_CAP = 30.0  # the longest the watch lingers after a certain failure, however chatty the console


Expected = Sequence[str] | Sequence[Sequence[str]]


def groups_of(expected: Expected) -> tuple[tuple[str, ...], ...]:
    """A plain list of lines is one test's; a list of lists is one group per test."""
    if all(isinstance(e, str) for e in expected):
        return (tuple(str(e) for e in expected),)
    return tuple((g,) if isinstance(g, str) else tuple(g) for g in expected)


def is_failure(line: str) -> bool:
    """A failure marker: init's, a check's, a module's, the kernel's, or the firmware's refusal."""
    prefix, refusals = FIRMWARE_REFUSAL
    return (line.startswith(FAILURE_PREFIXES) or any(t in line for t in FATAL_TEXT)
            or (prefix in line and any(r in line for r in refusals)))


@dataclass(frozen=True, slots=True, kw_only=True)
class Seen:
    """What one console line meant: the expected line it satisfied (if any), its place, and whether it is a
    failure marker. What the user is shown while booting."""

    line: str
    expected: str | None = None
    index: int = 0      # 1-based position among all expected lines satisfied so far
    total: int = 0
    failure: bool = False

    @property
    def notable(self) -> bool:
        """Worth showing while booting: an expected line, a failure, or one of init's markers."""
        return self.expected is not None or self.failure or self.line.startswith("VCOMP-")


@dataclass(slots=True, kw_only=True)
class Verdict:
    """The state of one boot's console against its tests' expectations (one group per test, each in
    order; ``ready`` is always expected at the end)."""

    groups: tuple[tuple[str, ...], ...]
    grace: float = GRACE
    grace_cap: float = GRACE_CAP
    ready_ends: bool = True   # False: a machine that reboots (A/B updates) says ready once per boot
    at: list[int] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    ready: bool = False
    certain_at: float | None = None
    last_line_at: float = 0.0
    silent: bool = False

    @classmethod
    def of(cls, expected: Expected, *, grace: float = GRACE, grace_cap: float = GRACE_CAP,
           ready_ends: bool = True) -> Verdict:
        """``expected``: one group of lines per test, or a plain list of lines (one test). ``ready_ends=False``:
        init's ready line before the expected lines are all seen is not a failure (the guest reboots and goes on)."""
        groups = groups_of(expected)
        if ready_ends and not any(READY in line for g in groups for line in g):
            groups = (*groups, (READY,))
        return cls(groups=groups, grace=grace, grace_cap=grace_cap, ready_ends=ready_ends, at=[0] * len(groups))

    @property
    def total(self) -> int:
        return sum(len(g) for g in self.groups)

    def missing(self) -> tuple[str, ...]:
        """The expected lines not seen yet, each test's from the first one it still waits for."""
        return tuple(line for g, n in zip(self.groups, self.at, strict=True) for line in g[n:])

    def met_groups(self) -> tuple[int, ...]:
        """The tests (by group index) whose expected lines have all been seen."""
        return tuple(i for i, (g, n) in enumerate(zip(self.groups, self.at, strict=True)) if n == len(g))

    @property
    def met(self) -> bool:
        return all(n == len(g) for g, n in zip(self.groups, self.at, strict=True))

    @property
    def certain(self) -> bool:
        return self.certain_at is not None

    def feed(self, line: str, now: float) -> Seen:
        """One console line at time ``now``."""
        self.last_line_at = now
        matched: str | None = None
        for i, (g, n) in enumerate(zip(self.groups, self.at, strict=True)):
            if n < len(g) and g[n] in line:
                matched = matched or g[n]
                self.at[i] = n + 1
        failure = is_failure(line)
        if failure:
            self.failures.append(line)
            if matched is None:  # a failure the test does not expect: the boot has failed
                self._certain(now)
        if READY in line or line.startswith(AFTER_READY):
            self.ready = True
        if line.startswith(SILENT_AFTER):
            self.silent = True
        if self.ready and not self.met and self.ready_ends:
            self._certain(now)
        done = sum(self.at)
        return Seen(line=line, expected=matched, index=done if matched else 0, total=self.total, failure=failure)

    def _certain(self, now: float) -> None:
        if self.certain_at is None:
            self.certain_at = now

    def done(self, now: float) -> bool:
        """Whether the watch can stop now: every expectation met (as before: a failure on the way is in
        :attr:`failures`), or a certain failure whose grace period is over."""
        if self.met:
            return True
        if self.certain_at is None:
            return False
        if self.silent:
            return True
        return now - self.last_line_at >= self.grace or now - self.certain_at >= self.grace_cap
