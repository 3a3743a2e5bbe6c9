"""Host-side checks of a boot test (``boot-tests[].host-checks[]``): what the host asks a running guest.

Each entry is an object with one key, the kind of check, whose value are its fields:

```yaml
host-checks:
  - http: {port: 8080, path: /, status: 200, contains: hello}
  - ssh: {user: admin, command: "id -un", output: admin}
```

The kinds are a registry (:data:`KINDS`): the schema (``schemas/profile.schema.json``, ``$defs/host-check``)
checks the fields and their bounds; these frozen values are what the profile, the manifest and the boot
(:mod:`composer.boot.reach`) pass around. A relative ``key`` is relative to the profile.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

DEFAULT_TIMEOUT = 60   # seconds a check keeps trying (connection refused, reset, no answer yet)


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpCheck:
    """GET ``path`` from the guest's ``port``: the status must be ``status`` and the body contain ``contains``."""

    port: int
    path: str = "/"
    status: int = 200
    contains: str | None = None
    timeout: int = DEFAULT_TIMEOUT
    written: frozenset[str] = field(default=frozenset(), compare=False)   # the keys the profile spells out

    kind = "http"

    @property
    def guest_port(self) -> int:
        return self.port

    def label(self) -> str:
        return f"http :{self.port}{self.path}"

    def to_dict(self) -> dict[str, object]:
        fields: dict[str, object | None] = {"port": self.port, "path": self.path, "status": self.status,
                                             "contains": self.contains, "timeout": self.timeout}
        return {self.kind: _as_written(fields, self.written)}

    @classmethod
    def from_fields(cls, d: Mapping[str, Any]) -> HttpCheck:
        return cls(port=int(d["port"]), path=str(d.get("path", "/")), status=int(d.get("status", 200)),
                   contains=None if d.get("contains") is None else str(d["contains"]),
                   timeout=int(d.get("timeout", DEFAULT_TIMEOUT)), written=frozenset(d))


@dataclass(frozen=True, slots=True, kw_only=True)
class SshCheck:
    """Log in as ``user`` on the guest's ``port`` with the private key ``key`` (relative to the profile; the
    INSECURE sample key when absent) and run ``command``: it must exit 0, and print ``output`` (the whole
    output, trailing white space ignored) or ``contains``."""

    user: str
    command: str
    port: int = 22
    output: str | None = None
    contains: str | None = None
    key: str | None = None
    timeout: int = DEFAULT_TIMEOUT
    written: frozenset[str] = field(default=frozenset(), compare=False)

    kind = "ssh"

    @property
    def guest_port(self) -> int:
        return self.port

    def label(self) -> str:
        return f"ssh {self.user}@:{self.port} {self.command!r}"

    def to_dict(self) -> dict[str, object]:
        fields: dict[str, object | None] = {"user": self.user, "port": self.port, "command": self.command,
                                             "output": self.output, "contains": self.contains, "key": self.key,
                                             "timeout": self.timeout}
        return {self.kind: _as_written(fields, self.written)}

    @classmethod
    def from_fields(cls, d: Mapping[str, Any]) -> SshCheck:
        def opt(k: str) -> str | None:
            return None if d.get(k) is None else str(d[k])
        return cls(user=str(d["user"]), command=str(d["command"]), port=int(d.get("port", 22)), output=opt("output"),
                   contains=opt("contains"), key=opt("key"), timeout=int(d.get("timeout", DEFAULT_TIMEOUT)),
                   written=frozenset(d))


HostCheck = HttpCheck | SshCheck


def _as_written(fields: Mapping[str, object | None], written: frozenset[str]) -> dict[str, object]:
    """The fields the profile spells out (all that are set, for a check made in code)."""
    return {k: v for k, v in fields.items() if v is not None and (not written or k in written)}

KINDS: Mapping[str, Callable[[Mapping[str, Any]], HostCheck]] = {
    HttpCheck.kind: HttpCheck.from_fields, SshCheck.kind: SshCheck.from_fields}


def host_check(d: Mapping[str, Any]) -> HostCheck:
    """One ``host-checks[]`` entry (schema-valid: one key, a kind of :data:`KINDS`)."""
    [(kind, fields)] = d.items()
    return KINDS[kind](fields)
