"""Grammars of the profile's strings: every value that ends up in a file, a file name or a command line.

One table (:data:`GRAMMARS`) serves both layers: ``schemas/profile.schema.json`` carries the same
patterns (``tests/unit/test_profile_grammar.py`` checks they agree) and :func:`grammar_errors`
checks them again in code with ``re.fullmatch``. Patterns end with ``(?![\\s\\S])`` (end of text),
never ``$``: in Python and in JSON Schema's ``pattern`` a ``$`` also matches before a final newline,
and a newline is exactly what turns a ``shell`` into a second ``/etc/passwd`` line.
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

END = r"(?![\s\S])"  # end of the text (no final-newline exception)
_SEGMENT = r"/(?!\.\.?(?:/|(?![\s\S])))[A-Za-z0-9._+@-]+"  # one path segment, never '.' or '..'

SSH_KEY_TYPES = ("ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
                 "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com")


@dataclass(frozen=True, slots=True, kw_only=True)
class Grammar:
    name: str
    pattern: str          # anchored with ^ and END; used by the schema and by re.fullmatch
    max_length: int
    says: str             # what a valid value looks like (the hint of an error)

    def matches(self, value: str) -> bool:
        return len(value) <= self.max_length and re.fullmatch(self.pattern, value) is not None


def _g(name: str, body: str, max_length: int, says: str) -> Grammar:
    return Grammar(name=name, pattern=f"^{body}{END}", max_length=max_length, says=says)


GRAMMARS: Mapping[str, Grammar] = {g.name: g for g in (
    _g("name", r"[a-z0-9][a-z0-9._+-]{0,63}", 64,
       "lower-case letters, digits and . _ + -, starting with a letter or digit, at most 64"),
    _g("capability", r"[a-z][a-z0-9_-]{0,63}", 64,
       "a capability: lower-case letters, digits, _ and -, starting with a letter, at most 64"),
    _g("account", r"[a-z_][a-z0-9_-]{0,31}", 32,
       "a POSIX portable user or group name: [a-z_][a-z0-9_-]*, at most 32 characters"),
    _g("path", f"(?:{_SEGMENT})+", 4095,
       "an absolute, normalised path: /dir/name, no '.', '..', '//', trailing '/', ':' or control characters"),
    _g("gecos", r"[^\x00-\x1f\x7f-\x9f:]{0,255}", 255,
       "free text without ':' or control characters (newlines, tabs), at most 255 characters"),
    _g("password-hash", r"(?:!+\*?|\*|!*\$[0-9a-z]{1,8}(?:\$[A-Za-z0-9./=+,-]{1,256}){1,4})", 512,
       "a crypt(3) hash '$id$salt$hash' (e.g. from 'mkpasswd -m yescrypt'), or '!' / '*' / '!*' for a "
       "locked account; an empty password is not allowed"),
    _g("ssh-key", r"(?:" + "|".join(re.escape(t) for t in SSH_KEY_TYPES)
       + r") [A-Za-z0-9+/]+={0,2}(?: [\x20-\x7e]{0,255})?", 16384,
       "one line 'TYPE BASE64 [comment]' as in id_ed25519.pub (types: " + ", ".join(SSH_KEY_TYPES) + ")"),
    _g("hostname", r"(?=[\s\S]{1,253}(?![\s\S]))[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
       r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*", 253,
       "an RFC 1123 host name: labels of letters, digits and '-' (1-63, not starting or ending with '-'), "
       "separated by '.', at most 253 characters"),
    _g("cmdline", r"[\x20-\x7e]{0,4096}", 4096,
       "printable ASCII on one line (no newline or other control characters), at most 4096 characters"),
    _g("line", r"[^\x00-\x1f\x7f-\x9f]{1,4096}", 4096, "one line of text without control characters"),
    _g("http-path", r"/[\x21-\x7e]{0,1023}", 1024,
       "an HTTP request path: '/' then printable ASCII without spaces, at most 1024 characters"),
    _g("text", r"[^\x00-\x08\x0b-\x1f\x7f-\x9f]{0,65536}", 65536,
       "text without control characters other than newline and tab"),
    _g("check-name", r"[a-z0-9][a-z0-9._-]{0,63}", 64,
       "a file name: lower-case letters, digits and . _ -, starting with a letter or digit, at most 64"),
    _g("script", r"[^\x00]{1,65536}", 65536, "a shell script without NUL bytes, at most 64 KiB"),
    _g("url", r"[\x21-\x7e]{1,2048}", 2048, "a URL or relative directory: printable ASCII without spaces"),
    _g("relative", r"(?!/)[A-Za-z0-9._+@-]+(?:/[A-Za-z0-9._+@-]+)*", 1024,
       "a path relative to the profile, without control characters (it must stay inside the profile's "
       "git work tree)"),
    _g("license", r"[A-Za-z0-9.+()-]+(?: (?:AND|OR|WITH) [A-Za-z0-9.+()-]+)*", 256, "an SPDX license expression"),
    _g("pattern", r"[a-z0-9*?][a-z0-9._+*?:\[\]!-]{0,127}", 128,
       "a package name or a glob of names (fnmatch: * ? [...]), e.g. 'libfoo-*'"),
    _g("service-name", r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}", 64,
       "a service name as packages declare it: letters, digits and _ . @ -, at most 64"),
    _g("env-name", r"[A-Za-z_][A-Za-z0-9_]{0,127}", 128,
       "an environment variable name: letters, digits and _, not starting with a digit, at most 128"),
    _g("env-value", r"[^\x00-\x1f\x7f-\x9f]{0,4096}", 4096,
       "one line of text without control characters (init reads it line by line), at most 4096"),
    _g("readiness", r"(?:none|notify|tcp:[0-9]{1,5}|file(?=:/)" + f":(?:{_SEGMENT})+)", 4101,
       "none, notify, tcp:PORT (1-65535) or file:/ABSOLUTE/PATH"),
)}

Field = tuple[tuple[str | int, ...], str, str]  # JSON path, value, grammar name


def fields(doc: Mapping[str, object]) -> Iterator[Field]:
    """Every string of a (schema-valid) profile that reaches a file, a file name or a command line."""
    def each(path: tuple[str | int, ...], values: object, grammar: str) -> Iterator[Field]:
        for i, v in enumerate(values if isinstance(values, list) else []):
            if isinstance(v, str):
                yield (*path, i), v, grammar

    def one(path: tuple[str | int, ...], value: object, grammar: str) -> Iterator[Field]:
        if isinstance(value, str):
            yield path, value, grammar

    def dicts(values: object) -> list[tuple[int, Mapping[str, object]]]:
        return [(i, v) for i, v in enumerate(values if isinstance(values, list) else []) if isinstance(v, dict)]

    def obj(value: object) -> Mapping[str, object]:
        return value if isinstance(value, dict) else {}

    yield from one(("name",), doc.get("name"), "name")
    yield from one(("description",), doc.get("description"), "text")
    yield from one(("hostname",), doc.get("hostname"), "hostname")
    yield from one(("init",), doc.get("init"), "name")
    yield from one(("files",), doc.get("files"), "relative")
    kernel = obj(doc.get("kernel"))
    yield from one(("kernel", "package"), kernel.get("package"), "name")
    yield from one(("kernel", "cmdline"), kernel.get("cmdline"), "cmdline")
    yield from each(("drivers",), doc.get("drivers"), "name")
    yield from each(("capabilities",), doc.get("capabilities"), "capability")
    for i, r in dicts(doc.get("repositories")):
        yield from one(("repositories", i, "name"), r.get("name"), "name")
        yield from one(("repositories", i, "url"), r.get("url"), "url")
        yield from each(("repositories", i, "mirrors"), r.get("mirrors"), "url")
        yield from one(("repositories", i, "root"), r.get("root"), "relative")
        yield from each(("repositories", i, "packages"), r.get("packages"), "pattern")
    packages = doc.get("packages")
    for i, p in enumerate(packages if isinstance(packages, list) else []):
        yield from one(("packages", i), p, "name")
        if isinstance(p, dict):
            yield from one(("packages", i, "name"), p.get("name"), "name")
            yield from each(("packages", i, "features"), p.get("features"), "name")
    for i, u in dicts(doc.get("users")):
        yield from one(("users", i, "name"), u.get("name"), "account")
        yield from each(("users", i, "groups"), u.get("groups"), "account")
        yield from one(("users", i, "shell"), u.get("shell"), "path")
        yield from one(("users", i, "home"), u.get("home"), "path")
        yield from one(("users", i, "gecos"), u.get("gecos"), "gecos")
        yield from one(("users", i, "password-hash"), u.get("password-hash"), "password-hash")
        yield from each(("users", i, "ssh-keys"), u.get("ssh-keys"), "ssh-key")
    for i, o in dicts(doc.get("outputs")):
        yield from one(("outputs", i, "name"), o.get("name"), "name")
    for i, t in dicts(doc.get("boot-tests")):
        yield from one(("boot-tests", i, "name"), t.get("name"), "name")
        yield from each(("boot-tests", i, "outputs"), t.get("outputs"), "name")
        yield from each(("boot-tests", i, "expect"), t.get("expect"), "line")
        for name, body in sorted(obj(t.get("checks")).items()):
            yield from one(("boot-tests", i, "checks", name), name, "check-name")
            yield from one(("boot-tests", i, "checks", name), body, "script")
        for j, c in dicts(t.get("host-checks")):
            yield from _host_check_fields(("boot-tests", i, "host-checks", j), c)
    for i, s in dicts(doc.get("services")):
        yield from one(("services", i, "name"), s.get("name"), "service-name")
        yield from each(("services", i, "command"), s.get("command"), "line")
        for name, value in sorted(obj(s.get("environment")).items()):
            yield from one(("services", i, "environment", name), name, "env-name")
            yield from one(("services", i, "environment", name), value, "env-value")
        yield from one(("services", i, "user"), s.get("user"), "account")
        yield from one(("services", i, "group"), s.get("group"), "account")
        yield from one(("services", i, "working-directory"), s.get("working-directory"), "path")
        yield from one(("services", i, "readiness"), s.get("readiness"), "readiness")
        yield from each(("services", i, "after"), s.get("after"), "service-name")
    policy = obj(doc.get("policy"))
    yield from each(("policy", "denied-packages"), policy.get("denied-packages"), "name")
    yield from each(("policy", "allowed-licenses"), policy.get("allowed-licenses"), "license")
    yield from each(("policy", "denied-licenses"), policy.get("denied-licenses"), "license")


Report = Callable[[Sequence[str | int], str, str], None]  # (JSON path, message, hint)


# the strings of each kind of host check (composer.hostchecks) and their grammars
HOST_CHECK_STRINGS: Mapping[str, Mapping[str, str]] = {
    "http": {"path": "http-path", "contains": "line"},
    "ssh": {"user": "account", "command": "line", "contains": "line", "output": "text", "key": "relative"},
}


def _host_check_fields(path: tuple[str | int, ...], check: Mapping[str, object]) -> Iterator[Field]:
    for kind, body in sorted(check.items()):
        strings = HOST_CHECK_STRINGS.get(kind, {})
        for key, value in sorted(body.items()) if isinstance(body, dict) else ():
            if key in strings and isinstance(value, str):
                yield (*path, kind, key), value, strings[key]


def grammar_errors(doc: Mapping[str, object], report: Report) -> None:
    """Check every string against its grammar, then the rules a pattern cannot say (ids, ssh key bodies)."""
    for path, value, name in fields(doc):
        g = GRAMMARS[name]
        if not g.matches(value):
            report(path, f"{_show(value)} is not a valid {name}", f"expected {g.says}")
        elif name == "ssh-key":
            problem = ssh_key_problem(value)
            if problem:
                report(path, f"{_show(value)}: {problem}", "paste the whole line of the .pub file")
    users = doc.get("users")
    account_errors([u if isinstance(u, dict) else {} for u in users] if isinstance(users, list) else [], report)


def _show(value: str, limit: int = 60) -> str:
    """A value as it may be printed on one line: repr (escapes newlines and controls), shortened."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 4] + "...'"


UID_MAX = 60000  # 60001-65535 are reserved (nobody is 65534); 0 is root's alone


def account_errors(users: Sequence[Mapping[str, object]], report: Report) -> None:
    """uid 0 only for root; uids in 0..UID_MAX; no user name or uid twice."""
    names: dict[str, int] = {}
    uids: dict[int, int] = {}
    for i, u in enumerate(users):
        name, uid = u.get("name"), u.get("uid")
        if isinstance(name, str):
            if name in names:
                report(("users", i, "name"), f"user '{name}' is listed twice (first as users[{names[name]}])",
                       "keep one entry per user")
            names.setdefault(name, i)
        if isinstance(uid, int) and not isinstance(uid, bool):
            if uid == 0 and name != "root":
                report(("users", i, "uid"), f"uid 0 is root's; user '{name}' cannot have it",
                       "give the user a uid from 1000 up; grant privileges with groups instead")
            elif not 0 <= uid <= UID_MAX:
                report(("users", i, "uid"), f"uid {uid} is outside 0..{UID_MAX}", "use a uid from 1000 to 60000")
            if uid in uids:
                report(("users", i, "uid"), f"uid {uid} is already used by users[{uids[uid]}]",
                       "give each user a distinct uid")
            uids.setdefault(uid, i)


def ssh_key_problem(line: str) -> str:
    """Why an ``authorized_keys`` line is not a public key of its declared type ('' when it is)."""
    kind, body = line.split(" ")[:2]
    try:
        blob = base64.b64decode(body, validate=True)
        (n,) = struct.unpack(">I", blob[:4])
        inner = blob[4:4 + n].decode("ascii")
    except (binascii.Error, struct.error, UnicodeDecodeError, ValueError):
        return "the key body is not base64 of an SSH public key"
    if inner != kind:
        return f"the key body is a '{inner[:40]}' key, not '{kind}'"
    return ""
