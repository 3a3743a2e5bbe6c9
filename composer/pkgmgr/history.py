"""A root's transaction history as an admin reads it: typed entries, one line of text each, and JSON.

``history.json`` (written by ``composer.pkgmgr.transaction`` and, for transaction 1, by the build) holds one
object per transaction: ``id``, ``time`` (seconds since 1970: the wall clock for the package manager on a
root, SOURCE_DATE_EPOCH for an image build), ``operation``, ``packages`` (name, action, old, new), and
optionally ``command`` (the command line as typed, shell-quoted) and ``cause`` (why: the build's profile and
lock digests, or ``lock DIGEST`` for a reconcile). Roots written before the ``command`` field recorded the
command line as the ``cause``; both read the same way here.

Pure: takes the decoded documents, never reads a file or the clock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

FORMAT_VERSION = "1.0"
SHOWN_PACKAGES = 6  # a line names this many packages, then "and N more"


@dataclass(frozen=True, slots=True, kw_only=True)
class PackageChange:
    name: str
    action: str
    old: str | None
    new: str | None

    @property
    def text(self) -> str:
        if self.old and self.new:
            return f"{self.name} {self.old} -> {self.new}" if self.old != self.new else f"{self.name} {self.new}"
        return f"{self.name} {self.old or self.new or ''}".strip()

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "action": self.action, "old": self.old, "new": self.new}


@dataclass(frozen=True, slots=True, kw_only=True)
class HistoryEntry:
    id: int
    time: int
    operation: str
    command: str | None
    cause: str | None
    packages: tuple[PackageChange, ...]

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> HistoryEntry:
        """An entry of ``history.json`` (already validated by ``composer.pkgmgr.dbcheck.history``)."""
        command = d.get("command")
        cause = describe_cause(d.get("cause"))
        if command is None and cause is not None and cause.startswith("vcomp "):  # before the command field
            command, cause = cause, None
        return cls(id=int(d["id"]), time=int(d.get("time", 0)), operation=str(d.get("operation", "")),
                   command=command, cause=cause,
                   packages=tuple(PackageChange(name=str(p["name"]), action=str(p.get("action", "")),
                                                old=p.get("old"), new=p.get("new") or p.get("version"))
                                  for p in d.get("packages", [])))

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "time": self.time, "time_utc": utc(self.time), "operation": self.operation,
                "command": self.command, "cause": self.cause, "packages": [p.to_dict() for p in self.packages]}

    @property
    def line(self) -> str:
        """One line: id, UTC time, operation, the packages (the first few), then the command or the cause."""
        shown = [p.text for p in self.packages[:SHOWN_PACKAGES]]
        more = len(self.packages) - SHOWN_PACKAGES
        what = ", ".join(shown) + (f" and {more} more" if more > 0 else "") if shown else "no packages"
        why = self.command or self.cause
        return f"{self.id:>4}  {utc(self.time)}  {self.operation:<16} {what}" + (f"  ({why})" if why else "")


def describe_cause(cause: Any) -> str | None:
    """The cause as text: a build's ``{"profile": D, "lock": D}`` reads as ``build of profile D1, lock D2``
    (digests shortened to 12 hex digits); text as it is; anything else by its sorted ``key value`` pairs."""
    if cause is None or cause == "":
        return None
    if isinstance(cause, str):
        return cause
    if isinstance(cause, Mapping):
        if set(cause) == {"profile", "lock"}:
            return f"build of profile {str(cause['profile'])[:12]}, lock {str(cause['lock'])[:12]}"
        return ", ".join(f"{k} {cause[k]}" for k in sorted(cause))
    return str(cause)


def utc(seconds: int) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def entries(history: Sequence[Mapping[str, Any]]) -> list[HistoryEntry]:
    return [HistoryEntry.from_dict(h) for h in history]


def lines(history: Sequence[Mapping[str, Any]]) -> list[str]:
    """The text of ``vcomp pkg --root DIR history``: one line per transaction, oldest first."""
    return [e.line for e in entries(history)]


def document(history: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The ``--json`` document (schemas/history.schema.json)."""
    return {"format_version": FORMAT_VERSION, "transactions": [e.to_dict() for e in entries(history)]}
