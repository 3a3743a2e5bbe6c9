"""Validation of a root's state files (``db.json``, ``history.json``, ``repositories.json``, ``generated.json``).

A root is attacker-controlled: a package, an image from elsewhere or a user may have written these files.
Nothing read from them is used before it passed these checks: every path is relative, normalised and
not vcomp's own (``composer.rootfs.paths``), names and types come from known sets, numbers are integers.
A failure is one error naming the file and the JSON path of the entry
(``R/var/lib/vpk/db.json: packages.nano.files[3].path '../x' has a '..' component``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from composer.errors import UserError
from composer.package.manifest import TYPES
from composer.rootfs.paths import path_problem, reserved_problem, show

NAME = re.compile(r"[a-z0-9][a-z0-9._+-]{0,63}")
HEX64 = re.compile(r"[0-9a-f]{64}")
MODE = re.compile(r"[0-7]{3,4}")
METADATA_TABLES = ("package", "dependencies", "features", "capabilities", "driver", "security", "boot")
HINT = ("the root's package database is corrupt or was tampered with; vcomp changed nothing: restore "
        "var/lib/vpk from a backup, or rebuild the root with vcomp build")


class DatabaseError(UserError):
    """A root's database, history, repository list or journal fails validation."""


def fail(origin: str, where: str, problem: str) -> DatabaseError:
    return DatabaseError(f"{origin}: {where} {problem}", hint=HINT)


def want(value: Any, kind: type | tuple[type, ...], origin: str, where: str) -> Any:
    """``value`` when it is of ``kind`` (a bool is not an int here)."""
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
        names = " or ".join("an integer" if k is int else f"a {k.__name__}" for k in kinds)
        names = names.replace("a dict", "an object").replace("a list", "an array").replace("a str", "a string")
        names = names.replace("a NoneType", "null")
        raise fail(origin, where, f"is {type(value).__name__}, not {names}")
    return value


def rel_path(value: Any, origin: str, where: str) -> str:
    """A relative, normalised path inside the root (the one check of ``composer.rootfs.paths``)."""
    why = path_problem(value)
    if why:
        raise fail(origin, where, f"{show(value)} {why}: not a relative path inside the root")
    return str(value)


def natural(value: Any, origin: str, where: str) -> int:
    number = int(want(value, int, origin, where))
    if number < 0:
        raise fail(origin, where, f"is negative ({number})")
    return number


def name(value: Any, origin: str, where: str) -> str:
    text = str(want(value, str, origin, where))
    if not NAME.fullmatch(text):
        raise fail(origin, where, f"{show(text)} is not a package name")
    return text


def entry(e: Any, origin: str, where: str) -> Mapping[str, Any]:
    """One manifest entry of a record."""
    want(e, dict, origin, where)
    path = rel_path(e.get("path"), origin, f"{where}.path")
    kind = want(e.get("type"), str, origin, f"{where}.type")
    if kind not in TYPES:
        raise fail(origin, f"{where}.type", f"{show(kind)} is not one of {', '.join(TYPES)}")
    why = reserved_problem(path, kind)
    if why:
        raise fail(origin, f"{where}.path", f"{show(path)} {why}")
    mode = want(e.get("mode"), str, origin, f"{where}.mode")
    if not MODE.fullmatch(mode):
        raise fail(origin, f"{where}.mode", f"{show(mode)} is not an octal mode")
    if kind == "file":
        natural(e.get("size"), origin, f"{where}.size")
        if not HEX64.fullmatch(want(e.get("sha256"), str, origin, f"{where}.sha256")):
            raise fail(origin, f"{where}.sha256", "is not a sha256")
        want(e.get("role", ""), str, origin, f"{where}.role")
    elif kind == "symlink":
        target = want(e.get("target"), str, origin, f"{where}.target")
        if not target or "\x00" in target:
            raise fail(origin, f"{where}.target", "is empty or contains a NUL byte")
    elif kind == "hardlink":
        rel_path(e.get("target"), origin, f"{where}.target")
    return e  # type: ignore[no-any-return]


def record(key: str, r: Any, origin: str, where: str) -> Mapping[str, Any]:
    want(r, dict, origin, where)
    if name(r.get("name"), origin, f"{where}.name") != key:
        raise fail(origin, f"{where}.name", f"{show(r.get('name'))} differs from its key {show(key)}")
    for field in ("version", "arch", "reason", "repository", "signer", "sha256"):
        want(r.get(field, ""), str, origin, f"{where}.{field}")
    want(r.get("manual", False), bool, origin, f"{where}.manual")
    natural(r.get("size", 0), origin, f"{where}.size")
    meta = want(r.get("metadata", {}), dict, origin, f"{where}.metadata")
    for table in METADATA_TABLES:
        want(meta.get(table, {}), dict, origin, f"{where}.metadata.{table}")
    for field in ("provides", "conflicts"):
        for i, item in enumerate(want(meta.get("package", {}).get(field, []), list, origin,
                                      f"{where}.metadata.package.{field}")):
            want(item, str, origin, f"{where}.metadata.package.{field}[{i}]")
    for i, cap in enumerate(want(r.get("capabilities", []), list, origin, f"{where}.capabilities")):
        want(cap, str, origin, f"{where}.capabilities[{i}]")
    for field in ("features",):
        for i, item in enumerate(want(r.get(field, []), list, origin, f"{where}.{field}")):
            want(item, str, origin, f"{where}.{field}[{i}]")
    for i, e in enumerate(want(r.get("files"), list, origin, f"{where}.files")):
        entry(e, origin, f"{where}.files[{i}]")
    for path, digest in want(r.get("config", {}), dict, origin, f"{where}.config").items():
        rel_path(path, origin, f"{where}.config key")
        if not HEX64.fullmatch(want(digest, str, origin, f"{where}.config.{path}")):
            raise fail(origin, f"{where}.config.{path}", "is not a sha256")
    return r  # type: ignore[no-any-return]


def database(doc: Any, origin: str) -> tuple[int, int, dict[str, Mapping[str, Any]]]:
    """(format, transaction, packages) of a db.json document."""
    want(doc, dict, origin, "the document")
    fmt = natural(doc.get("format", 0), origin, "format")
    transaction = natural(doc.get("transaction", 0), origin, "transaction")
    packages = want(doc.get("packages"), dict, origin, "packages")
    return fmt, transaction, {k: record(name(k, origin, "packages key"), v, origin, f"packages.{k}")
                              for k, v in packages.items()}


def history(doc: Any, origin: str) -> list[Mapping[str, Any]]:
    for i, h in enumerate(want(doc, list, origin, "the document")):
        where = f"[{i}]"
        want(h, dict, origin, where)
        natural(h.get("id"), origin, f"{where}.id")
        natural(h.get("time", 0), origin, f"{where}.time")
        want(h.get("operation", ""), str, origin, f"{where}.operation")
        for j, p in enumerate(want(h.get("packages", []), list, origin, f"{where}.packages")):
            want(p, dict, origin, f"{where}.packages[{j}]")
            name(p.get("name"), origin, f"{where}.packages[{j}].name")
            want(p.get("action", ""), str, origin, f"{where}.packages[{j}].action")
            for field in ("old", "new", "version"):
                want(p.get(field), (str, type(None)), origin, f"{where}.packages[{j}].{field}")
    return list(doc)


def repositories(doc: Any, origin: str) -> list[Mapping[str, Any]]:
    for i, r in enumerate(want(doc, list, origin, "the document")):
        want(r, dict, origin, f"[{i}]")
        if not want(r.get("name"), str, origin, f"[{i}].name"):
            raise fail(origin, f"[{i}].name", "is empty")
        want(r.get("url"), str, origin, f"[{i}].url")
        want(r.get("root"), dict, origin, f"[{i}].root")
        for j, m in enumerate(want(r.get("mirrors", []), list, origin, f"[{i}].mirrors")):
            want(m, str, origin, f"[{i}].mirrors[{j}]")
    return list(doc)


def paths(doc: Any, origin: str) -> list[str]:
    """A JSON array of root-relative paths (``generated.json``)."""
    return [rel_path(p, origin, f"[{i}]") for i, p in enumerate(want(doc, list, origin, "the document"))]


def names(values: Sequence[Any], origin: str, where: str) -> list[str]:
    return [name(v, origin, f"{where}[{i}]") for i, v in enumerate(values)]
