"""Forwarded TCP ports of a boot: ``vcomp boot --forward HOST:GUEST`` and the ports host-side checks use.

QEMU's user networking forwards ``127.0.0.1:HOST`` on the host to ``GUEST`` in the guest
(``hostfwd=tcp:127.0.0.1:HOST-:GUEST``). Only the loopback address is ever bound: an image under test is not
exposed to the network (a forward naming another address is refused). HOST 0 means "any free port": it is
chosen before the boot (:func:`allocate`) and the chosen mapping is what the user is shown.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from composer.errors import UserError

LOOPBACK = "127.0.0.1"
MAX_FORWARDS = 32
_FORM = re.compile(r"(?:(?P<address>[^:]*):)?(?P<host>[0-9]{1,5}):(?P<guest>[0-9]{1,5})")
_HINT = "write --forward HOST:GUEST (tcp, bound to 127.0.0.1; HOST 0 picks a free port), e.g. --forward 0:22"


@dataclass(frozen=True, slots=True, kw_only=True)
class Forward:
    """Host port ``host`` on 127.0.0.1 to guest port ``guest`` (tcp); ``host`` 0 until allocated."""

    host: int
    guest: int

    def rule(self) -> str:
        """The QEMU ``-netdev user`` option of this forward."""
        return f"hostfwd=tcp:{LOOPBACK}:{self.host}-:{self.guest}"

    def __str__(self) -> str:
        return f"{LOOPBACK}:{self.host} -> guest:{self.guest}"


def parse_forward(text: str) -> Forward:
    """``HOST:GUEST`` or ``127.0.0.1:HOST:GUEST`` (tcp); any other address, a port outside 1-65535 (0 for
    HOST: any free port) or another shape is refused with the fix."""
    m = _FORM.fullmatch(text.strip())
    if m is None:
        raise UserError(f"--forward {text!r}: not HOST:GUEST", hint=_HINT)
    address = m["address"]
    if address is not None and address not in (LOOPBACK, "localhost"):
        raise UserError(f"--forward {text!r}: forwards are bound to {LOOPBACK} only, not {address!r}",
                        hint="drop the address (an image under test is never exposed beyond this host); "
                             "reach it from elsewhere through an ssh tunnel to this host")
    host, guest = int(m["host"]), int(m["guest"])
    if not 0 <= host <= 65535:
        raise UserError(f"--forward {text!r}: host port {host} is outside 0-65535", hint=_HINT)
    if not 1 <= guest <= 65535:
        raise UserError(f"--forward {text!r}: guest port {guest} is outside 1-65535", hint=_HINT)
    return Forward(host=host, guest=guest)


def parse_forwards(texts: Sequence[str]) -> tuple[Forward, ...]:
    if len(texts) > MAX_FORWARDS:
        raise UserError(f"{len(texts)} --forward options: at most {MAX_FORWARDS}", hint="forward fewer ports")
    forwards = tuple(parse_forward(t) for t in texts)
    taken = [f.host for f in forwards if f.host]
    twice = sorted({p for p in taken if taken.count(p) > 1})
    if twice:
        raise UserError(f"--forward: host port {twice[0]} is forwarded twice", hint="give each forward its own port")
    return forwards


def free_port() -> int:
    """A TCP port of 127.0.0.1 nothing listens on now (QEMU binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        port: int = s.getsockname()[1]
        return port


def allocate(forwards: Iterable[Forward]) -> tuple[Forward, ...]:
    """Each forward with host port 0 given a free port (distinct from the others')."""
    taken = {f.host for f in forwards if f.host}
    out = []
    for f in forwards:
        host = f.host
        while not host or (not f.host and host in taken):
            host = free_port()
        taken.add(host)
        out.append(Forward(host=host, guest=f.guest))
    return tuple(out)


def netdev(forwards: Sequence[Forward]) -> str:
    """QEMU's ``-netdev`` value: user networking with these forwards."""
    return ",".join(["user", "id=net0", *(f.rule() for f in forwards)])
