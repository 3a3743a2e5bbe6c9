"""Host-side checks against a running guest (``boot-tests[].host-checks``), through forwarded ports.

Once a boot test's ``expect`` lines have been seen (the guest keeps running), :class:`Probes` runs that test's
checks in a thread of their own, in order, each retried until its ``timeout``:

* ``http``: a GET to ``127.0.0.1:PORT`` with the stdlib's :mod:`http.client` (no proxy, no redirect followed),
  the response bounded (:data:`MAX_BODY` bytes, each read bounded by the check's deadline);
* ``ssh``: the host's OpenSSH client through the one subprocess gateway (:func:`composer.run.run`), with no
  user configuration (``-F /dev/null``), no agent, only the check's key (a 0600 copy in the boot's work
  directory), and a known_hosts file of this boot (the guest's host key is new at each first boot: it is
  accepted into that file, never into the user's).

A check that gets no answer (connection refused or reset: QEMU accepts on the host even when nothing listens
in the guest) tries again until its timeout; one that gets an answer is decided by it (a wrong status, a
refused key, a wrong output fail at once). The verdicts (:func:`http_verdict`, :func:`ssh_verdict`) are pure.
"""

from __future__ import annotations

import http.client
import os
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from composer.boot.forward import LOOPBACK, Forward, allocate
from composer.errors import ToolError, UserError
from composer.hostchecks import HostCheck, HttpCheck, SshCheck, host_check
from composer.run import require_tool, run

MAX_BODY = 1 << 20          # bytes of an HTTP response read (the rest is ignored)
MAX_KEY = 64 << 10          # bytes of a private key file
ATTEMPT = 10.0              # seconds one attempt may take at most
PAUSE = 1.0                 # seconds between attempts
SAMPLE_KEY = "INSECURE-sample-ssh-ed25519"


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """One host check's result."""

    check: str
    passed: bool
    reason: str = ""
    attempts: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"check": self.check, "passed": self.passed, "reason": self.reason or None,
                "attempts": self.attempts, "seconds": round(self.seconds, 1)}


@dataclass(frozen=True, slots=True, kw_only=True)
class Answer:
    """What one attempt got: ``final`` when it decides the check (an answer), else try again."""

    final: bool
    reason: str = ""   # "" = passed (when final)


def clip(text: str, n: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[:n] + "..."


# ---------------------------------------------------------------- pure verdicts

def http_verdict(check: HttpCheck, status: int, body: bytes) -> str:
    """Why an HTTP answer fails the check ('' when it passes)."""
    if status != check.status:
        return f"status {status}, expected {check.status}"
    if check.contains is not None and check.contains.encode() not in body:
        return f"the body does not contain {check.contains!r} (it starts {clip(body.decode(errors='replace'), 80)!r})"
    return ""


AUTH_REFUSED = ("Permission denied", "Too many authentication failures")


def ssh_verdict(check: SshCheck, returncode: int, stdout: bytes, stderr: bytes) -> Answer:
    """What one ``ssh`` run means: exit 255 is ssh's own failure (no answer yet: try again, unless the
    server refused the key), anything else is the command's."""
    err = stderr.decode(errors="replace")
    if returncode == 255:
        if any(s in err for s in AUTH_REFUSED):
            return Answer(final=True, reason=f"the guest refused the key for {check.user}: {clip(err)}")
        return Answer(final=False, reason=f"no ssh session: {clip(err) or 'exit 255'}")
    out = stdout.decode(errors="replace")
    if returncode != 0:
        return Answer(final=True, reason=f"{check.command!r} exited {returncode}: {clip(err or out)}")
    if check.output is not None and out.rstrip() != check.output.rstrip():
        return Answer(final=True, reason=f"{check.command!r} printed {clip(out, 120)!r}, expected {check.output!r}")
    if check.contains is not None and check.contains not in out:
        return Answer(final=True, reason=f"{check.command!r} printed {clip(out, 120)!r}, "
                                         f"which does not contain {check.contains!r}")
    return Answer(final=True)


# ---------------------------------------------------------------- one attempt of each kind

@dataclass(frozen=True, slots=True, kw_only=True)
class Context:
    """What the checks of one boot share: guest port -> host port, this boot's known_hosts, and the private
    keys (as written in the checks, None = the sample key) -> their 0600 copies."""

    ports: Mapping[int, int]
    known_hosts: Path
    keys: Mapping[str | None, Path] = field(default_factory=dict)


def http_attempt(check: HttpCheck, ctx: Context, deadline: float) -> Answer:
    left = max(0.5, min(ATTEMPT, deadline - time.monotonic()))
    conn = http.client.HTTPConnection(LOOPBACK, ctx.ports[check.port], timeout=left)
    try:
        conn.request("GET", check.path, headers={"Host": f"localhost:{check.port}", "Connection": "close"})
        resp = conn.getresponse()
        body = b""
        while len(body) < MAX_BODY and time.monotonic() < deadline:
            chunk = resp.read(min(65536, MAX_BODY - len(body)))
            if not chunk:
                break
            body += chunk
        return Answer(final=True, reason=http_verdict(check, resp.status, body))
    except (OSError, http.client.HTTPException) as exc:
        return Answer(final=False, reason=f"no HTTP answer: {clip(str(exc) or type(exc).__name__)}")
    finally:
        conn.close()


def ssh_command(check: SshCheck, ctx: Context, seconds: float) -> list[str]:
    """The ssh client command line: nothing from the user's configuration, agent or known hosts."""
    options = {"BatchMode": "yes", "IdentitiesOnly": "yes", "IdentityAgent": "none",
               "StrictHostKeyChecking": "accept-new", "UserKnownHostsFile": str(ctx.known_hosts),
               "GlobalKnownHostsFile": "/dev/null", "ConnectTimeout": str(max(1, int(seconds))),
               "LogLevel": "ERROR", "ServerAliveInterval": "5", "ServerAliveCountMax": "2"}
    return ["ssh", "-F", "/dev/null", *(a for k, v in options.items() for a in ("-o", f"{k}={v}")),
            "-i", str(ctx.keys[check.key]), "-p", str(ctx.ports[check.port]), "-l", check.user, LOOPBACK,
            check.command]


def ssh_attempt(check: SshCheck, ctx: Context, deadline: float) -> Answer:
    left = max(1.0, min(ATTEMPT * 3, deadline - time.monotonic()))
    try:
        r = run(ssh_command(check, ctx, left), check=False, timeout=left, stdin=b"")
    except ToolError as exc:
        return Answer(final=False, reason=clip(exc.message))
    return ssh_verdict(check, r.returncode, r.stdout, r.stderr)


ATTEMPTS: Mapping[str, Callable[[Any, Context, float], Answer]] = {
    HttpCheck.kind: http_attempt, SshCheck.kind: ssh_attempt}


def run_check(check: HostCheck, ctx: Context, stop: threading.Event) -> Outcome:
    """Try ``check`` until an answer decides it, its timeout passes, or ``stop`` is set (the boot ended)."""
    start = time.monotonic()
    deadline = start + check.timeout
    attempts, last = 0, "not tried"
    while True:
        attempts += 1
        answer = ATTEMPTS[check.kind](check, ctx, deadline)
        if answer.final:
            return Outcome(check=check.label(), passed=not answer.reason, reason=answer.reason, attempts=attempts,
                           seconds=time.monotonic() - start)
        last = answer.reason
        if stop.is_set():
            return Outcome(check=check.label(), passed=False, reason=f"the boot ended before an answer ({last})",
                           attempts=attempts, seconds=time.monotonic() - start)
        if time.monotonic() + PAUSE >= deadline:
            return Outcome(check=check.label(), passed=False, attempts=attempts, seconds=time.monotonic() - start,
                           reason=f"no answer within {check.timeout} s ({attempts} attempts; last: {last})")
        stop.wait(PAUSE)


# ---------------------------------------------------------------- the checks of one boot

def checks_of(test: Mapping[str, Any]) -> tuple[HostCheck, ...]:
    """A manifest boot test's host checks."""
    return tuple(host_check(c) for c in test.get("host-checks", []))


def guest_ports(tests: Sequence[Sequence[HostCheck]]) -> list[int]:
    return sorted({c.guest_port for checks in tests for c in checks})


def sample_key() -> Path:
    from composer.repo.sample import checkout_of_this_package
    return checkout_of_this_package().keys / SAMPLE_KEY


def key_copies(tests: Sequence[Sequence[HostCheck]], base: Path, work: Path,
               override: Path | None = None) -> dict[str | None, Path]:
    """A 0600 copy in ``work`` of each private key the ssh checks name (relative to ``base``; the sample key
    when they name none; ``override`` for every check when given): git does not keep a key's mode, and ssh
    refuses a key others can read."""
    wanted = sorted({c.key for checks in tests for c in checks if isinstance(c, SshCheck)}, key=str)
    if not wanted:
        return {}
    require_tool("ssh")
    copies: dict[str | None, Path] = {}
    work.mkdir(parents=True, exist_ok=True)
    for name in wanted:
        src = override or (base / name if name is not None else sample_key())
        try:
            with open(src, "rb") as f:
                data = f.read(MAX_KEY + 1)
        except OSError as exc:
            raise UserError(f"ssh check key {src}: {exc.strerror}",
                            hint="give the private key's path relative to the profile (key:), or --ssh-key") from None
        if len(data) > MAX_KEY:
            raise UserError(f"ssh check key {src}: larger than {MAX_KEY} bytes, not a private key",
                            hint="give an OpenSSH private key file")
        fd, tmp = tempfile.mkstemp(prefix="ssh-key-", dir=work)   # mode 0600
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        copies[name] = Path(tmp)
    return copies


@dataclass(slots=True, kw_only=True)
class Probes:
    """The host checks of one boot's tests (one list per test, in the order of the watch's groups): started
    per test once its expectations are met (:meth:`start`), busy while a test's checks run."""

    tests: Sequence[Sequence[HostCheck]]
    ctx: Context
    outcomes: dict[int, list[Outcome]] = field(default_factory=dict)
    threads: dict[int, threading.Thread] = field(default_factory=dict)
    stop_event: threading.Event = field(default_factory=threading.Event)

    def start(self, group: int) -> None:
        if group >= len(self.tests) or not self.tests[group] or group in self.threads:
            return
        self.outcomes[group] = []
        t = threading.Thread(target=self._run, args=(group,), name=f"host-checks-{group}", daemon=True)
        self.threads[group] = t
        t.start()

    def _run(self, group: int) -> None:
        for check in self.tests[group]:
            self.outcomes[group].append(run_check(check, self.ctx, self.stop_event))

    def busy(self) -> bool:
        return any(t.is_alive() for t in self.threads.values())

    def stop(self) -> None:
        """The boot ended: checks still trying give up (each attempt is bounded)."""
        self.stop_event.set()
        for t in self.threads.values():
            t.join(ATTEMPT * 3 + 5)

    def results(self, group: int) -> tuple[Outcome, ...]:
        """A test's outcomes; its checks that never ran (expectations not met, the boot ended) fail."""
        done = list(self.outcomes.get(group, []))
        for check in self.tests[group][len(done):]:
            why = ("the boot ended first" if group in self.threads
                   else "not run: the test's expect lines were not all seen")
            done.append(Outcome(check=check.label(), passed=False, reason=why))
        return tuple(done)


@dataclass(frozen=True, slots=True, kw_only=True)
class Setup:
    """What one boot needs to be reached: every forward (the user's, then one per guest port the checks use,
    allocated), the probes of its tests (None without host checks) and the key copies to remove after it."""

    forwards: tuple[Forward, ...]
    probes: Probes | None
    keys: tuple[Path, ...]

    def cleanup(self) -> None:
        for key in self.keys:
            key.unlink(missing_ok=True)


def setup(tests: Sequence[Sequence[HostCheck]], *, forwards: Sequence[Forward], keys: Path, ssh_key: Path | None,
          work: Path, name: str) -> Setup:
    """Forwards, probes and keys of a boot named ``name`` whose tests have these host checks; ``keys``: where
    relative ``key:`` paths start; the known_hosts file ``work/NAME.known_hosts`` starts empty (a new guest,
    a new host key)."""
    ports = guest_ports(tests)
    allocated = allocate([*forwards, *(Forward(host=0, guest=p) for p in ports)])
    if not ports:
        return Setup(forwards=allocated, probes=None, keys=())
    copies = key_copies(tests, keys, work, ssh_key)
    known_hosts = work / f"{name}.known_hosts"
    known_hosts.unlink(missing_ok=True)
    ctx = Context(ports={f.guest: f.host for f in allocated[len(forwards):]}, known_hosts=known_hosts, keys=copies)
    return Setup(forwards=allocated, probes=Probes(tests=tests, ctx=ctx), keys=tuple(copies.values()))
