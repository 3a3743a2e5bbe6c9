"""What Debian's ``pam-auth-update --package`` writes (pure): ``/etc/pam.d/common-{auth,account,password,session,
session-noninteractive}`` from libpam-runtime's templates (``/usr/share/pam/common-*``, with ``$TYPE_primary`` and
``$TYPE_additional`` placeholders) and the profiles in ``/usr/share/pam-configs`` that are on by default
(``Default: yes``; no debconf answers in an image build), highest ``Priority`` first.

A primary module's ``success=end`` jumps past the rest of the primary block (``success=N``); the first module of
a block uses its ``TYPE-Initial`` lines when it has them; a type without primary modules gets Debian's
``[default=1] pam_permit.so`` placeholder; ``Session-Interactive-Only: yes`` keeps a profile out of
``common-session-noninteractive``.
"""

from __future__ import annotations

from collections.abc import Mapping

# file (below /etc/pam.d and /usr/share/pam) -> (the type in the profiles, the placeholder's prefix)
FILES: Mapping[str, tuple[str, str]] = {
    "common-auth": ("auth", "auth"), "common-account": ("account", "account"),
    "common-password": ("password", "password"), "common-session": ("session", "session"),
    "common-session-noninteractive": ("session", "session_nonint"),
}
MAX_PROFILES = 256


def parse_profile(text: str) -> dict[str, list[str]]:
    """``Field: value`` lines; an indented line continues the field before it (one entry per line)."""
    fields: dict[str, list[str]] = {}
    current = ""
    for line in text.splitlines():
        if line[:1] in (" ", "\t") and current:
            if line.strip():
                fields[current].append(" ".join(line.split()))
        elif ":" in line and not line.startswith("#"):
            current, _, value = line.partition(":")
            fields[current] = [" ".join(value.split())] if value.strip() else []
    return fields


def _priority(profile: Mapping[str, list[str]]) -> int:
    value = (profile.get("Priority") or ["0"])[0]
    return int(value) if value.isdigit() else 0


def _lines(profiles: list[dict[str, list[str]]], kind: str, role: str) -> list[str]:
    out: list[str] = []
    for p in profiles:
        if (p.get(f"{kind.capitalize()}-Type") or [""])[0] != role:
            continue
        key = kind.capitalize()
        chosen = p.get(f"{key}-Initial") if role == "Primary" and not out and p.get(f"{key}-Initial") else p.get(key)
        out += [f"{kind}\t{line}" for line in chosen or []]
    return out


def _jumps(lines: list[str]) -> list[str]:
    return [line.replace("=end", f"={len(lines) - i}") for i, line in enumerate(lines)]


def common_file(name: str, template: str, profiles: Mapping[str, str]) -> bytes:
    """One ``/etc/pam.d`` file: ``template`` (libpam-runtime's) with the placeholders filled from ``profiles``
    (file name -> text) that are on by default."""
    kind, prefix = FILES[name]
    parsed = [(n, parse_profile(t)) for n, t in sorted(profiles.items())[:MAX_PROFILES]]
    chosen = [p for n, p in sorted(parsed, key=lambda np: (-_priority(np[1]), np[0]))
              if (p.get("Default") or [""])[0] == "yes"
              and not (prefix == "session_nonint" and (p.get("Session-Interactive-Only") or [""])[0] == "yes")]
    primary = _jumps(_lines(chosen, kind, "Primary")) or [f"{kind}\t[default=1]\t\t\tpam_permit.so"]
    additional = _lines(chosen, kind, "Additional")
    out = []
    for line in template.splitlines():
        if line.strip() == f"${prefix}_primary":
            out += primary
        elif line.strip() == f"${prefix}_additional":
            out += additional
        else:
            out.append(line)
    return "".join(f"{line}\n" for line in out).encode()
